using EdgeTune.Federated.Storage;

namespace EdgeTune.Tests.Federated.Storage;

public sealed class FlStateStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-flstore-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static StoredUpload Upload(string id, string client, int round = 1) =>
        new(id, client, round, 0, 8, 3, "f32", new byte[32], "{}", "receiving", null);

    [Fact]
    public void AcceptedUpdatesSurviveReopeningAndAClientCountsOncePerRound()
    {
        using (var store = new FlStateStore(_dir))
        {
            store.AddRound(new StoredRound(1, true, 0, 2, FlStateStore.Now(), FlStateStore.Now() + 60, null, null));
            store.AddUpload(Upload("upload-aaaa", "c1"));
            store.AddUpload(Upload("upload-bbbb", "c1"));
            Assert.True(store.Accept(store.GetUpload("upload-aaaa")!, [1, 2, 3, 4, 5, 6, 7, 8]));
            Assert.False(store.Accept(store.GetUpload("upload-bbbb")!, [9, 9, 9, 9, 9, 9, 9, 9])); // second update of c1 in round 1
            store.Reject("upload-bbbb", "c1", 1, "already contributed");
        }
        using (var store = new FlStateStore(_dir))
        {
            Assert.Equal(1, store.AcceptedCount(1));
            var u = Assert.Single(store.Updates(1));
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, u.Payload);
            Assert.Equal("accepted", store.GetUpload("upload-aaaa")!.Status);
            Assert.Equal("rejected", store.GetUpload("upload-bbbb")!.Status);
            Assert.Equal("already contributed", Assert.Single(store.Rejections(1)).Reason);
        }
    }

    [Fact]
    public void RoundCompletionIsAllOrNothing()
    {
        using var store = new FlStateStore(_dir);
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
