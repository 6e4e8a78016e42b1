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

    /// <summary>Drops a task's schema (the state of a <see cref="EdgeTune.Federated.Storage.PgStateStore"/>) and the membership
    /// rows of its silos' cluster ("edgetune-fl-" + task, as <c>fl serve --cluster</c> names it).</summary>
    public static void DropTask(string task)
    {
        if (ConnectionString is null) return;
        using var c = new NpgsqlConnection(ConnectionString);
        c.Open();
        using (var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"edgetune_fl_{task}\" CASCADE", c)) drop.ExecuteNonQuery();
        using (var exists = new NpgsqlCommand("SELECT to_regclass('edgetune_membership') IS NOT NULL AND to_regclass('edgetune_membership_version') IS NOT NULL", c))
            if (exists.ExecuteScalar() is not true) return;
        foreach (var table in new[] { "edgetune_membership", "edgetune_membership_version" })
        {
            using var delete = new NpgsqlCommand($"DELETE FROM {table} WHERE cluster_id = $1", c);
            delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "edgetune-fl-" + task });
            delete.ExecuteNonQuery();
        }
    }
}
