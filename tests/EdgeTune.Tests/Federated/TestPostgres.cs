using Npgsql;

namespace EdgeTune.Tests.Federated;

/// <summary>
/// The PostgreSQL server the cluster tests use: the Npgsql connection string in <c>EDGETUNE_TEST_POSTGRES</c> (<c>.ci/run</c>
/// starts a throwaway server on loopback and sets it). Tests that need it are <c>[SkippableFact]</c>s that call
/// <see cref="Require"/>: without it they are reported as skipped, with the reason. Each test works in names of its own
/// (a schema per task, a cluster id), so tests never see each other's rows.
/// </summary>
public static class TestPostgres
{
    public static readonly string? ConnectionString = Environment.GetEnvironmentVariable("EDGETUNE_TEST_POSTGRES") is { Length: > 0 } s ? s : null;

    /// <summary>The connection string; skips the calling test when none is set.</summary>
    public static string Require()
    {
        Skip.If(ConnectionString is null, "EDGETUNE_TEST_POSTGRES is not set (no PostgreSQL for the cluster tests; .ci/run starts one)");
        return ConnectionString!;
    }

    /// <summary>A fresh name for a task or a cluster (letters and digits).</summary>
    public static string UniqueName(string prefix) => prefix + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Drops a task's state schema and its silos' cluster membership rows.</summary>
    public static void DropTask(string task)
    {
        if (ConnectionString is not null) EdgeTune.Federated.Cluster.PgClustering.DeleteTask(ConnectionString, task);
    }
}
