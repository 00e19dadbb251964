using System.Security.Cryptography;
using System.Text;

namespace InteropHub.Adapters.Bundles;

/// <summary>
/// Deterministic resource ids from natural keys, so a replayed message updates what it wrote before. Keys made
/// only of letters, digits and '-' are joined with '.' and kept readable; anything else (and any key holding a
/// person's name or ID number) is hashed.
/// </summary>
internal static class ResourceIds
{
    public static string From(params string[] parts)
    {
        if (parts.All(p => p.Length > 0 && p.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
        {
            var readable = string.Join('.', parts);
            if (readable.Length <= 64)
            {
                return readable;
            }
        }

        return Hashed(parts);
    }

    /// <summary>32 hex characters of SHA-256 over the parts; never contains '.', so it cannot collide with a readable id.</summary>
    public static string Hashed(params string[] parts)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u001F', parts)));
        return Convert.ToHexStringLower(hash.AsSpan(0, 16));
    }
}
