using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;

namespace InteropHub.Fhir.Search.Custom;

/// <summary>
/// A SearchParameter resource (searchparameter.html) as the hub indexes it: validated, turned into a
/// <see cref="SearchParam"/> for its base types, and keyed by a hash of what decides its index rows, so the hub
/// knows whether the stored resources are indexed for the current definition.
/// </summary>
public sealed partial record CustomSearchParameter(SearchParam Param, IReadOnlyList<string> Bases, string DefinitionKey)
{
    /// <summary>Validates a SearchParameter (422 naming the element) and builds the parameter it defines.</summary>
    public static CustomSearchParameter From(SearchParameter resource)
    {
        if (string.IsNullOrWhiteSpace(resource.Url))
        {
            throw new BusinessRuleException("A SearchParameter needs a url: the hub identifies custom parameters by it.", "SearchParameter.url");
        }

        if (string.IsNullOrEmpty(resource.Code) || !CodePattern().IsMatch(resource.Code))
        {
            throw new BusinessRuleException(
                $"SearchParameter.code '{resource.Code}' is not usable as a search parameter name (letters, digits, '-' and '.', not starting with '_').",
                "SearchParameter.code");
        }

        var bases = resource.BaseElement.Select(b => b.JsonValue as string ?? "").ToList();
        if (bases.Count == 0)
        {
            throw new BusinessRuleException("SearchParameter.base names no resource type.", "SearchParameter.base");
        }

        if (bases.FirstOrDefault(b => !ResourceTypes.IsKnown(b)) is { } unknown)
        {
            throw new BusinessRuleException($"SearchParameter.base '{unknown}' is not a resource type.", "SearchParameter.base");
        }

        if (resource.Type is not { } type || SearchParam.TableFor(type) == IndexTable.None)
        {
            throw new BusinessRuleException(
                $"SearchParameter.type '{resource.Type}' is not supported for custom parameters (number, date, string, token, reference, quantity, uri are).",
                "SearchParameter.type");
        }

        if (string.IsNullOrWhiteSpace(resource.Expression))
        {
            throw new BusinessRuleException("SearchParameter.expression is empty: the hub indexes custom parameters by their FHIRPath expression.",
                "SearchParameter.expression");
        }

        foreach (var baseType in bases)
        {
            if (SearchParameterRegistry.Default.Find(baseType, resource.Code) is not null)
            {
                throw new BusinessRuleException($"{baseType} already has the search parameter '{resource.Code}' from the specification; choose another code.",
                    "SearchParameter.code");
            }

            try
            {
                ElementPath.Compile(resource.Expression, baseType);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                throw new BusinessRuleException($"SearchParameter.expression does not compile for {baseType}: {e.Message}", "SearchParameter.expression");
            }
        }

        var targets = resource.TargetElement.Select(t => t.JsonValue as string ?? "").Where(t => t.Length > 0).ToArray();
        var param = new SearchParam(resource.Code, type, resource.Url, resource.Expression, targets, []);
        var definition = $"{resource.Url}\n{resource.Code}\n{type}\n{resource.Expression}\n{string.Join(',', bases.Order(StringComparer.Ordinal))}\n{string.Join(',', targets)}";
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(definition)))[..16];
        return new CustomSearchParameter(param, bases, $"{resource.Url}#{hash}");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9.-]*$")]
    private static partial Regex CodePattern();
}
