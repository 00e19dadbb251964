using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.ResultRecognition;

/// <param name="Code">The item ordered, as <c>system|code</c> (LOINC or the county LIS code).</param>
/// <param name="At">The time of the order; now when absent.</param>
/// <param name="Requester">The ordering organisation, <c>Organization/{id}</c>.</param>
public sealed record RecognizedResultsRequest(string PatientId, string Code, DateTimeOffset At, string Requester);

/// <param name="Expires">Until when the result must be recognised.</param>
public sealed record RecognizedResult(StoredResource Observation, DateTimeOffset Expires);

/// <summary>
/// <c>GET [base]/Patient/[id]/$recognized-results</c>: the patient's prior results of the ordered item that the
/// requester must recognise now (DOMAIN.md §2, 检验检查结果互认), newest first, each with its expiry. The item and its
/// window, minimum grade and scope come from the catalogue CodeSystem stored in the hub (loaded from mappings/),
/// the performer's grade, division and quality-control status from its Organization.
/// </summary>
public sealed class RecognizedResults(IResourceStore store, SearchResources search, FhirSerializers serializers)
{
    public const string LisSystem = "urn:interophub:cs:qxlis";

    public const string LevelExtension = "https://interophub.dev/fhir/StructureDefinition/institution-level";
    public const string DivisionExtension = "https://interophub.dev/fhir/StructureDefinition/division-code";

    /// <summary>Set to <c>false</c> on an Organization whose quality control for lab items is not passed.</summary>
    public const string QualityControlExtension = "https://interophub.dev/fhir/StructureDefinition/quality-control-passed";

    public async Task<IReadOnlyList<RecognizedResult>> HandleAsync(RecognizedResultsRequest request, CancellationToken ct)
    {
        var catalogue = await CatalogueAsync(ct);
        var bar = request.Code.IndexOf('|', StringComparison.Ordinal);
        var asked = bar < 0 ? new Coding(null, request.Code) : new Coding(request.Code[..bar], request.Code[(bar + 1)..]);
        var item = catalogue.Find([asked]);
        if (item is null)
        {
            // Not a catalogued item: nothing has to be recognised.
            return [];
        }

        var requester = await OrganizationAsync(request.Requester, ct)
            ?? throw new InvalidInputException($"requester '{request.Requester}' is not a known Organization.", "requester");
        // The same item arrives LOINC-coded or with only the county LIS code (his-hl7v2.md §5).
        var codes = item.Loinc is null ? $"{LisSystem}|{item.Code}" : $"http://loinc.org|{item.Loinc},{LisSystem}|{item.Code}";
        var page = await search.HandleAsync(new SearchRequest("Observation",
        [
            new("subject", $"Patient/{request.PatientId}"),
            new("code", codes),
            // A result that stands: not a preliminary, cancelled or entered-in-error one (as the tag's rule says).
            new("status", "final,amended,corrected"),
            new("date", "le" + request.At.ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture)),
            // Only results young enough to be inside the item's window can be recognised: the store skips the rest. The
            // window runs from the issue, which follows the collection (the date searched) by hours or days: a month's margin.
            new("date", "ge" + request.At.AddDays(-item.ValidityDays - IssueMarginDays).ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture)),
            new("_sort", "-date"),
            new("_count", "200"),
        ]), ct);

        var results = new List<RecognizedResult>();
        var organizations = new Dictionary<string, Organization?>(StringComparer.Ordinal);
        foreach (var stored in page.Matches)
        {
            if (serializers.ParseStored(stored.Json) is not Observation observation || Issued(observation) is not { } issued)
            {
                continue;
            }

            var performerReference = observation.Performer.Select(p => p.Reference).FirstOrDefault(r => r?.StartsWith("Organization/", StringComparison.Ordinal) == true);
            if (performerReference is null)
            {
                continue;
            }

            if (!organizations.TryGetValue(performerReference, out var performer))
            {
                performer = organizations[performerReference] = await OrganizationAsync(performerReference, ct);
            }

            if (performer is null)
            {
                continue;
            }

            var prior = new PriorResult(issued, Level(performer), QualityControl(performer), Division(performer));
            var decision = RecognitionRules.Evaluate(item, prior, request.At, Division(requester));
            if (decision.Recognised)
            {
                results.Add(new RecognizedResult(stored, decision.Expires));
            }
        }

        return results;
    }

    /// <summary>The catalogue stored in the hub; 422 when it is not loaded.</summary>
    public async Task<RecognitionCatalogue> CatalogueAsync(CancellationToken ct)
    {
        var stored = await store.ReadAsync("CodeSystem", "result-recognition", ct);
        if (stored is not { IsDeleted: false } || serializers.ParseStored(stored.Json) is not CodeSystem codeSystem)
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.NotFound,
                "The recognition catalogue (CodeSystem/result-recognition, from mappings/result-recognition.json) is not loaded.");
        }

        return RecognitionCatalogue.FromCodeSystem(codeSystem);
    }

    private async Task<Organization?> OrganizationAsync(string reference, CancellationToken ct)
    {
        if (!reference.StartsWith("Organization/", StringComparison.Ordinal))
        {
            return null;
        }

        var stored = await store.ReadAsync("Organization", reference["Organization/".Length..], ct);
        return stored is { IsDeleted: false } ? serializers.ParseStored(stored.Json) as Organization : null;
    }

    private const int IssueMarginDays = 31;

    /// <summary>
    /// When the result was issued (Observation.issued, the report's OBR-22), from which the catalogue's window runs ("recognised
    /// for this many days after it was issued"); a result that does not say is taken as issued when it was collected.
    /// </summary>
    private static DateTimeOffset? Issued(Observation observation) => observation.Issued ?? observation.Effective switch
    {
        FhirDateTime when_ => when_.ToDateTimeOffset(TimeSpan.FromHours(8)),
        Period { Start: not null } period => new FhirDateTime(period.Start).ToDateTimeOffset(TimeSpan.FromHours(8)),
        _ => null,
    };

    /// <summary>The grade digit of the institution-level code (3B → 3); 0 (未定级) when absent.</summary>
    internal static int Level(Organization organization) =>
        organization.GetExtensionValue<Coding>(LevelExtension)?.Code is [var digit, ..] && char.IsAsciiDigit(digit) ? digit - '0' : 0;

    internal static string Division(Organization organization) => organization.GetExtensionValue<Code>(DivisionExtension)?.Value ?? "";

    internal static bool QualityControl(Organization organization) => organization.GetExtensionValue<FhirBoolean>(QualityControlExtension)?.Value ?? true;
}
