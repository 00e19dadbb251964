using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Terminology;

namespace InteropHub.Fhir.Resources.Lookup;

/// <summary>
/// What <c>CodeSystem/$lookup</c> was asked (codesystem-operation-lookup.html): a code of a system (and version), from
/// <c>code</c> + <c>system</c> or <c>coding</c> (<see cref="Parameter"/> names which, for errors), and the properties
/// wanted (none: all of them).
/// </summary>
public sealed record LookupRequest(Coding Coding, string Parameter, IReadOnlyList<string> Properties);

/// <summary>
/// Looks a code up in a code system stored in the hub: its system's <c>name</c> and <c>version</c>, its <c>display</c>,
/// <c>designation</c>s, and as <c>property</c>: <c>definition</c>, <c>parent</c> and <c>child</c> (from the hierarchy:
/// nesting and the subsumedBy / parent / child properties), <c>inactive</c>, and the concept's own properties. A code
/// system not stored here, or a code it does not define, is a 404 naming the parameter.
/// </summary>
public sealed class LookupCode(LocalTerminology terminology)
{
    public async Task<Parameters> HandleAsync(LookupRequest request, CancellationToken ct)
    {
        var concepts = await StoredCodeSystemAsync(terminology, request.Coding, request.Parameter, "$lookup", ct);
        var code = request.Coding.Code!;
        var concept = concepts.Definition(code)
            ?? throw new ResourceNotFoundException($"'{code}' is not a code of the code system {concepts.System}{VersionText(concepts)}.", request.Parameter);

        bool Wanted(string property) => request.Properties.Count == 0 || request.Properties.Contains(property);
        var answer = new Parameters();
        answer.Add("name", new FhirString(concepts.Resource.Name ?? concepts.Resource.Title ?? concepts.System));
        if (concepts.Resource.Version is { Length: > 0 } version)
        {
            answer.Add("version", new FhirString(version));
        }

        answer.Add("display", new FhirString(concept.Display ?? code));
        if (Wanted("designation"))
        {
            foreach (var designation in concept.Designation)
            {
                answer.Parameter.Add(Part("designation",
                    ("language", designation.LanguageElement), ("use", designation.Use), ("value", designation.ValueElement)));
            }
        }

        if (Wanted("definition") && concept.Definition is { Length: > 0 } definition)
        {
            answer.Parameter.Add(Property("definition", new FhirString(definition)));
        }

        foreach (var (kind, related) in new[] { ("parent", concepts.ParentsOf(code)), ("child", concepts.ChildrenOf(code)) })
        {
            if (Wanted(kind))
            {
                foreach (var other in related)
                {
                    answer.Parameter.Add(Property(kind, new Code(other), concepts.Definition(other)?.Display));
                }
            }
        }

        if (Wanted("inactive"))
        {
            answer.Parameter.Add(Property("inactive", new FhirBoolean(CodeSystemConcepts.IsInactive(concept))));
        }

        // The concept's own properties; parent, child and inactive are answered above, from the whole code system.
        foreach (var property in concept.Property.Where(p => p.Code is { Length: > 0 } and not ("parent" or "child" or "inactive") && Wanted(p.Code)))
        {
            answer.Parameter.Add(Property(property.Code!, property.Value));
        }

        return answer;
    }

    /// <summary>
    /// The stored code system a coding names (its system, at its version when it has one); a coding without system or
    /// code is a 400, a system not stored here a 404, each naming <paramref name="parameter"/>.
    /// </summary>
    public static async Task<CodeSystemConcepts> StoredCodeSystemAsync(LocalTerminology terminology, Coding coding, string parameter, string operation,
        CancellationToken ct)
    {
        if (string.IsNullOrEmpty(coding.Code) || string.IsNullOrEmpty(coding.System))
        {
            throw new InvalidInputException($"{operation} needs a code and its system (code with system, or a coding with both).",
                string.IsNullOrEmpty(coding.System) && parameter == "code" ? "system" : parameter);
        }

        return await terminology.CodeSystemAsync(coding.System, coding.Version, parameter, ct) ?? throw new ResourceNotFoundException(
            $"The code system {coding.System}{(coding.Version is null ? "" : $" version {coding.Version}")} is not stored in the hub; {operation} answers "
            + "for the code systems stored here only (GET [base]/metadata?mode=terminology lists them).", parameter == "code" ? "system" : parameter);
    }

    private static string VersionText(CodeSystemConcepts concepts) => concepts.Resource.Version is { Length: > 0 } v ? $" (version {v})" : "";

    private static Parameters.ParameterComponent Property(string code, DataType? value, string? description = null)
    {
        var property = Part("property", ("code", new Code(code)), ("value", value));
        if (description is not null)
        {
            property.Part.Add(new Parameters.ParameterComponent { Name = "description", Value = new FhirString(description) });
        }

        return property;
    }

    private static Parameters.ParameterComponent Part(string name, params (string Name, DataType? Value)[] parts) => new()
    {
        Name = name,
        Part = [.. parts.Where(p => p.Value is not null).Select(p => new Parameters.ParameterComponent { Name = p.Name, Value = p.Value })],
    };
}
