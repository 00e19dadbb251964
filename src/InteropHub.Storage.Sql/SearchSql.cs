using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Sql;

/// <summary>
/// Translates <see cref="SearchCriteria"/> into SQL over the typed index tables of schema 0002, the same text for
/// SQLite and PostgreSQL (so both stores give the same answers). Searches are rid first: one criterion answered from
/// an index table drives (<c>SELECT rid FROM search_x …</c>), the others are semi-joins on the row id (anti-joins for
/// <c>:not</c> and <c>:missing=true</c>); chains and <c>_has</c> nest the same translation on the other resource.
/// Results are keyset-paged on (sort values…, rid), forwards or, for a previous page, backwards.
/// </summary>
public static class SearchSql
{
    /// <summary>The columns of a match: rid, resource_type, id (then the sort values).</summary>
    private const string MatchColumns = "r.rid, r.resource_type, r.id";

    public static SqlCommandText Find(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after, int limit, SqlDialect dialect)
    {
        if (sort.Count == 0)
        {
            return Unsorted(criteria, after, limit, dialect, MatchColumns);
        }

        var sql = new SqlCommandText();
        // A previous page (cursor "before") is the same search walked the other way from the cursor; the caller
        // reverses the rows.
        var backward = after?.Before == true;
        var order = backward ? sort.Select(k => k with { Descending = !k.Descending }).ToList() : sort;
        var builder = new Builder(sql, dialect, null, backward);
        if (!sort.Any(k => k.Param is "_id" or "_lastUpdated") && Driver(criteria) is { } sortedDriver)
        {
            // Rid first as above; each candidate's sort value is one probe of the (rid, param) index, which carries
            // the value, and the resource table is read for the page's rows only.
            sql.Text.Append("SELECT r.rid, r.resource_type, r.id");
            for (var i = 0; i < sort.Count; i++)
            {
                sql.Text.Append(", q.s").Append(i);
            }

            sql.Text.Append(" FROM (SELECT p.* FROM (SELECT d.rid");
            for (var i = 0; i < sort.Count; i++)
            {
                sql.Text.Append(", ");
                builder.SortValue("d", sort[i]);
                sql.Text.Append(" AS s").Append(i);
            }

            sql.Text.Append(" FROM (");
            DrivenBy(builder, sql, criteria, sortedDriver);

            // Fenced on later pages: the keyset condition below is on the sort values, which are then computed once per
            // candidate (pushed into the subquery, PostgreSQL computed them twice more in it, so deep pages cost more).
            sql.Text.Append(" GROUP BY d.rid").Append(after is null ? "" : dialect.Fence).Append(") p");
            if (after is not null)
            {
                sql.Text.Append(" WHERE ");
                Keyset(sql, order, after, 0, "p", backward);
            }

            sql.Text.Append(" ORDER BY ");
            OrderBy(sql, order, "p", backward);
            sql.Text.Append(" LIMIT ").Append(sql.Add(limit)).Append(") q JOIN resource r ON r.rid = q.rid ORDER BY ");
            OrderBy(sql, order, "q", backward);
            return sql;
        }

        sql.Text.Append("SELECT q.rid, q.resource_type, q.id");
        for (var i = 0; i < sort.Count; i++)
        {
            sql.Text.Append(", q.s").Append(i);
        }

        sql.Text.Append(" FROM (SELECT r.rid, r.resource_type, r.id");
        for (var i = 0; i < sort.Count; i++)
        {
            sql.Text.Append(", ");
            builder.SortValue("r", sort[i]);
            sql.Text.Append(" AS s").Append(i);
        }

        sql.Text.Append(" FROM resource r WHERE ");
        builder.Filter("r", criteria.ResourceTypes, criteria.Criteria);
        sql.Text.Append(after is null ? "" : dialect.Fence).Append(") q");
        if (after is not null)
        {
            sql.Text.Append(" WHERE ");
            Keyset(sql, order, after, 0, "q", backward);
        }

        sql.Text.Append(" ORDER BY ");
        OrderBy(sql, order, "q", backward);
        sql.Text.Append(" LIMIT ").Append(sql.Add(limit));
        return sql;
    }

    /// <summary>
    /// An unsorted find (in rid order) whose rows are each match's rid and current row (<c>resource_type, id, version,
    /// last_key, deleted, content</c>): a write session's search, whose matches it reads anyway (a conditional create's
    /// match is its answer), reads them with the same statement.
    /// </summary>
    public static SqlCommandText FindWithCurrent(SearchCriteria criteria, int limit, SqlDialect dialect) =>
        Unsorted(criteria, null, limit, dialect, "r.rid, r.resource_type, r.id, r.version, r.last_key, r.deleted, r.content");

    private static SqlCommandText Unsorted(SearchCriteria criteria, SearchCursor? after, int limit, SqlDialect dialect, string columns)
    {
        var sql = new SqlCommandText();
        var backward = after?.Before == true;
        var rid = backward ? " DESC" : "";
        var builder = new Builder(sql, dialect, after?.Rid, backward);
        if (Driver(criteria) is { } driver)
        {
            // Rid first: every index row belongs to a live resource of the row's type (rows are removed with the
            // resource), so matches are found, intersected and paged on the index tables alone, and the resource
            // table is read for the page's rows only. The inner LIMIT keeps the planner from reading the resource
            // row of every candidate before it knows which of them make the page.
            sql.Text.Append("SELECT ").Append(columns).Append(" FROM (SELECT d.rid FROM (");
            DrivenBy(builder, sql, criteria, driver);

            sql.Text.Append(" GROUP BY d.rid ORDER BY d.rid").Append(rid).Append(" LIMIT ").Append(sql.Add(limit))
                .Append(") m JOIN resource r ON r.rid = m.rid ORDER BY r.rid").Append(rid);
            return sql;
        }

        sql.Text.Append("SELECT ").Append(columns).Append(" FROM resource r WHERE ");
        builder.Filter("r", criteria.ResourceTypes, criteria.Criteria);
        if (after is not null)
        {
            sql.Text.Append(backward ? " AND r.rid < " : " AND r.rid > ").Append(sql.Add(after.Rid));
        }

        sql.Text.Append(" ORDER BY r.rid").Append(rid).Append(" LIMIT ").Append(sql.Add(limit));
        return sql;
    }

