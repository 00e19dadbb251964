namespace InteropHub.Storage.Sqlite;

/// <summary><c>InteropHub:Storage:Sqlite</c>.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The database file; relative paths are relative to the working directory. The folder is created if absent.</summary>
    public string Path { get; set; } = "data/interophub.db";
}
