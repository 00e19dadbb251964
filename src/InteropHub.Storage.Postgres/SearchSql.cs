using System.Globalization;
using System.Text;
using InteropHub.Fhir.Search;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// Translates <see cref="SearchCriteria"/> to one keyset-paged query over live resources: clauses are AND-ed,
/// the values of a clause OR-ed. A token value without system matches any system; <c>|code</c> has the empty
/// system and matches only identifiers that have none (search.html#token).
/// </summary>
internal static class SearchSql
{
    public static string Build(NpgsqlParameterCollection parameters, string resourceType, SearchCriteria criteria, long? afterRid, int limit)
    {
        var sql = new StringBuilder("SELECT rid, id FROM resource WHERE resource_type = @t AND NOT deleted");
        parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        var n = 0;
        foreach (var clause in criteria.Clauses)
        {
            if (clause.Param == "_id")
            {
                var ids = clause.Values.Select(v => v.Code).ToArray();
                sql.Append(" AND id = ANY(").Append(Add(parameters, ref n, ids)).Append(')');
                continue;
            }

            sql.Append(" AND rid IN (SELECT rid FROM token_index WHERE resource_type = @t AND param = ")
                .Append(Add(parameters, ref n, clause.Param)).Append(" AND (");
            var first = true;
            foreach (var value in clause.Values)
            {
                sql.Append(first ? "" : " OR ").Append("(code = ").Append(Add(parameters, ref n, value.Code));
                if (value.System is not null)
                {
                    sql.Append(" AND system = ").Append(Add(parameters, ref n, value.System));
                }

                sql.Append(')');
                first = false;
            }

            sql.Append("))");
        }

        if (afterRid is { } after)
        {
            sql.Append(" AND rid > @after");
            parameters.Add(new NpgsqlParameter<long>("after", after));
        }

        sql.Append(" ORDER BY rid LIMIT @limit");
        parameters.Add(new NpgsqlParameter<int>("limit", limit));
        return sql.ToString();
    }

    private static string Add<T>(NpgsqlParameterCollection parameters, ref int n, T value)
    {
        var name = "p" + (n++).ToString(CultureInfo.InvariantCulture);
        parameters.Add(new NpgsqlParameter<T>(name, value));
        return "@" + name;
    }
}