    private static void OrderBy(SqlCommandText sql, IReadOnlyList<SortClause> sort, string q, bool ridDescending)
    {
        for (var i = 0; i < sort.Count; i++)
        {
            sql.Text.Append(q).Append(".s").Append(i).Append(sort[i].Descending ? " DESC, " : ", ");
        }

        sql.Text.Append(q).Append(".rid").Append(ridDescending ? " DESC" : "");
    }

    /// <summary>
    /// <c>[driver's row ids]) d WHERE [every other criterion on d.rid]</c>: the candidates of a rid-first search.
    /// </summary>
    private static void DrivenBy(Builder builder, SqlCommandText sql, SearchCriteria criteria, Criterion driver)
    {
        builder.RidSubquery(driver, "r", criteria.ResourceTypes);
        sql.Text.Append(") d");
        var rest = criteria.Criteria.Where(c => !ReferenceEquals(c, driver)).ToList();
        for (var i = 0; i < rest.Count; i++)
        {
            sql.Text.Append(i == 0 ? " WHERE " : " AND ");
            if (NeedsResourceRow(rest[i]))
            {
                // Beside one person's compartment, or what it refers to, only (see Driver): checked on each candidate's
                // row, found by its key.
                sql.Text.Append("EXISTS (SELECT 1 FROM resource dr WHERE dr.rid = d.rid AND ");
                builder.Render(rest[i], "dr", criteria.ResourceTypes);
                sql.Text.Append(')');
            }
            else
            {
                builder.Render(rest[i], "d", criteria.ResourceTypes);
            }
        }
    }

    /// <summary>
    /// The criterion that can drive a rid-first search: a top-level criterion answered from an index table alone,
    /// when no other criterion needs the resource row (<c>_id</c> compares its logical id).
    /// </summary>
    private static Criterion? Driver(SearchCriteria criteria)
    {
        if (criteria.ResourceTypes.Count == 0)
        {
            return null;
        }

        // A bare code (gender=male, status=final: no system, an element bound to a handful of codes) matches a large
        // share of its type, so a reverse chain, which narrows by related data, drives before it.
        // A union whose parts could each drive (name reads family's and given's rows too, Encounter's patient subject's
        // of type Patient) drives like its parts.
        var driver = criteria.Criteria.FirstOrDefault(c => Drives(c, index => index is { Negated: false } && !IsBareCode(index), null))
            ?? criteria.Criteria.FirstOrDefault(c => Drives(c, null, typeof(HasCriterion)) || c is ReferencedByCriterion)
            ?? criteria.Criteria.FirstOrDefault(c => Drives(c, index => !index.Negated, null))
            ?? criteria.Criteria.FirstOrDefault(c => Drives(c, null, typeof(CompositeCriterion)) || Drives(c, null, typeof(ChainCriterion))
                || c is MissingCriterion { Missing: false, Param: not LastUpdated } || c is AnyCriterion { Any.Count: > 0 } any && any.Any.All(IsPresent));

        // The other criteria are checked on the driver's row ids. One that needs the resource row (_lastUpdated, _id) is
        // checked on each candidate's row only beside the compartment of one patient, encounter or related person,
        // which is few resources; beside anything else (a practitioner or an organisation may have half a million
        // resources behind it, a subscription adds the written resource's _id) the resource table itself is searched,
        // where its own indexes serve.
        return driver is not null && criteria.Criteria.All(c => ReferenceEquals(c, driver) || !NeedsResourceRow(c)
                || driver is AnyCriterion { OnePersonsRecord: true } or ReferencedByCriterion { Sources: AnyCriterion { OnePersonsRecord: true } })
            ? driver
            : null;

        static bool Drives(Criterion criterion, Func<IndexCriterion, bool>? index, Type? kind) => criterion switch
        {
            // Not a union of "any resource of a type" (a Patient-level export's link to any patient): it matches most
            // rows, and paging by row id would read all of them for every page. The resource itself among its
            // compartment's links (Patient/1/Patient: id 1 or a link to it) is found by the (type, id) key.
            AnyCriterion any => any.Any.Count > 0
                && any.Any.All(part => part is IdCriterion { Negated: false, Ids.Count: > 0 } or OfTypeCriterion { Inner: IdCriterion { Negated: false, Ids.Count: > 0 } }
                    || part is not AnyCriterion and not IndexCriterion { AnyOf: [ReferenceCondition { TargetId: null, Url: null }] } && Drives(part, index, kind)),
            // A criterion on one of several types (a compartment's links of one type) is answered by the index rows of that type.
            OfTypeCriterion typed => Drives(typed.Inner, index, kind),
            // _lastUpdated is on the resource row (its version key), not in an index table.
            IndexCriterion found => found.Param != LastUpdated && index?.Invoke(found) == true,
            _ => criterion.GetType() == kind,
        };
    }

    /// <summary>A reference parameter's <c>:missing=false</c>: rows of the reference or of its identifier.</summary>
    private static bool IsPresent(Criterion criterion) => criterion is MissingCriterion { Missing: false, Param: not LastUpdated };

    /// <summary>Searched on the resource row's version key, not on index rows (see <c>Builder.LastUpdatedCondition</c>).</summary>
    private const string LastUpdated = "_lastUpdated";

    private static bool IsBareCode(IndexCriterion criterion) =>
        criterion.Table == IndexTable.Tokens && criterion.AnyOf.All(c => c is TokenCondition { System: null, Code: not null });

    private static bool NeedsResourceRow(Criterion criterion) => criterion switch
    {
        IdCriterion => true,
        IndexCriterion { Param: LastUpdated } or MissingCriterion { Param: LastUpdated } => true,
        AllCriterion all => all.All.Any(NeedsResourceRow),
        AnyCriterion any => any.Any.Any(NeedsResourceRow),
        OfTypeCriterion => true,
        _ => false,
    };

