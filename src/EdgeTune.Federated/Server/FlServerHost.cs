using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using EdgeTune.Federated.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace EdgeTune.Federated.Server;

/// <summary>Where and how the gRPC endpoint listens.</summary>
public sealed record FlHostOptions
{
    /// <summary>Address to bind (default loopback: 127.0.0.1). "0.0.0.0" listens on every interface.</summary>
    public string Address { get; init; } = "127.0.0.1";

    /// <summary>Port (0: any free port; see <see cref="FlServerHost.Url"/>).</summary>
    public int Port { get; init; }

    /// <summary>A PKCS#12 (.pfx) certificate: the endpoint serves TLS (https) when set, plaintext HTTP/2 otherwise.</summary>
    public string? CertificatePath { get; init; }

    public string? CertificatePassword { get; init; }
}

/// <summary>
/// Serves the federated protocol over gRPC on Kestrel (HTTP/2 only; TLS optional), either for a <see cref="FlServer"/> in
/// this process (<see cref="StartAsync"/>) or as an Orleans silo (<see cref="StartSiloAsync"/>) whose endpoint talks to the
/// task's coordinator grain. Message size is bounded (1 MiB chunks plus framing), so large updates always arrive as
/// streams of chunks. Logging is off (the library does not write to the console); unexpected errors are reported to
/// <see cref="Errors"/>.
/// </summary>
public sealed class FlServerHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FlServer? _server;
    private readonly FlSiloServices? _silo;

    private FlServerHost(WebApplication app, FlServer? server, FlSiloServices? silo, Uri url)
    {
        (_app, _server, _silo, Url) = (app, server, silo, url);
    }

    /// <summary>The federated server in this process: the one given to <see cref="StartAsync"/>, or a lone silo's coordinator
    /// (made on first use here when the coordinator grain has not been activated yet). In a cluster of several silos the
    /// coordinator runs on one of them: elsewhere this throws (see <see cref="LocalServer"/>).</summary>
    public FlServer Server => _server
        ?? (_silo!.Options.Standalone ? _silo.Server(_silo.Options.Task, _app.Services.GetRequiredService<IGrainFactory>())
            : _silo.ExistingServer ?? throw new InvalidOperationException("the task's coordinator is not on this silo"));

    /// <summary>The coordinator's server when it runs in this process, else null.</summary>
    public FlServer? LocalServer => _server ?? _silo!.ExistingServer;

    /// <summary>The bound address, e.g. http://127.0.0.1:50123.</summary>
    public Uri Url { get; }

    /// <summary>Unexpected exceptions raised while serving a call (the call answers Internal; serving goes on).</summary>
    public static event Action<Exception>? Errors;

    /// <summary>Serves <paramref name="server"/> (which the host does not own).</summary>
    public static async Task<FlServerHost> StartAsync(FlServer server, FlHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        var app = Build(options ?? new FlHostOptions(), _ => { }, _ => new LocalFlService(server));
        return new FlServerHost(app, server, null, await StartAppAsync(app, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Starts one Orleans silo with localhost clustering (a cluster of one, in this process) hosting the task's coordinator
    /// and aggregator grains, and the gRPC endpoint in front of them. The coordinator keeps the task's state in the SQLite
    /// store of <see cref="FlServerOptions.StateFolder"/>, as a single-process server does. With
    /// <see cref="FlSiloOptions.ClusterConnectionString"/>, membership and state are in PostgreSQL instead (an unreachable
    /// database throws <see cref="Storage.FlDatabaseUnreachableException"/> before the silo starts). Disposing the host
    /// stops the silo and closes the server.
    /// </summary>
    public static async Task<FlServerHost> StartSiloAsync(FlSiloOptions silo, FlHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Validate();
        if (silo.ClusterConnectionString is { } connection) PgClustering.CheckReachable(connection);
        var services = new FlSiloServices(silo);
        int siloPort = silo.SiloPort > 0 ? silo.SiloPort : FreePort(), gatewayPort = silo.GatewayPort > 0 ? silo.GatewayPort : FreePort();
        var app = Build(options ?? new FlHostOptions(), builder =>
        {
            builder.Services.AddSingleton(services);
            builder.UseOrleans(o =>
            {
                var primary = silo.PrimarySiloPort is int p ? new IPEndPoint(IPAddress.Loopback, p) : null;
                if (silo.ClusterConnectionString is { } cs) o.UsePostgresClustering(cs, silo.SiloAddress, siloPort, gatewayPort, "edgetune-fl", PgClustering.ClusterId(silo.Task));
                else o.UseLocalhostClustering(siloPort, gatewayPort, primary, serviceId: "edgetune-fl", clusterId: PgClustering.ClusterId(silo.Task));
                o.Configure<SiloMessagingOptions>(m => m.ResponseTimeout = TimeSpan.FromSeconds(30));
                // a silo that stops answering is declared dead after 3 missed probes of 5 s (Orleans' defaults), so its grains
                // move on within about 15 s; two votes where three or more silos live. Probes of 2 s declared live silos dead on
                // a loaded 2-core machine (3 silos, 300 clients and PostgreSQL): a silo stalled for 6 s by the others was voted
                // dead by the one peer left after the kill, and stopped itself
                o.Configure<ClusterMembershipOptions>(m =>
                {
                    m.ProbeTimeout = TimeSpan.FromSeconds(5);
                    m.NumMissedProbesLimit = 3;
                    m.NumVotesForDeathDeclaration = 2;
                    m.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                    m.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
                });
            });
        }, sp => new GrainFlService(sp.GetRequiredService<IGrainFactory>(), silo.Task));
        try
        {
            var url = await StartAppAsync(app, cancellationToken).ConfigureAwait(false);
            var host = new FlServerHost(app, null, services, url);
            if (silo.Standalone) _ = host.Server; // one silo: the coordinator's server opens its state now (errors in it surface here)
            return host;
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static WebApplication Build(FlHostOptions options, Action<WebApplicationBuilder> configure, Func<IServiceProvider, IFlService> service)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        X509Certificate2? cert = options.CertificatePath is { } path
            ? X509CertificateLoader.LoadPkcs12FromFile(path, options.CertificatePassword)
            : null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null; // streams are bounded per message and per upload instead
            k.Listen(IPAddress.Parse(options.Address), options.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                if (cert is not null) l.UseHttps(cert);
            });
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = FlServer.MaxChunkBytes + (64 << 10);
            o.MaxSendMessageSize = FlServer.MaxChunkBytes + (64 << 10);
            o.EnableDetailedErrors = false;
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(10));
        configure(builder);
        builder.Services.AddSingleton(sp => new FlGrpcService(service(sp), e => Errors?.Invoke(e)));
        var app = builder.Build();
        app.MapGrpcService<FlGrpcService>();
        return app;
    }

    private static async Task<Uri> StartAppAsync(WebApplication app, CancellationToken cancellationToken)
    {
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Stops listening; a silo also stops and closes its coordinator's server (a <see cref="FlServer"/> given to
    /// <see cref="StartAsync"/> is not disposed).</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _silo?.Dispose();
    }
}
