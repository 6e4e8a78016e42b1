using System.Net;
using EdgeTune.Federated.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace EdgeTune.Federated.Cluster;

/// <summary>Silo configuration for a cluster whose membership is in PostgreSQL (<see cref="FlSiloOptions.ClusterConnectionString"/>).</summary>
internal static class PgClustering
{
    /// <summary>Opens one connection, so that an unreachable database is reported before the silo starts, as an
    /// <see cref="FlDatabaseUnreachableException"/> that names host and port.</summary>
    public static void CheckReachable(string connectionString)
    {
        using var db = new PgDatabase(connectionString);
        db.Open().Dispose();
    }

    /// <summary>The Orleans cluster id of a task's silos (one cluster per task; its membership rows carry it).</summary>
    public static string ClusterId(string task) => "edgetune-fl-" + task;

    /// <summary>Removes a task from the database: its state schema and its cluster's membership rows (what a test or a
    /// benchmark run leaves behind).</summary>
    public static void DeleteTask(string connectionString, string task)
    {
        using var db = new PgDatabase(connectionString);
        using var c = db.Open();
        PgSql.Exec(c, null, "DROP SCHEMA IF EXISTS " + PgDatabase.Quote(PgStateStore.SchemaOf(task)) + " CASCADE");
        using (var exists = PgSql.Command(c, null, "SELECT to_regclass('edgetune_membership') IS NOT NULL AND to_regclass('edgetune_membership_version') IS NOT NULL"))
            if (exists.ExecuteScalar() is not true) return;
        foreach (var table in new[] { "edgetune_membership", "edgetune_membership_version" })
            PgSql.Exec(c, null, $"DELETE FROM {table} WHERE cluster_id = $1", PgSql.P(ClusterId(task)));
    }

    /// <summary>The silo advertises <paramref name="address"/> (listening on every interface when it is not loopback) and
    /// keeps membership in <see cref="PgMembershipTable"/>.</summary>
    public static ISiloBuilder UsePostgresClustering(this ISiloBuilder silo, string connectionString, string address, int siloPort, int gatewayPort,
        string serviceId, string clusterId)
    {
        var ip = IPAddress.Parse(address);
        silo.Configure<ClusterOptions>(c => (c.ServiceId, c.ClusterId) = (serviceId, clusterId));
        silo.ConfigureEndpoints(ip, siloPort, gatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(ip));
        silo.Services.AddSingleton<IMembershipTable>(sp => new PgMembershipTable(new PgDatabase(connectionString), sp.GetRequiredService<IOptions<ClusterOptions>>()));
        return silo;
    }
}