    /// <summary>The distinct row ids of every match, unordered (what a count counts; estimates explain it).</summary>
    public static SqlCommandText Matches(SearchCriteria criteria, SqlDialect dialect)
    {
        var sql = new SqlCommandText();
        var builder = new Builder(sql, dialect);
        if (Driver(criteria) is { } driver)
        {
            sql.Text.Append("SELECT DISTINCT d.rid FROM (");
            DrivenBy(builder, sql, criteria, driver);

            return sql;
        }

        sql.Text.Append("SELECT r.rid FROM resource r WHERE ");
        builder.Filter("r", criteria.ResourceTypes, criteria.Criteria);
        return sql;
    }

    public static SqlCommandText Count(SearchCriteria criteria, SqlDialect dialect)
    {
        var sql = Matches(criteria, dialect);
        sql.Text.Insert(0, "SELECT COUNT(*) FROM (").Append(") c");
        return sql;
    }

    /// <summary>Local targets referenced by the given resources (<c>_include</c>).</summary>
    /// <summary>
    /// The live local targets (rid, resource_type, id) some resources reference (<c>_include</c>), through a parameter
    /// (null: any) and of a type (null: any), in row-id order.
    /// </summary>
    public static SqlCommandText References(IReadOnlyList<long> rids, string? param, string? targetType, int limit)
    {
        var sql = new SqlCommandText();
        sql.Text.Append("SELECT DISTINCT t.rid, t.resource_type, t.id FROM search_reference x JOIN resource t ON t.resource_type = x.target_type AND t.id = x.target_id")
            .Append(" WHERE x.rid IN (").AppendJoin(", ", rids.Select(r => sql.Add(r))).Append(") AND x.target_id <> '' AND NOT t.deleted");
        if (param is not null)
        {
            sql.Text.Append(" AND x.param = ").Append(sql.Add(param));
        }

        if (targetType is not null)
        {
            sql.Text.Append(" AND x.target_type = ").Append(sql.Add(targetType));
        }

        sql.Text.Append(" ORDER BY t.rid LIMIT ").Append(sql.Add(limit));
        return sql;
    }

    /// <summary>
    /// The live resources (rid, resource_type, id) whose reference rows point at one of the targets (<c>_revinclude</c>)
    /// through one of the links, in row-id order: a local target by its type and id, a canonical one by its URL. The
    /// links and targets are joined as lists of values, so the lookup is one index probe per link and target of its
    /// type (the index leads with resource_type and param), and the statement stays small however many parameters a
    /// wildcard names (an OR of every parameter's conditions on every target, a statement of 20,000 parameters, took
    /// seconds to bind and plan).
    /// </summary>
    public static SqlCommandText Referring(IReadOnlyList<ReferenceLink> links, IReadOnlyList<ResourceKey> targets,
        IReadOnlyList<(string ResourceType, string Url)> urls, int limit)
    {
        var sql = new SqlCommandText();
        sql.Text.Append("SELECT r.rid, r.resource_type, r.id FROM resource r WHERE r.rid IN (");
        var parts = 0;
        foreach (var (values, column) in new[] { (targets.Select(t => (t.ResourceType, Value: t.Id)).ToList(), "target_id"), (urls.Select(u => (u.ResourceType, Value: u.Url)).ToList(), "url") })
        {
            if (values.Count == 0 || links.Count == 0)
            {
                continue;
            }

            // l × v (each link with the targets of its type), then one probe of the index on all four of its columns
            // for each pair; CROSS JOIN keeps SQLite to that order (it read every row of each link's parameter instead).
            // A url row names no local target (its target_type is empty): its link's type is the type the URL is of.
            sql.Text.Append(parts++ == 0 ? "" : " UNION ALL ").Append("SELECT x.rid FROM (VALUES ")
                .AppendJoin(", ", links.Select(l => $"({sql.Add(l.SourceType)}, {sql.Add(l.Param)}, {sql.Add(l.TargetType)})"))
                .Append(") l CROSS JOIN (VALUES ").AppendJoin(", ", values.Select(v => $"({sql.Add(v.ResourceType)}, {sql.Add(v.Value)})"))
                .Append(") v CROSS JOIN search_reference x WHERE v.column1 = l.column3 AND x.resource_type = l.column1 AND x.param = l.column2 AND x.")
                .Append(column).Append(" = v.column2")
                .Append(column == "url" ? " AND x.url <> '' AND x.target_type = ''" : " AND x.target_id <> '' AND x.target_type = v.column1");
        }

        sql.Text.Append(parts == 0 ? "SELECT NULL WHERE 1 = 0" : "").Append(") AND NOT r.deleted ORDER BY r.rid LIMIT ").Append(sql.Add(limit));
        return sql;
    }

    /// <summary>
    /// The canonical URLs some resources reference through a parameter: its rows that name no local target, without the
    /// rows of versioned references by url|version (an include finds every version by the url).
    /// </summary>
    public static SqlCommandText CanonicalReferences(IReadOnlyList<long> rids, string param, int limit)
    {
        var sql = new SqlCommandText();
        sql.Text.Append("SELECT DISTINCT x.url FROM search_reference x WHERE x.rid IN (")
            .AppendJoin(", ", rids.Select(r => sql.Add(r)))
            .Append(") AND x.param = ").Append(sql.Add(param))
            .Append(" AND x.target_type = '' AND x.url <> '' AND x.url NOT LIKE '%|%' LIMIT ").Append(sql.Add(limit));
        return sql;
    }

    /// <summary>The current rows (<see cref="SqlSearchReader.CurrentColumns"/>) of those of some resources of one type that are live.</summary>
    public static SqlCommandText ReadMany(string resourceType, IReadOnlyList<string> ids, SqlDialect dialect)
    {
        var sql = new SqlCommandText();
        sql.Text.Append("SELECT ").Append(SqlSearchReader.CurrentColumns).Append(" FROM resource WHERE resource_type = ").Append(sql.Add(resourceType))
            .Append(" AND NOT deleted AND id ");
        if (dialect.Arrays)
        {
            sql.Text.Append("= ANY(").Append(sql.Add(ids.Distinct(StringComparer.Ordinal).ToArray())).Append(')');
        }
        else
        {
            sql.Text.Append("IN (").AppendJoin(", ", ids.Select(sql.Add)).Append(')');
        }

        return sql;
    }

