using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

public static partial class ResourceTypes
{
    /// <summary>Every concrete R4 resource type, in alphabetical order.</summary>
    public static readonly IReadOnlyList<string> All = ModelInfo.SupportedResources
        .Where(name => ModelInfo.GetTypeForFhirType(name) is { IsAbstract: false })
        .Order(StringComparer.Ordinal)
        .ToList();

    private static readonly HashSet<string> Known = new(All, StringComparer.Ordinal);

    public static bool IsKnown(string resourceType) => Known.Contains(resourceType);

    public static void EnsureKnown(string resourceType)
    {
        if (!Known.Contains(resourceType))
        {
            throw new ResourceNotFoundException($"Unknown resource type '{resourceType}'. Resource types are case-sensitive (e.g. 'Patient').");
        }
    }

    /// <summary>FHIR R4 id rule: [A-Za-z0-9\-\.]{1,64} (datatypes.html#id).</summary>
    public static void EnsureValidId(string id, string where = "id")
    {
        if (!IdPattern().IsMatch(id))
        {
            throw new InvalidInputException($"'{id}' is not a valid resource id: ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'.", where);
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9\-\.]{1,64}$")]
    private static partial Regex IdPattern();
}
