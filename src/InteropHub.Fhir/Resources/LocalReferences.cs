using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

/// <summary>
/// The references of a resource a create or update writes on its own (not in a transaction). One that is absolute on
/// the hub's own base, as the client reached it, is made relative (search.html#reference: the server's own URLs are
/// local), so it is searched, chained and included like any local reference. A conditional reference
/// (<c>Patient?identifier=…</c>) is resolved only inside a transaction (http.html#trules); on its own it would store a
/// search nothing can follow: refused with a 400 naming where it is.
/// </summary>
public static class LocalReferences
{
    /// <param name="baseUrl">The FHIR base the request came to, e.g. <c>http://localhost:8080/fhir</c>.</param>
    public static void Prepare(Resource resource, string baseUrl) => Walk(resource, resource.TypeName, baseUrl);

    private static void Walk(Base node, string path, string baseUrl)
    {
        foreach (var (name, value) in node.EnumerateElements())
        {
            switch (value)
            {
                case Base element:
                    Check(element, $"{path}.{name}", baseUrl);
                    break;
                case IEnumerable<Base> list:
                    var i = 0;
                    foreach (var item in list)
                    {
                        Check(item, $"{path}.{name}[{i++}]", baseUrl);
                    }

                    break;
            }
        }
    }

    /// <summary>The reference relative to <paramref name="baseUrl"/> when it is absolute on it (<c>Patient/1</c>), else null.</summary>
    public static string? Relative(string reference, string baseUrl)
    {
        // Without allocating: a transaction asks this of every reference it holds.
        var length = baseUrl.AsSpan().TrimEnd('/').Length;
        return length > 0 && reference.Length > length + 1 && reference[length] == '/'
            && reference.AsSpan(0, length).Equals(baseUrl.AsSpan(0, length), StringComparison.OrdinalIgnoreCase)
            ? reference[(length + 1)..]
            : null;
    }

    private static void Check(Base element, string path, string baseUrl)
    {
        if (element is ResourceReference { Reference: { } absolute } local && Relative(absolute, baseUrl) is { } relative)
        {
            local.Reference = relative;
        }

        if (element is ResourceReference { Reference: { } reference } && reference.IndexOf('?', StringComparison.Ordinal) > 0
            && !reference.Contains("://", StringComparison.Ordinal) && !reference.StartsWith('#'))
        {
            throw new InvalidInputException(
                $"The reference '{reference}' is a search: conditional references are resolved only inside a transaction (POST [base] with a transaction Bundle); refer to the resource by its id.",
                path);
        }

        if (element is not PrimitiveType)
        {
            Walk(element, path, baseUrl);
        }
    }
}
