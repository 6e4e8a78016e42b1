using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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
/// Runs a <see cref="FlServer"/> behind gRPC on Kestrel (HTTP/2 only; TLS optional). Message size is bounded
/// (1 MiB chunks plus framing), so large updates always arrive as streams of chunks. Logging is off (the library
/// does not write to the console); unexpected errors are reported to <see cref="Errors"/>.
/// </summary>
public sealed class FlServerHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FlServerHost(WebApplication app, FlServer server, Uri url)
    {
        _app = app;
        Server = server;
        Url = url;
    }

    public FlServer Server { get; }

    /// <summary>The bound address, e.g. http://127.0.0.1:50123.</summary>
    public Uri Url { get; }

    /// <summary>Unexpected exceptions raised while serving a call (the call answers Internal; serving goes on).</summary>
    public static event Action<Exception>? Errors;

    public static async Task<FlServerHost> StartAsync(FlServer server, FlHostOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        options ??= new FlHostOptions();
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
        builder.Services.AddSingleton(new FlGrpcService(server, e => Errors?.Invoke(e)));
        var app = builder.Build();
        app.MapGrpcService<FlGrpcService>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new FlServerHost(app, server, new Uri(address));
    }

    /// <summary>Stops listening (the <see cref="FlServer"/> is not disposed).</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
