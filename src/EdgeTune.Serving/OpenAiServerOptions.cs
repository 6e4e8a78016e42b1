namespace EdgeTune.Serving;

/// <summary>Where the OpenAI-compatible server listens and what it admits.</summary>
public sealed record OpenAiServerOptions
{
    /// <summary>Address to bind: an IP address or "localhost" (default 127.0.0.1, loopback only; "0.0.0.0" listens on
    /// every interface).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port (0: any free port; see <see cref="OpenAiServer.Url"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every request must carry <c>Authorization: Bearer &lt;key&gt;</c> (401 otherwise).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Generations that run at once (they take turns token by token on the one model).</summary>
    public int MaxConcurrency { get; init; } = 1;

    /// <summary>Requests that may wait for a free slot; one more is answered 429.</summary>
    public int MaxQueue { get; init; } = 16;

    /// <summary>Largest request body in bytes (413 beyond it).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;

    /// <summary>Test hook: awaited once a request is admitted, before it generates.</summary>
    internal Func<CancellationToken, Task>? AfterAdmission { get; init; }

    public void Validate()
    {
        if (MaxConcurrency < 1) throw new ArgumentOutOfRangeException(nameof(MaxConcurrency), MaxConcurrency, "max concurrency must be >= 1");
        if (MaxQueue < 0) throw new ArgumentOutOfRangeException(nameof(MaxQueue), MaxQueue, "max queue must be >= 0");
        if (Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), Port, "port must be in [0, 65535]");
        if (MaxRequestBodyBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "body limit must be positive");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("the API key is empty", nameof(ApiKey));
    }
}
