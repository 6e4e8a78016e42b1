using EdgeTune.Federated.Storage;

namespace EdgeTune.Tests.Federated.Storage;

/// <summary>What every <see cref="IFlStateStore"/> must do, run against each implementation (SQLite, PostgreSQL).
/// <see cref="Open"/> opens the same state again after the previous store was disposed.</summary>
public abstract class StateStoreContract : IDisposable
{
    protected readonly string Dir = Directory.CreateTempSubdirectory("edgetune-flstore-").FullName;

    protected abstract IFlStateStore Open();

    public virtual void Dispose() => Directory.Delete(Dir, recursive: true);

    protected static StoredUpload Upload(string id, string client, int round = 1) =>
        new(id, client, round, 0, 8, 3, "f32", new byte[32], "{}", "receiving", null);

    [SkippableFact]
    public void AcceptedUpdatesSurviveReopeningAndAClientCountsOncePerRound()
    {
        using (var store = Open())
        {
            store.AddRound(new StoredRound(1, true, 0, 2, FlStateStore.Now(), FlStateStore.Now() + 60, null, null));
            store.AddUpload(Upload("upload-aaaa", "c1"));
            store.AddUpload(Upload("upload-bbbb", "c1"));
            Assert.True(store.Accept(store.GetUpload("upload-aaaa")!, [1, 2, 3, 4, 5, 6, 7, 8]));
            Assert.False(store.Accept(store.GetUpload("upload-bbbb")!, [9, 9, 9, 9, 9, 9, 9, 9])); // second update of c1 in round 1
            store.Reject("upload-bbbb", "c1", 1, "already contributed");
        }
        using (var store = Open())
        {
            Assert.Equal(1, store.AcceptedCount(1));
            var u = Assert.Single(store.Updates(1));
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, u.Payload);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, store.GetUpdate("upload-aaaa")!.Payload);
            Assert.Equal(["upload-aaaa"], store.UpdateIds(1));
            Assert.True(store.HasUpdate(1, "c1"));
            Assert.False(store.HasUpdate(1, "c2"));
            Assert.Equal("accepted", store.GetUpload("upload-aaaa")!.Status);
            Assert.Equal("rejected", store.GetUpload("upload-bbbb")!.Status);
            Assert.Equal("already contributed", Assert.Single(store.Rejections(1)).Reason);
        }
    }

    [SkippableFact]
    public void ARejectionNeverUndoesAnAcceptedUpload()
    {
        using var store = Open();
        store.AddRound(new StoredRound(1, true, 0, 2, FlStateStore.Now(), FlStateStore.Now() + 60, null, null));
        store.AddUpload(Upload("upload-aaaa", "c1"));
        Assert.True(store.Accept(store.GetUpload("upload-aaaa")!, [1, 2, 3, 4, 5, 6, 7, 8]));
        store.Reject("upload-aaaa", "c1", 1, "late");
        store.Reject(null, "c9", null, "bad token");
        Assert.Equal("accepted", store.GetUpload("upload-aaaa")!.Status);
        Assert.Equal([("upload-aaaa", "c1", (int?)1, "late"), (null, "c9", null, "bad token")], store.Rejections());
        Assert.Single(store.Rejections(1));
    }

    [SkippableFact]
    public void GlobalsAndRoundsCompleteInOneStepAndReopen()
    {
        using (var store = Open())
        {
            Assert.Null(store.LatestGlobalVersion());
            store.InitGlobal("{\"layout\":1}", [0, 0, 0, 0]);
            store.AddRound(new StoredRound(1, true, 0, 3, 10, 70, null, null));
            store.ExtendRound(1, 100, 2);
            store.CompleteRound(1, 1, [1, 2, 3, 4], "{\"Accepted\":2}", [7, 7]);
            store.AddRound(new StoredRound(2, true, 1, 3, 110, 170, null, null));
            store.CompleteRound(2, 1, vector: null, "{\"failed\":true}", strategyState: null); // a failed round keeps version 1
        }
        using (var store = Open())
        {
            Assert.Equal("{\"layout\":1}", store.GetMetaString("layout"));
            Assert.Equal(new byte[] { 7, 7 }, store.GetMeta("strategy_state"));
            Assert.Equal(1, store.LatestGlobalVersion());
            Assert.Equal(new byte[] { 1, 2, 3, 4 }, store.GetGlobal(1));
            Assert.Null(store.GetGlobal(2));
            Assert.Equal(new StoredRound(1, false, 0, 2, 10, 100, 1, "{\"Accepted\":2}"), store.GetRound(1));
            Assert.Equal(2, store.LatestRound()!.Round);
            Assert.False(store.LatestRound()!.Open);
            Assert.Equal([1, 2], store.Rounds().Select(r => r.Round));
            store.SetRoundMetrics(1, "{\"loss\":0.5}");
            Assert.Equal("{\"loss\":0.5}", store.GetRound(1)!.MetricsJson);
        }
    }

    [SkippableFact]
    public void AssignmentsClientsEvaluationsAndTheRelay()
    {
        using var store = Open();
        store.AddClient(new StoredClient("c1", "phone", [1], [2, 3], 40));
        var c1 = store.GetClient("c1")!;
        Assert.Equal(("c1", "phone", 40L), (c1.Id, c1.Name, c1.NumExamples));
        Assert.Equal(new byte[] { 1 }, c1.Salt);
        Assert.Equal(new byte[] { 2, 3 }, c1.CredentialHash);
        Assert.Null(store.GetClient("c2"));
        Assert.Equal(1, store.ClientCount());
        store.AddRound(new StoredRound(1, true, 0, 2, FlStateStore.Now(), FlStateStore.Now() + 60, null, null));
        Assert.True(store.Assign(1, "c1"));
        Assert.False(store.Assign(1, "c1"));
        Assert.True(store.Assign(1, "c2"));
        Assert.True(store.IsAssigned(1, "c2"));
        Assert.False(store.IsAssigned(2, "c2"));
        store.AddUpload(Upload("upload-c1c1", "c1"));
        Assert.True(store.Accept(store.GetUpload("upload-c1c1")!, [1, 2, 3, 4, 5, 6, 7, 8]));
        Assert.Equal(1, store.DropUndelivered(1)); // c2 delivered nothing
        Assert.Equal(["c1"], store.Assignments(1).Select(a => a.ClientId));

        store.AddEval(1, "c1", 0, 5, new Dictionary<string, double> { ["loss"] = 1.5 });
        var eval = Assert.Single(store.Evals(0));
        Assert.Equal(5, eval.NumExamples);
        Assert.Equal(1.5, eval.Metrics["loss"]);
        Assert.Empty(store.Evals(1));

        store.AddSecAgg(1, 0, "c1", "*", [1]);
        store.AddSecAgg(1, 0, "c2", "c1", [2]);
        store.AddSecAgg(1, 0, "c1", "c2", [3]);
        store.AddSecAgg(1, 1, "c2", "c1", [4]);
        Assert.Equal([("c1", "*", "01"), ("c2", "c1", "02")], store.SecAggFor(1, 0, "c1").Select(m => (m.From, m.To, Convert.ToHexString(m.Payload))));
        Assert.Equal([[1], [3]], store.SecAggFor(1, 0, "c2").Select(m => m.Payload));
    }
}
