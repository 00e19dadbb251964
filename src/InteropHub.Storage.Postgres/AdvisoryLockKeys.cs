using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// Maps a lock name to the 64-bit key of a PostgreSQL advisory lock. Every hub instance must map a name to the
/// same key, so the hash is SHA-256 (first 8 bytes, big-endian) rather than <see cref="string.GetHashCode()"/>,
/// which .NET randomises per process. A collision only makes two unrelated writers wait for each other.
/// </summary>
internal static class AdvisoryLockKeys
{
    /// <summary>The lock held while schema migrations run, so instances starting together apply each script once.</summary>
    public static readonly long Migration = For("InteropHub.Storage.Postgres:migrate");

    public static long For(string name)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
        return BinaryPrimitives.ReadInt64BigEndian(hash);
    }
}
