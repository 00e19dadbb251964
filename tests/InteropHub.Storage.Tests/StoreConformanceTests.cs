using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Create;
using InteropHub.Fhir.Resources.Delete;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>
/// What every <see cref="IResourceStore"/> must do, run once per store by a sealed subclass. Each test gets a fresh,
/// migrated, empty store. Writes go through the real handlers wherever a handler exists, so the suite checks the
/// store as the server uses it; the session is used directly only for what no handler exposes (rollback).
/// </summary>
public abstract partial class StoreConformanceTests : IAsyncLifetime
{
    /// <summary>The Chinese resident identity card number system (公民身份号码).</summary>
    private const string IdCard = "urn:oid:1.2.156.112606.1.1.1";

    private const string Mrn = "http://qingxi-hospital.example/mrn";

    private static readonly FhirSerializers Serializers = new();

    private readonly List<IResourceStore> _stores = [];
    private readonly VersionWriter _writer = new(Serializers, TimeProvider.System);

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>The store under test: fresh, migrated and empty.</summary>
    protected IResourceStore Store { get; private set; } = null!;

    /// <summary>Where <see cref="Store"/> keeps its data, to open a second store on the same database.</summary>
    protected string Location { get; private set; } = "";

    /// <summary>Creates an empty database and returns its location (a file path, a connection string).</summary>
    protected abstract Task<string> CreateDatabaseAsync();

    /// <summary>Opens a store on a database without migrating it; the suite disposes it.</summary>
    protected abstract IResourceStore OpenStore(string location);

    public async Task InitializeAsync()
    {
        Location = await CreateDatabaseAsync();
        Store = Track(OpenStore(Location));
        await Store.MigrateAsync(Ct);
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            switch (store)
            {
                case IAsyncDisposable disposable:
                    await disposable.DisposeAsync();
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }

    // ---- current version, versions, delete ----

    [Fact]
    public async Task Reading_the_current_version_returns_the_written_bytes_unchanged()
    {
        var saved = await PutAsync(NewPatient("zhang-san", new Identifier(IdCard, "530000199001011234")));

        var current = await Store.ReadAsync("Patient", "zhang-san", Ct);

        Assert.NotNull(current);
        Assert.Equal(saved.Json, current.Json);
        Assert.Equal(1, current.VersionId);
        Assert.Equal(saved.LastUpdated, current.LastUpdated);
        Assert.False(current.IsDeleted);
        var text = Encoding.UTF8.GetString(current.Json);
        Assert.Contains("张三", text, StringComparison.Ordinal);
        Assert.Contains("清溪县", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_store_keeps_the_bytes_it_is_given_byte_for_byte()
    {
        // Indented JSON with UTF-8 Chinese text: a store that re-encodes or normalises content would change it.
        var patient = NewPatient("pretty");
        patient.Meta = new Meta { VersionId = "1", LastUpdated = DateTimeOffset.UtcNow };
        var json = Serializers.ToJsonBytes(patient, pretty: true);
        var key = VersionKeys.Next();
        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            await session.WriteAsync(new VersionRow("Patient", "pretty", 1, key, "PUT", false, json), SearchIndexEntries.Empty, Ct);
            await session.CommitAsync(Ct);
        }

        var current = await Store.ReadAsync("Patient", "pretty", Ct);
        var version = await Store.ReadVersionAsync("Patient", "pretty", 1, Ct);
        var history = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "pretty", null, 10, null), Ct);

        Assert.Equal(json, current!.Json);
        Assert.Equal(json, version!.Json);
        Assert.Equal(VersionKeys.ToInstant(key), current.LastUpdated);
        var entry = Assert.Single(history);
        Assert.Equal(key, entry.Key);
        Assert.Equal(json, entry.Resource.Json);
        Assert.Equal("PUT", entry.Resource.Method);
    }

    [Fact]
    public async Task Each_update_adds_a_version_and_vread_returns_every_version_unchanged()
    {
        var versions = new List<StoredResource>();
        foreach (var birthDate in new[] { "1990-01-01", "1990-01-02", "1990-01-03" })
        {
            var patient = NewPatient("p1");
            patient.BirthDate = birthDate;
            versions.Add(await PutAsync(patient));
        }

        var current = await Store.ReadAsync("Patient", "p1", Ct);

        Assert.Equal([1, 2, 3], versions.Select(v => v.VersionId));
        Assert.Equal(3, current!.VersionId);
        Assert.Equal(versions[2].Json, current.Json);
        foreach (var expected in versions)
        {
            var version = await Store.ReadVersionAsync("Patient", "p1", expected.VersionId, Ct);
            Assert.NotNull(version);
            Assert.Equal(expected.Json, version.Json);
            Assert.Equal(expected.LastUpdated, version.LastUpdated);
            Assert.False(version.IsDeleted);
        }
    }

