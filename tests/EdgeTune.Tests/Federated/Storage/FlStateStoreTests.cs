using EdgeTune.Federated.Storage;

namespace EdgeTune.Tests.Federated.Storage;

/// <summary>The SQLite store: the shared contract, and a round completion left uncommitted.</summary>
public sealed class FlStateStoreTests : StateStoreContract
{
    protected override IFlStateStore Open() => new FlStateStore(Dir);

    [Fact]
    public void RoundCompletionIsAllOrNothing()
    {
        using var store = new FlStateStore(Dir);
        store.AddRound(new StoredRound(1, true, 0, 1, FlStateStore.Now(), FlStateStore.Now() + 60, null, null));
        using (var tx = store.Begin())
        {
            store.AddGlobal(1, 1, [1, 2, 3, 4], tx);
            store.CloseRound(1, 1, "{}", tx);
            // no commit: as if the server died here
        }
        Assert.Null(store.GetGlobal(1));
        Assert.True(store.GetRound(1)!.Open);
    }
}
