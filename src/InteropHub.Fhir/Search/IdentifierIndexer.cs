using System.Collections.Concurrent;
using System.Reflection;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Search;

/// <summary>
/// Extracts the <c>identifier</c> token entries of a resource at write time (they are written in the same
/// transaction as the resource). Every R4 resource with an <c>identifier</c> search parameter exposes its
/// identifiers as a list or a single <see cref="Identifier"/> property named Identifier.
/// </summary>
public static class IdentifierIndexer
{
    private static readonly ConcurrentDictionary<Type, PropertyInfo?> Properties = new();

    public static IReadOnlyList<TokenIndexEntry> Extract(Resource resource)
    {
        var property = Properties.GetOrAdd(resource.GetType(), t => t.GetProperty("Identifier"));
        var value = property?.GetValue(resource);
        var identifiers = value switch
        {
            IEnumerable<Identifier> many => many,
            Identifier one => [one],
            _ => [],
        };

        return identifiers
            .Where(i => !string.IsNullOrEmpty(i.Value))
            .Select(i => new TokenIndexEntry("identifier", i.System ?? "", i.Value!))
            .Distinct()
            .ToList();
    }
}
