using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Cluster;
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

/// <summary>A loopback server on a temporary state folder, torn down with the test: one Orleans silo (localhost clustering)
/// whose coordinator grain runs the <see cref="FlServer"/>, as <c>edgetune fl serve</c> starts it.</summary>
internal sealed class FlTestServer : IAsyncDisposable
{
    public const string Token = "test-token";
    private readonly bool _ownsFolder;

    private FlTestServer(string folder, bool ownsFolder, FlServerHost host)
    {
        (Folder, _ownsFolder, Host) = (folder, ownsFolder, host);
    }

    public string Folder { get; }
    public FlServer Server => Host.Server;
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
        var host = await FlServerHost.StartSiloAsync(new FlSiloOptions { Server = (options ?? (f => Options(f)))(folder), Layout = layout }, new FlHostOptions { Port = port });
        return new FlTestServer(folder, owns, host);
    }

    /// <summary>Kills the server (host stopped, state closed) and starts a new one on the same folder and port.</summary>
    public async Task RestartAsync(Func<string, FlServerOptions>? options = null)
    {
        int port = Url.Port;
        var layout = Server.Layout;
        await Host.DisposeAsync(); // stops the silo and closes the server's state
        Host = await FlServerHost.StartSiloAsync(new FlSiloOptions { Server = (options ?? (f => Options(f)))(Folder), Layout = layout }, new FlHostOptions { Port = port });
    }

    public FlClient Client(ILocalTrainer trainer, int chunkBytes = FlServer.MaxChunkBytes) =>
        new(new FlClientOptions { Server = Url, Token = Token, RetryFor = TimeSpan.FromSeconds(20), HeartbeatInterval = TimeSpan.FromMilliseconds(200), ChunkBytes = chunkBytes }, trainer);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        if (_ownsFolder)
            try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