    /// <summary>(s0 > c0) OR (s0 = c0 AND ((s1 > c1) OR (s1 = c1 AND … rid > crid))), with &lt; for descending keys.</summary>
    private static void Keyset(SqlCommandText sql, IReadOnlyList<SortClause> sort, SearchCursor after, int index, string q, bool ridDescending)
    {
        if (index == sort.Count)
        {
            sql.Text.Append(q).Append(ridDescending ? ".rid < " : ".rid > ").Append(sql.Add(after.Rid));
            return;
        }

        var value = sql.Add(after.SortValues[index]);
        sql.Text.Append('(').Append(q).Append(".s").Append(index).Append(sort[index].Descending ? " < " : " > ").Append(value)
            .Append(" OR (").Append(q).Append(".s").Append(index).Append(" = ").Append(value).Append(" AND ");
        Keyset(sql, sort, after, index + 1, q, ridDescending);
        sql.Text.Append("))");
    }

    public static string TableName(IndexTable table) => table switch
    {
        IndexTable.Strings => "search_string",
        IndexTable.Tokens => "search_token",
        IndexTable.Dates => "search_date",
        IndexTable.Numbers => "search_number",
        IndexTable.Quantities => "search_quantity",
        IndexTable.Uris => "search_uri",
        IndexTable.References => "search_reference",
        _ => throw new ArgumentOutOfRangeException(nameof(table), table, "Not an index table."),
    };

    private sealed class Builder(SqlCommandText sql, SqlDialect dialect, long? afterRid = null, bool backward = false)
    {
        private int _aliases;

        private System.Text.StringBuilder Text => sql.Text;

        /// <summary>The live resources of the types meeting every criterion, on resource row alias <paramref name="r"/>.</summary>
        public void Filter(string r, IReadOnlyList<string> types, IReadOnlyList<Criterion> criteria)
        {
            Text.Append("NOT ").Append(r).Append(".deleted");
            if (types.Count > 0)
            {
                Text.Append(" AND ");
                TypeFilter(r, types);
            }

            foreach (var criterion in criteria)
            {
                Text.Append(" AND ");
                Render(criterion, r, types);
            }
        }

        public void SortValue(string r, SortClause key)
        {
            switch (key.Param)
            {
                case "_id":
                    Text.Append(r).Append(".id").Append(dialect.BinaryCollation);
                    return;
                case "_lastUpdated":
                    Text.Append(r).Append(".last_key");
                    return;
            }

            var (column, sentinel) = key.Table switch
            {
                IndexTable.Dates => (key.Descending ? "x.high" : "x.low", key.Descending ? long.MinValue : (object)long.MaxValue),
                IndexTable.Numbers => ("x.value", key.Descending ? double.MinValue : double.MaxValue),
                IndexTable.Quantities => ("x.canonical_value", key.Descending ? double.MinValue : double.MaxValue),
                IndexTable.Strings => ("x.norm", TextSentinel(key)),
                IndexTable.Tokens => ("x.code", TextSentinel(key)),
                IndexTable.Uris => ("x.uri", TextSentinel(key)),
                _ => ("x.target_type || '/' || x.target_id || x.url", TextSentinel(key)),
            };

            // Resources without a value sort last either way (search.html#sort leaves it to the server).
            Text.Append("COALESCE((SELECT ").Append(key.Descending ? "MAX(" : "MIN(").Append(column).Append(')')
                .Append(" FROM ").Append(TableName(key.Table)).Append(" x WHERE x.rid = ").Append(r).Append(".rid AND x.param");
            if (key.RowsOf is { } rowsOf)
            {
                Text.Append(" IN (").AppendJoin(", ", rowsOf.Select(sql.Add)).Append(')');
            }
            else if (key.Subset is { } subset)
            {
                // A narrowing reference parameter: its own rows, and the wider one's of its type.
                var param = sql.Add(key.Param);
                Text.Append(" IN (").Append(param).Append(", ").Append(sql.Add(subset.Param)).Append(") AND (x.param = ").Append(param)
                    .Append(" OR x.target_type = ").Append(sql.Add(subset.TargetType)).Append(')');
            }
            else
            {
                Text.Append(" = ").Append(sql.Add(key.Param));
            }

            if (key.Table == IndexTable.Tokens)
            {
                // A concept's text is kept as a row without a code; it has no code to sort by.
                Text.Append(" AND x.code <> ''");
            }

            Text.Append("), ").Append(sql.Add(sentinel)).Append(')');

            static object TextSentinel(SortClause key) => key.Descending ? "" : "\U0010FFFF";
        }

        private void TypeFilter(string alias, IReadOnlyList<string> types, string column = "resource_type")
        {
            if (types.Count == 1)
            {
                Text.Append(alias).Append('.').Append(column).Append(" = ").Append(sql.Add(types[0]));
            }
            else
            {
                Text.Append(alias).Append('.').Append(column).Append(" IN (").AppendJoin(", ", types.Select(t => sql.Add(t))).Append(')');
            }
        }

        /// <summary>What <see cref="Render"/> answers as <c>r.rid IN (…)</c> of an index subquery.</summary>
        private static bool AnsweredByRid(Criterion criterion) =>
            criterion is IndexCriterion { Negated: false, Param: not LastUpdated } or MissingCriterion { Missing: false, Param: not LastUpdated }
                or CompositeCriterion or ChainCriterion or HasCriterion or ReferencedByCriterion;

        private string Alias(string prefix) => prefix + (_aliases++).ToString(System.Globalization.CultureInfo.InvariantCulture);

