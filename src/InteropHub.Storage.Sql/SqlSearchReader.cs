using System.Data.Common;
using System.Globalization;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Sql;

/// <summary>
/// A search's reads (<see cref="ISearchReader"/>) as the statements of <see cref="SearchSql"/>, read the same way for
/// both stores and for their write sessions: each says only where a statement runs (a store on a pooled connection,
/// over committed data; a write session in its transaction, its own writes included), so a search inside a
/// transaction Bundle finds, sorts and includes exactly as the same search does once the transaction commits.
/// </summary>
public abstract class SqlSearchReader(SqlDialect dialect) : ISearchReader
{
    /// <summary>The columns of a current row, as <see cref="CurrentRow"/> reads them.</summary>
    public const string CurrentColumns = "resource_type, id, version, last_key, deleted, content";

    /// <summary>Runs <paramref name="sql"/> and reads its rows with <paramref name="read"/>.</summary>
    /// <param name="generic">
    /// The statement matches about as many rows whatever its values (a read by id, a lookup by identifier), so a plan
    /// made once without them serves every call: PostgreSQL's store then runs it prepared.
    /// </param>
    protected abstract Task<T> RunAsync<T>(SqlCommandText sql, bool generic, Func<DbDataReader, Task<T>> read, CancellationToken ct);

    public Task<IReadOnlyList<ResourceMatch>> FindAsync(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after, int limit,
        CancellationToken ct) =>
        RunAsync(SearchSql.Find(criteria, sort, after, limit, dialect), IsIdentifierLookup(criteria, sort, after), async reader =>
        {
            var matches = new List<ResourceMatch>();
            while (await reader.ReadAsync(ct))
            {
                var values = new object[sort.Count];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = reader.GetValue(3 + i);
                }

                matches.Add(new ResourceMatch(reader.GetInt64(0), reader.GetString(2), reader.GetString(1), values));
            }

            return (IReadOnlyList<ResourceMatch>)matches;
        }, ct);

    /// <summary>A lookup by identifier matches one resource or a few whatever the value: see <c>generic</c> of <see cref="RunAsync"/>.</summary>
    private static bool IsIdentifierLookup(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after) =>
        sort.Count == 0 && after is null && criteria.Criteria.Count > 0 && criteria.Criteria.All(c =>
            c is IndexCriterion { Param: "identifier", Table: IndexTable.Tokens, Negated: false } index
            && index.AnyOf.All(v => v is TokenCondition { Code.Length: > 0 }));

    public Task<long> CountAsync(SearchCriteria criteria, CancellationToken ct) =>
        RunAsync(SearchSql.Count(criteria, dialect), generic: false, async reader =>
        {
            await reader.ReadAsync(ct);
            return Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture);
        }, ct);

    public virtual Task<long> EstimateCountAsync(SearchCriteria criteria, CancellationToken ct) => CountAsync(criteria, ct);

    public async Task<IReadOnlyList<ResourceMatch>> FindReferencesAsync(IReadOnlyList<long> rids, string? param, string? targetType, int limit,
        CancellationToken ct) =>
        rids.Count == 0 ? [] : await MatchesAsync(SearchSql.References(rids, param, targetType, limit), ct);

    public async Task<IReadOnlyList<ResourceMatch>> FindReferringAsync(IReadOnlyList<ReferenceLink> links, IReadOnlyList<ResourceKey> targets,
        IReadOnlyList<(string ResourceType, string Url)> urls, int limit, CancellationToken ct) =>
        links.Count == 0 || targets.Count + urls.Count == 0 ? [] : await MatchesAsync(SearchSql.Referring(links, targets, urls, limit), ct);

    /// <summary>The rows (rid, resource_type, id) of a statement, as matches.</summary>
    private Task<IReadOnlyList<ResourceMatch>> MatchesAsync(SqlCommandText sql, CancellationToken ct) =>
        RunAsync(sql, generic: false, async reader =>
        {
            var matches = new List<ResourceMatch>();
            while (await reader.ReadAsync(ct))
            {
                matches.Add(new ResourceMatch(reader.GetInt64(0), reader.GetString(2), reader.GetString(1)));
            }

            return (IReadOnlyList<ResourceMatch>)matches;
        }, ct);

    public async Task<IReadOnlyList<string>> FindCanonicalReferencesAsync(IReadOnlyList<long> rids, string param, int limit, CancellationToken ct) =>
        rids.Count == 0 ? [] : await RunAsync(SearchSql.CanonicalReferences(rids, param, limit), generic: false, async reader =>
        {
            var urls = new List<string>();
            while (await reader.ReadAsync(ct))
            {
                urls.Add(reader.GetString(0));
            }

            return urls;
        }, ct);

    public async Task<IReadOnlyList<StoredResource>> ReadManyAsync(string resourceType, IReadOnlyList<string> ids, CancellationToken ct) =>
        ids.Count == 0 ? [] : await RunAsync(SearchSql.ReadMany(resourceType, ids, dialect), generic: true, async reader =>
        {
            var found = new Dictionary<string, StoredResource>(StringComparer.Ordinal);
            while (await reader.ReadAsync(ct))
            {
                var resource = CurrentRow(reader);
                found[resource.Id] = resource;
            }

            return ids.Where(found.ContainsKey).Select(id => found[id]).ToList();
        }, ct);

    /// <summary>A current row of <see cref="CurrentColumns"/>, from the reader's column <paramref name="first"/> on.</summary>
    public static StoredResource CurrentRow(DbDataReader reader, int first = 0) => new(
        reader.GetString(first),
        reader.GetString(first + 1),
        reader.GetInt32(first + 2),
        VersionKeys.ToInstant(reader.GetInt64(first + 3)),
        reader.GetBoolean(first + 4),
        reader.GetFieldValue<byte[]>(first + 5));
}
