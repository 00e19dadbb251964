using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Search;

/// <summary>A token value: <c>code</c> (any system), <c>|code</c> (no system) or <c>system|code</c>.</summary>
public sealed record TokenValue(string? System, string Code);

/// <summary>One search parameter with its OR-ed values; clauses are AND-ed.</summary>
public sealed record SearchClause(string Param, IReadOnlyList<TokenValue> Values);

/// <summary>
/// Search criteria as the stores evaluate them. The full search engine is not there yet: the parameters
/// understood are <c>_id</c> and <c>identifier</c>, which is what conditional create/update/delete and the
/// basic type search use. Any other parameter is refused with a 400 that names it, never silently ignored.
/// </summary>
public sealed class SearchCriteria
{
    public static readonly IReadOnlySet<string> SupportedParameters = new HashSet<string>(StringComparer.Ordinal) { "_id", "identifier" };

    /// <summary>Result parameters handled by the search endpoint itself, not by the store.</summary>
    private static readonly HashSet<string> ResultParameters = new(StringComparer.Ordinal) { "_count", "_format", "_pretty", "_cursor" };

    private SearchCriteria(IReadOnlyList<SearchClause> clauses) => Clauses = clauses;

    public IReadOnlyList<SearchClause> Clauses { get; }

    public bool IsEmpty => Clauses.Count == 0;

    /// <summary>A canonical text of the criteria (sorted), used as the lock key for conditional writes.</summary>
    public string Canonical(string resourceType)
    {
        var text = new StringBuilder(resourceType).Append('?');
        foreach (var clause in Clauses.OrderBy(c => c.Param, StringComparer.Ordinal))
        {
            text.Append(clause.Param).Append('=');
            text.AppendJoin(',', clause.Values.Select(v => $"{v.System}|{v.Code}").Order(StringComparer.Ordinal));
            text.Append('&');
        }

        return text.ToString();
    }

    /// <summary>Parses query-string pairs (already URL-decoded). Result parameters are skipped.</summary>
    public static SearchCriteria Parse(string resourceType, IEnumerable<KeyValuePair<string, string>> query)
    {
        var clauses = new List<SearchClause>();
        foreach (var (name, value) in query)
        {
            if (ResultParameters.Contains(name))
            {
                continue;
            }

            if (name == "identifier" && !HasIdentifier(resourceType))
            {
                throw new InvalidInputException($"Search parameter 'identifier' is not defined for resource type {resourceType}.", name);
            }

            if (!SupportedParameters.Contains(name))
            {
                var known = name.Contains(':', StringComparison.Ordinal)
                    ? $"Modifiers are not supported yet ('{name}')."
                    : $"Search parameter '{name}' is not supported.";
                throw new InvalidInputException($"{known} Supported parameters: _id, identifier, _count.", name);
            }

            var values = SplitOr(value).Select(v => name == "_id" ? new TokenValue(null, v) : ParseToken(v)).ToList();
            if (values.Count == 0 || values.Any(v => v.Code.Length == 0))
            {
                throw new InvalidInputException($"Search parameter '{name}' has an empty value.", name);
            }

            clauses.Add(new SearchClause(name, values));
        }

        return new SearchCriteria(clauses);
    }

    /// <summary>Parses the criteria part of a conditional URL such as <c>identifier=a|b&amp;_id=1</c> or <c>Patient?identifier=…</c>.</summary>
    public static SearchCriteria ParseQueryString(string resourceType, string queryString)
    {
        var q = queryString;
        var mark = q.IndexOf('?', StringComparison.Ordinal);
        if (mark >= 0)
        {
            var type = q[..mark];
            if (type.Length > 0 && type != resourceType)
            {
                throw new InvalidInputException($"The conditional criteria name type '{type}' but the request is for {resourceType}.");
            }

            q = q[(mark + 1)..];
        }

        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var part in q.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((eq < 0 ? part : part[..eq]).Replace('+', ' '));
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            pairs.Add(new(name, value));
        }

        return Parse(resourceType, pairs);
    }

    private static bool HasIdentifier(string resourceType) =>
        ModelInfo.SearchParameters.Any(p => p.Resource == resourceType && p.Name == "identifier");

    /// <summary>Splits on unescaped commas and removes the escapes (<c>\,</c> <c>\|</c> <c>\$</c> <c>\\</c>).</summary>
    private static IEnumerable<string> SplitOr(string value)
    {
        var current = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\\' && i + 1 < value.Length)
            {
                current.Append(c).Append(value[++i]);
            }
            else if (c == ',')
            {
                yield return current.ToString();
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        yield return current.ToString();
    }

    private static TokenValue ParseToken(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\')
            {
                i++;
            }
            else if (value[i] == '|')
            {
                return new TokenValue(Unescape(value[..i]), Unescape(value[(i + 1)..]));
            }
        }

        return new TokenValue(null, Unescape(value));
    }

    private static string Unescape(string value) =>
        value.Contains('\\', StringComparison.Ordinal)
            ? value.Replace("\\,", ",", StringComparison.Ordinal).Replace("\\|", "|", StringComparison.Ordinal)
                .Replace("\\$", "$", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal)
            : value;
}
