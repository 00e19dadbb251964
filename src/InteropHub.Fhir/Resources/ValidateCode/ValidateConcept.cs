using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Terminology;

namespace InteropHub.Fhir.Resources.ValidateCode;

/// <summary>
/// What <c>ValueSet/$validate-code</c> or <c>CodeSystem/$validate-code</c> was asked (valueset-operation-validate-code.html,
/// codesystem-operation-validate-code.html): the codings (from <c>code</c> + <c>system</c> + <c>display</c>, <c>coding</c>,
/// or a <c>codeableConcept</c>'s, which is valid when one of them is), and the ValueSet or CodeSystem (by id, <c>url</c>
/// and version, or given whole).
/// </summary>
public sealed record ValidateCodeRequest(
    IReadOnlyList<Coding> Codings,
    bool AnyOf = false,
    string? Id = null,
    string? Url = null,
    string? Version = null,
    Resource? Given = null,
    bool AbstractAllowed = false);

/// <summary>
/// Checks codes against a ValueSet (its expansion by <see cref="LocalTerminology"/>, the one <c>:in</c> uses) or a code
/// system stored in the hub. <c>result</c> is false, with a <c>message</c>, for a code that is not a member, an abstract
/// (notSelectable) code unless <c>abstract</c> is true, and a <c>display</c> that is not the code's: the R4 operation
/// validates the concept details supplied, and a wrong display is wrong data. A display matches the code's display or
/// one of its designations, trimmed and ignoring case. The answer's <c>display</c> is the code's right one; an inactive
/// code is valid, with a message saying it is inactive.
/// </summary>
public sealed class ValidateConcept(LocalTerminology terminology)
{
    public async Task<Parameters> InValueSetAsync(ValidateCodeRequest request, CancellationToken ct)
    {
        EnsureCodes(request);
        var (valueSet, name) = await ValueSetAsync(request, ct);
        var members = await terminology.ExpandAsync(valueSet, name, ct);
        var label = valueSet.Url ?? $"ValueSet/{valueSet.Id}";
        return Answer(request, coding =>
        {
            // A code without a system is looked for in every system of the value set: one system having it is enough.
            var found = members.Where(m => m.Code == coding.Code && (string.IsNullOrEmpty(coding.System) || m.System == coding.System)).ToList();
            if (found.Count != 1)
            {
                return (null, found.Count == 0
                    ? $"The code '{Text(coding)}' is not in the value set {label}."
                    : $"The code '{coding.Code}' without a system is in the value set {label} in {found.Count} systems; give its system.");
            }

            var member = found[0];
            return coding.Version is { Length: > 0 } version && member.Version is { Length: > 0 } known && version != known
                ? (null, $"The code '{Text(coding)}' is in the value set {label} at version {known} of {member.System}, not version {version}.")
                : (member, null);
        });
    }

    public async Task<Parameters> InCodeSystemAsync(ValidateCodeRequest request, CancellationToken ct)
    {
        EnsureCodes(request);
        var concepts = await CodeSystemAsync(request, ct);
        return Answer(request, coding =>
        {
            if (!string.IsNullOrEmpty(coding.System) && coding.System != concepts.System)
            {
                return (null, $"The code '{Text(coding)}' is of the system {coding.System}, not of the code system {concepts.System}.");
            }

            if (coding.Version is { Length: > 0 } version && concepts.Resource.Version is { Length: > 0 } known && version != known)
            {
                return (null, $"The code '{Text(coding)}' is asked of version {version}; the code system checked is version {known}.");
            }

            return concepts.Contains(coding.Code!)
                ? (concepts.Expanded(coding.Code!), null)
                : (null, $"The code '{coding.Code}' is not a code of the code system {concepts.System}.");
        });
    }

    /// <summary>Each coding checked with <paramref name="find"/> (the member, or why there is none), then its abstractness and display.</summary>
    private static Parameters Answer(ValidateCodeRequest request, Func<Coding, (ExpandedConcept? Member, string? Why)> find)
    {
        var messages = new List<string>();
        var valid = new List<bool>();
        string? display = null;
        foreach (var coding in request.Codings)
        {
            var (member, why) = find(coding);
            if (member is null)
            {
                messages.Add(why!);
                valid.Add(false);
                continue;
            }

            display ??= member.Display;
            var ok = true;
            if (member.Abstract && !request.AbstractAllowed)
            {
                messages.Add($"The code '{Text(coding)}' is abstract (not selectable); it is valid only where abstract is true.");
                ok = false;
            }

            if (coding.Display is { Length: > 0 } given && !IsDisplayOf(given, member))
            {
                messages.Add($"The display '{given}' is not a display of '{Text(coding)}'; it is '{member.Display ?? member.Code}'.");
                ok = false;
            }

            if (member.Inactive)
            {
                messages.Add($"The code '{Text(coding)}' is inactive.");
            }

            valid.Add(ok);
        }

        var result = request.AnyOf ? valid.Contains(true) : !valid.Contains(false);
        var answer = new Parameters();
        answer.Add("result", new FhirBoolean(result));
        if (messages.Count > 0)
        {
            answer.Add("message", new FhirString(string.Join(" ", messages)));
        }

        if (display is not null)
        {
            answer.Add("display", new FhirString(display));
        }

        return answer;
    }

