using System.Globalization;
using EdgeTune.Federated.Storage;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;
using static EdgeTune.Federated.Storage.PgSql;

namespace EdgeTune.Federated.Cluster;

/// <summary>
/// Orleans cluster membership in PostgreSQL, written directly on Npgsql.
/// <para>Why not Orleans' ADO.NET clustering provider: its package ships no PostgreSQL schema, and the provider reads its
/// queries from a table that those scripts fill, so using it means writing both a schema and a set of queries whose names
/// and parameters must match the provider's private contract. The membership contract itself (<see cref="IMembershipTable"/>)
/// is small and public: one table version with an etag, and rows with etags, updated with optimistic concurrency. So this
/// class implements it in two tables and a handful of statements.</para>
/// <para>Tables (created when missing): <c>edgetune_membership_version(cluster_id, version)</c>, one row per cluster, and
/// <c>edgetune_membership(cluster_id, silo, ..., etag)</c>, one row per silo incarnation. The etag of the table version is
/// its version number (it grows by one with every membership change); a row's etag is a counter bumped on every update.
/// A write that changes membership runs in one transaction that first moves the version from the etag the caller read to
/// the caller's new version and fails (returns false) when another silo got there first. Every silo reads and writes the
/// same rows, so any silo may die and the rest carry on (there is no primary).</para>
/// </summary>
internal sealed class PgMembershipTable(PgDatabase db, IOptions<ClusterOptions> cluster) : IMembershipTable, IDisposable
{
    private readonly string _cluster = cluster.Value.ClusterId;

    private const string Ddl = """
        CREATE TABLE IF NOT EXISTS edgetune_membership_version(cluster_id text PRIMARY KEY, version integer NOT NULL);
        CREATE TABLE IF NOT EXISTS edgetune_membership(cluster_id text NOT NULL, silo text NOT NULL, status integer NOT NULL,
            proxy_port integer NOT NULL, host_name text NOT NULL, silo_name text NOT NULL, role_name text NOT NULL,
            update_zone integer NOT NULL, fault_zone integer NOT NULL, suspect_times text NOT NULL,
            start_time bigint NOT NULL, i_am_alive bigint NOT NULL, etag integer NOT NULL,
            PRIMARY KEY(cluster_id, silo));
        """;

    private const string Columns = "silo, status, proxy_port, host_name, silo_name, role_name, update_zone, fault_zone, suspect_times, start_time, i_am_alive, etag";

