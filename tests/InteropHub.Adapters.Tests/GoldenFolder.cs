namespace InteropHub.Adapters.Tests;

internal static class GoldenFolder
{
    /// <summary>The Golden folder in the source tree (written when INTEROPHUB_UPDATE_GOLDEN=1).</summary>
    public static string Source
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "InteropHub.Adapters.Tests.csproj")))
            {
                directory = directory.Parent;
            }

            return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("Test project folder not found."), "Golden");
        }
    }
}
