using System.Globalization;
using System.Text;

namespace InteropHub.Storage.Sql;

/// <summary>SQL text with named parameters (<c>@p0</c>, <c>@p1</c>, …) that each store binds in its own way.</summary>
public sealed class SqlCommandText
{
    private readonly List<KeyValuePair<string, object>> _parameters = [];

    public StringBuilder Text { get; } = new();

    public IReadOnlyList<KeyValuePair<string, object>> Parameters => _parameters;

    /// <summary>Adds a parameter and returns its placeholder.</summary>
    public string Add(object value)
    {
        var name = "p" + _parameters.Count.ToString(CultureInfo.InvariantCulture);
        _parameters.Add(new(name, value));
        return "@" + name;
    }

    public override string ToString() => Text.ToString();
}

/// <summary>What differs between the stores' SQL (little: both take @name parameters, LIMIT, LIKE … ESCAPE, substr).</summary>
/// <param name="Fence">
/// Ends a subquery so the planner neither flattens it nor pushes outer conditions into it: a condition on a computed
/// column (a sort value) pushed down would compute the value again for every row.
/// </param>
public sealed record SqlDialect(string BinaryCollation, string Fence)
{
    /// <summary>SQLite compares TEXT byte-wise (BINARY) by default.</summary>
    public static readonly SqlDialect Sqlite = new("", " LIMIT -1 OFFSET 0");

    /// <summary>PostgreSQL must be told to compare byte-wise, so ordering matches SQLite's whatever the database locale.</summary>
    public static readonly SqlDialect Postgres = new(" COLLATE \"C\"", " OFFSET 0");
}
