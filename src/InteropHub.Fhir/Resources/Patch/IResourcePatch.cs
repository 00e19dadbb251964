using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Patch;

/// <summary>A parsed patch document: JSON Patch or FHIRPath Patch (http.html#patch).</summary>
public interface IResourcePatch
{
    /// <summary>
    /// The patched resource, parsed strictly from the result, from the current version (which is not changed).
    /// Throws 422 when the patch cannot be applied to this version or its result is not a valid resource.
    /// </summary>
    Resource Apply(StoredResource current, FhirSerializers serializers);
}

internal static partial class PatchErrors
{
    [System.Text.RegularExpressions.GeneratedRegex(@",? *\(?line \d+, position \d+\)?", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex ServerPosition();

    public static UnprocessableResourceException Failed(string diagnostics, string? expression = null) =>
        new(FhirException.Issue(OperationOutcome.IssueType.Processing, diagnostics, expression));

    /// <summary>The strict parser's issues (each names its element), introduced as the outcome of a patch.</summary>
    public static UnprocessableResourceException InvalidResult(OperationOutcome parseOutcome)
    {
        var outcome = (OperationOutcome)parseOutcome.DeepCopy();
        foreach (var issue in outcome.Issue)
        {
            // Line and position refer to the server's serialisation of the result, which the client never saw: the
            // element named is what locates the problem.
            issue.Diagnostics = $"The patched resource is not valid: {ServerPosition().Replace(issue.Diagnostics ?? "", "")}";
            issue.Location = [];
        }

        return new UnprocessableResourceException(outcome);
    }
}
