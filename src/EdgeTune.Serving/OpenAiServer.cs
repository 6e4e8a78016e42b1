using System.Net;
using EdgeTune.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTune.Serving;

/// <summary>
/// An OpenAI-compatible HTTP server on Kestrel over one <see cref="LocalChatClient"/>: <c>GET /v1/models</c> (the base
/// model, then each adapter), <c>POST /v1/chat/completions</c> and <c>POST /v1/completions</c>, whole or streamed as
/// server-sent events (<c>data: {chunk}</c> … <c>data: [DONE]</c>). The request's <c>model</c> picks the base model or
/// one of its LoRA adapters. Admission is bounded (<see cref="OpenAiServerOptions.MaxConcurrency"/> running,
/// <see cref="OpenAiServerOptions.MaxQueue"/> waiting, 429 beyond), bodies are size-limited (413), an optional API key
/// is checked (401), an unknown model is 404; every error has OpenAI's shape
/// <c>{"error":{"message","type","param","code"}}</c>. Logging is off (the library writes nothing to the console).
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly AdmissionGate _gate;

    private OpenAiServer(WebApplication app, AdmissionGate gate, Uri url)
    {
        _app = app;
        _gate = gate;
        Url = url;
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8080 (the real port when 0 was asked for).</summary>
    public Uri Url { get; }

    /// <summary>Requests running or queued now.</summary>
    public int ActiveRequests => _gate.Admitted;

    /// <summary>Starts listening; the client (and its model) stay owned by the caller and must outlive the server.</summary>
    public static async Task<OpenAiServer> StartAsync(LocalChatClient client, OpenAiServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new OpenAiServerOptions();
        options.Validate();
        IPAddress address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip
            : throw new ArgumentException($"host '{options.Host}' is not an IP address (or localhost)", nameof(options));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Listen(address, options.Port);
        });
        var app = builder.Build();
        var gate = new AdmissionGate(options.MaxConcurrency, options.MaxQueue);
        try
        {
            var endpoints = new OpenAiEndpoints(client, options, gate);
            app.Use(endpoints.AuthorizeAsync);
            app.MapGet("/v1/models", endpoints.ModelsAsync);
            app.MapPost("/v1/chat/completions", endpoints.ChatAsync);
            app.MapPost("/v1/completions", endpoints.CompletionsAsync);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new OpenAiServer(app, gate, new Uri(bound));
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            gate.Dispose();
            throw;
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled, then stops (in-flight requests get a moment to end).</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            await _app.StopAsync(stop.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }
}
