namespace InteropHub.Storage.Postgres;

/// <summary><c>InteropHub:Storage:Postgres</c>.</summary>
public sealed class PostgresStoreOptions
{
    /// <summary>An Npgsql connection string, e.g. <c>Host=db;Database=interophub;Username=hub;Password=…</c>.</summary>
    public string ConnectionString { get; set; } = "";
}
