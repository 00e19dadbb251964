using System.Text;
using InteropHub.Adapters.His;

namespace InteropHub.Adapters.Tests;

/// <summary>Edits sample messages as text for tests (CR terminators, default delimiters).</summary>
internal static class Er7
{
    public static string Sample(string prefix) =>
        Encoding.UTF8.GetString(SampleFiles.His(prefix)).Replace("\r\n", "\r", StringComparison.Ordinal).Replace('\n', '\r');

    /// <summary>Sets field <paramref name="field"/> (standard numbering) of the first <paramref name="segment"/>.</summary>
    public static string With(this string message, string segment, int field, string value)
    {
        var lines = message.Split('\r');
        var index = Array.FindIndex(lines, l => l.StartsWith(segment + "|", StringComparison.Ordinal));
        Assert.True(index >= 0, $"no {segment} segment");
        var fields = lines[index].Split('|').ToList();
        var position = segment == "MSH" ? field - 1 : field;
        while (fields.Count <= position)
        {
            fields.Add("");
        }

        fields[position] = value;
        lines[index] = string.Join('|', fields);
        return string.Join('\r', lines);
    }

    public static string Without(this string message, string segment) =>
        string.Join('\r', message.Split('\r').Where(l => !l.StartsWith(segment + "|", StringComparison.Ordinal)));

    public static HisOutcome Map(this string message) => HisMapper.Map(Encoding.UTF8.GetBytes(message));

    public static HisIssue SingleError(this HisOutcome outcome)
    {
        var rejected = Assert.IsType<HisRejected>(outcome);
        return Assert.Single(rejected.Errors);
    }
}
