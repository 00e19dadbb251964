namespace InteropHub.Adapters.His;

/// <summary>
/// What the hub holds that decides the ids of a HIS message's records. The ingest pipeline reads it under the message's
/// person locks and maps the message again with it (<see cref="HisMapper.Map"/>).
/// </summary>
/// <param name="NewbornRecordKeys">The record keys of newborns a birth certificate's correction gave a new key, by that new
/// key (<see cref="ExtensionUrls.NewbornRecordKey"/>): their doses and parents are written by the record key.</param>
/// <param name="PersonKey">The person key of the stored Patient the message's MRN names (<see cref="Identity.DoseIds.PersonKey"/>:
/// newborn record key or newborn key, else ID number): the message's doses are keyed by it, as the other sources key them,
/// whatever key the message itself gives (an MRN alone, or an ID number for a child the hub knows by its newborn key).</param>
/// <param name="DoseIds">Stored dose ids by the id the mapping gives the dose: a dose the hub holds under another key
/// (the message's own, or the MRN key, written before the hub knew a person key) keeps its id.</param>
/// <param name="SharedDoses">The doses the message deletes (RXA-21 D) that other sources report too, by id: whether the
/// sending hospital's own identifier is on it. The hospital takes back its report only; the dose stays.</param>
/// <param name="VisitDiagnoses">For a cancel of admission (A11): the ids of the Conditions the stored visit lists as its
/// diagnoses, which the cancel marks entered in error with the visit; for a cancel of discharge (A13): those of its final
/// diagnoses (DG1-6 F), which go with the discharge.</param>
public sealed record StoredKeys(IReadOnlyDictionary<string, string> NewbornRecordKeys, string? PersonKey, IReadOnlyDictionary<string, string> DoseIds,
    IReadOnlyDictionary<string, bool>? SharedDoses = null, IReadOnlyList<string>? VisitDiagnoses = null)
{
    public static readonly StoredKeys None = new(new Dictionary<string, string>(), null, new Dictionary<string, string>());
}