        public void Render(Criterion criterion, string r, IReadOnlyList<string> types)
        {
            switch (criterion)
            {
                case AllCriterion all:
                    Text.Append('(');
                    Joined(all.All.Count, " AND ", i => Render(all.All[i], r, types));
                    Text.Append(all.All.Count == 0 ? "1 = 1)" : ")");
                    break;
                case AnyCriterion any when any.Any.Count > 1 && any.Any.All(AnsweredByRid):
                    // One IN over the parts' row ids: an OR of IN subqueries is planned as a scan of every row of the
                    // type testing each (a chain into name=, which reads family's and given's rows too, took 130 ms).
                    Text.Append(r).Append(".rid IN (");
                    RidSubquery(any, r, types);
                    Text.Append(')');
                    break;
                case OfTypeCriterion typed:
                    Text.Append('(');
                    TypeFilter(r, typed.ResourceTypes);
                    Text.Append(" AND ");
                    Render(typed.Inner, r, typed.ResourceTypes);
                    Text.Append(')');
                    break;
                case AnyCriterion any:
                    Text.Append('(');
                    Joined(any.Any.Count, " OR ", i => Render(any.Any[i], r, types));
                    Text.Append(any.Any.Count == 0 ? "1 = 0)" : ")");
                    break;
                case MissingCriterion { Param: LastUpdated } missing:
                    // Every version has its time.
                    Text.Append(missing.Missing ? "1 = 0" : "1 = 1");
                    break;
                case IndexCriterion { Param: LastUpdated } lastUpdated:
                    LastUpdatedCondition(r, lastUpdated);
                    break;
                case IdCriterion { Ids.Count: 0 } id:
                    Text.Append(id.Negated ? "1 = 1" : "1 = 0");
                    break;
                case IdCriterion id:
                    Text.Append(r).Append(".id").Append(id.Negated ? " NOT IN (" : " IN (").AppendJoin(", ", id.Ids.Select(i => sql.Add(i))).Append(')');
                    break;
                case MissingCriterion { Missing: true } missing:
                {
                    var x = Alias("m");
                    Text.Append("NOT EXISTS (SELECT 1 FROM ").Append(TableName(missing.Table)).Append(' ').Append(x).Append(" WHERE ").Append(x)
                        .Append(".rid = ").Append(r).Append(".rid AND ").Append(x).Append(".param = ").Append(sql.Add(missing.Param));
                    OfTargetType(x, missing.TargetType);
                    Text.Append(')');
                    break;
                }

                case IndexCriterion { Negated: true } index:
                {
                    // NOT EXISTS rather than NOT IN: PostgreSQL plans only the former as an anti-join (probing the
                    // (rid, param) index per candidate); NOT IN hashes or rescans the whole subquery.
                    var x = Alias("x");
                    Text.Append("NOT EXISTS (SELECT 1 FROM ").Append(TableName(index.Table)).Append(' ').Append(x).Append(" WHERE ").Append(x)
                        .Append(".rid = ").Append(r).Append(".rid AND ").Append(x).Append(".param = ").Append(sql.Add(index.Param));
                    AnyOf(x, index.AnyOf);
                    Text.Append(')');
                    break;
                }

                case MissingCriterion or IndexCriterion or CompositeCriterion or ChainCriterion or HasCriterion or ReferencedByCriterion:
                    Text.Append(r).Append(".rid IN (");
                    RidSubquery(criterion, r, types);
                    Text.Append(')');
                    break;

                case TerminologyCriterion terminology:
                    // Expanded by LocalTerminology where the hub takes searches; anywhere else it cannot be answered.
                    throw new InteropHub.Fhir.Errors.InvalidInputException($"'{terminology.Name}' needs the hub's terminology, which this request cannot use.", terminology.Name);
                default:
                    throw new NotSupportedException($"No SQL for {criterion.GetType().Name}.");
            }
        }

        /// <summary>
        /// The row ids of live <paramref name="type"/> resources meeting <paramref name="inner"/> (a chain's target, a
        /// _has source): straight from the index tables when the criterion is answered there, else through the resource table.
        /// </summary>
        private void Nested(string outer, string type, Criterion inner)
        {
            if (inner is IndexCriterion { Negated: false } or CompositeCriterion or ChainCriterion or HasCriterion or MissingCriterion { Missing: false }
                && !NeedsResourceRow(inner))
            {
                RidSubquery(inner, outer, [type]);
                return;
            }

            var s = Alias("s");
            Text.Append("SELECT ").Append(s).Append(".rid FROM resource ").Append(s).Append(" WHERE ");
            Filter(s, [type], [inner]);
        }

        /// <summary>
        /// <c>_lastUpdated</c> on the resource row: a version's key is the microsecond it was written (shifted left by
        /// eight), and <c>meta.lastUpdated</c> is that instant cut to the millisecond. As a date range that is
        /// [t, t + 1 tick), so each prefix's comparison of ranges (see <see cref="Ordered"/>) comes down to the key
        /// against the first key of the millisecond at or after the search value's bounds.
        /// </summary>
        private void LastUpdatedCondition(string r, IndexCriterion criterion)
        {
            var key = r + ".last_key";
            Text.Append(criterion.Negated ? "NOT (" : "(");
            Joined(criterion.AnyOf.Count, " OR ", i =>
            {
                var date = (DateCondition)criterion.AnyOf[i];
                var low = sql.Add(FirstKeyAt(date.Low));
                var high = sql.Add(FirstKeyAt(date.High));
                Text.Append(date.Prefix switch
                {
                    SearchPrefix.Eq or SearchPrefix.Ap => $"({key} >= {low} AND {key} < {high})",
                    SearchPrefix.Ne => $"NOT ({key} >= {low} AND {key} < {high})",
                    SearchPrefix.Gt or SearchPrefix.Sa => $"{key} >= {high}",
                    SearchPrefix.Lt or SearchPrefix.Eb => $"{key} < {low}",
                    SearchPrefix.Ge => $"{key} >= {low}",
                    _ => $"{key} < {high}",
                });
            });
            Text.Append(')');
        }

        /// <summary>The first version key of the millisecond at or after <paramref name="ticks"/> (UTC, from year 1).</summary>
        private static long FirstKeyAt(long ticks)
        {
            var milliseconds = ticks / TimeSpan.TicksPerMillisecond + (ticks % TimeSpan.TicksPerMillisecond > 0 ? 1 : 0);
            var micros = milliseconds * 1000 - DateTime.UnixEpoch.Ticks / 10;
            return micros > long.MaxValue >> 8 ? long.MaxValue : micros < long.MinValue >> 8 ? long.MinValue : micros << 8;
        }

