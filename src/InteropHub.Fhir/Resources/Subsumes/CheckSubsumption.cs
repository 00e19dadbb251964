using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Terminology;

namespace InteropHub.Fhir.Resources.Subsumes;

/// <summary>
/// What <c>CodeSystem/$subsumes</c> was asked (codesystem-operation-subsumes.html): codes A and B (from <c>codeA</c> /
/// <c>codeB</c> with <c>system</c> and <c>version</c>, or <c>codingA</c> / <c>codingB</c>) of one code system, named
/// by the instance or by system.
/// </summary>
public sealed record SubsumesRequest(Coding A, string AParameter, Coding B, string BParameter, string? Id = null, string? System = null, string? Version = null);

/// <summary>
/// Tells how two codes of a code system stored in the hub relate in its hierarchy (nested concepts and the subsumedBy /
/// parent / child properties, as token <c>:below</c> reads it): <c>equivalent</c> (the same code), <c>subsumes</c> (B is
/// below A), <c>subsumed-by</c> (A is below B) or <c>not-subsumed</c>. A code the code system does not define is a 404
/// naming its parameter.
/// </summary>
public sealed class CheckSubsumption(LocalTerminology terminology)
{
    public async Task<Parameters> HandleAsync(SubsumesRequest request, CancellationToken ct)
    {
        foreach (var (coding, parameter) in new[] { (request.A, request.AParameter), (request.B, request.BParameter) })
        {
            if (string.IsNullOrEmpty(coding.Code))
            {
                throw new InvalidInputException($"$subsumes needs two codes: codeA and codeB, or codingA and codingB; {parameter} is missing.", parameter);
            }

            if (coding.System is { Length: > 0 } system && request.System is { Length: > 0 } named && system != named)
            {
                throw new InvalidInputException($"{parameter} is of the system {system}, not {named}: $subsumes compares codes of one code system.", parameter);
            }
        }

        if (request.A.System is { Length: > 0 } a && request.B.System is { Length: > 0 } b && a != b)
        {
            throw new InvalidInputException($"{request.AParameter} is of {a} and {request.BParameter} of {b}: $subsumes compares codes of one code system.", request.BParameter);
        }

        var concepts = await CodeSystemAsync(request, ct);
        foreach (var (coding, parameter) in new[] { (request.A, request.AParameter), (request.B, request.BParameter) })
        {
            if (!concepts.Contains(coding.Code!))
            {
                throw new ResourceNotFoundException($"'{coding.Code}' is not a code of the code system {concepts.System}.", parameter);
            }
        }

        var outcome = request.A.Code == request.B.Code ? "equivalent"
            : concepts.Related(request.A.Code!, above: false).Contains(request.B.Code!) ? "subsumes"
            : concepts.Related(request.B.Code!, above: false).Contains(request.A.Code!) ? "subsumed-by"
            : "not-subsumed";
        var answer = new Parameters();
        answer.Add("outcome", new Code(outcome));
        return answer;
    }

    private async Task<CodeSystemConcepts> CodeSystemAsync(SubsumesRequest request, CancellationToken ct)
    {
        var version = request.Version ?? request.A.Version ?? request.B.Version;
        if (request.Id is { } id)
        {
            var stored = await terminology.ByIdAsync<CodeSystem>(id, ct);
            var system = request.System ?? request.A.System ?? request.B.System;
            if ((system is { Length: > 0 } && system != stored.Url) || (version is not null && version != stored.Version))
            {
                throw new InvalidInputException($"CodeSystem/{id} is {stored.Url}{(stored.Version is null ? "" : $"|{stored.Version}")}, not the code system asked for.", "system");
            }

            return CodeSystemConcepts.Of(stored, $"CodeSystem/{id}");
        }

        var url = request.System ?? request.A.System ?? request.B.System;
        if (string.IsNullOrEmpty(url))
        {
            throw new InvalidInputException("$subsumes needs the code system: system, the codings' system, or CodeSystem/[id]/$subsumes.", "system");
        }

        return await terminology.CodeSystemAsync(url, version, "system", ct) ?? throw new ResourceNotFoundException(
            $"The code system {url}{(version is null ? "" : $" version {version}")} is not stored in the hub; $subsumes answers for the code systems stored here only.", "system");
    }
}
