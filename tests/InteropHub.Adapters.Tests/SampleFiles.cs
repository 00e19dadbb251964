namespace InteropHub.Adapters.Tests;

/// <summary>Reads the sample files copied next to the test binaries (see Samples/README.md).</summary>
internal static class SampleFiles
{
    public static string Folder(string relative) => Path.Combine(AppContext.BaseDirectory, "Samples", relative);

    public static byte[] Bytes(string relative) => File.ReadAllBytes(Folder(relative));

    public static byte[] His(string prefix)
    {
        var folder = Folder("his");
        var file = Directory.GetFiles(folder, prefix + "*.hl7", SearchOption.AllDirectories).Single();
        return File.ReadAllBytes(file);
    }
}