        private void AnyOf(string x, IReadOnlyList<IndexCondition> conditions)
        {
            if (dialect.CodesListed && conditions.Count > 1 && conditions.All(c => c is TokenCondition { Code: not null }))
            {
                Text.Append(" AND ").Append(x).Append(".code IN (")
                    .AppendJoin(", ", conditions.Cast<TokenCondition>().Select(c => c.Code!).Distinct(StringComparer.Ordinal).Select(sql.Add)).Append(')');
            }

            Text.Append(" AND (");
            Joined(conditions.Count, " OR ", i =>
            {
                Text.Append('(');
                Condition(x, conditions[i]);
                Text.Append(')');
            });
            Text.Append(')');
        }

        /// <summary>
        /// Writes <paramref name="count"/> operands joined by <paramref name="op"/>, a long list halved into parenthesised
        /// groups: SQLite's parser nests <c>a OR b OR c…</c> one level per operand and refuses an expression deeper than
        /// 1,000 levels (<c>SQLITE_MAX_EXPR_DEPTH</c>), which a search of a thousand identifiers at once would reach.
        /// </summary>
        private void Joined(int count, string op, Action<int> operand) => Joined(0, count, op, operand);

        private void Joined(int from, int to, string op, Action<int> operand)
        {
            if (to - from <= 32)
            {
                for (var i = from; i < to; i++)
                {
                    Text.Append(i == from ? "" : op);
                    operand(i);
                }

                return;
            }

            var middle = from + (to - from) / 2;
            Text.Append('(');
            Joined(from, middle, op, operand);
            Text.Append(')').Append(op).Append('(');
            Joined(middle, to, op, operand);
            Text.Append(')');
        }

        /// <summary>
        /// On a later page in row-id order, repeats the page's lower bound inside the semi-join of the outer resource:
        /// the planner does not carry <c>r.rid &gt; k</c> across <c>IN</c>, and an index ending in rid (token and
        /// reference equality) then starts its scan at the cursor, so page 100 costs what page 1 does.
        /// </summary>
        private void AfterRid(string x, string r)
        {
            if (r is "r" or "d" && afterRid is { } after)
            {
                Text.Append(" AND ").Append(x).Append(backward ? ".rid < " : ".rid > ").Append(sql.Add(after));
            }
        }

        /// <summary>
        /// <c>SELECT x.rid FROM search_x x WHERE …</c>: the rows ids meeting a positive criterion answered from the index
        /// tables (<paramref name="r"/> is the alias of the resource row or rid the criterion applies to).
        /// </summary>
        public void RidSubquery(Criterion criterion, string r, IReadOnlyList<string> types)
        {
            switch (criterion)
            {
                case MissingCriterion missing:
                {
                    var x = Alias("m");
                    Text.Append("SELECT ").Append(x).Append(".rid FROM ").Append(TableName(missing.Table)).Append(' ').Append(x).Append(" WHERE ");
                    IndexScope(x, types, missing.Param);
                    OfTargetType(x, missing.TargetType);
                    AfterRid(x, r);
                    break;
                }

                case IndexCriterion index:
                {
                    var x = Alias("x");
                    Text.Append("SELECT ").Append(x).Append(".rid FROM ").Append(TableName(index.Table)).Append(' ').Append(x).Append(" WHERE ");
                    IndexScope(x, types, index.Param);
                    AfterRid(x, r);
                    AnyOf(x, index.AnyOf);
                    break;
                }

                case CompositeCriterion composite:
                    RenderComposite(composite, r, types);
                    break;
                case IdCriterion { Negated: false } id:
                {
                    // In a driving union only (see Driver): the rows of those ids, by the (type, id) key.
                    var x = Alias("i");
                    Text.Append("SELECT ").Append(x).Append(".rid FROM resource ").Append(x).Append(" WHERE ");
                    TypeFilter(x, types);
                    Text.Append(" AND ").Append(x).Append(".id IN (").AppendJoin(", ", id.Ids.Select(i => sql.Add(i))).Append(") AND NOT ").Append(x).Append(".deleted");
                    AfterRid(x, r);
                    break;
                }

                case OfTypeCriterion typed:
                    RidSubquery(typed.Inner, r, typed.ResourceTypes);
                    break;
                case AnyCriterion any:
                    // Only as the driver (see Driver): each part's row ids, the outer GROUP BY or IN removing repeats.
                    for (var i = 0; i < any.Any.Count; i++)
                    {
                        Text.Append(i == 0 ? "" : " UNION ALL ");
                        RidSubquery(any.Any[i], r, types);
                    }

                    break;
                case ChainCriterion chain:
                    // One lookup per target type, as a UNION ALL: an OR of them was planned as a scan of every row of
                    // the parameter (Observation?subject.name=x, whose subject may be a Patient, Group, Device or
                    // Location, read all 500,000 subject rows at a million resources: 180 ms for no match).
                    for (var i = 0; i < chain.Targets.Count; i++)
                    {
                        var target = chain.Targets[i];
                        var x = Alias("c");
                        var t = Alias("t");
                        Text.Append(i == 0 ? "" : " UNION ALL ").Append("SELECT ").Append(x).Append(".rid FROM search_reference ").Append(x).Append(" WHERE ");
                        IndexScope(x, types, chain.Param);
                        AfterRid(x, r);
                        Text.Append(" AND ").Append(x).Append(".target_id <> '' AND ").Append(x).Append(".target_type = ").Append(sql.Add(target.ResourceType))
                            .Append(" AND ").Append(x).Append(".target_id IN (SELECT ").Append(t).Append(".id FROM resource ").Append(t).Append(" WHERE ");
                        Filter(t, [target.ResourceType], [target.Inner]);
                        Text.Append(')');
                        if (target.ByUrl)
                        {
                            // A canonical reference (MeasureReport.measure) names its target by url, any version.
                            var c = Alias("c");
                            var u = Alias("u");
                            var tu = Alias("t");
                            Text.Append(" UNION ALL SELECT ").Append(c).Append(".rid FROM search_reference ").Append(c).Append(" WHERE ");
                            IndexScope(c, types, chain.Param);
                            AfterRid(c, r);
                            Text.Append(" AND ").Append(c).Append(".target_type = '' AND ").Append(c).Append(".url IN (SELECT ").Append(u).Append(".uri FROM search_uri ")
                                .Append(u).Append(" WHERE ").Append(u).Append(".resource_type = ").Append(sql.Add(target.ResourceType)).Append(" AND ").Append(u)
                                .Append(".param = 'url' AND ").Append(u).Append(".rid IN (SELECT ").Append(tu).Append(".rid FROM resource ").Append(tu).Append(" WHERE ");
                            Filter(tu, [target.ResourceType], [target.Inner]);
                            Text.Append("))");
                        }
                    }

                    break;

                case HasCriterion has:
                {
                    // The referenced resources' row ids, through their logical ids (the (resource_type, id) index
                    // carries rid): a _has criterion is then answered by row id like any other and can drive a search.
                    var x = Targets("h", r, types, has.Param, [has.SourceType]);
                    Nested(x, has.SourceType, has.Inner);
                    Text.Append(')');
                    if (has.ByUrl)
                    {
                        // A canonical reference (MeasureReport.measure) names its targets by their url, any version.
                        var u = Alias("u");
                        var c = Alias("c");
                        Text.Append(" UNION ALL SELECT ").Append(u).Append(".rid FROM search_uri ").Append(u).Append(" WHERE ");
                        IndexScope(u, types, "url");
                        AfterRid(u, r);
                        Text.Append(" AND ").Append(u).Append(".uri IN (SELECT ").Append(c).Append(".url FROM search_reference ").Append(c).Append(" WHERE ");
                        IndexScope(c, [has.SourceType], has.Param);
                        Text.Append(" AND ").Append(c).Append(".target_type = '' AND ").Append(c).Append(".url <> '' AND ").Append(c).Append(".rid IN (");
                        Nested(c, has.SourceType, has.Inner);
                        Text.Append("))");
                    }

                    break;
                }

                case ReferencedByCriterion referenced:
                {
                    // The targets of the sources' reference rows, whatever their parameter; the sources are a rid
                    // subquery of their own (a patient's compartment: one index lookup per link parameter).
                    Targets("b", r, types, null, []);
                    RidSubquery(referenced.Sources, "s", referenced.SourceTypes);
                    Text.Append(')');
                    break;
                }

                default:
                    throw new NotSupportedException($"No rid subquery for {criterion.GetType().Name}.");
            }
        }

