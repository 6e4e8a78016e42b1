using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated;

/// <summary>A client whose "training" adds a fixed value to every coordinate (FedAvg results are then exact).</summary>
internal sealed class ConstantTrainer(float value, long examples = 10) : ILocalTrainer
{
    public long NumExamples => examples;
    public int Fits;

    public LocalFitResult Fit(LocalFitRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Fits);
        var d = new float[request.Global.Length];
        Array.Fill(d, value);
        return new LocalFitResult(d, examples, new Dictionary<string, double> { ["train_loss"] = value });
    }
}

/// <summary>A loopback server on a temporary state folder, torn down with the test.</summary>
internal sealed class FlTestServer : IAsyncDisposable
{
    public const string Token = "test-token";
    private readonly bool _ownsFolder;

    private FlTestServer(string folder, bool ownsFolder, FlServer server, FlServerHost host)
    {
        (Folder, _ownsFolder, Server, Host) = (folder, ownsFolder, server, host);
    }

    public string Folder { get; }
    public FlServer Server { get; private set; }
    public FlServerHost Host { get; private set; }
    public Uri Url => Host.Url;

    public static UpdateLayout Layout(int a = 3, int b = 4) => new([("layer.lora_A.weight", [a, b]), ("layer.lora_B.weight", [b, a])]);

    public static FlServerOptions Options(string folder, int minClients = 2, int rounds = 1) => new()
    {
        StateFolder = folder, EnrolmentToken = Token, MinClients = minClients, Rounds = rounds,
        LivenessTimeout = TimeSpan.FromSeconds(60), RoundDeadline = TimeSpan.FromMinutes(5), MaxUpdateNorm = 1e6,
    };

    public static async Task<FlTestServer> StartAsync(UpdateLayout layout, Func<string, FlServerOptions>? options = null, string? folder = null, int port = 0)
    {
        bool owns = folder is null;
        folder ??= Path.Combine(Path.GetTempPath(), "edgetune-fl-" + Guid.NewGuid().ToString("N")[..10]);
        var server = new FlServer((options ?? (f => Options(f)))(folder), layout, new float[layout.TotalLength]);
        var host = await FlServerHost.StartAsync(server, new FlHostOptions { Port = port });
        return new FlTestServer(folder, owns, server, host);
    }

    /// <summary>Kills the server (host stopped, state closed) and starts a new one on the same folder and port.</summary>
    public async Task RestartAsync(Func<string, FlServerOptions>? options = null)
    {
        int port = Url.Port;
        var layout = Server.Layout;
        await Host.DisposeAsync();
        Server.Dispose();
        Server = new FlServer((options ?? (f => Options(f)))(Folder), layout, new float[layout.TotalLength]);
        Host = await FlServerHost.StartAsync(Server, new FlHostOptions { Port = port });
    }

    public FlClient Client(ILocalTrainer trainer, int chunkBytes = FlServer.MaxChunkBytes) =>
        new(new FlClientOptions { Server = Url, Token = Token, RetryFor = TimeSpan.FromSeconds(20), HeartbeatInterval = TimeSpan.FromMilliseconds(200), ChunkBytes = chunkBytes }, trainer);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        Server.Dispose();
        if (_ownsFolder)
            try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
