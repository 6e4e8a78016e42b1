namespace EdgeTune.Federated.Storage;

/// <summary>
/// What a federated server must not lose: clients, rounds and assignments, upload headers, accepted updates with their
/// bytes, rejections, global versions, evaluations, strategy state and the secure-aggregation relay. Two implementations:
/// <see cref="FlStateStore"/> (SQLite in the state folder, one machine) and <see cref="PgStateStore"/> (PostgreSQL, shared
/// by silos on several machines). Both keep the same guarantees: <see cref="Accept"/> returns only after its transaction
/// is committed (so an acknowledged update is durable), a client has at most one update per round, and the two
/// multi-row writes (<see cref="InitGlobal"/>, <see cref="CompleteRound"/>) are one transaction each. Partial uploads are
/// append-only part files in the local <see cref="Folder"/> in both cases. Not thread-safe: the server serialises calls.
/// </summary>
public interface IFlStateStore : IDisposable
{
    /// <summary>The local folder: part files of uploads in progress and scratch files of a closing round.</summary>
    string Folder { get; }

    /// <summary>Where the state lives, for messages (a folder, or a database and its schema).</summary>
    string Location { get; }

    byte[]? GetMeta(string key);

    string? GetMetaString(string key);

    /// <summary>Stores the layout (meta "layout") and global version 0, in one transaction.</summary>
    void InitGlobal(string layoutJson, byte[] vector);

    void AddClient(StoredClient c);

    StoredClient? GetClient(string id);

    int ClientCount();

    void AddRound(StoredRound r);

    void ExtendRound(int round, double deadline, int target);

    StoredRound? GetRound(int round);

    StoredRound? LatestRound();

    IReadOnlyList<StoredRound> Rounds();

    /// <summary>Closes <paramref name="round"/> as aggregated into <paramref name="version"/>, in one transaction with the
    /// new global's vector (when not null: a failed round keeps the old version) and the strategy's state (when not null).</summary>
    void CompleteRound(int round, long version, byte[]? vector, string metricsJson, byte[]? strategyState);

    void SetRoundMetrics(int round, string metricsJson);

    /// <summary>Selects a client for a round; false when it already was.</summary>
    bool Assign(int round, string clientId);

    bool IsAssigned(int round, string clientId);

    IReadOnlyList<(string ClientId, double AssignedAt)> Assignments(int round);

    /// <summary>Drops assignments of clients that have not delivered an update (stragglers), so others can take their place.</summary>
    int DropUndelivered(int round);

    void AddUpload(StoredUpload u);

    StoredUpload? GetUpload(string uploadId);

    /// <summary>Records a rejection (and marks the upload rejected when it has a row and is not accepted).</summary>
    void Reject(string? uploadId, string? clientId, int? round, string reason);

    IReadOnlyList<(string? UploadId, string? ClientId, int? Round, string Reason)> Rejections(int? round = null);

    /// <summary>The part file of an upload in <see cref="Folder"/> (its length is the bytes received).</summary>
    string PartPath(string uploadId);

    /// <summary>Stores a complete upload as the client's update of its round and marks the upload accepted, in one
    /// committed transaction; false (nothing changed) when the client already has an update in that round.</summary>
    bool Accept(StoredUpload u, ReadOnlySpan<byte> payload);

    int AcceptedCount(int round);

    bool HasUpdate(int round, string clientId);

    IReadOnlyList<StoredUpdate> Updates(int round);

    /// <summary>Upload ids of a round's accepted updates, ordered by client id.</summary>
    IReadOnlyList<string> UpdateIds(int round);

    StoredUpdate? GetUpdate(string uploadId);

    byte[]? GetGlobal(long version);

    long? LatestGlobalVersion();

    void AddEval(int round, string clientId, long version, long numExamples, IReadOnlyDictionary<string, double> metrics);

    IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> Evals(long version);

    void AddSecAgg(int round, int stage, string from, string to, byte[] payload);

    /// <summary>Messages of a stage addressed to <paramref name="to"/> (or to everyone: recipient "*").</summary>
    IReadOnlyList<(string From, string To, byte[] Payload)> SecAggFor(int round, int stage, string to);
}
