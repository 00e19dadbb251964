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
}
