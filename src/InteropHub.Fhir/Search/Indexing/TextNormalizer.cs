using System.Globalization;
using System.Text;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>
/// The form string search compares (search.html#string: case- and accent-insensitive): compatibility decomposition
/// (full-width Latin and digits become ASCII, accents separate), accents dropped, lower case (ß as ss), runs of white space
/// collapsed. Chinese characters pass through unchanged, so prefix matching works on them as on any text.
/// </summary>
public static class TextNormalizer
{
    public static string Normalize(string value)
    {
        if (IsPlainLowerAscii(value))
        {
            return value;
        }

        var decomposed = value.Normalize(NormalizationForm.FormKD);
        var text = new StringBuilder(decomposed.Length);
        var space = false;
        foreach (var c in decomposed)
        {
            var category = CharUnicodeInfo.GetUnicodeCategory(c);
            if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark)
            {
                continue;
            }

            if (char.IsWhiteSpace(c))
            {
                space = text.Length > 0;
                continue;
            }

            if (space)
            {
                text.Append(' ');
                space = false;
            }

            if (c is 'ß' or 'ẞ')
            {
                // Folded as upper-casing would (STRASSE): Straße is found by strasse, as by straße.
                text.Append("ss");
                continue;
            }

            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>True when the text holds CJK ideographs, whose names are written family-then-given without a space.</summary>
    public static bool HasIdeographs(string value)
    {
        foreach (var c in value)
        {
            if (c is >= '\u3400' and <= '\u9FFF' or >= '\uF900' and <= '\uFAFF' || char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The smallest string greater than every string starting with <paramref name="prefix"/> (for range scans).</summary>
    public static string PrefixUpperBound(string prefix) => prefix + "\U0010FFFF";

    private static bool IsPlainLowerAscii(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c > 0x7F || c is >= 'A' and <= 'Z' || (char.IsWhiteSpace(c) && (c != ' ' || i == 0 || i == value.Length - 1 || value[i - 1] == ' ')))
            {
                return false;
            }
        }

        return true;
    }
}