        /// <summary>
        /// <c>SELECT t.rid FROM search_reference x JOIN resource t …</c>: the live targets, of <paramref name="types"/>, of
        /// reference rows (of <paramref name="param"/> in <paramref name="sourceTypes"/>, when given), up to
        /// <c>AND x.rid IN (</c>, which the caller completes with the sources' row ids and a closing parenthesis.
        /// Returns the alias of the reference rows.
        /// </summary>
        private string Targets(string prefix, string r, IReadOnlyList<string> types, string? param, IReadOnlyList<string> sourceTypes)
        {
            var x = Alias(prefix);
            var t = Alias("t");
            Text.Append("SELECT ").Append(t).Append(".rid FROM search_reference ").Append(x).Append(" JOIN resource ").Append(t).Append(" ON ")
                .Append(t).Append(".resource_type = ").Append(x).Append(".target_type AND ").Append(t).Append(".id = ").Append(x).Append(".target_id WHERE ");
            if (param is not null)
            {
                IndexScope(x, sourceTypes, param);
                Text.Append(" AND ");
            }

            Text.Append(x).Append(".target_id <> ''");
            if (types.Count > 0)
            {
                Text.Append(" AND ");
                TypeFilter(x, types, "target_type");
            }

            Text.Append(" AND NOT ").Append(t).Append(".deleted");
            AfterRid(t, r);
            Text.Append(" AND ").Append(x).Append(".rid IN (");
            return x;
        }

        private void RenderComposite(CompositeCriterion composite, string r, IReadOnlyList<string> types)
        {
            var parts = composite.AnyOf[0];
            var aliases = parts.Select(_ => Alias("k")).ToList();
            Text.Append("SELECT ").Append(aliases[0]).Append(".rid FROM ").Append(TableName(parts[0].Table)).Append(' ').Append(aliases[0]);
            for (var i = 1; i < parts.Count; i++)
            {
                var (a, first) = (aliases[i], aliases[0]);
                Text.Append(" JOIN ").Append(TableName(parts[i].Table)).Append(' ').Append(a).Append(" ON ").Append(a).Append(".rid = ").Append(first)
                    .Append(".rid AND ").Append(a).Append(".grp = ").Append(first).Append(".grp AND ").Append(a).Append(".param = ").Append(sql.Add(parts[i].Key));
            }

            Text.Append(" WHERE ");
            IndexScope(aliases[0], types, parts[0].Key);
            AfterRid(aliases[0], r);
            Text.Append(" AND (");
            Joined(composite.AnyOf.Count, " OR ", v =>
            {
                Text.Append('(');
                for (var i = 0; i < parts.Count; i++)
                {
                    Text.Append(i == 0 ? "(" : " AND (");
                    Condition(aliases[i], composite.AnyOf[v][i].Condition);
                    Text.Append(')');
                }

                Text.Append(')');
            });
            Text.Append(')');
        }

        private void OfTargetType(string x, string? targetType)
        {
            if (targetType is not null)
            {
                Text.Append(" AND ").Append(x).Append(".target_type = ").Append(sql.Add(targetType));
            }
        }

        private void IndexScope(string x, IReadOnlyList<string> types, string param)
        {
            if (types.Count > 0)
            {
                TypeFilter(x, types);
                Text.Append(" AND ");
            }

            Text.Append(x).Append(".param = ").Append(sql.Add(param));
        }