    private static void EnsureCodes(ValidateCodeRequest request)
    {
        if (request.Codings.Count == 0)
        {
            throw new InvalidInputException("$validate-code needs the code to check: code (with system), coding or codeableConcept.", "code");
        }

        if (request.Codings.Any(c => string.IsNullOrEmpty(c.Code)))
        {
            throw new InvalidInputException("$validate-code needs each coding's code.", request.AnyOf ? "codeableConcept" : "coding");
        }
    }

    private static bool IsDisplayOf(string given, ExpandedConcept member) =>
        new[] { member.Display }.Concat(member.Designations.Select(d => d.Value))
            .Any(d => d is not null && string.Equals(d.Trim(), given.Trim(), StringComparison.OrdinalIgnoreCase));

    private static string Text(Coding coding) => string.IsNullOrEmpty(coding.System) ? coding.Code ?? "" : $"{coding.System}|{coding.Code}";

    private async Task<(ValueSet ValueSet, string Name)> ValueSetAsync(ValidateCodeRequest request, CancellationToken ct)
    {
        EnsureNamedOnce(request, "value set");
        if (request.Given is ValueSet given)
        {
            return (given, "valueSet");
        }

        var (url, version) = Canonical(request, "valueSetVersion");
        if (request.Id is { } id)
        {
            var stored = await terminology.ByIdAsync<ValueSet>(id, ct);
            return version is null || version == stored.Version ? (stored, $"ValueSet/{id}")
                : throw new InvalidInputException($"ValueSet/{id} is version {stored.Version ?? "(none)"}, not the version {version} asked for.", "valueSetVersion");
        }

        return url is null
            ? throw new InvalidInputException("ValueSet/$validate-code needs the ValueSet: url (with valueSetVersion), valueSet, or ValueSet/[id]/$validate-code.", "url")
            : (await terminology.ByUrlAsync<ValueSet>("ValueSet", url, version, ct) ?? throw new ResourceNotFoundException(
                $"No ValueSet with url {url}{(version is null ? "" : $" and version {version}")} is stored in the hub.", "url"), "url");
    }

    private async Task<CodeSystemConcepts> CodeSystemAsync(ValidateCodeRequest request, CancellationToken ct)
    {
        EnsureNamedOnce(request, "code system");
        if (request.Given is CodeSystem given)
        {
            return CodeSystemConcepts.Of(given, "codeSystem");
        }

        var (url, version) = Canonical(request, "version");
        if (request.Id is { } id)
        {
            var stored = await terminology.ByIdAsync<CodeSystem>(id, ct);
            return version is null || version == stored.Version ? CodeSystemConcepts.Of(stored, $"CodeSystem/{id}")
                : throw new InvalidInputException($"CodeSystem/{id} is version {stored.Version ?? "(none)"}, not the version {version} asked for.", "version");
        }

        // Without url, the codings' system names the code system (one system for all of them).
        url ??= request.Codings.Select(c => c.System).Where(s => !string.IsNullOrEmpty(s)).Distinct().ToList() switch
        {
            [var one] => one!,
            [] => throw new InvalidInputException("CodeSystem/$validate-code needs the code system: url, a coding with its system, or CodeSystem/[id]/$validate-code.", "url"),
            _ => throw new InvalidInputException("CodeSystem/$validate-code checks codes of one code system; these codings are of several: name it with url.", "url"),
        };
        return await terminology.CodeSystemAsync(url, version, "url", ct) ?? throw new ResourceNotFoundException(
            $"The code system {url}{(version is null ? "" : $" version {version}")} is not stored in the hub; $validate-code answers for the code systems stored here only.", "url");
    }

    /// <summary>url (a canonical, possibly <c>url|version</c>) and the version parameter, which must agree.</summary>
    private static (string? Url, string? Version) Canonical(ValidateCodeRequest request, string versionParameter)
    {
        var (url, version) = request.Url?.IndexOf('|', StringComparison.Ordinal) is int bar and >= 0
            ? (request.Url[..bar], request.Url[(bar + 1)..])
            : (request.Url, null);
        return version is not null && request.Version is not null && version != request.Version
            ? throw new InvalidInputException($"url '{request.Url}' and {versionParameter} '{request.Version}' name different versions.", versionParameter)
            : (url, version ?? request.Version);
    }

    /// <summary>The ValueSet or CodeSystem is named one way at most: the instance, url, or given whole.</summary>
    private static void EnsureNamedOnce(ValidateCodeRequest request, string kind)
    {
        if ((request.Id is null ? 0 : 1) + (request.Url is null ? 0 : 1) + (request.Given is null ? 0 : 1) > 1)
        {
            throw new InvalidInputException($"$validate-code checks against one {kind}, named once: the instance, url, or the resource itself.", "url");
        }
    }
}
