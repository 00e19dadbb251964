namespace InteropHub.Adapters.His;

/// <summary>
/// What the hub holds that decides the ids of a HIS message's records. The ingest pipeline reads it under the message's
/// person locks and maps the message again with it (<see cref="HisMapper.Map"/>).
/// </summary>
/// <param name="NewbornRecordKeys">The record keys of newborns a birth certificate's correction gave a new key, by that new
/// key (<see cref="ExtensionUrls.NewbornRecordKey"/>): their doses and parents are written by the record key.</param>
/// <param name="PersonKey">The person key of the stored Patient the message's MRN names (<see cref="Identity.DoseIds.PersonKey"/>),
/// for a message that gives none itself (no ID number, no newborn key): its doses get the id every source gives them.</param>
/// <param name="DoseIds">Stored dose ids by the id the mapping gives the dose: a dose written under the patient's MRN key,
/// before the hub knew a person key, keeps its id.</param>
public sealed record StoredKeys(IReadOnlyDictionary<string, string> NewbornRecordKeys, string? PersonKey, IReadOnlyDictionary<string, string> DoseIds)
{
    public static readonly StoredKeys None = new(new Dictionary<string, string>(), null, new Dictionary<string, string>());
}
