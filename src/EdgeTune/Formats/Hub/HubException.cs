namespace EdgeTune.Formats.Hub;

/// <summary>What went wrong with a Hub request.</summary>
public enum HubErrorKind
{
    /// <summary>401/403: the repository is gated or private, or the token is missing/invalid.</summary>
    Unauthorized,
    /// <summary>404: the repository, revision or file does not exist.</summary>
    NotFound,
    /// <summary>The file is not in the local cache and the network may not (offline) or could not be used.</summary>
    NotInCache,
    /// <summary>The network failed (connection refused, timeout, server error, bad response).</summary>
    Network,
    /// <summary>A downloaded file has the wrong size or hash.</summary>
    Integrity,
}

/// <summary>A Hub download or cache lookup failed. The message names the repository, revision and file
/// and says what to do.</summary>
public sealed class HubException : Exception
{
    public HubException(HubErrorKind kind, string message, Exception? inner = null) : base(message, inner)
    {
        Kind = kind;
    }

    public HubErrorKind Kind { get; }

    /// <summary>HTTP status code when the error came from a response.</summary>
    public int? StatusCode { get; init; }

    /// <summary>The Hub's <c>X-Error-Code</c> header (RepoNotFound, RevisionNotFound, EntryNotFound,
    /// GatedRepo), when it sent one.</summary>
    public string? ServerErrorCode { get; init; }
}
