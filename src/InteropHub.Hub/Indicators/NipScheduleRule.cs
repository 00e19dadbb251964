using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// The immunization schedule is edited over FHIR (<see cref="NipCoverage"/>): a version of <c>Measure/nip-coverage</c> that
/// its evaluation could not read (a due age in weeks, a group without a dose number) is refused when it is written, with
/// the reason the evaluation would give, rather than accepted and then failing every report.
/// </summary>
public sealed class NipScheduleRule : IWriteRule
{
    public System.Threading.Tasks.Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        if (next is Measure { Id: NipCoverage.MeasureId } schedule)
        {
            NipCoverage.Schedule(schedule);
        }

        return System.Threading.Tasks.Task.CompletedTask;
    }
}
