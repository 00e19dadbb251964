using Hl7.Fhir.Model;
using InteropHub.Adapters.Identity;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Match;

/// <summary>
/// <c>POST [base]/Patient/$match</c> (patient-operation-match.html): a Parameters body with <c>resource</c> (a Patient),
/// <c>onlyCertainMatches</c> and <c>count</c>, or the Patient itself as the body (the two then in the query). The answer
/// is a searchset Bundle of the stored Patients that may be that person, most likely first, each with
/// <c>search.score</c> and the <c>match-grade</c> extension (<see cref="MatchPatients"/> says how they are graded).
/// </summary>
public static class MatchEndpoints
{
    private const string Operation = "$match";

    public const string MatchGradeExtension = "http://hl7.org/fhir/StructureDefinition/match-grade";

    /// <summary>What the two records share (and differ on), for the person who decides: e.g. "name, gender, birthDate".</summary>
    public const string EvidenceExtension = "https://interophub.dev/fhir/StructureDefinition/match-evidence";

    /// <summary>The parameters of Patient-match (patient-operation-match.html).</summary>
    private static readonly OperationSignature Signature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["resource"] = "Patient", ["onlyCertainMatches"] = "boolean", ["count"] = "integer",
    });

    public const int DefaultCount = 10;
    public const int MaxCount = 100;

    public static IEndpointRouteBuilder MapMatchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/fhir/Patient/$match", HandleAsync);
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpRequest request, FhirRequestReader reader, MatchPatients handler, FhirSerializers serializers,
        CancellationToken ct)
    {
        var body = await reader.ReadResourceAsync(request, ct);
        var parameters = body switch
        {
            Parameters given => Signature.Checked(request, given),
            // The Patient itself as the body: the other two in the query.
            Patient bare => Signature.FromQuery(request).Add("resource", bare),
            _ => throw new InvalidInputException($"POST Patient/{Operation} takes a Parameters resource with a Patient as 'resource', or the Patient itself, not {body.TypeName}.", body.TypeName),
        };
        var patient = parameters.One("resource", Operation)?.Resource as Patient
            ?? throw new InvalidInputException($"{Operation} needs the parameter 'resource': the Patient to match.", "resource");
        var onlyCertain = parameters.Flag("onlyCertainMatches", Operation);
        var count = (parameters.One("count", Operation)?.Value as Integer)?.Value ?? DefaultCount;
        if (count is < 1 or > MaxCount)
        {
            throw new InvalidInputException($"count must be from 1 to {MaxCount}, not {count}.", "count");
        }

        var facts = PersonFacts.Of(patient);
        if (facts.Identifiers.Count == 0 && facts.Names.Count == 0 && facts.BirthDate is null && facts.Phones.Count == 0)
        {
            throw new InvalidInputException($"The Patient given to {Operation} has no identifier, name, whole birth date or phone number to match on.", "resource");
        }

        var result = await handler.HandleAsync(new MatchRequest(patient, onlyCertain, count), ct);
        var bundle = new Bundle { Type = Bundle.BundleType.Searchset, Total = result.Matches.Count };
        foreach (var match in result.Matches)
        {
            var comparison = match.Comparison;
            var evidence = comparison.Conflict.Count == 0 ? string.Join(", ", comparison.Agree)
                : $"{string.Join(", ", comparison.Agree)}; differ: {string.Join(", ", comparison.Conflict)}";
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"{FhirResults.BaseUrl(request)}/Patient/{match.Patient.Id}",
                Resource = serializers.ParseStored(match.Patient.Json),
                Search = new Bundle.SearchComponent
                {
                    Mode = Bundle.SearchEntryMode.Match,
                    Score = comparison.Score,
                    Extension =
                    [
                        new Extension(MatchGradeExtension, new Code(Grade(comparison.Grade))),
                        new Extension(EvidenceExtension, new FhirString(evidence)),
                    ],
                },
            });
        }

        if (result.SeveralCertain > 0)
        {
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                Resource = new OperationOutcome
                {
                    Issue =
                    [
                        new OperationOutcome.IssueComponent
                        {
                            Severity = OperationOutcome.IssueSeverity.Information,
                            Code = OperationOutcome.IssueType.MultipleMatches,
                            Diagnostics = $"{result.SeveralCertain} records match this person certainly; with onlyCertainMatches none is returned when several do. Ask without it to see them.",
                        },
                    ],
                },
                Search = new Bundle.SearchComponent { Mode = Bundle.SearchEntryMode.Outcome },
            });
        }

        return FhirResults.Json(serializers.ToJsonBytes(bundle));
    }

    private static string Grade(MatchGrade grade) => grade switch
    {
        MatchGrade.Certain => "certain",
        MatchGrade.Probable => "probable",
        _ => "possible",
    };
}
