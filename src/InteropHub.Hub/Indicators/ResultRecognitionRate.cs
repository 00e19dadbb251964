using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Hub.ResultRecognition;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// The result recognition rate (结果互认率, DOMAIN.md §3) as a summary <c>MeasureReport</c> of
/// <c>Measure/result-recognition</c>, over the orders for catalogued items placed in the period (<c>authoredOn</c>)
/// while the patient had a result the requester had to recognise:
/// <list type="bullet">
/// <item>recognised (the numerator, the tests avoided): an order the requester closed on a prior result, status
/// <c>completed</c>, naming that result (a DiagnosticReport or Observation) in <c>supportingInfo</c>, with no
/// non-recognition reason;</item>
/// <item>tested again: an order that carries a non-recognition reason (<see cref="NonRecognitionReasonRule"/>
/// requires one exactly when such a result exists), not entered in error;</item>
/// <item>denominator: both; stratified by the ordering institution (the requester, or a PractitionerRole's
/// organisation) and, for the orders tested again, by reason; with a subject, only that institution's orders.</item>
/// </list>
/// </summary>
public sealed class ResultRecognitionRate(RecognizedResults recognized, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureId = "result-recognition";
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/result-recognition";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/result-recognition-rate";
    private static readonly byte[] SupportingInfo = "\"supportingInfo\""u8.ToArray();
    private static readonly byte[] Reason = System.Text.Encoding.UTF8.GetBytes(NonRecognitionReasonRule.ReasonExtension);

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var catalogue = await recognized.CatalogueAsync(ct);
        var roles = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("PractitionerRole", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is PractitionerRole { Organization.Reference: { } organization })
            {
                roles[$"PractitionerRole/{stored.Id}"] = organization;
            }
        }

        var orders = new List<(string Order, string Institution, string? Reason)>();
        await foreach (var stored in scanner.ScanAsync("ServiceRequest", null, now.AddTicks(1), ct))
        {
            // Only orders that could be either are parsed (a county places many orders for uncatalogued items).
            var json = stored.Json.AsSpan();
            if ((json.IndexOf(SupportingInfo) < 0 && json.IndexOf(Reason) < 0) || serializers.ParseStored(stored.Json) is not ServiceRequest order
                || order.Status is RequestStatus.EnteredInError or RequestStatus.Draft || order.Code is null || catalogue.Find(order.Code.Coding) is null
                || TownshipResidents.Day(order.AuthoredOnElement?.Value) is not { } day || day < request.FirstDay || day > request.LastDay)
            {
                continue;
            }

            // An order placed with a reason was tested again, whatever its status; its reason "unknown" when not coded.
            var reason = order.Extension.FirstOrDefault(e => e.Url == NonRecognitionReasonRule.ReasonExtension) is { } extension
                ? extension.Value switch
                {
                    Coding coding => coding.Code,
                    CodeableConcept concept => concept.Coding.FirstOrDefault(c => c.System == NonRecognitionReasonRule.ReasonSystem)?.Code,
                    _ => null,
                } ?? "unknown"
                : null;
            var recognised = reason is null && order.Status == RequestStatus.Completed
                && order.SupportingInfo.Any(r => r.Reference?.StartsWith("DiagnosticReport/", StringComparison.Ordinal) == true
                    || r.Reference?.StartsWith("Observation/", StringComparison.Ordinal) == true);
            var institution = order.Requester?.Reference switch
            {
                { } r when r.StartsWith("Organization/", StringComparison.Ordinal) => r,
                { } r when roles.TryGetValue(r, out var organization) => organization,
                _ => "unknown",
            };
            if ((reason is not null || recognised) && (request.Township is null || institution == request.Township))
            {
                orders.Add(($"ServiceRequest/{stored.Id}", institution, reason));
            }
        }

        var recognisedOrders = orders.Where(o => o.Reason is null).Select(o => o.Order).ToHashSet(StringComparer.Ordinal);
        var report = ProportionReport.Summary(MeasureUrl, request, now);
        var group = ProportionReport.Group(new CodeableConcept(GroupSystem, "result-recognition", "结果互认率"), orders.Count, recognisedOrders.Count);
        group.Stratifier.Add(ProportionReport.By(new CodeableConcept(GroupSystem, "institution", "开单机构"),
            orders.Select(o => (o.Order, o.Institution)), recognisedOrders.Contains));
        group.Stratifier.Add(new MeasureReport.StratifierComponent
        {
            Code = [new CodeableConcept(GroupSystem, "non-recognition-reason", "不予互认理由")],
            Stratum = orders.Where(o => o.Reason is not null).GroupBy(o => o.Reason!, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new MeasureReport.StratifierGroupComponent
                {
                    Value = new CodeableConcept(NonRecognitionReasonRule.ReasonSystem, g.Key),
                    Population = [new() { Code = ProportionReport.Population("denominator"), Count = g.Count() }],
                }).ToList(),
        });
        report.Group.Add(group);
        return report;
    }
}
