using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Hub.ResultRecognition;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.RecognizedResults;

/// <summary>
/// <c>GET [base]/Patient/[id]/$recognized-results?code=system|code&amp;at=…&amp;requester=Organization/…</c>: the prior
/// results the requester must recognise, as a searchset Bundle; each entry's <c>search</c> carries the instant until
/// which the result is recognised. <c>requester</c> defaults to the caller's <c>X-Organization</c>.
/// </summary>
public static class RecognizedResultsEndpoints
{
    public const string ExpiryExtension = "https://interophub.dev/fhir/StructureDefinition/recognized-until";

    public static IEndpointRouteBuilder MapRecognizedResultsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/Patient/{id}/$recognized-results", Handle);
        return app;
    }

    private static async Task<IResult> Handle(string id, HttpRequest request, Hub.ResultRecognition.RecognizedResults handler, FhirSerializers serializers, TimeProvider clock,
        Fhir.Storage.IResourceStore store, CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        foreach (var name in request.Query.Keys.Where(k => k is not ("code" or "requester" or "at" or "_format" or "_pretty")))
        {
            // Ignored, a misspelt parameter would answer a question nobody asked.
            throw new InvalidInputException($"$recognized-results has no parameter '{name}'; it takes code, requester and at.", name);
        }

        var code = request.Query["code"].ToString();
        if (code.Length == 0 || request.Query["code"].Count > 1 || code.Contains(',', StringComparison.Ordinal))
        {
            throw new InvalidInputException("$recognized-results needs one code=system|code (the item being ordered); ask once per item.", "code");
        }

        var requester = request.Query["requester"].ToString() is { Length: > 0 } named ? named : CallerContext.Organization
            ?? throw new InvalidInputException("$recognized-results needs requester=Organization/{id} (or the X-Organization header).", "requester");
        var at = clock.GetUtcNow();
        var atText = request.Query["at"].ToString();
        if (atText.Length > 0 && !(FhirDateTime.IsValidValue(atText) && TryInstant(atText, out at)))
        {
            throw new InvalidInputException($"at must be a dateTime such as 2025-05-08T10:00:00+08:00, not '{atText}'.", "at");
        }

        var results = await handler.HandleAsync(new RecognizedResultsRequest(id, code, at, requester), ct);
        if (results.Count == 0 && await store.ReadAsync("Patient", id, ct) is not { IsDeleted: false })
        {
            // Nothing to recognise because there is no such patient: say so rather than answer an empty list.
            throw new ResourceNotFoundException($"Patient/{id} is not known.");
        }
        var bundle = new Bundle { Type = Bundle.BundleType.Searchset, Total = results.Count };
        foreach (var result in results)
        {
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"{FhirResults.BaseUrl(request)}/Observation/{result.Observation.Id}",
                Resource = serializers.ParseStored(result.Observation.Json),
                Search = new Bundle.SearchComponent
                {
                    Mode = Bundle.SearchEntryMode.Match,
                    Extension = [new Extension(ExpiryExtension, new FhirDateTime(result.Expires))],
                },
            });
        }

        return FhirResults.Json(serializers.ToJsonBytes(bundle));
    }

    private static bool TryInstant(string text, out DateTimeOffset instant)
    {
        try
        {
            instant = new FhirDateTime(text).ToDateTimeOffset(TimeSpan.FromHours(8));
            return true;
        }
        catch (FormatException)
        {
            instant = default;
            return false;
        }
    }
}
