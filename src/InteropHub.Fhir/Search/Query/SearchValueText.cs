using System.Text;

namespace InteropHub.Fhir.Search.Query;

/// <summary>search.html#escaping: <c>\,</c> <c>\|</c> <c>\$</c> <c>\\</c> are literal; the unescaped characters separate.</summary>
public static class SearchValueText
{
    /// <summary>Splits on unescaped <paramref name="separator"/>, keeping escapes for later splits.</summary>
    public static List<string> Split(string value, char separator)
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\\' && i + 1 < value.Length)
            {
                current.Append(c).Append(value[++i]);
            }
            else if (c == separator)
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        parts.Add(current.ToString());
        return parts;
    }

    public static string Unescape(string value)
    {
        if (!value.Contains('\\', StringComparison.Ordinal))
        {
            return value;
        }

        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length && value[i + 1] is ',' or '|' or '$' or '\\')
            {
                i++;
            }

            text.Append(value[i]);
        }

        return text.ToString();
    }
}