    [Fact]
    public async Task Unknown_ids_versions_and_types_read_as_null()
    {
        await PutAsync(NewPatient("p1"));

        Assert.Null(await Store.ReadAsync("Patient", "p2", Ct));
        Assert.Null(await Store.ReadAsync("Organization", "p1", Ct));
        Assert.Null(await Store.ReadVersionAsync("Patient", "p1", 2, Ct));
        Assert.Null(await Store.ReadVersionAsync("Patient", "p2", 1, Ct));
    }

    [Fact]
    public async Task An_update_keeps_the_row_id_so_the_index_rows_follow_the_resource()
    {
        await PutAsync(NewPatient("p1", new Identifier(Mrn, "old")));
        var before = Assert.Single(await FindAsync("Patient", $"identifier={Mrn}|old"));

        await PutAsync(NewPatient("p1", new Identifier(Mrn, "new")));
        await PutAsync(NewPatient("p1", new Identifier(Mrn, "new")));

        Assert.Empty(await FindAsync("Patient", $"identifier={Mrn}|old"));
        var after = Assert.Single(await FindAsync("Patient", $"identifier={Mrn}|new"));
        Assert.Equal(before.Rid, after.Rid);
        Assert.Equal("p1", after.Id);
    }

    [Fact]
    public async Task A_session_writing_new_and_later_versions_of_several_resources_leaves_each_with_only_its_last_versions_index_rows()
    {
        await PutAsync(NewPatient("u1", new Identifier(Mrn, "u1-old")));
        await PutAsync(NewPatient("u2", new Identifier(Mrn, "u2-old")));
        var rids = (await FindAsync("Patient", $"identifier={Mrn}|u1-old,{Mrn}|u2-old")).ToDictionary(m => m.Id, m => m.Rid);

        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            foreach (var (id, value, version) in new[] { ("u1", "u1-new", 2), ("u3", "u3-first", 1), ("u2", "u2-new", 2), ("u3", "u3-second", 2), ("u1", "u1-last", 3) })
            {
                var (row, index) = _writer.Prepare(NewPatient(id, new Identifier(Mrn, value)), id, version, "PUT");
                await session.WriteAsync(row, index, Ct);
            }

            var seen = await session.FindAsync("Patient", Criteria("Patient", $"identifier={Mrn}|u1-last,{Mrn}|u2-new,{Mrn}|u3-second"), 10, Ct);
            Assert.Equal(["u1/3", "u2/2", "u3/2"], seen.Select(m => $"{m.Id}/{m.Current!.VersionId}").Order(StringComparer.Ordinal));
            await session.CommitAsync(Ct);
        }

        Assert.Empty(await FindAsync("Patient", $"identifier={Mrn}|u1-old,{Mrn}|u1-new,{Mrn}|u2-old,{Mrn}|u3-first"));
        var found = await FindAsync("Patient", $"identifier={Mrn}|u1-last,{Mrn}|u2-new,{Mrn}|u3-second");
        Assert.Equal(["u1", "u2", "u3"], found.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.Equal((rids["u1"], rids["u2"]), (found.Single(m => m.Id == "u1").Rid, found.Single(m => m.Id == "u2").Rid));
        var versions = new List<int>();
        foreach (var id in new[] { "u1", "u2", "u3" })
        {
            versions.Add((await Store.ReadAsync("Patient", id, Ct))!.VersionId);
        }

        Assert.Equal([3, 2, 2], versions);
    }

