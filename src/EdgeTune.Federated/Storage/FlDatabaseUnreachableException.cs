namespace EdgeTune.Federated.Storage;

/// <summary>The cluster's PostgreSQL server cannot be reached (the message names host, port and database).</summary>
public sealed class FlDatabaseUnreachableException(string message, Exception inner) : Exception(message, inner);
