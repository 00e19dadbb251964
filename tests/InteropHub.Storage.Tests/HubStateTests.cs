using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Job_state_is_absent_until_written_then_replaced_and_kept_across_reopening()
    {
        var state = (IHubStateStore)Store;

        var before = await state.ReadStateAsync("recognition-retag", Ct);
        await state.WriteStateAsync("recognition-retag", "3@100", Ct);
        await state.WriteStateAsync("recognition-retag", "4@200", Ct);
        await state.WriteStateAsync("other-job", "x", Ct);
        var reopened = (IHubStateStore)Track(OpenStore(Location));

        Assert.Null(before);
        Assert.Equal("4@200", await reopened.ReadStateAsync("recognition-retag", Ct));
        Assert.Equal("x", await reopened.ReadStateAsync("other-job", Ct));
    }

    [Fact]
    public async Task Values_written_in_a_session_commit_with_it_and_a_rolled_back_session_writes_none()
    {
        var state = (IHubStateStore)Store;
        await state.WriteStateAsync("row:a", "old", Ct);

        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            await session.WriteStatesAsync([new("row:a", "first"), new("row:b", "2"), new("row:a", "new")], Ct);
            await session.CommitAsync(Ct);
        }

        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            await session.WriteStatesAsync([new("row:b", "rolled back"), new("row:c", "rolled back")], Ct);
        }

        var read = await state.ReadStatesAsync(["row:a", "row:b", "row:c", "row:d"], Ct);
        Assert.Equal(new Dictionary<string, string> { ["row:a"] = "new", ["row:b"] = "2" }, read);
        Assert.Empty(await state.ReadStatesAsync([], Ct));
    }

    [Fact]
    public async Task Counters_add_up_under_concurrent_sessions_and_a_rolled_back_add_counts_nothing()
    {
        var state = (IHubStateStore)Store;
        await state.WriteStateAsync("tally:unrelated", "x", Ct);
        await state.WriteStateAsync("tally;next", "not in the prefix", Ct);
        await state.WriteStateAsync("tally", "not in the prefix", Ct);

        await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            await using var session = await Store.BeginWriteAsync(Ct);
            await session.AddToCountsAsync([new("tally:b", 1), new("tally:a", 2), new("tally:b", i)], Ct);
            await session.CommitAsync(Ct);
        }));
        await using (var session = await Store.BeginWriteAsync(Ct))
        {
            await session.AddToCountsAsync([new("tally:a", 100), new("tally:c", 1)], Ct);
        }

        var counted = await ((IHubStateStore)Track(OpenStore(Location))).ReadStatesStartingWithAsync("tally:", Ct);
        Assert.Equal(new Dictionary<string, string> { ["tally:a"] = "16", ["tally:b"] = "36", ["tally:unrelated"] = "x" }, counted);
        Assert.Empty(await state.ReadStatesStartingWithAsync("tally:none", Ct));
    }
}