    [Fact]
    public async Task A_session_reads_the_current_versions_of_several_resources_at_once_its_own_new_ones_included()
    {
        await PutAsync(NewPatient("m1", new Identifier(Mrn, "m1")));
        await PutAsync(NewPatient("m2", new Identifier(Mrn, "m2")));
        await new DeleteResource(Store, _writer).HandleAsync(new DeleteRequest("Patient", "m2", null, null), Ct);

        await using var session = await Store.BeginWriteAsync(Ct);
        var (row, index) = _writer.Prepare(NewPatient("m3", new Identifier(Mrn, "m3")), "m3", 1, "PUT");
        await session.WriteAsync(row, index, Ct);
        var found = await session.ReadCurrentManyAsync([("Patient", "m1"), ("Patient", "m2"), ("Patient", "m3"), ("Patient", "nobody")], Ct);

        Assert.Equal(["m1/1/live", "m2/2/deleted", "m3/1/live"],
            found.Select(f => $"{f.Id}/{f.VersionId}/{(f.IsDeleted ? "deleted" : "live")}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_session_reads_many_current_versions_at_once_and_none_when_asked_for_none()
    {
        // More keys than the store looks up one by one (PostgreSQL then joins the keys with the table instead).
        for (var i = 0; i < 20; i++)
        {
            await PutAsync(NewPatient($"k{i}", new Identifier(Mrn, $"k{i}")));
        }

        await using var session = await Store.BeginWriteAsync(Ct);
        var keys = Enumerable.Range(0, 24).Select(i => ("Patient", $"k{i}")).ToList();
        var found = await session.ReadCurrentManyAsync(keys, Ct);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"k{i}").Order(StringComparer.Ordinal), found.Select(f => f.Id).Order(StringComparer.Ordinal));
        Assert.Empty(await session.ReadCurrentManyAsync([], Ct));
    }

    [Fact]
    public async Task A_session_runs_several_searches_at_once_and_answers_each_in_order()
    {
        await PutAsync(NewPatient("f1", new Identifier(Mrn, "f1")));
        await PutAsync(NewPatient("f2", new Identifier(Mrn, "f2")));

        await using var session = await Store.BeginWriteAsync(Ct);
        var (row, index) = _writer.Prepare(NewPatient("f3", new Identifier(Mrn, "f3")), "f3", 1, "PUT");
        await session.WriteAsync(row, index, Ct);
        var answers = await session.FindManyAsync(
            [("Patient", Criteria("Patient", $"identifier={Mrn}|f2"), 2), ("Patient", Criteria("Patient", $"identifier={Mrn}|none"), 2),
             ("Patient", Criteria("Patient", $"identifier={Mrn}|f3,{Mrn}|f1"), 2)], [], Ct);

        Assert.Equal(["f2", "", "f1,f3"], answers.Found.Select(a => string.Join(",", a.Select(m => m.Id).Order(StringComparer.Ordinal))));
    }

    [Fact]
    public async Task A_session_search_reads_each_match_current_version_and_reads_resources_by_id_in_the_same_call()
    {
        await PutAsync(NewPatient("k1", new Identifier(Mrn, "k1")));
        await PutAsync(NewPatient("k1", new Identifier(Mrn, "k1"), new Identifier(Mrn, "k1-b")));
        await PutAsync(NewPatient("k2", new Identifier(Mrn, "k2")));

        await using var session = await Store.BeginWriteAsync(Ct);
        var (row, index) = _writer.Prepare(NewPatient("k3", new Identifier(Mrn, "k3")), "k3", 1, "PUT");
        await session.WriteAsync(row, index, Ct);
        var answers = await session.FindManyAsync([("Patient", Criteria("Patient", $"identifier={Mrn}|k1-b,{Mrn}|k3"), 2)],
            [("Patient", "k2"), ("Patient", "absent"), ("Patient", "k3")], Ct);
        var single = await session.FindAsync("Patient", Criteria("Patient", $"identifier={Mrn}|k2"), 2, Ct);

        // The current versions, the session's own new resource included.
        Assert.Equal(["k1/2", "k3/1"], answers.Found[0].Select(m => $"{m.Current!.Id}/{m.Current.VersionId}"));
        Assert.All(answers.Found[0], m => Assert.Equal(m.Id, ((Patient)Serializers.ParseStored(m.Current!.Json)).Id));
        Assert.Equal(["k2/1", "k3/1"], answers.Current.Select(c => $"{c.Id}/{c.VersionId}").Order(StringComparer.Ordinal));
        Assert.Equal("k2/1", $"{single.Single().Current!.Id}/{single.Single().Current!.VersionId}");
    }

    [Fact]
    public async Task A_session_answers_many_searches_of_different_shapes_each_in_order()
    {
        for (var i = 0; i < 10; i++)
        {
            await PutAsync(NewPatient($"h{i}", new Identifier(Mrn, $"h{i}")));
        }

        // Nineteen searches: by identifier (found or not) and by id alone, which the store asks in another shape.
        var searches = Enumerable.Range(0, 19).Select(i => (Query: (i % 3) switch
        {
            0 => $"identifier={Mrn}|h{i % 10}",
            1 => $"identifier={Mrn}|none{i}",
            _ => $"_id=h{i % 10}",
        }, Expected: i % 3 == 1 ? "" : $"h{i % 10}")).ToList();

        await using var session = await Store.BeginWriteAsync(Ct);
        var answers = await session.FindManyAsync([.. searches.Select(s => ("Patient", Criteria("Patient", s.Query), 2))], [], Ct);

        Assert.Equal(searches.Select(s => s.Expected), answers.Found.Select(a => string.Join(",", a.Select(m => m.Id))));
    }

    [Fact]
    public async Task A_session_runs_several_searches_at_once_and_answers_each_in_order_with_its_limit()
    {
        await PutAsync(NewPatient("g1", new Identifier(Mrn, "g1")));
        await PutAsync(NewPatient("g2", new Identifier(Mrn, "g2")));
        await PutAsync(NewPatient("g3", new Identifier(Mrn, "g3")));
        await new DeleteResource(Store, _writer).HandleAsync(new DeleteRequest("Patient", "g3", null, null), Ct);

        await using var session = await Store.BeginWriteAsync(Ct);
        var answers = await session.FindManyAsync(
            [("Patient", Criteria("Patient", $"identifier={Mrn}|g2"), 2), ("Patient", Criteria("Patient", $"identifier={Mrn}|g3"), 2),
             ("Patient", Criteria("Patient", $"identifier={Mrn}|g1,{Mrn}|g2"), 1), ("Patient", Criteria("Patient", $"identifier={Mrn}|g2,{Mrn}|g1"), 5)], [], Ct);

        Assert.Equal(["g2", "", "g1", "g1,g2"], answers.Found.Select(a => string.Join(",", a.Select(m => m.Id))));
    }

    [Fact]
    public async Task LastUpdated_is_searched_on_the_time_of_the_current_version_with_every_prefix()
    {
        var first = await PutAsync(NewPatient("u1", new Identifier(Mrn, "u1")));
        await Task.Delay(5, Ct);
        var second = await PutAsync(NewPatient("u2", new Identifier(Mrn, "u2")));
        Assert.True(second.LastUpdated > first.LastUpdated);
        static string At(DateTimeOffset t) => Uri.EscapeDataString(t.ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture));
        async Task<string> IdsAsync(string lastUpdated) =>
            string.Join(",", (await FindIdsAsync("Patient", $"identifier={Mrn}|u1,{Mrn}|u2&{lastUpdated}")).Order(StringComparer.Ordinal));

        Assert.Equal("u1", await IdsAsync("_lastUpdated=" + At(first.LastUpdated)));
        Assert.Equal("u2", await IdsAsync("_lastUpdated=ne" + At(first.LastUpdated)));
        Assert.Equal("u2", await IdsAsync("_lastUpdated=gt" + At(first.LastUpdated)));
        Assert.Equal("u2", await IdsAsync("_lastUpdated=sa" + At(first.LastUpdated)));
        Assert.Equal("u1,u2", await IdsAsync("_lastUpdated=ge" + At(first.LastUpdated)));
        Assert.Equal("u1", await IdsAsync("_lastUpdated=lt" + At(second.LastUpdated)));
        Assert.Equal("u1", await IdsAsync("_lastUpdated=eb" + At(second.LastUpdated)));
        Assert.Equal("u1,u2", await IdsAsync("_lastUpdated=le" + At(second.LastUpdated)));
        Assert.Equal("u1,u2", await IdsAsync($"_lastUpdated={first.LastUpdated.Year}"));
        Assert.Equal("", await IdsAsync($"_lastUpdated=lt{first.LastUpdated.Year}"));
        Assert.Equal("u1,u2", await IdsAsync("_lastUpdated:missing=false"));
        Assert.Equal("", await IdsAsync("_lastUpdated:missing=true"));
        // An update moves the resource to its new version's time.
        var updated = await PutAsync(NewPatient("u1", new Identifier(Mrn, "u1"), new Identifier(Mrn, "u1-again")));
        Assert.Equal("u1", await IdsAsync("_lastUpdated=ge" + At(updated.LastUpdated)));
        Assert.Equal("u1,u2", await IdsAsync("_lastUpdated=gt" + At(first.LastUpdated)));
    }