    public Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        db.CreateSchema(Ddl);
        if (tryInitTableVersion)
        {
            using var c = db.Open();
            Exec(c, null, "INSERT INTO edgetune_membership_version(cluster_id, version) VALUES($1, 0) ON CONFLICT DO NOTHING", P(_cluster));
        }
        return Task.CompletedTask;
    }

    public async Task DeleteMembershipTableEntries(string clusterId)
    {
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync().ConfigureAwait(false);
        Exec(c, tx, "DELETE FROM edgetune_membership WHERE cluster_id=$1", P(clusterId));
        Exec(c, tx, "DELETE FROM edgetune_membership_version WHERE cluster_id=$1", P(clusterId));
        await tx.CommitAsync().ConfigureAwait(false);
    }

    public async Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        Exec(c, null, "DELETE FROM edgetune_membership WHERE cluster_id=$1 AND status=$2 AND i_am_alive<$3",
            P(_cluster), P((int)SiloStatus.Dead), P(beforeDate.UtcTicks));
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key) => Read(key);

    public Task<MembershipTableData> ReadAll() => Read(null);

    /// <summary>The table version and the rows (one, or all), read in one snapshot.</summary>
    private async Task<MembershipTableData> Read(SiloAddress? key)
    {
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead).ConfigureAwait(false);
        int version;
        using (var cmd = Command(c, tx, "SELECT version FROM edgetune_membership_version WHERE cluster_id=$1", P(_cluster)))
            version = await cmd.ExecuteScalarAsync().ConfigureAwait(false) is int v ? v : 0;
        var rows = new List<Tuple<MembershipEntry, string>>();
        using (var cmd = key is null
            ? Command(c, tx, $"SELECT {Columns} FROM edgetune_membership WHERE cluster_id=$1", P(_cluster))
            : Command(c, tx, $"SELECT {Columns} FROM edgetune_membership WHERE cluster_id=$1 AND silo=$2", P(_cluster), P(key.ToParsableString())))
        await using (var r = await cmd.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await r.ReadAsync().ConfigureAwait(false)) rows.Add(Tuple.Create(ReadEntry(r), r.GetInt32(11).ToString(CultureInfo.InvariantCulture)));
        }
        await tx.CommitAsync().ConfigureAwait(false);
        return new MembershipTableData(rows, new TableVersion(version, version.ToString(CultureInfo.InvariantCulture)));
    }

    public async Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync().ConfigureAwait(false);
        if (!MoveVersion(c, tx, tableVersion)) return false;
        int added = Exec(c, tx, $"""
            INSERT INTO edgetune_membership(cluster_id, {Columns}) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)
            ON CONFLICT DO NOTHING
            """, [P(_cluster), .. EntryParameters(entry)]);
        if (added == 0) return false; // this silo incarnation is already in the table
        await tx.CommitAsync().ConfigureAwait(false);
        return true;
    }

    public async Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        if (!int.TryParse(etag, NumberStyles.Integer, CultureInfo.InvariantCulture, out int rowEtag)) return false;
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync().ConfigureAwait(false);
        if (!MoveVersion(c, tx, tableVersion)) return false;
        int changed = Exec(c, tx, """
            UPDATE edgetune_membership SET status=$3, proxy_port=$4, host_name=$5, silo_name=$6, role_name=$7, update_zone=$8, fault_zone=$9,
                suspect_times=$10, start_time=$11, i_am_alive=$12, etag=etag+1
            WHERE cluster_id=$1 AND silo=$2 AND etag=$13
            """, [P(_cluster), .. EntryParameters(entry), P(rowEtag)]);
        if (changed == 0) return false; // the row changed since the caller read it
        await tx.CommitAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>Liveness only: not a membership change, so neither the table version nor the row's etag moves.</summary>
    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        await using var c = await db.OpenAsync().ConfigureAwait(false);
        Exec(c, null, "UPDATE edgetune_membership SET i_am_alive=$3 WHERE cluster_id=$1 AND silo=$2",
            P(_cluster), P(entry.SiloAddress.ToParsableString()), P(entry.IAmAliveTime.ToUniversalTime().Ticks));
    }

    /// <summary>Moves the table version from the one the caller read (its etag) to the caller's new version; false when
    /// another writer moved it first.</summary>
    private bool MoveVersion(NpgsqlConnection c, NpgsqlTransaction tx, TableVersion tableVersion)
    {
        if (!int.TryParse(tableVersion.VersionEtag, NumberStyles.Integer, CultureInfo.InvariantCulture, out int read)) return false;
        return Exec(c, tx, "UPDATE edgetune_membership_version SET version=$2 WHERE cluster_id=$1 AND version=$3",
            P(_cluster), P(tableVersion.Version), P(read)) == 1;
    }

    // ---- rows ----

    private static NpgsqlParameter[] EntryParameters(MembershipEntry e) =>
    [
        P(e.SiloAddress.ToParsableString()), P((int)e.Status), P(e.ProxyPort), P(e.HostName ?? ""), P(e.SiloName ?? ""), P(e.RoleName ?? ""),
        P(e.UpdateZone), P(e.FaultZone), P(SuspectTimes(e.SuspectTimes)), P(e.StartTime.ToUniversalTime().Ticks), P(e.IAmAliveTime.ToUniversalTime().Ticks),
    ];

    private static MembershipEntry ReadEntry(NpgsqlDataReader r) => new()
    {
        SiloAddress = SiloAddress.FromParsableString(r.GetString(0)),
        Status = (SiloStatus)r.GetInt32(1),
        ProxyPort = r.GetInt32(2),
        HostName = r.GetString(3),
        SiloName = r.GetString(4),
        RoleName = r.GetString(5),
        UpdateZone = r.GetInt32(6),
        FaultZone = r.GetInt32(7),
        SuspectTimes = ParseSuspectTimes(r.GetString(8)),
        StartTime = new DateTime(r.GetInt64(9), DateTimeKind.Utc),
        IAmAliveTime = new DateTime(r.GetInt64(10), DateTimeKind.Utc),
    };

    /// <summary>Suspicions as "silo,ticks" pairs separated by ';' (a silo's parsable address holds neither character).</summary>
    private static string SuspectTimes(List<Tuple<SiloAddress, DateTime>>? list) =>
        list is null ? "" : string.Join(';', list.Select(t => t.Item1.ToParsableString() + "," + t.Item2.ToUniversalTime().Ticks.ToString(CultureInfo.InvariantCulture)));

    private static List<Tuple<SiloAddress, DateTime>> ParseSuspectTimes(string text) =>
        text.Length == 0 ? [] : text.Split(';').Select(p =>
        {
            int comma = p.LastIndexOf(',');
            return Tuple.Create(SiloAddress.FromParsableString(p[..comma]), new DateTime(long.Parse(p[(comma + 1)..], CultureInfo.InvariantCulture), DateTimeKind.Utc));
        }).ToList();

    public void Dispose() => db.Dispose();
}
