using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using static EdgeTune.Federated.Storage.PgSql;

namespace EdgeTune.Federated.Storage;

/// <summary>
/// The federated state in PostgreSQL, for a cluster whose silos run on several machines: the same tables and guarantees as
/// the SQLite <see cref="FlStateStore"/>, in the schema <c>edgetune_fl_&lt;task&gt;</c> (so one database can hold several
/// tasks, and tests can use one schema each). Every write that acknowledges something commits before it returns
/// (PostgreSQL's default synchronous commit: the WAL is flushed). A client has at most one update per round (unique
/// constraint). Part files of uploads in progress stay in the local <see cref="Folder"/>: when the coordinator moves to
/// another machine, an upload in progress resumes from byte 0 there (the client asks where it stands).
/// <para>Only one server may hold a task's state at a time. The store takes a session-level advisory lock on the schema
/// when it opens and keeps it on a dedicated connection until disposed. A second store for the same task waits for it,
/// up to <c>lockWait</c>, then throws <see cref="TimeoutException"/>. PostgreSQL releases the lock when that connection ends, including when its process
/// is killed.</para>
/// </summary>
public sealed class PgStateStore : IFlStateStore
{
    private readonly PgDatabase _db;
    private readonly NpgsqlConnection _lease;
    private readonly string _s;
    private byte[] _payload = [];

    /// <summary>The schema that holds a task's state.</summary>
    internal static string SchemaOf(string task) => "edgetune_fl_" + task;

    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="task">The federated task (its schema is <c>edgetune_fl_&lt;task&gt;</c>).</param>
    /// <param name="folder">A local folder for part files of uploads in progress (created when missing).</param>
    /// <param name="lockWait">How long to wait for another server that holds the task's state (default 15 s).</param>
    public PgStateStore(string connectionString, string task, string folder, TimeSpan? lockWait = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(task);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string schema = SchemaOf(task);
        if (System.Text.Encoding.UTF8.GetByteCount(schema) > 63) throw new ArgumentException($"task name '{task}' is too long for a PostgreSQL schema name (at most 51 bytes)", nameof(task));
        Folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(Path.Combine(Folder, "uploads"));
        _db = new PgDatabase(connectionString);
        _s = PgDatabase.Quote(schema);
        Location = $"{_db.Where}, schema {_s}";
        try
        {
            _db.CreateSchema(Ddl(_s));
            _lease = _db.Open();
            var until = DateTime.UtcNow + (lockWait ?? TimeSpan.FromSeconds(15));
            while (!TryLock(_lease, schema))
            {
                if (DateTime.UtcNow >= until)
                {
                    _lease.Dispose();
                    throw new TimeoutException($"the federated state in {Location} is held by another server (its advisory lock was not released)");
                }
                Thread.Sleep(100);
            }
        }
        catch
        {
            _db.Dispose();
            throw;
        }
    }

