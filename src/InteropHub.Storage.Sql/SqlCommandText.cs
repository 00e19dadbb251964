using System.Globalization;
using System.Text;

namespace InteropHub.Storage.Sql;

/// <summary>
/// SQL text with named parameters (<c>@p0</c>, <c>@p1</c>, …) that each store binds in its own way. A value added again
/// reuses its parameter: statements that repeat a few values many times (a revinclude's links name each type and
/// parameter over and over) bind a few hundred parameters instead of thousands, which Microsoft.Data.Sqlite binds
/// in time that grows with the square of their number.
/// </summary>
public sealed class SqlCommandText
{
    private readonly List<KeyValuePair<string, object>> _parameters = [];

    private readonly Dictionary<object, string> _placeholders = [];

    public StringBuilder Text { get; } = new();

    public IReadOnlyList<KeyValuePair<string, object>> Parameters => _parameters;

    /// <summary>Adds a parameter and returns its placeholder.</summary>
    public string Add(object value)
    {
        if (_placeholders.TryGetValue(value, out var known))
        {
            return known;
        }

        var name = "p" + _parameters.Count.ToString(CultureInfo.InvariantCulture);
        _parameters.Add(new(name, value));
        return _placeholders[value] = "@" + name;
    }

    public override string ToString() => Text.ToString();
}

/// <summary>What differs between the stores' SQL (little: both take @name parameters, LIMIT, LIKE … ESCAPE, substr).</summary>
/// <param name="Fence">
/// Ends a subquery so the planner neither flattens it nor pushes outer conditions into it: a condition on a computed
/// column (a sort value) pushed down would compute the value again for every row.
/// </param>
/// <param name="CodesListed">
/// Whether a search for any of several codes also lists them as <c>code IN (…)</c>. SQLite's planner uses an index
/// column only for a condition that every branch of an <c>OR</c> shares, so <c>(code = a AND system = s) OR (code = b
/// AND system = t)</c> read every identifier of the type (a conditional update of a resident among 50,000 took 5 ms,
/// a batch of them grew quadratically); PostgreSQL combines the branches' index scans by itself.
/// </param>
/// <param name="Arrays">
/// Whether a list of values is bound as one array parameter (<c>= ANY(@p)</c>): one statement text whatever the list's
/// length, which PostgreSQL keeps prepared. SQLite has no arrays, and lists the values (<c>IN (@p1, @p2, …)</c>).
/// </param>
public sealed record SqlDialect(string BinaryCollation, string Fence, bool CodesListed, bool Arrays)
{
    /// <summary>SQLite compares TEXT byte-wise (BINARY) by default.</summary>
    public static readonly SqlDialect Sqlite = new("", " LIMIT -1 OFFSET 0", CodesListed: true, Arrays: false);

    /// <summary>PostgreSQL must be told to compare byte-wise, so ordering matches SQLite's whatever the database locale.</summary>
    public static readonly SqlDialect Postgres = new(" COLLATE \"C\"", " OFFSET 0", CodesListed: false, Arrays: true);
}