        private void Condition(string x, IndexCondition condition)
        {
            switch (condition)
            {
                case TokenCondition token:
                    if (token.Code is not null)
                    {
                        Text.Append(x).Append(".code = ").Append(sql.Add(token.Code));
                    }

                    if (token.System is not null)
                    {
                        Text.Append(token.Code is null ? "" : " AND ").Append(x).Append(".system = ").Append(sql.Add(token.System));
                    }

                    break;
                case TokenTextCondition text:
                    Prefix(x + ".text", text.Prefix);
                    break;
                case StringCondition { Match: StringMatch.Exact } s:
                    // The normalised value too: every row's norm is its exact text normalised, and norm is what the
                    // index holds (on exact alone, family:exact read all 100,000 family rows: 108 ms).
                    Text.Append(x).Append(".norm = ").Append(sql.Add(InteropHub.Fhir.Search.Indexing.TextNormalizer.Normalize(s.Value)))
                        .Append(" AND ").Append(x).Append(".exact = ").Append(sql.Add(s.Value));
                    break;
                case StringCondition { Match: StringMatch.Contains } s:
                    Text.Append(x).Append(".norm LIKE ").Append(sql.Add("%" + EscapeLike(s.Value) + "%")).Append(" ESCAPE '\\'");
                    break;
                case StringCondition s:
                    Prefix(x + ".norm", s.Value);
                    break;
                case DateCondition date:
                    Ordered(x + ".low", x + ".high", date.Prefix, sql.Add(date.Low), sql.Add(date.High));
                    break;
                case NumberCondition number:
                    Number(x + ".value", number);
                    break;
                case QuantityCondition quantity:
                    Number(x + (quantity.Canonical ? ".canonical_value" : ".value"), quantity.Number);
                    if (quantity.Code is not null)
                    {
                        Text.Append(" AND ").Append(x).Append(quantity.Canonical ? ".canonical_code = " : ".code = ").Append(sql.Add(quantity.Code));
                    }

                    if (quantity.System is not null)
                    {
                        Text.Append(" AND ").Append(x).Append(".system = ").Append(sql.Add(quantity.System));
                    }

                    break;
                case UriCondition { Match: UriMatch.Below } uri:
                    Prefix(x + ".uri", uri.Uri);
                    break;
                case UriCondition { Match: UriMatch.Above } uri:
                    Text.Append("substr(").Append(sql.Add(uri.Uri)).Append(", 1, length(").Append(x).Append(".uri)) = ").Append(x).Append(".uri");
                    break;
                case UriCondition uri:
                    Text.Append(x).Append(".uri = ").Append(sql.Add(uri.Uri));
                    break;
                case ReferenceCondition { Url: { } url }:
                    Text.Append(x).Append(".url = ").Append(sql.Add(url)).Append(" AND ").Append(x).Append(".url <> ''");
                    break;
                case ReferenceCondition { TargetId: null, TargetType: { } anyOfType }:
                    // Any local resource of the type (the compartment of every patient, for a Patient-level export).
                    Text.Append(x).Append(".target_type = ").Append(sql.Add(anyOfType)).Append(" AND ").Append(x).Append(".target_id <> ''");
                    break;
                case ReferenceCondition reference:
                    Text.Append(x).Append(".target_id = ").Append(sql.Add(reference.TargetId ?? "")).Append(" AND ").Append(x).Append(".target_id <> ''");
                    if (reference.TargetType is not null)
                    {
                        Text.Append(" AND ").Append(x).Append(".target_type = ").Append(sql.Add(reference.TargetType));
                    }

                    break;
                default:
                    throw new NotSupportedException($"No SQL for {condition.GetType().Name}.");
            }
        }

        private void Prefix(string column, string prefix)
        {
            Text.Append(column).Append(" >= ").Append(sql.Add(prefix)).Append(" AND ").Append(column).Append(" < ")
                .Append(sql.Add(TextNormalizer.PrefixUpperBound(prefix)));
        }

        private void Number(string column, NumberCondition number)
        {
            // A number in the resource is a point: eq/ne/ap use the range the search value's precision implies,
            // the comparisons the value itself (search.html#number).
            var value = sql.Add(number.Value);
            switch (number.Prefix)
            {
                case SearchPrefix.Eq or SearchPrefix.Ne:
                    Text.Append(number.Prefix == SearchPrefix.Ne ? "NOT (" : "(").Append(column).Append(" >= ").Append(sql.Add(number.Low))
                        .Append(" AND ").Append(column).Append(" < ").Append(sql.Add(number.High)).Append(')');
                    break;
                case SearchPrefix.Ap:
                    Text.Append(column).Append(" >= ").Append(sql.Add(number.Low)).Append(" AND ").Append(column).Append(" <= ").Append(sql.Add(number.High));
                    break;
                case SearchPrefix.Gt or SearchPrefix.Sa:
                    Text.Append(column).Append(" > ").Append(value);
                    break;
                case SearchPrefix.Lt or SearchPrefix.Eb:
                    Text.Append(column).Append(" < ").Append(value);
                    break;
                case SearchPrefix.Ge:
                    Text.Append(column).Append(" >= ").Append(value);
                    break;
                case SearchPrefix.Le:
                    Text.Append(column).Append(" <= ").Append(value);
                    break;
            }
        }

        /// <summary>
        /// Range semantics of search.html#prefix for a resource range [low, high) against a search range [ql, qh).
        /// </summary>
        private void Ordered(string low, string high, SearchPrefix prefix, string ql, string qh)
        {
            // Index rows have low < high, so a contained range also starts before qh: saying so bounds the index range
            // scan on (low, high) at both ends instead of reading every row from ql to the end. ge and le likewise
            // imply high > ql and low < qh, which the planner can use as a range before the OR.
            var contained = $"({low} >= {ql} AND {low} < {qh} AND {high} <= {qh})";
            Text.Append(prefix switch
            {
                SearchPrefix.Eq => contained,
                SearchPrefix.Ne => $"NOT {contained}",
                SearchPrefix.Gt => $"{high} > {qh}",
                SearchPrefix.Lt => $"{low} < {ql}",
                SearchPrefix.Ge => $"({high} > {ql} AND ({high} > {qh} OR {contained}))",
                SearchPrefix.Le => $"({low} < {qh} AND ({low} < {ql} OR {contained}))",
                SearchPrefix.Sa => $"{low} >= {qh}",
                SearchPrefix.Eb => $"{high} <= {ql}",
                _ => $"({low} < {qh} AND {high} > {ql})",
            });
        }

        private static string EscapeLike(string value) =>
            value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
    }
}