    [Fact]
    public async Task Deleting_writes_a_deletion_version_and_read_reports_the_resource_deleted()
    {
        var created = await PutAsync(NewPatient("p1", new Identifier(Mrn, "1")));

        var outcome = await new DeleteResource(Store, _writer).HandleAsync(new DeleteRequest("Patient", "p1", null, null), Ct);

        Assert.Equal(WriteStatus.Deleted, outcome.Status);
        var current = await Store.ReadAsync("Patient", "p1", Ct);
        Assert.NotNull(current);
        Assert.True(current.IsDeleted);
        Assert.Equal(2, current.VersionId);
        Assert.Empty(current.Json);
        var deletion = await Store.ReadVersionAsync("Patient", "p1", 2, Ct);
        Assert.True(deletion!.IsDeleted);
        Assert.Equal("DELETE", deletion.Method);
        Assert.Equal(created.Json, (await Store.ReadVersionAsync("Patient", "p1", 1, Ct))!.Json);
        var history = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 10, null), Ct);
        Assert.Equal([2, 1], history.Select(h => h.Resource.VersionId));
        Assert.Equal([true, false], history.Select(h => h.Resource.IsDeleted));
    }

    [Fact]
    public async Task A_deleted_resource_written_again_continues_its_version_numbers_and_is_found_again()
    {
        await PutAsync(NewPatient("p1", new Identifier(Mrn, "1")));
        await DeleteAsync("Patient", "p1");

        var outcome = await new UpdateResource(Store, _writer).HandleAsync(
            new UpdateRequest("Patient", "p1", null, NewPatient("p1", new Identifier(Mrn, "1")), null), Ct);

        Assert.Equal(WriteStatus.Created, outcome.Status);
        Assert.Equal(3, outcome.Resource!.VersionId);
        Assert.False((await Store.ReadAsync("Patient", "p1", Ct))!.IsDeleted);
        Assert.Equal(["p1"], await FindIdsAsync("Patient", $"identifier={Mrn}|1"));
    }

    // ---- history ----

    [Fact]
    public async Task Instance_history_lists_the_versions_of_one_resource_newest_first()
    {
        await PutAsync(NewPatient("p1"));
        await PutAsync(NewPatient("other"));
        await PutAsync(Revised(NewPatient("p1"), 2));
        await DeleteAsync("Patient", "p1");

        var history = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 10, null), Ct);

        Assert.Equal([3, 2, 1], history.Select(h => h.Resource.VersionId));
        Assert.All(history, h => Assert.Equal("p1", h.Resource.Id));
        Assert.Equal(["DELETE", "PUT", "PUT"], history.Select(h => h.Resource.Method));
        Assert.Equal(history.Select(h => h.Key).OrderDescending(), history.Select(h => h.Key));
    }

    [Fact]
    public async Task Type_history_lists_only_that_type_and_system_history_every_type()
    {
        await PutAsync(NewPatient("p1"));
        await PutAsync(NewOrganization("org1"));
        await PutAsync(NewPatient("p2"));
        await PutAsync(Revised(NewPatient("p1"), 2));

        var patients = await Store.ReadHistoryAsync(new HistoryQuery("Patient", null, null, 10, null), Ct);
        var everything = await Store.ReadHistoryAsync(new HistoryQuery(null, null, null, 10, null), Ct);

        Assert.Equal(["p1/2", "p2/1", "p1/1"], patients.Select(Label));
        Assert.Equal(["Patient/p1/2", "Patient/p2/1", "Organization/org1/1", "Patient/p1/1"],
            everything.Select(h => $"{h.Resource.ResourceType}/{Label(h)}"));
    }

    [Fact]
    public async Task History_since_leaves_out_versions_written_before_the_instant()
    {
        await PutAsync(NewPatient("p1"));
        await PutAsync(NewOrganization("org1"));
        // lastUpdated has millisecond precision: keep the versions apart by more than that.
        await Task.Delay(20);
        var second = await PutAsync(Revised(NewPatient("p1"), 2));
        await PutAsync(Revised(NewPatient("p1"), 3));

        var instance = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", second.LastUpdated, 10, null), Ct);
        var system = await Store.ReadHistoryAsync(new HistoryQuery(null, null, second.LastUpdated, 10, null), Ct);
        var future = await Store.ReadHistoryAsync(new HistoryQuery(null, null, DateTimeOffset.UtcNow.AddMinutes(1), 10, null), Ct);

        Assert.Equal(["p1/3", "p1/2"], instance.Select(Label));
        Assert.Equal(["p1/3", "p1/2"], system.Select(Label));
        Assert.Empty(future);
    }

    [Fact]
    public async Task History_pages_hold_count_entries_and_continue_before_the_last_key()
    {
        for (var i = 0; i < 5; i++)
        {
            await PutAsync(Revised(NewPatient("p1"), i + 1));
        }

        var first = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 2, null), Ct);
        var second = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 2, first[^1].Key), Ct);
        var third = await Store.ReadHistoryAsync(new HistoryQuery("Patient", null, null, 2, second[^1].Key), Ct);

        Assert.Equal([5, 4], first.Select(h => h.Resource.VersionId));
        Assert.Equal([3, 2], second.Select(h => h.Resource.VersionId));
        Assert.Equal([1], third.Select(h => h.Resource.VersionId));
    }

    [Fact]
    public async Task An_update_that_changes_nothing_writes_no_version_and_answers_the_stored_one()
    {
        var first = await PutAsync(NewPatient("p1"));
        var again = await PutAsync(NewPatient("p1"));
        var changed = await PutAsync(Revised(NewPatient("p1"), 2));
        await DeleteAsync("Patient", "p1");
        var restored = await PutAsync(Revised(NewPatient("p1"), 2));

        Assert.Equal((1, first.LastUpdated), (again.VersionId, again.LastUpdated));
        Assert.Equal(first.Json, again.Json);
        Assert.Equal(2, changed.VersionId);
        Assert.Equal(4, restored.VersionId);
        var history = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 10, null), Ct);
        Assert.Equal([4, 3, 2, 1], history.Select(h => h.Resource.VersionId));
    }

    [Fact]
    public async Task Only_the_stored_versionId_and_lastUpdated_are_ignored_when_an_update_is_compared()
    {
        Patient Quoting(string? source)
        {
            var patient = NewPatient("quoted");
            patient.Name[0].Text = "\"meta\":{\"versionId\":\"9\",\"lastUpdated\":\"x\"}";
            patient.Meta = source is null ? null : new Meta { Source = source };
            return patient;
        }

        var first = await PutAsync(Quoting(null));
        var same = await PutAsync(Quoting(null));
        var sourced = await PutAsync(Quoting("urn:interophub:test"));

        Assert.Equal((1, 1), (first.VersionId, same.VersionId));
        Assert.Equal(2, sourced.VersionId);
    }

    // ---- search ----

    [Fact]
    public async Task Find_by_id_matches_any_of_the_listed_ids()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["a", "d"], await FindIdsAsync("Patient", "_id=d,a,unknown"));
        Assert.Empty(await FindIdsAsync("Patient", "_id=unknown"));
    }

    [Fact]
    public async Task Find_by_identifier_with_system_and_code_matches_only_that_system()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["a"], await FindIdsAsync("Patient", $"identifier={IdCard}|100"));
    }

    [Fact]
    public async Task Find_by_identifier_with_an_empty_system_matches_only_identifiers_without_a_system()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["c"], await FindIdsAsync("Patient", "identifier=|100"));
    }

    [Fact]
    public async Task Find_by_identifier_code_alone_matches_it_in_every_system()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["a", "b", "c"], await FindIdsAsync("Patient", "identifier=100"));
    }

    [Fact]
    public async Task Find_with_comma_separated_values_matches_any_of_them()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["a", "d"], await FindIdsAsync("Patient", $"identifier={IdCard}|100,{IdCard}|200"));
        Assert.Equal(["b", "c", "d"], await FindIdsAsync("Patient", $"identifier={Mrn}|100,|100,200"));
    }

    [Fact]
    public async Task Find_with_several_parameters_requires_all_of_them()
    {
        await SeedIdentifiedPatientsAsync();

        Assert.Equal(["b"], await FindIdsAsync("Patient", "_id=b,d&identifier=100"));
        Assert.Equal(["a"], await FindIdsAsync("Patient", $"identifier=100&identifier={IdCard}|100,{IdCard}|200"));
        Assert.Empty(await FindIdsAsync("Patient", $"_id=c&identifier={IdCard}|100"));
    }

    [Fact]
    public async Task Find_pages_in_row_id_order_after_the_given_row_id()
    {
        await SeedIdentifiedPatientsAsync();

        var first = await Store.FindAsync("Patient", Criteria("Patient", "identifier=100"), null, 2, Ct);
        var second = await Store.FindAsync("Patient", Criteria("Patient", "identifier=100"), first[^1].Rid, 2, Ct);
        var beyond = await Store.FindAsync("Patient", Criteria("Patient", "identifier=100"), second[^1].Rid, 2, Ct);

        Assert.Equal(["a", "b"], first.Select(m => m.Id));
        Assert.Equal(["c"], second.Select(m => m.Id));
        Assert.Empty(beyond);
        Assert.True(first[0].Rid < first[1].Rid && first[1].Rid < second[0].Rid);
    }

    [Fact]
    public async Task Find_leaves_out_deleted_resources()
    {
        await SeedIdentifiedPatientsAsync();

        await DeleteAsync("Patient", "b");

        Assert.Equal(["a", "c"], await FindIdsAsync("Patient", "identifier=100"));
        Assert.Empty(await FindIdsAsync("Patient", "_id=b"));
    }

    [Fact]
    public async Task Find_searches_only_the_requested_resource_type()
    {
        await SeedIdentifiedPatientsAsync();
        await PutAsync(NewOrganization("a", new Identifier(IdCard, "100")));

        Assert.Equal(["a"], await FindIdsAsync("Organization", "identifier=100"));
        Assert.Equal(["a"], await FindIdsAsync("Patient", $"identifier={IdCard}|100"));
        Assert.Empty(await FindIdsAsync("Organization", "_id=b"));
    }

    [Fact]
    public async Task Read_many_returns_live_resources_in_the_order_asked()
    {
        var a = await PutAsync(NewPatient("a"));
        await PutAsync(NewPatient("b"));
        var c = await PutAsync(NewPatient("c"));
        await PutAsync(NewOrganization("d"));
        await DeleteAsync("Patient", "b");

        var resources = await Store.ReadManyAsync("Patient", ["c", "unknown", "b", "a", "d"], Ct);

        Assert.Equal(["c", "a"], resources.Select(r => r.Id));
        Assert.Equal(c.Json, resources[0].Json);
        Assert.Equal(a.Json, resources[1].Json);
        Assert.Empty(await Store.ReadManyAsync("Patient", [], Ct));
    }

    // ---- transactions ----

    [Fact]
    public async Task A_session_disposed_without_commit_leaves_no_trace()
    {
        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            await _writer.SaveAsync(session, NewPatient(null, new Identifier(Mrn, "rolled-back")), "p1", null, "PUT", Ct);
        }

        Assert.Null(await Store.ReadAsync("Patient", "p1", Ct));
        Assert.Null(await Store.ReadVersionAsync("Patient", "p1", 1, Ct));
        Assert.Empty(await Store.ReadHistoryAsync(new HistoryQuery(null, null, null, 10, null), Ct));
        Assert.Empty(await FindIdsAsync("Patient", $"identifier={Mrn}|rolled-back"));
        Assert.Empty(await FindIdsAsync("Patient", "_id=p1"));

        // Nothing half-written stands in the way of the same write done properly.
        var saved = await PutAsync(NewPatient("p1", new Identifier(Mrn, "rolled-back")));
        Assert.Equal(1, saved.VersionId);
        Assert.Equal(["p1"], await FindIdsAsync("Patient", $"identifier={Mrn}|rolled-back"));
    }

    [Fact]
    public async Task A_write_is_invisible_to_readers_until_its_session_commits()
    {
        await using var session = await Store.BeginWriteAsync(Ct);
        await _writer.SaveAsync(session, NewPatient(null, new Identifier(Mrn, "1")), "p1", null, "PUT", Ct);
        Assert.NotNull(await session.ReadCurrentAsync("Patient", "p1", Ct));
        Assert.Single(await session.FindAsync("Patient", Criteria("Patient", $"identifier={Mrn}|1"), 10, Ct));

        Assert.Null(await Store.ReadAsync("Patient", "p1", Ct));
        Assert.Empty(await FindIdsAsync("Patient", $"identifier={Mrn}|1"));

        await session.CommitAsync(Ct);

        Assert.NotNull(await Store.ReadAsync("Patient", "p1", Ct));
        Assert.Equal(["p1"], await FindIdsAsync("Patient", $"identifier={Mrn}|1"));
    }

    [Fact]
    public async Task Migrating_again_is_harmless_and_a_reopened_store_sees_the_data()
    {
        var patient = await PutAsync(NewPatient("p1", new Identifier(IdCard, "530000199001011234")));
        await PutAsync(NewOrganization("org1"));
        await DeleteAsync("Organization", "org1");

        await Store.MigrateAsync(Ct);
        var reopened = Track(OpenStore(Location));
        await reopened.MigrateAsync(Ct);

        Assert.Equal(patient.Json, (await reopened.ReadAsync("Patient", "p1", Ct))!.Json);
        Assert.True((await reopened.ReadAsync("Organization", "org1", Ct))!.IsDeleted);
        Assert.Equal(3, (await reopened.ReadHistoryAsync(new HistoryQuery(null, null, null, 10, null), Ct)).Count);
        Assert.Single(await reopened.FindAsync("Patient", Criteria("Patient", "identifier=530000199001011234"), null, 10, Ct));
        var next = await new UpdateResource(reopened, _writer).HandleAsync(new UpdateRequest("Patient", "p1", null, NewPatient("p1"), [1]), Ct);
        Assert.Equal(2, next.Resource!.VersionId);
    }

    // ---- concurrency: the handlers' lock + find + write pattern ----

    [Fact]
    public async Task Parallel_conditional_creates_with_the_same_criteria_create_exactly_one_resource()
    {
        var criteria = Criteria("Patient", $"identifier={IdCard}|530000199001011234");
        var create = new CreateResource(Store, _writer);

        var outcomes = await InParallelAsync(8, _ =>
            create.HandleAsync(new CreateRequest("Patient", NewPatient(null, new Identifier(IdCard, "530000199001011234")), criteria), Ct));

        Assert.Single(outcomes, o => o.Status == WriteStatus.Created);
        Assert.Equal(7, outcomes.Count(o => o.Status == WriteStatus.Existing));
        Assert.Single(outcomes.Select(o => o.Resource!.Id).Distinct());
        Assert.Single(await Store.FindAsync("Patient", criteria, null, 10, Ct));
        Assert.Single(await Store.ReadHistoryAsync(new HistoryQuery("Patient", null, null, 10, null), Ct));
    }

    [Fact]
    public async Task Parallel_conditional_updates_with_the_same_criteria_create_one_resource_and_then_update_it()
    {
        var criteria = Criteria("Patient", $"identifier={Mrn}|42");
        var update = new UpdateResource(Store, _writer);

        var outcomes = await InParallelAsync(8, i =>
            update.HandleAsync(new UpdateRequest("Patient", null, criteria, Revised(NewPatient(null, new Identifier(Mrn, "42")), i + 1), null), Ct));

        Assert.Single(outcomes, o => o.Status == WriteStatus.Created);
        Assert.Equal(7, outcomes.Count(o => o.Status == WriteStatus.Updated));
        var match = Assert.Single(await Store.FindAsync("Patient", criteria, null, 10, Ct));
        Assert.Equal(8, (await Store.ReadAsync("Patient", match.Id, Ct))!.VersionId);
    }

    [Fact]
    public async Task Parallel_updates_with_the_same_if_match_let_exactly_one_succeed()
    {
        await PutAsync(NewPatient("p1"));
        var update = new UpdateResource(Store, _writer);

        var results = await InParallelAsync<object>(8, async i =>
        {
            var patient = NewPatient("p1");
            patient.BirthDate = $"1990-01-0{i + 1}";
            try
            {
                return await update.HandleAsync(new UpdateRequest("Patient", "p1", null, patient, IfMatch: [1]), Ct);
            }
            catch (PreconditionFailedException e)
            {
                return e;
            }
        });

        var success = Assert.Single(results.OfType<WriteOutcome>());
        Assert.Equal(WriteStatus.Updated, success.Status);
        Assert.Equal(7, results.OfType<PreconditionFailedException>().Count());
        Assert.Equal(2, (await Store.ReadAsync("Patient", "p1", Ct))!.VersionId);
        Assert.Equal(2, (await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 10, null), Ct)).Count);
    }

    [Fact]
    public async Task Parallel_updates_of_one_resource_each_get_their_own_version()
    {
        await PutAsync(NewPatient("p1"));
        var update = new UpdateResource(Store, _writer);

        var outcomes = await InParallelAsync(8, i => update.HandleAsync(new UpdateRequest("Patient", "p1", null, Revised(NewPatient("p1"), i + 2), null), Ct));

        Assert.Equal(Enumerable.Range(2, 8), outcomes.Select(o => o.Resource!.VersionId).Order());
        Assert.Equal(9, (await Store.ReadAsync("Patient", "p1", Ct))!.VersionId);
        var history = await Store.ReadHistoryAsync(new HistoryQuery("Patient", "p1", null, 20, null), Ct);
        Assert.Equal(Enumerable.Range(1, 9).Reverse(), history.Select(h => h.Resource.VersionId));
    }

    // ---- helpers ----

    protected IResourceStore Track(IResourceStore store)
    {
        _stores.Add(store);
        return store;
    }

    /// <summary>Runs <paramref name="count"/> calls released together, each on its own thread-pool task.</summary>
    private static async Task<T[]> InParallelAsync<T>(int count, Func<int, Task<T>> action)
    {
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return await action(i);
        })).ToList();
        start.SetResult();
        return await Task.WhenAll(tasks);
    }

    /// <summary>Patients a..d, written in that order: a IdCard|100, b Mrn|100, c |100 (no system), d IdCard|200.</summary>
    private async Task SeedIdentifiedPatientsAsync()
    {
        await PutAsync(NewPatient("a", new Identifier(IdCard, "100")));
        await PutAsync(NewPatient("b", new Identifier(Mrn, "100")));
        await PutAsync(NewPatient("c", new Identifier { Value = "100" }));
        await PutAsync(NewPatient("d", new Identifier(IdCard, "200")));
    }

    private async Task<StoredResource> PutAsync(Resource resource)
    {
        var outcome = await new UpdateResource(Store, _writer).HandleAsync(new UpdateRequest(resource.TypeName, resource.Id, null, resource, null), Ct);
        return outcome.Resource!;
    }

    private async Task DeleteAsync(string resourceType, string id)
    {
        var outcome = await new DeleteResource(Store, _writer).HandleAsync(new DeleteRequest(resourceType, id, null, null), Ct);
        Assert.Equal(WriteStatus.Deleted, outcome.Status);
    }

    private async Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, string query) =>
        await Store.FindAsync(resourceType, Criteria(resourceType, query), null, 100, Ct);

    private async Task<IReadOnlyList<string>> FindIdsAsync(string resourceType, string query) =>
        (await FindAsync(resourceType, query)).Select(m => m.Id).ToList();

    protected static SearchCriteria Criteria(string resourceType, string query) => SearchCriteria.ParseQueryString(resourceType, query);

    private static string Label(HistoryEntry entry) => $"{entry.Resource.Id}/{entry.Resource.VersionId}";

    private static Patient NewPatient(string? id, params Identifier[] identifiers) => new()
    {
        Id = id,
        Identifier = [.. identifiers],
        Name = [new HumanName { Text = "张三", Family = "张", Given = ["三"] }],
        Gender = AdministrativeGender.Male,
        Address = [new Address { Text = "云南省清溪县城关镇", City = "清溪县", State = "云南省" }],
    };

    /// <summary>The patient with a birth date of its own, so that an update with it changes the stored resource.</summary>
    private static Patient Revised(Patient patient, int revision)
    {
        patient.BirthDate = $"1990-01-{revision:D2}";
        return patient;
    }

    private static Organization NewOrganization(string id, params Identifier[] identifiers) => new()
    {
        Id = id,
        Identifier = [.. identifiers],
        Name = "清溪县人民医院",
    };
}
