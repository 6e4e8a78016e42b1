using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace EdgeTune.Federated.Storage;

/// <summary>An enrolled client as stored (the credential only as a salted hash).</summary>
public sealed record StoredClient(string Id, string Name, byte[] Salt, byte[] CredentialHash, long NumExamples);

/// <summary>One round as stored: open (collecting updates) or closed (aggregated into <see cref="ResultVersion"/>).</summary>
public sealed record StoredRound(int Round, bool Open, long GlobalVersion, int Target, double StartedAt, double Deadline, long? ResultVersion, string? MetricsJson);

/// <summary>An upload's header and where it stands (bytes are in a part file until accepted).</summary>
public sealed record StoredUpload(string UploadId, string ClientId, int Round, long GlobalVersion, long TotalBytes, long NumExamples,
    string Encoding, byte[] Sha256, string MetricsJson, string Status, string? Reason);

/// <summary>An accepted update of a round.</summary>
public sealed record StoredUpdate(string UploadId, string ClientId, long NumExamples, string Encoding, byte[] Payload, string MetricsJson);

/// <summary>
/// Everything a federated server must not lose, in one SQLite database (<c>state.db</c> under the state folder,
/// WAL journal, synchronous FULL): clients with hashed credentials, rounds and assignments, upload headers,
/// accepted updates with their bytes, rejections with their reasons, every global version, client evaluations,
/// strategy and privacy-accountant state. Partial uploads are append-only part files under <c>uploads/</c>;
/// their length is the number of bytes received. Round completion (new global version, closed round, strategy
/// state) is one transaction, so a server killed at any point restarts consistent. Not thread-safe: the server
/// serialises calls.
/// </summary>
public sealed class FlStateStore : IFlStateStore
{
    private readonly SqliteConnection _db;

