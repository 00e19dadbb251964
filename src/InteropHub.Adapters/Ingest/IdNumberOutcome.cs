using Hl7.Fhir.Model;
using Hl7.Fhir.Utility;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// What the merge of a message into a stored Patient did with an ID number the message sends when the Patient has
/// another: kept both (a source other than the one that registered the number), or ignored the sent one (a message that
/// does not maintain the person). Either way the sources disagree on who the person is, so the adapter warns the
/// sender. Put on the message's Patients before their transaction runs; the merge runs inside the transaction on its
/// copies of them, which share this annotation, and sets it again on each attempt.
/// </summary>
internal sealed class IdNumberOutcome
{
    public string? Sent { get; private set; }

    public string? Stored { get; private set; }

    public bool Ignored { get; private set; }

    public static void AttachTo(Bundle transaction)
    {
        foreach (var patient in transaction.Entry.Select(e => e.Resource).OfType<Patient>().Where(p => p.Identifier.Any(i => i.System == Systems.ResidentId)))
        {
            patient.SetAnnotation(new IdNumberOutcome());
        }
    }

    public static IdNumberOutcome? Of(Patient patient) => patient.Annotation<IdNumberOutcome>();

    /// <summary>The disagreements of a message's Patients in the transaction's last attempt.</summary>
    public static IEnumerable<IdNumberOutcome> In(Bundle transaction) =>
        transaction.Entry.Select(e => e.Resource).OfType<Patient>().Select(Of).OfType<IdNumberOutcome>().Where(o => o.Stored is not null);

    public void Clear() => (Sent, Stored, Ignored) = (null, null, false);

    public void Record(string sent, string stored, bool ignored) => (Sent, Stored, Ignored) = (sent, stored, ignored);

    /// <summary>For the outcome of a township row or certificate.</summary>
    public string Describe() => Ignored
        ? $"ID number {Sent} differs from {Stored}, which the hub holds for this person; not taken, as this record does not maintain the person"
        : $"ID number {Sent} differs from {Stored}, which the hub holds for this person from another source; both are kept until the sources agree";
}
