using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;

namespace InteropHub.Storage.Tests;

/// <summary>The SQL text both stores run, where its shape matters apart from its answers.</summary>
public sealed class SearchSqlTests
{
    [Fact]
    public void A_revinclude_lookup_binds_each_value_once_however_often_its_links_repeat_it()
    {
        // A wildcard revinclude names every reference parameter of every type, each once per target type.
        var links = Enumerable.Range(0, 100).SelectMany(i => new[] { "Patient", "Organization" }.Select(t => new ReferenceLink("Observation", $"param{i}", t))).ToList();
        var targets = Enumerable.Range(0, 100).Select(i => new ResourceKey(i % 2 == 0 ? "Patient" : "Organization", $"id{i}")).ToList();

        var sql = SearchSql.Referring(links, targets, [], 1001);

        // Observation, the 100 parameter names, the two types, the 100 ids and the limit.
        Assert.Equal(1 + 100 + 2 + 100 + 1, sql.Parameters.Count);
        Assert.Equal(sql.Parameters.Count, sql.Parameters.Select(p => p.Value).Distinct().Count());
    }
}