    public FlStateStore(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(Folder);
        Directory.CreateDirectory(UploadsFolder);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(Folder, "state.db"), Pooling = false }.ToString());
        _db.Open();
        Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
        Exec("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB);
            CREATE TABLE IF NOT EXISTS clients(id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT NULL, cred_hash BLOB NOT NULL,
                num_examples INTEGER NOT NULL, enrolled_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS rounds(round INTEGER PRIMARY KEY, open INTEGER NOT NULL, global_version INTEGER NOT NULL,
                target INTEGER NOT NULL, started_at REAL NOT NULL, deadline REAL NOT NULL, result_version INTEGER, metrics TEXT);
            CREATE TABLE IF NOT EXISTS assignments(round INTEGER NOT NULL, client_id TEXT NOT NULL, assigned_at REAL NOT NULL,
                PRIMARY KEY(round, client_id));
            CREATE TABLE IF NOT EXISTS uploads(upload_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, round INTEGER NOT NULL,
                global_version INTEGER NOT NULL, total_bytes INTEGER NOT NULL, num_examples INTEGER NOT NULL, encoding TEXT NOT NULL,
                sha256 BLOB NOT NULL, metrics TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
            CREATE TABLE IF NOT EXISTS updates(upload_id TEXT PRIMARY KEY, round INTEGER NOT NULL, client_id TEXT NOT NULL,
                num_examples INTEGER NOT NULL, encoding TEXT NOT NULL, payload BLOB NOT NULL, metrics TEXT NOT NULL, accepted_at REAL NOT NULL);
            CREATE UNIQUE INDEX IF NOT EXISTS updates_one_per_client ON updates(round, client_id);
            CREATE TABLE IF NOT EXISTS rejections(id INTEGER PRIMARY KEY AUTOINCREMENT, upload_id TEXT, client_id TEXT, round INTEGER,
                reason TEXT NOT NULL, at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS globals(version INTEGER PRIMARY KEY, round INTEGER NOT NULL, vector BLOB NOT NULL, created_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS evals(id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, client_id TEXT NOT NULL,
                global_version INTEGER NOT NULL, num_examples INTEGER NOT NULL, metrics TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS secagg(id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, stage INTEGER NOT NULL,
                sender TEXT NOT NULL, recipient TEXT NOT NULL, payload BLOB NOT NULL);
            """);
    }

    public string Folder { get; }

    public string UploadsFolder => Path.Combine(Folder, "uploads");

    // ---- meta ----

    public byte[]? GetMeta(string key) => Scalar("SELECT value FROM meta WHERE key=$k", ("$k", key)) as byte[];

    public string? GetMetaString(string key) => GetMeta(key) is { } b ? System.Text.Encoding.UTF8.GetString(b) : null;

    public void SetMeta(string key, byte[] value, SqliteTransaction? tx = null) =>
        Exec("INSERT INTO meta(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value=excluded.value", tx, ("$k", key), ("$v", value));

    public void SetMeta(string key, string value, SqliteTransaction? tx = null) => SetMeta(key, System.Text.Encoding.UTF8.GetBytes(value), tx);

    // ---- clients ----

    public void AddClient(StoredClient c) =>
        Exec("INSERT INTO clients(id, name, salt, cred_hash, num_examples, enrolled_at) VALUES($i, $n, $s, $h, $e, $t)", null,
            ("$i", c.Id), ("$n", c.Name), ("$s", c.Salt), ("$h", c.CredentialHash), ("$e", c.NumExamples), ("$t", Now()));

    public StoredClient? GetClient(string id)
    {
        using var cmd = Command("SELECT id, name, salt, cred_hash, num_examples FROM clients WHERE id=$i", null, ("$i", id));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new StoredClient(r.GetString(0), r.GetString(1), (byte[])r[2], (byte[])r[3], r.GetInt64(4)) : null;
    }

    public int ClientCount() => Convert.ToInt32(Scalar("SELECT COUNT(*) FROM clients"), CultureInfo.InvariantCulture);

    // ---- rounds ----

    public void AddRound(StoredRound r, SqliteTransaction? tx = null) =>
        Exec("INSERT INTO rounds(round, open, global_version, target, started_at, deadline) VALUES($r, 1, $g, $t, $s, $d)", tx,
            ("$r", r.Round), ("$g", r.GlobalVersion), ("$t", r.Target), ("$s", r.StartedAt), ("$d", r.Deadline));

    public void ExtendRound(int round, double deadline, int target) =>
        Exec("UPDATE rounds SET deadline=$d, target=$t WHERE round=$r", null, ("$d", deadline), ("$t", target), ("$r", round));

    public StoredRound? GetRound(int round)
    {
        using var cmd = Command("SELECT round, open, global_version, target, started_at, deadline, result_version, metrics FROM rounds WHERE round=$r", null, ("$r", round));
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadRound(r) : null;
    }

    public StoredRound? LatestRound()
    {
        using var cmd = Command("SELECT round, open, global_version, target, started_at, deadline, result_version, metrics FROM rounds ORDER BY round DESC LIMIT 1", null);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadRound(r) : null;
    }

    private static StoredRound ReadRound(SqliteDataReader r) => new(r.GetInt32(0), r.GetInt64(1) != 0, r.GetInt64(2), r.GetInt32(3), r.GetDouble(4), r.GetDouble(5),
        r.IsDBNull(6) ? null : r.GetInt64(6), r.IsDBNull(7) ? null : r.GetString(7));

    public IReadOnlyList<StoredRound> Rounds()
    {
        using var cmd = Command("SELECT round, open, global_version, target, started_at, deadline, result_version, metrics FROM rounds ORDER BY round", null);
        using var r = cmd.ExecuteReader();
        var list = new List<StoredRound>();
        while (r.Read()) list.Add(ReadRound(r));
        return list;
    }

    /// <summary>Marks the round aggregated into <paramref name="version"/>, in the completion transaction.</summary>
    public void CloseRound(int round, long version, string metricsJson, SqliteTransaction tx) =>
        Exec("UPDATE rounds SET open=0, result_version=$v, metrics=$m WHERE round=$r", tx, ("$v", version), ("$m", metricsJson), ("$r", round));

    public void SetRoundMetrics(int round, string metricsJson) =>
        Exec("UPDATE rounds SET metrics=$m WHERE round=$r", null, ("$m", metricsJson), ("$r", round));

    public bool Assign(int round, string clientId) =>
        Exec("INSERT OR IGNORE INTO assignments(round, client_id, assigned_at) VALUES($r, $c, $t)", null, ("$r", round), ("$c", clientId), ("$t", Now())) > 0;

    public bool IsAssigned(int round, string clientId) =>
        Scalar("SELECT 1 FROM assignments WHERE round=$r AND client_id=$c", ("$r", round), ("$c", clientId)) is not null;

    public IReadOnlyList<(string ClientId, double AssignedAt)> Assignments(int round)
    {
        using var cmd = Command("SELECT client_id, assigned_at FROM assignments WHERE round=$r ORDER BY assigned_at, client_id", null, ("$r", round));
        using var r = cmd.ExecuteReader();
        var list = new List<(string, double)>();
        while (r.Read()) list.Add((r.GetString(0), r.GetDouble(1)));
        return list;
    }

    /// <summary>Drops assignments of clients that have not delivered an update (stragglers), so others can take their place.</summary>
    public int DropUndelivered(int round) =>
        Exec("DELETE FROM assignments WHERE round=$r AND client_id NOT IN (SELECT client_id FROM updates WHERE round=$r)", null, ("$r", round));

    // ---- uploads ----

    public void AddUpload(StoredUpload u) =>
        Exec("""
            INSERT INTO uploads(upload_id, client_id, round, global_version, total_bytes, num_examples, encoding, sha256, metrics, status, reason)
            VALUES($u, $c, $r, $g, $t, $n, $e, $s, $m, $st, $re)
            """, null, ("$u", u.UploadId), ("$c", u.ClientId), ("$r", u.Round), ("$g", u.GlobalVersion), ("$t", u.TotalBytes), ("$n", u.NumExamples),
            ("$e", u.Encoding), ("$s", u.Sha256), ("$m", u.MetricsJson), ("$st", u.Status), ("$re", (object?)u.Reason ?? DBNull.Value));

    public StoredUpload? GetUpload(string uploadId)
    {
        using var cmd = Command("SELECT upload_id, client_id, round, global_version, total_bytes, num_examples, encoding, sha256, metrics, status, reason FROM uploads WHERE upload_id=$u", null, ("$u", uploadId));
        using var r = cmd.ExecuteReader();
        return r.Read()
            ? new StoredUpload(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetString(6), (byte[])r[7], r.GetString(8), r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10))
            : null;
    }

    /// <summary>Records a rejection (and marks the upload rejected when it has a row).</summary>
    public void Reject(string? uploadId, string? clientId, int? round, string reason)
    {
        using var tx = _db.BeginTransaction();
        if (uploadId is not null)
            Exec("UPDATE uploads SET status='rejected', reason=$re WHERE upload_id=$u AND status<>'accepted'", tx, ("$re", reason), ("$u", uploadId));
        Exec("INSERT INTO rejections(upload_id, client_id, round, reason, at) VALUES($u, $c, $r, $re, $t)", tx,
            ("$u", (object?)uploadId ?? DBNull.Value), ("$c", (object?)clientId ?? DBNull.Value), ("$r", (object?)round ?? DBNull.Value), ("$re", reason), ("$t", Now()));
        tx.Commit();
    }

    public IReadOnlyList<(string? UploadId, string? ClientId, int? Round, string Reason)> Rejections(int? round = null)
    {
        using var cmd = round is int rr
            ? Command("SELECT upload_id, client_id, round, reason FROM rejections WHERE round=$r ORDER BY id", null, ("$r", rr))
            : Command("SELECT upload_id, client_id, round, reason FROM rejections ORDER BY id", null);
        using var r = cmd.ExecuteReader();
        var list = new List<(string?, string?, int?, string)>();
        while (r.Read()) list.Add((r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetInt32(2), r.GetString(3)));
        return list;
    }

    /// <summary>The part file of an upload (its length is the bytes received).</summary>
    public string PartPath(string uploadId) => Path.Combine(UploadsFolder, uploadId + ".part");

    /// <summary>Accepts a complete upload: stores its bytes as the client's update of the round and marks the upload
    /// accepted, in one transaction; false (nothing changed) when the client already has an update in the round.</summary>
    public bool Accept(StoredUpload u, byte[] payload) => Accept(u, payload.AsSpan());

    /// <summary>Stores an accepted update (its payload written straight from <paramref name="payload"/> into the blob, no copy)
    /// and marks its upload accepted, in one transaction; false when the client already has an update in that round.</summary>
    public bool Accept(StoredUpload u, ReadOnlySpan<byte> payload)
    {
        using var tx = _db.BeginTransaction();
        if (Scalar("SELECT 1 FROM updates WHERE round=$r AND client_id=$c", tx, ("$r", u.Round), ("$c", u.ClientId)) is not null) return false;
        Exec("INSERT INTO updates(upload_id, round, client_id, num_examples, encoding, payload, metrics, accepted_at) VALUES($u, $r, $c, $n, $e, zeroblob($len), $m, $t)", tx,
            ("$u", u.UploadId), ("$r", u.Round), ("$c", u.ClientId), ("$n", u.NumExamples), ("$e", u.Encoding), ("$len", payload.Length), ("$m", u.MetricsJson), ("$t", Now()));
        long row = (long)Scalar("SELECT last_insert_rowid()", tx)!;
        using (var blob = new SqliteBlob(_db, "updates", "payload", row)) blob.Write(payload);
        Exec("UPDATE uploads SET status='accepted', reason=NULL WHERE upload_id=$u", tx, ("$u", u.UploadId));
        tx.Commit();
        return true;
    }

    public int AcceptedCount(int round) => Convert.ToInt32(Scalar("SELECT COUNT(*) FROM updates WHERE round=$r", ("$r", round)), CultureInfo.InvariantCulture);

    public bool HasUpdate(int round, string clientId) => Scalar("SELECT 1 FROM updates WHERE round=$r AND client_id=$c", ("$r", round), ("$c", clientId)) is not null;

    public IReadOnlyList<StoredUpdate> Updates(int round)
    {
        using var cmd = Command("SELECT upload_id, client_id, num_examples, encoding, payload, metrics FROM updates WHERE round=$r ORDER BY client_id", null, ("$r", round));
        using var r = cmd.ExecuteReader();
        var list = new List<StoredUpdate>();
        while (r.Read()) list.Add(new StoredUpdate(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), (byte[])r[4], r.GetString(5)));
        return list;
    }

    /// <summary>Upload ids of a round's accepted updates, ordered by client id (read them one at a time with <see cref="GetUpdate"/>).</summary>
    public IReadOnlyList<string> UpdateIds(int round)
    {
        using var cmd = Command("SELECT upload_id FROM updates WHERE round=$r ORDER BY client_id", null, ("$r", round));
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }

    public StoredUpdate? GetUpdate(string uploadId)
    {
        using var cmd = Command("SELECT upload_id, client_id, num_examples, encoding, payload, metrics FROM updates WHERE upload_id=$u", null, ("$u", uploadId));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new StoredUpdate(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), (byte[])r[4], r.GetString(5)) : null;
    }

    // ---- global versions ----

    public void AddGlobal(long version, int round, byte[] vector, SqliteTransaction? tx = null) =>
        Exec("INSERT INTO globals(version, round, vector, created_at) VALUES($v, $r, $b, $t)", tx, ("$v", version), ("$r", round), ("$b", vector), ("$t", Now()));

    public byte[]? GetGlobal(long version) => Scalar("SELECT vector FROM globals WHERE version=$v", ("$v", version)) as byte[];

    public long? LatestGlobalVersion() => Scalar("SELECT MAX(version) FROM globals") is long v ? v : null;

    // ---- evaluations ----

    public void AddEval(int round, string clientId, long version, long numExamples, IReadOnlyDictionary<string, double> metrics) =>
        Exec("INSERT INTO evals(round, client_id, global_version, num_examples, metrics) VALUES($r, $c, $v, $n, $m)", null,
            ("$r", round), ("$c", clientId), ("$v", version), ("$n", numExamples), ("$m", JsonSerializer.Serialize(metrics)));

    public IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> Evals(long version)
    {
        using var cmd = Command("SELECT num_examples, metrics FROM evals WHERE global_version=$v", null, ("$v", version));
        using var r = cmd.ExecuteReader();
        var list = new List<(long, IReadOnlyDictionary<string, double>)>();
        while (r.Read()) list.Add((r.GetInt64(0), JsonSerializer.Deserialize<Dictionary<string, double>>(r.GetString(1)) ?? []));
        return list;
    }

    // ---- secure-aggregation relay ----

    public void AddSecAgg(int round, int stage, string from, string to, byte[] payload) =>
        Exec("INSERT INTO secagg(round, stage, sender, recipient, payload) VALUES($r, $s, $f, $t, $p)", null,
            ("$r", round), ("$s", stage), ("$f", from), ("$t", to), ("$p", payload));

    /// <summary>Messages of a stage addressed to <paramref name="to"/> (or to everyone: recipient "*").</summary>
    public IReadOnlyList<(string From, string To, byte[] Payload)> SecAggFor(int round, int stage, string to)
    {
        using var cmd = Command("SELECT sender, recipient, payload FROM secagg WHERE round=$r AND stage=$s AND (recipient=$t OR recipient='*') ORDER BY id", null,
            ("$r", round), ("$s", stage), ("$t", to));
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string, byte[])>();
        while (r.Read()) list.Add((r.GetString(0), r.GetString(1), (byte[])r[2]));
        return list;
    }

    // ---- plumbing ----

    /// <summary>Starts a transaction (round completion).</summary>
    public SqliteTransaction Begin() => _db.BeginTransaction();

    public static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private SqliteCommand Command(string sql, SqliteTransaction? tx, params (string Name, object? Value)[] args)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        return cmd;
    }

    private int Exec(string sql, SqliteTransaction? tx = null, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(sql, tx, args);
        return cmd.ExecuteNonQuery();
    }

    private void Exec(string sql) => Exec(sql, null);

    private object? Scalar(string sql, params (string Name, object? Value)[] args) => Scalar(sql, null, args);

    private object? Scalar(string sql, SqliteTransaction? tx, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(sql, tx, args);
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    // ---- IFlStateStore: the multi-row writes as one transaction each ----

    public string Location => Folder;

    void IFlStateStore.AddRound(StoredRound r) => AddRound(r);

    public void InitGlobal(string layoutJson, byte[] vector)
    {
        using var tx = Begin();
        SetMeta("layout", layoutJson, tx);
        AddGlobal(0, 0, vector, tx);
        tx.Commit();
    }

    public void CompleteRound(int round, long version, byte[]? vector, string metricsJson, byte[]? strategyState)
    {
        using var tx = Begin();
        if (vector is not null) AddGlobal(version, round, vector, tx);
        CloseRound(round, version, metricsJson, tx);
        if (strategyState is not null) SetMeta("strategy_state", strategyState, tx);
        tx.Commit();
    }

    public void Dispose()
    {
        _db.Dispose();
        SqliteConnection.ClearAllPools();
    }
}
