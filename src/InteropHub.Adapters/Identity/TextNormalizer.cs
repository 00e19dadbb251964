using System.Text;

namespace InteropHub.Adapters.Identity;

/// <summary>Clean-ups for manually entered values (his-hl7v2.md §9).</summary>
public static class TextNormalizer
{
    /// <summary>Identifiers, phone numbers and numbers: full-width digits and letters to ASCII (NFKC), trimmed.</summary>
    public static string Number(string value) => value.Normalize(NormalizationForm.FormKC).Trim();

    /// <summary>
    /// Person names: trimmed; spaces (U+0020, U+3000) inside a Chinese name removed; middle-dot variants in
    /// minority names unified to U+00B7. Names in Latin script keep their single spaces.
    /// </summary>
    public static string Name(string value)
    {
        var trimmed = value.Trim().Trim('\u3000');
        var cjk = trimmed.Any(IsCjk);
        var text = new StringBuilder(trimmed.Length);
        foreach (var c in trimmed)
        {
            if (c is '•' or '．' or '・' or '‧' or '∙')
            {
                text.Append('·');
            }
            else if (cjk && (c == ' ' || c == '\u3000'))
            {
                continue;
            }
            else
            {
                text.Append(c);
            }
        }

        return text.ToString();
    }

    private static bool IsCjk(char c) => c is >= '\u3400' and <= '\u9FFF' or >= '\uF900' and <= '\uFAFF' || char.IsSurrogate(c);
}
