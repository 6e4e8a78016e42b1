using System.Net;
using EdgeTune.Federated.Cluster;
using EdgeTune.Federated.Storage;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace EdgeTune.Tests.Federated.Cluster;

/// <summary>The PostgreSQL membership table against Orleans' contract (needs <c>EDGETUNE_TEST_POSTGRES</c>): optimistic
/// concurrency on the table version and on each row, liveness updates that change neither, rows read back as written,
/// and the clean-up of dead silos.</summary>
public sealed class PgMembershipTableTests : IDisposable
{
    private readonly string _cluster = TestPostgres.UniqueName("cluster");
    private readonly List<PgMembershipTable> _tables = [];

    public void Dispose()
    {
        if (_tables.Count > 0) _tables[0].DeleteMembershipTableEntries(_cluster).GetAwaiter().GetResult();
        foreach (var t in _tables) t.Dispose();
    }

    private async Task<PgMembershipTable> Table()
    {
        var t = new PgMembershipTable(new PgDatabase(TestPostgres.Require()), Options.Create(new ClusterOptions { ClusterId = _cluster, ServiceId = "test" }));
        _tables.Add(t);
        await t.InitializeMembershipTable(tryInitTableVersion: true);
        return t;
    }

    private static MembershipEntry Entry(int port, SiloStatus status = SiloStatus.Joining) => new()
    {
        SiloAddress = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 42), Status = status, ProxyPort = port + 1, HostName = "host",
        SiloName = "silo-" + port, RoleName = "role", UpdateZone = 1, FaultZone = 2, SuspectTimes = [],
        StartTime = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), IAmAliveTime = new DateTime(2026, 1, 2, 3, 4, 6, DateTimeKind.Utc),
    };

    [SkippableFact]
    public async Task InsertsAndUpdatesNeedTheVersionAndEtagTheyRead()
    {
        var a = await Table();
        var b = await Table(); // a second silo's view of the same cluster
        var empty = await a.ReadAll();
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        Assert.True(await a.InsertRow(Entry(11111), empty.Version.Next()));
        Assert.False(await b.InsertRow(Entry(11112), empty.Version.Next())); // b read the table before a's insert
        var read = await b.ReadAll();
        Assert.Equal(1, read.Version.Version);
        Assert.False(await b.InsertRow(Entry(11111), read.Version.Next())); // the same silo twice
        Assert.Equal(1, (await b.ReadAll()).Version.Version); // the failed insert changed nothing
        Assert.True(await b.InsertRow(Entry(11112), read.Version.Next()));

        var all = await a.ReadAll();
        Assert.Equal(2, all.Version.Version);
        var (row, etag) = all.Members.Single(m => m.Item1.SiloAddress.Endpoint.Port == 11111);
        Assert.Equal(Entry(11111).ToFullString(), row.ToFullString());

        var suspected = Entry(11111, SiloStatus.Active);
        suspected.SuspectTimes = [Tuple.Create(Entry(11112).SiloAddress, new DateTime(2026, 1, 2, 3, 5, 0, DateTimeKind.Utc))];
        Assert.True(await a.UpdateRow(suspected, etag, all.Version.Next()));
        Assert.False(await b.UpdateRow(Entry(11111, SiloStatus.Dead), etag, (await b.ReadAll()).Version.Next())); // stale row etag
        Assert.False(await b.UpdateRow(Entry(11111, SiloStatus.Dead), (await b.ReadAll()).Members[0].Item2, all.Version.Next())); // stale version

        var one = await b.ReadRow(suspected.SiloAddress);
        Assert.Equal(3, one.Version.Version);
        var (back, etag2) = Assert.Single(one.Members);
        Assert.NotEqual(etag, etag2);
        Assert.Equal(SiloStatus.Active, back.Status);
        Assert.Equal(suspected.SuspectTimes[0], Assert.Single(back.SuspectTimes!));
    }

    [SkippableFact]
    public async Task LivenessChangesNeitherVersionNorEtagAndDeadSilosAreCleanedUp()
    {
        var t = await Table();
        Assert.True(await t.InsertRow(Entry(2001), (await t.ReadAll()).Version.Next()));
        Assert.True(await t.InsertRow(Entry(2002), (await t.ReadAll()).Version.Next()));
        var before = await t.ReadAll();
        var alive = Entry(2001);
        alive.IAmAliveTime = new DateTime(2026, 6, 1, 0, 0, 0, DateTimeKind.Utc);
        await t.UpdateIAmAlive(alive);
        var after = await t.ReadAll();
        Assert.Equal(before.Version, after.Version);
        var row = after.Members.Single(m => m.Item1.SiloAddress.Equals(alive.SiloAddress));
        Assert.Equal(alive.IAmAliveTime, row.Item1.IAmAliveTime);
        Assert.Equal(before.Members.Single(m => m.Item1.SiloAddress.Equals(alive.SiloAddress)).Item2, row.Item2);

        var dead = after.Members.Single(m => m.Item1.SiloAddress.Endpoint.Port == 2002);
        Assert.True(await t.UpdateRow(Entry(2002, SiloStatus.Dead), dead.Item2, after.Version.Next()));
        await t.CleanupDefunctSiloEntries(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)); // older than the dead row: kept
        Assert.Equal(2, (await t.ReadAll()).Members.Count);
        await t.CleanupDefunctSiloEntries(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero)); // the dead one goes, the live one stays
        Assert.Equal(2001, Assert.Single((await t.ReadAll()).Members).Item1.SiloAddress.Endpoint.Port);
    }
}
