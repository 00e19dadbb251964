using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

/// <summary>
/// A conditional reference (<c>Patient?identifier=…</c>) is resolved inside a transaction (http.html#trules); a create
/// or update of its own would store the search as the reference, which nothing can follow: refused with a 400 naming
/// where it is.
/// </summary>
public static class ConditionalReferences
{
    public static void Refuse(Resource resource) => Walk(resource, resource.TypeName);

    private static void Walk(Base node, string path)
    {
        foreach (var (name, value) in node.EnumerateElements())
        {
            switch (value)
            {
                case Base element:
                    Check(element, $"{path}.{name}");
                    break;
                case IEnumerable<Base> list:
                    var i = 0;
                    foreach (var item in list)
                    {
                        Check(item, $"{path}.{name}[{i++}]");
                    }

                    break;
            }
        }
    }

    private static void Check(Base element, string path)
    {
        if (element is ResourceReference { Reference: { } reference } && reference.IndexOf('?', StringComparison.Ordinal) > 0
            && !reference.Contains("://", StringComparison.Ordinal) && !reference.StartsWith('#'))
        {
            throw new InvalidInputException(
                $"The reference '{reference}' is a search: conditional references are resolved only inside a transaction (POST [base] with a transaction Bundle); refer to the resource by its id.",
                path);
        }

        if (element is not PrimitiveType)
        {
            Walk(element, path);
        }
    }
}
