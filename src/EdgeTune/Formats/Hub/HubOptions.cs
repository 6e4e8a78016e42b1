namespace EdgeTune.Formats.Hub;

/// <summary>
/// Settings of the Hub client. <see cref="FromEnvironment()"/> reads them the way Python's huggingface_hub
/// does, so both tools share one cache and one token:
/// <list type="bullet">
/// <item><c>HF_HUB_CACHE</c> (or legacy <c>HUGGINGFACE_HUB_CACHE</c>), else <c>HF_HOME/hub</c>, where
/// <c>HF_HOME</c> defaults to <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>;</item>
/// <item><c>HF_TOKEN</c> (or legacy <c>HUGGING_FACE_HUB_TOKEN</c>), else the file <c>HF_TOKEN_PATH</c>,
/// default <c>HF_HOME/token</c>;</item>
/// <item><c>HF_ENDPOINT</c> (default https://huggingface.co); <c>HF_HUB_OFFLINE</c> (or
/// <c>TRANSFORMERS_OFFLINE</c>) = 1/ON/YES/TRUE; <c>HF_HUB_ETAG_TIMEOUT</c> and
/// <c>HF_HUB_DOWNLOAD_TIMEOUT</c> in seconds (default 10).</item>
/// </list>
/// </summary>
public sealed record HubOptions
{
    /// <summary>The public Hub.</summary>
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary>Base URL of the Hub (resolve and api URLs are built under it).</summary>
    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The cache root (the folder that holds <c>models--org--name</c>).</summary>
    public string CacheDirectory { get; init; } = ResolveCacheDirectory(Environment.GetEnvironmentVariable);

    /// <summary>Access token sent as <c>Authorization: Bearer</c> to the Hub (never to a redirected host).</summary>
    public string? Token { get; init; }

    /// <summary>When true the network is never used: everything comes from the cache.</summary>
    public bool Offline { get; init; }

    /// <summary>Time allowed for a metadata request (HEAD on resolve, api listing).</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for the next bytes of a download before it counts as dropped (and is resumed).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How many times a dropped download is resumed (with a Range request) before giving up.</summary>
    public int MaxResumeAttempts { get; init; } = 5;

    /// <summary>How many files of a model are downloaded at once (huggingface_hub uses 8 workers).</summary>
    public int MaxParallelDownloads { get; init; } = 4;

    /// <summary>User-Agent header value.</summary>
    public string UserAgent { get; init; } = "edgetune/0.1; hf_hub/compatible";

    /// <summary>Options from the process environment (see the class remarks).</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Options from an environment given as a lookup function (tests pass a dictionary).</summary>
    public static HubOptions FromEnvironment(Func<string, string?> env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var options = new HubOptions
        {
            CacheDirectory = ResolveCacheDirectory(env),
            Token = ResolveToken(env),
            Offline = IsTrue(env("HF_HUB_OFFLINE")) || IsTrue(env("TRANSFORMERS_OFFLINE")),
            MetadataTimeout = Seconds(env("HF_HUB_ETAG_TIMEOUT"), 10),
            ReadTimeout = Seconds(env("HF_HUB_DOWNLOAD_TIMEOUT"), 10),
        };
        string? endpoint = NonEmpty(env("HF_ENDPOINT"));
        if (endpoint is not null)
        {
            if (!Uri.TryCreate(endpoint.TrimEnd('/'), UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
                throw new ArgumentException($"HF_ENDPOINT='{endpoint}' is not an absolute http(s) URL");
            options = options with { Endpoint = uri };
        }
        return options;
    }

    /// <summary><c>HF_HOME</c>: <c>$HF_HOME</c>, else <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>.</summary>
    public static string ResolveHfHome(Func<string, string?> env)
    {
        string? home = NonEmpty(env("HF_HOME"));
        if (home is not null) return ExpandUser(home);
        string cache = NonEmpty(env("XDG_CACHE_HOME")) ?? Path.Combine("~", ".cache");
        return ExpandUser(Path.Combine(cache, "huggingface"));
    }

    /// <summary>The cache root: <c>HF_HUB_CACHE</c>, else <c>HUGGINGFACE_HUB_CACHE</c>, else <c>HF_HOME/hub</c>.</summary>
    public static string ResolveCacheDirectory(Func<string, string?> env)
    {
        string? cache = NonEmpty(env("HF_HUB_CACHE")) ?? NonEmpty(env("HUGGINGFACE_HUB_CACHE"));
        return cache is not null ? ExpandUser(cache) : Path.Combine(ResolveHfHome(env), "hub");
    }

    /// <summary>The token: <c>HF_TOKEN</c>, else <c>HUGGING_FACE_HUB_TOKEN</c>, else the first line of the
    /// token file (<c>HF_TOKEN_PATH</c>, default <c>HF_HOME/token</c>); null when there is none.</summary>
    public static string? ResolveToken(Func<string, string?> env)
    {
        string? token = NonEmpty(env("HF_TOKEN")?.Trim()) ?? NonEmpty(env("HUGGING_FACE_HUB_TOKEN")?.Trim());
        if (token is not null) return token;
        string path = NonEmpty(env("HF_TOKEN_PATH")) is string p ? ExpandUser(p) : Path.Combine(ResolveHfHome(env), "token");
        try
        {
            return File.Exists(path) ? NonEmpty(File.ReadAllText(path).Trim()) : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>huggingface_hub's notion of a true flag: 1, ON, YES or TRUE (any case).</summary>
    public static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static TimeSpan Seconds(string? value, double fallback) =>
        TimeSpan.FromSeconds(double.TryParse(value, System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : fallback);

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static string ExpandUser(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal))
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return path.Length == 1 ? home : Path.Combine(home, path[2..]);
        }
        return path;
    }
}
