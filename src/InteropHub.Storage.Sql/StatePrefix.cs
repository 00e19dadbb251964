namespace InteropHub.Storage.Sql;

/// <summary>Reading <c>hub_state</c> by prefix as a range of its key, which both stores find by index.</summary>
public static class StatePrefix
{
    /// <summary>The least text above every text that starts with <paramref name="prefix"/> (an ASCII one: its last character plus one).</summary>
    public static string End(string prefix) =>
        prefix.Length > 0 && prefix[^1] < 0x7f ? string.Concat(prefix.AsSpan(0, prefix.Length - 1), ((char)(prefix[^1] + 1)).ToString())
            : throw new ArgumentException("A state prefix ends in an ASCII character.", nameof(prefix));
}
