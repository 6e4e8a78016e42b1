using System.Net.Sockets;
using Npgsql;

namespace EdgeTune.Federated.Storage;

/// <summary>The PostgreSQL database a cluster shares (Orleans membership and the federated state): pooled connections
/// from one connection string, an error that names the server when it cannot be reached, and schema creation that
/// several silos starting at once can run together.</summary>
internal sealed class PgDatabase : IDisposable
{
    private readonly NpgsqlDataSource _source;

    public PgDatabase(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        NpgsqlConnectionStringBuilder b;
        try { b = new NpgsqlConnectionStringBuilder(connectionString); }
        catch (ArgumentException e) { throw new ArgumentException($"the PostgreSQL connection string is invalid: {e.Message}", nameof(connectionString)); }
        if (string.IsNullOrEmpty(b.Host)) throw new ArgumentException("the PostgreSQL connection string names no Host", nameof(connectionString));
        Where = $"PostgreSQL at {b.Host}:{b.Port} (database '{b.Database ?? b.Username}')";
        _source = NpgsqlDataSource.Create(b);
    }

    /// <summary>"PostgreSQL at host:port (database 'd')", for messages.</summary>
    public string Where { get; }

    /// <summary>An open pooled connection; a server that cannot be reached is an <see cref="FlDatabaseUnreachableException"/>
    /// naming host and port.</summary>
    public NpgsqlConnection Open()
    {
        try { return _source.OpenConnection(); }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            throw new FlDatabaseUnreachableException($"cannot reach {Where}: {Reason(e)}", e);
        }
    }

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        try { return await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            throw new FlDatabaseUnreachableException($"cannot reach {Where}: {Reason(e)}", e);
        }
    }

    private static string Reason(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null && inner is not SocketException) inner = inner.InnerException;
        return inner.Message;
    }

    /// <summary>Runs DDL (CREATE ... IF NOT EXISTS; our own statements separated by ';', none inside a literal) in a
    /// transaction holding a database-wide advisory lock, so silos that start together do not race on the catalog
    /// (PostgreSQL's IF NOT EXISTS is not safe against concurrent creators).
    /// <para>One command per statement: Npgsql writes the second and later statements of a multi-statement command
    /// asynchronously even on its synchronous API, and that write waits for a thread-pool thread. In a silo taking over
    /// 300 clients after a kill, the thread-pool queue held it for 30 s: the server never received the DDL, the command
    /// timed out and the coordinator's activation failed (seen with pg_stat_activity: "idle in transaction", ClientRead).</para></summary>
    public void CreateSchema(string ddl)
    {
        using var c = Open();
        using var tx = c.BeginTransaction();
        using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(7146202501)", c, tx)) lockCmd.ExecuteNonQuery();
        foreach (var statement in ddl.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            using var cmd = new NpgsqlCommand(statement, c, tx);
            cmd.ExecuteNonQuery();
        }
        tx.Commit();
    }

    /// <summary>A name quoted as a PostgreSQL identifier.</summary>
    public static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public void Dispose() => _source.Dispose();
}