    private static bool TryLock(NpgsqlConnection c, string schema)
    {
        using var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtext($1)::bigint)", c);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
        return (bool)cmd.ExecuteScalar()!;
    }

    private static string Ddl(string s) => $"""
        CREATE SCHEMA IF NOT EXISTS {s};
        CREATE TABLE IF NOT EXISTS {s}.meta(key text PRIMARY KEY, value bytea);
        CREATE TABLE IF NOT EXISTS {s}.clients(id text PRIMARY KEY, name text NOT NULL, salt bytea NOT NULL, cred_hash bytea NOT NULL,
            num_examples bigint NOT NULL, enrolled_at double precision NOT NULL);
        CREATE TABLE IF NOT EXISTS {s}.rounds(round integer PRIMARY KEY, open boolean NOT NULL, global_version bigint NOT NULL,
            target integer NOT NULL, started_at double precision NOT NULL, deadline double precision NOT NULL, result_version bigint, metrics text);
        CREATE TABLE IF NOT EXISTS {s}.assignments(round integer NOT NULL, client_id text NOT NULL, assigned_at double precision NOT NULL,
            PRIMARY KEY(round, client_id));
        CREATE TABLE IF NOT EXISTS {s}.uploads(upload_id text PRIMARY KEY, client_id text NOT NULL, round integer NOT NULL,
            global_version bigint NOT NULL, total_bytes bigint NOT NULL, num_examples bigint NOT NULL, encoding text NOT NULL,
            sha256 bytea NOT NULL, metrics text NOT NULL, status text NOT NULL, reason text);
        CREATE TABLE IF NOT EXISTS {s}.updates(upload_id text PRIMARY KEY, round integer NOT NULL, client_id text NOT NULL,
            num_examples bigint NOT NULL, encoding text NOT NULL, payload bytea NOT NULL, metrics text NOT NULL, accepted_at double precision NOT NULL,
            UNIQUE(round, client_id));
        CREATE TABLE IF NOT EXISTS {s}.rejections(id bigserial PRIMARY KEY, upload_id text, client_id text, round integer,
            reason text NOT NULL, at double precision NOT NULL);
        CREATE TABLE IF NOT EXISTS {s}.globals(version bigint PRIMARY KEY, round integer NOT NULL, vector bytea NOT NULL, created_at double precision NOT NULL);
        CREATE TABLE IF NOT EXISTS {s}.evals(id bigserial PRIMARY KEY, round integer NOT NULL, client_id text NOT NULL,
            global_version bigint NOT NULL, num_examples bigint NOT NULL, metrics text NOT NULL);
        CREATE TABLE IF NOT EXISTS {s}.secagg(id bigserial PRIMARY KEY, round integer NOT NULL, stage integer NOT NULL,
            sender text NOT NULL, recipient text NOT NULL, payload bytea NOT NULL);
        """;

    public string Folder { get; }

    public string Location { get; }

    // ---- meta ----

    public byte[]? GetMeta(string key) => Scalar($"SELECT value FROM {_s}.meta WHERE key=$1", P(key)) as byte[];

    public string? GetMetaString(string key) => GetMeta(key) is { } b ? System.Text.Encoding.UTF8.GetString(b) : null;

    private void SetMeta(NpgsqlConnection c, NpgsqlTransaction tx, string key, byte[] value) =>
        PgSql.Exec(c, tx, $"INSERT INTO {_s}.meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value=excluded.value", P(key), P(value));

    public void InitGlobal(string layoutJson, byte[] vector)
    {
        using var c = _db.Open();
        using var tx = c.BeginTransaction();
        SetMeta(c, tx, "layout", System.Text.Encoding.UTF8.GetBytes(layoutJson));
        AddGlobal(c, tx, 0, 0, vector);
        tx.Commit();
    }

    // ---- clients ----

    public void AddClient(StoredClient c) =>
        Exec($"INSERT INTO {_s}.clients(id, name, salt, cred_hash, num_examples, enrolled_at) VALUES($1, $2, $3, $4, $5, $6)",
            P(c.Id), P(c.Name), P(c.Salt), P(c.CredentialHash), P(c.NumExamples), P(FlStateStore.Now()));

    public StoredClient? GetClient(string id) => Query($"SELECT id, name, salt, cred_hash, num_examples FROM {_s}.clients WHERE id=$1",
        r => new StoredClient(r.GetString(0), r.GetString(1), (byte[])r[2], (byte[])r[3], r.GetInt64(4)), P(id)).FirstOrDefault();

    public int ClientCount() => checked((int)(long)Scalar($"SELECT COUNT(*) FROM {_s}.clients")!);

    // ---- rounds ----

    private const string RoundColumns = "round, open, global_version, target, started_at, deadline, result_version, metrics";

    private static StoredRound ReadRound(NpgsqlDataReader r) => new(r.GetInt32(0), r.GetBoolean(1), r.GetInt64(2), r.GetInt32(3), r.GetDouble(4), r.GetDouble(5),
        r.IsDBNull(6) ? null : r.GetInt64(6), r.IsDBNull(7) ? null : r.GetString(7));

    public void AddRound(StoredRound r) =>
        Exec($"INSERT INTO {_s}.rounds(round, open, global_version, target, started_at, deadline) VALUES($1, true, $2, $3, $4, $5)",
            P(r.Round), P(r.GlobalVersion), P(r.Target), P(r.StartedAt), P(r.Deadline));

    public void ExtendRound(int round, double deadline, int target) =>
        Exec($"UPDATE {_s}.rounds SET deadline=$1, target=$2 WHERE round=$3", P(deadline), P(target), P(round));

    public StoredRound? GetRound(int round) => Query($"SELECT {RoundColumns} FROM {_s}.rounds WHERE round=$1", ReadRound, P(round)).FirstOrDefault();

    public StoredRound? LatestRound() => Query($"SELECT {RoundColumns} FROM {_s}.rounds ORDER BY round DESC LIMIT 1", ReadRound).FirstOrDefault();

    public IReadOnlyList<StoredRound> Rounds() => Query($"SELECT {RoundColumns} FROM {_s}.rounds ORDER BY round", ReadRound);

    public void CompleteRound(int round, long version, byte[]? vector, string metricsJson, byte[]? strategyState)
    {
        using var c = _db.Open();
        using var tx = c.BeginTransaction();
        if (vector is not null) AddGlobal(c, tx, version, round, vector);
        PgSql.Exec(c, tx, $"UPDATE {_s}.rounds SET open=false, result_version=$1, metrics=$2 WHERE round=$3", P(version), P(metricsJson), P(round));
        if (strategyState is not null) SetMeta(c, tx, "strategy_state", strategyState);
        tx.Commit();
    }

    public void SetRoundMetrics(int round, string metricsJson) => Exec($"UPDATE {_s}.rounds SET metrics=$1 WHERE round=$2", P(metricsJson), P(round));

    public bool Assign(int round, string clientId) =>
        Exec($"INSERT INTO {_s}.assignments(round, client_id, assigned_at) VALUES($1, $2, $3) ON CONFLICT DO NOTHING", P(round), P(clientId), P(FlStateStore.Now())) > 0;

    public bool IsAssigned(int round, string clientId) => Scalar($"SELECT 1 FROM {_s}.assignments WHERE round=$1 AND client_id=$2", P(round), P(clientId)) is not null;

    public IReadOnlyList<(string ClientId, double AssignedAt)> Assignments(int round) =>
        Query($"SELECT client_id, assigned_at FROM {_s}.assignments WHERE round=$1 ORDER BY assigned_at, client_id COLLATE \"C\"",
            r => (r.GetString(0), r.GetDouble(1)), P(round));

    public int DropUndelivered(int round) =>
        Exec($"DELETE FROM {_s}.assignments a WHERE a.round=$1 AND NOT EXISTS (SELECT 1 FROM {_s}.updates u WHERE u.round=$1 AND u.client_id=a.client_id)", P(round));

    // ---- uploads ----

    public void AddUpload(StoredUpload u) =>
        Exec($"""
            INSERT INTO {_s}.uploads(upload_id, client_id, round, global_version, total_bytes, num_examples, encoding, sha256, metrics, status, reason)
            VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """, P(u.UploadId), P(u.ClientId), P(u.Round), P(u.GlobalVersion), P(u.TotalBytes), P(u.NumExamples), P(u.Encoding), P(u.Sha256),
            P(u.MetricsJson), P(u.Status), P(u.Reason));

    public StoredUpload? GetUpload(string uploadId) =>
        Query($"SELECT upload_id, client_id, round, global_version, total_bytes, num_examples, encoding, sha256, metrics, status, reason FROM {_s}.uploads WHERE upload_id=$1",
            r => new StoredUpload(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetString(6), (byte[])r[7],
                r.GetString(8), r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10)), P(uploadId)).FirstOrDefault();

    public void Reject(string? uploadId, string? clientId, int? round, string reason)
    {
        using var c = _db.Open();
        using var tx = c.BeginTransaction();
        if (uploadId is not null)
            PgSql.Exec(c, tx, $"UPDATE {_s}.uploads SET status='rejected', reason=$1 WHERE upload_id=$2 AND status<>'accepted'", P(reason), P(uploadId));
        PgSql.Exec(c, tx, $"INSERT INTO {_s}.rejections(upload_id, client_id, round, reason, at) VALUES($1, $2, $3, $4, $5)",
            P(uploadId), P(clientId), P(round), P(reason), P(FlStateStore.Now()));
        tx.Commit();
    }

    public IReadOnlyList<(string? UploadId, string? ClientId, int? Round, string Reason)> Rejections(int? round = null)
    {
        static (string?, string?, int?, string) Read(NpgsqlDataReader r) =>
            (r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetInt32(2), r.GetString(3));
        return round is int rr
            ? Query($"SELECT upload_id, client_id, round, reason FROM {_s}.rejections WHERE round=$1 ORDER BY id", Read, P(rr))
            : Query($"SELECT upload_id, client_id, round, reason FROM {_s}.rejections ORDER BY id", Read);
    }

    public string PartPath(string uploadId) => Path.Combine(Folder, "uploads", uploadId + ".part");

    public bool Accept(StoredUpload u, ReadOnlySpan<byte> payload)
    {
        // Npgsql takes the bytes as memory, not a span: one buffer reused for every upload (calls are serialised)
        if (_payload.Length < payload.Length) _payload = new byte[payload.Length];
        payload.CopyTo(_payload);
        using var c = _db.Open();
        using var tx = c.BeginTransaction();
        int added = PgSql.Exec(c, tx, $"""
            INSERT INTO {_s}.updates(upload_id, round, client_id, num_examples, encoding, payload, metrics, accepted_at)
            VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING
            """, P(u.UploadId), P(u.Round), P(u.ClientId), P(u.NumExamples), P(u.Encoding), P(new ReadOnlyMemory<byte>(_payload, 0, payload.Length)),
            P(u.MetricsJson), P(FlStateStore.Now()));
        if (added == 0) return false; // the client already has an update in this round (the transaction rolls back)
        PgSql.Exec(c, tx, $"UPDATE {_s}.uploads SET status='accepted', reason=NULL WHERE upload_id=$1", P(u.UploadId));
        tx.Commit();
        return true;
    }

    public int AcceptedCount(int round) => checked((int)(long)Scalar($"SELECT COUNT(*) FROM {_s}.updates WHERE round=$1", P(round))!);

    public bool HasUpdate(int round, string clientId) => Scalar($"SELECT 1 FROM {_s}.updates WHERE round=$1 AND client_id=$2", P(round), P(clientId)) is not null;

    private static StoredUpdate ReadUpdate(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), (byte[])r[4], r.GetString(5));

    public IReadOnlyList<StoredUpdate> Updates(int round) =>
        Query($"SELECT upload_id, client_id, num_examples, encoding, payload, metrics FROM {_s}.updates WHERE round=$1 ORDER BY client_id COLLATE \"C\"", ReadUpdate, P(round));

    public IReadOnlyList<string> UpdateIds(int round) =>
        Query($"SELECT upload_id FROM {_s}.updates WHERE round=$1 ORDER BY client_id COLLATE \"C\"", r => r.GetString(0), P(round));

    public StoredUpdate? GetUpdate(string uploadId) =>
        Query($"SELECT upload_id, client_id, num_examples, encoding, payload, metrics FROM {_s}.updates WHERE upload_id=$1", ReadUpdate, P(uploadId)).FirstOrDefault();

    // ---- global versions ----

    private void AddGlobal(NpgsqlConnection c, NpgsqlTransaction tx, long version, int round, byte[] vector) =>
        PgSql.Exec(c, tx, $"INSERT INTO {_s}.globals(version, round, vector, created_at) VALUES($1, $2, $3, $4)", P(version), P(round), P(vector), P(FlStateStore.Now()));

    public byte[]? GetGlobal(long version) => Scalar($"SELECT vector FROM {_s}.globals WHERE version=$1", P(version)) as byte[];

    public long? LatestGlobalVersion() => Scalar($"SELECT MAX(version) FROM {_s}.globals") as long?;

    // ---- evaluations ----

    public void AddEval(int round, string clientId, long version, long numExamples, IReadOnlyDictionary<string, double> metrics) =>
        Exec($"INSERT INTO {_s}.evals(round, client_id, global_version, num_examples, metrics) VALUES($1, $2, $3, $4, $5)",
            P(round), P(clientId), P(version), P(numExamples), P(JsonSerializer.Serialize(metrics.ToDictionary(), PgJson.Default.DictionaryStringDouble)));

    public IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> Evals(long version) =>
        Query($"SELECT num_examples, metrics FROM {_s}.evals WHERE global_version=$1 ORDER BY id",
            r => (r.GetInt64(0), (IReadOnlyDictionary<string, double>)(JsonSerializer.Deserialize(r.GetString(1), PgJson.Default.DictionaryStringDouble) ?? [])), P(version));

    // ---- secure-aggregation relay ----

    public void AddSecAgg(int round, int stage, string from, string to, byte[] payload) =>
        Exec($"INSERT INTO {_s}.secagg(round, stage, sender, recipient, payload) VALUES($1, $2, $3, $4, $5)", P(round), P(stage), P(from), P(to), P(payload));

    public IReadOnlyList<(string From, string To, byte[] Payload)> SecAggFor(int round, int stage, string to) =>
        Query($"SELECT sender, recipient, payload FROM {_s}.secagg WHERE round=$1 AND stage=$2 AND (recipient=$3 OR recipient='*') ORDER BY id",
            r => (r.GetString(0), r.GetString(1), (byte[])r[2]), P(round), P(stage), P(to));

    // ---- plumbing (P, Command and the connection-level Exec: PgSql) ----

    private int Exec(string sql, params NpgsqlParameter[] args)
    {
        using var c = _db.Open();
        return PgSql.Exec(c, null, sql, args);
    }

    private object? Scalar(string sql, params NpgsqlParameter[] args)
    {
        using var c = _db.Open();
        using var cmd = Command(c, null, sql, args);
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    private List<T> Query<T>(string sql, Func<NpgsqlDataReader, T> read, params NpgsqlParameter[] args)
    {
        using var c = _db.Open();
        using var cmd = Command(c, null, sql, args);
        using var r = cmd.ExecuteReader();
        var list = new List<T>();
        while (r.Read()) list.Add(read(r));
        return list;
    }

    /// <summary>Releases the task's lock (another server may now open the state) and closes the connections.</summary>
    public void Dispose()
    {
        _lease.Dispose();
        _db.Dispose();
    }
}

[JsonSerializable(typeof(Dictionary<string, double>))]
internal sealed partial class PgJson : JsonSerializerContext;
