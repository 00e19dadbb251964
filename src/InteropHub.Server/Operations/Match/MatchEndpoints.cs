using System.Globalization;
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
        var (patient, onlyCertain, count) = body switch
        {
            Parameters parameters => FromParameters(request, parameters),
            Patient bare => (bare, QueryBoolean(request, "onlyCertainMatches"), QueryCount(request)),
            _ => throw new InvalidInputException($"POST Patient/{Operation} takes a Parameters resource with a Patient as 'resource', or the Patient itself, not {body.TypeName}.", body.TypeName),
        };
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

    private static (Patient Patient, bool OnlyCertain, int Count) FromParameters(HttpRequest request, Parameters parameters)
    {
        OperationParameters.EnsureNoneInQuery(request, Operation);
        if (parameters.Parameter.FirstOrDefault(p => p.Name is not ("resource" or "onlyCertainMatches" or "count")) is { } unknown)
        {
            throw new InvalidInputException($"{Operation} has no parameter '{unknown.Name}'; it takes resource, onlyCertainMatches and count.", unknown.Name ?? "parameter");
        }

        var patient = parameters.One("resource", Operation) switch
        {
            null => throw new InvalidInputException($"{Operation} needs the parameter 'resource': the Patient to match.", "resource"),
            { Resource: Patient given } => given,
            { Resource: { } other } => throw new InvalidInputException($"The {Operation} parameter 'resource' is a Patient, not {other.TypeName}.", "resource"),
            _ => throw new InvalidInputException($"The {Operation} parameter 'resource' holds no resource: put the Patient in parameter.resource.", "resource"),
        };
        var onlyCertain = parameters.One("onlyCertainMatches", Operation) switch
        {
            null => false,
            { Value: FhirBoolean { Value: { } flag } } => flag,
            _ => throw new InvalidInputException($"The {Operation} parameter 'onlyCertainMatches' is a boolean (valueBoolean).", "onlyCertainMatches"),
        };
        var count = parameters.One("count", Operation) switch
        {
            null => DefaultCount,
            { Value: Integer { Value: { } n } } => CheckCount(n),
            _ => throw new InvalidInputException($"The {Operation} parameter 'count' is an integer (valueInteger).", "count"),
        };
        return (patient, onlyCertain, count);
    }

    private static bool QueryBoolean(HttpRequest request, string name)
    {
        EnsureOnlyKnownInQuery(request);
        return request.Query[name].ToString() switch
        {
            "" => false,
            "true" => true,
            "false" => false,
            var other => throw new InvalidInputException($"{name} must be true or false, not '{other}'.", name),
        };
    }

    private static int QueryCount(HttpRequest request) => request.Query["count"].ToString() switch
    {
        "" => DefaultCount,
        var text when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) => CheckCount(n),
        var other => throw new InvalidInputException($"count must be a whole number from 1 to {MaxCount}, not '{other}'.", "count"),
    };

    private static int CheckCount(int count) => count is >= 1 and <= MaxCount ? count
        : throw new InvalidInputException($"count must be from 1 to {MaxCount}, not {count}.", "count");

    private static void EnsureOnlyKnownInQuery(HttpRequest request)
    {
        foreach (var (name, values) in request.Query)
        {
            if (name is not ("onlyCertainMatches" or "count" or "_format" or "_pretty"))
            {
                throw new InvalidInputException($"{Operation} has no parameter '{name}'; with the Patient as the body it takes onlyCertainMatches and count in the query.", name);
            }

            if (values.Count > 1)
            {
                throw new InvalidInputException($"The {Operation} parameter '{name}' is given more than once.", name);
            }
        }
    }
}
