using InteropHub.Fhir.Resources;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>A reference as the index keeps it: a local target (type + id) or, for anything else, the URL itself.</summary>
public readonly record struct ReferenceTarget(string Type, string Id, string Url);

/// <summary>Reads literal references (references.html#literal): <c>Type/id</c>, <c>Type/id/_history/v</c> and absolute URLs.</summary>
public static class ReferenceText
{
    /// <summary>
    /// The target of a reference. A relative reference, or an absolute one under <paramref name="localBase"/> (this
    /// server's public base URL), is local: type and id, the version dropped (search.html#reference). Other absolute
    /// URLs, URNs and canonicals are kept as URL. Contained references (<c>#id</c>) have no target.
    /// </summary>
    public static ReferenceTarget? Parse(string? reference, string? localBase)
    {
        if (string.IsNullOrEmpty(reference) || reference[0] == '#')
        {
            return null;
        }

        var text = reference;
        if (localBase is { Length: > 0 } && text.StartsWith(localBase, StringComparison.Ordinal) && text.Length > localBase.Length
            && text[localBase.Length] == '/')
        {
            text = text[(localBase.Length + 1)..];
        }

        if (!text.Contains(':', StringComparison.Ordinal) && Split(text) is { } local)
        {
            return new ReferenceTarget(local.Type, local.Id, "");
        }

        return new ReferenceTarget("", "", reference);
    }

    /// <summary>The resource type a literal reference points to, relative or absolute; null when it names none.</summary>
    public static string? TargetType(string? reference)
    {
        if (string.IsNullOrEmpty(reference) || reference[0] == '#')
        {
            return null;
        }

        var parts = reference.Split('/');
        for (var i = parts.Length - 2; i >= 0; i--)
        {
            if (ResourceTypes.IsKnown(parts[i]) && (i + 2 == parts.Length || parts[i + 2] == "_history"))
            {
                return parts[i];
            }
        }

        return null;
    }

    private static (string Type, string Id)? Split(string text)
    {
        var parts = text.Split('/');
        if ((parts.Length == 2 || (parts.Length == 4 && parts[2] == "_history")) && ResourceTypes.IsKnown(parts[0]) && parts[1].Length > 0)
        {
            return (parts[0], parts[1]);
        }

        return null;
    }
}
