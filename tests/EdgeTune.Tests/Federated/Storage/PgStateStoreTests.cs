using EdgeTune.Federated.Storage;

namespace EdgeTune.Tests.Federated.Storage;

/// <summary>The PostgreSQL store (needs <c>EDGETUNE_TEST_POSTGRES</c>): the shared contract, one server per task at a time,
/// and a clear error when the database cannot be reached.</summary>
public sealed class PgStateStoreTests : StateStoreContract
{
    private readonly string _task = TestPostgres.UniqueName("store");

    protected override IFlStateStore Open() => new PgStateStore(TestPostgres.Require(), _task, Dir);

    public override void Dispose()
    {
        TestPostgres.DropTask(_task);
        base.Dispose();
    }

    [SkippableFact]
    public void OnlyOneServerHoldsATasksStateAtATime()
    {
        var first = Open();
        var e = Assert.Throws<TimeoutException>(() => new PgStateStore(TestPostgres.Require(), _task, Dir, lockWait: TimeSpan.FromMilliseconds(300)));
        Assert.Contains("held by another server", e.Message);
        string otherTask = TestPostgres.UniqueName("other");
        try { new PgStateStore(TestPostgres.Require(), otherTask, Dir, lockWait: TimeSpan.Zero).Dispose(); } // another task is free
        finally { TestPostgres.DropTask(otherTask); }
        first.Dispose();
        using var second = new PgStateStore(TestPostgres.Require(), _task, Dir, lockWait: TimeSpan.FromSeconds(5));
        Assert.Null(second.LatestRound());
    }

    [Fact]
    public void AnUnreachableDatabaseIsNamedInTheError()
    {
        int port = FreePort(); // nothing listens there
        var e = Assert.Throws<FlDatabaseUnreachableException>(() => new PgStateStore($"Host=127.0.0.1;Port={port};Username=nobody;Database=nothing;Timeout=3", "x", Dir));
        Assert.Contains($"cannot reach PostgreSQL at 127.0.0.1:{port} (database 'nothing')", e.Message);
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}
