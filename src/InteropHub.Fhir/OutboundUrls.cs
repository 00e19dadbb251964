using System.Net;
using System.Net.Sockets;

namespace InteropHub.Fhir;

/// <summary>
/// The hub's own requests to URLs its clients name (<c>$import</c> inputs, Subscription endpoints): with an allowlist,
/// only under a listed URL; without one, anywhere but this machine and link-local addresses (the cloud metadata
/// service at 169.254.169.254), so a client cannot make the hub reach what only the hub can.
/// </summary>
public static class OutboundUrls
{
    /// <summary>Why the hub will not send to <paramref name="uri"/>, naming <paramref name="setting"/>; or null.</summary>
    public static string? Refusal(Uri uri, IReadOnlyList<string> allowed, string setting)
    {
        if (allowed.Count > 0)
        {
            return allowed.Any(place => Within(uri, place)) ? null : $"is not under a URL listed in {setting} ({string.Join(", ", allowed)})";
        }

        return uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var address) && IsInternal(address))
            ? $"reaches a loopback or link-local address; list its URL in {setting} to allow it"
            : null;
    }

    /// <summary>The non-blank entries of an allowlist setting.</summary>
    public static string[] Allowed(IEnumerable<string>? setting) => [.. (setting ?? []).Where(u => !string.IsNullOrWhiteSpace(u))];

    /// <summary>Whether a URL is under an allowed place: same scheme, host and port (or <c>:*</c>), and under its path by whole segments.</summary>
    public static bool Within(Uri uri, string place)
    {
        var anyPort = place.Contains(":*", StringComparison.Ordinal);
        if (!Uri.TryCreate(place.Replace(":*", "", StringComparison.Ordinal), UriKind.Absolute, out var allowed))
        {
            return false;
        }

        var root = allowed.AbsolutePath;
        return uri.Scheme == allowed.Scheme && string.Equals(uri.IdnHost, allowed.IdnHost, StringComparison.OrdinalIgnoreCase)
            && (anyPort || uri.Port == allowed.Port) && string.IsNullOrEmpty(uri.UserInfo)
            && (root == "/" || uri.AbsolutePath == root || uri.AbsolutePath.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal));
    }

    /// <summary>This machine, an unspecified or a link-local address.</summary>
    public static bool IsInternal(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || address.Equals(IPAddress.Any)
            || address.Equals(IPAddress.IPv6Any) || address.GetAddressBytes() is [169, 254, _, _] or [0, _, _, _];
    }

    /// <summary>
    /// A <see cref="SocketsHttpHandler.ConnectCallback"/>: connects to the host's first reachable address; when
    /// <paramref name="refuseInternal"/> (no allowlist), never to an internal one, since a name may resolve to one.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, bool refuseInternal, string setting, CancellationToken ct)
    {
        var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
        if (refuseInternal && addresses.Any(IsInternal))
        {
            throw new HttpRequestException($"{context.DnsEndPoint.Host} resolves to this machine or a link-local address; list its URL in {setting} to allow it.");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
