using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeTune.Tests.Formats.Hub;

/// <summary>A request as the loopback server saw it (header names lower-cased).</summary>
public sealed record LoopbackRequest(string Method, string Target, IReadOnlyDictionary<string, string> Headers, string Host)
{
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;
}

/// <summary>What to answer. <see cref="DropAfter"/> sends the full Content-Length but only that many
/// body bytes, then closes the connection (a dropped download).</summary>
public sealed record LoopbackResponse(int Status, byte[]? Body = null, IReadOnlyList<KeyValuePair<string, string>>? Headers = null)
{
    public int? DropAfter { get; init; }

    public static LoopbackResponse Text(int status, string body, params (string Name, string Value)[] headers) =>
        new(status, Encoding.UTF8.GetBytes(body), headers.Select(h => KeyValuePair.Create(h.Name, h.Value)).ToList());
}

/// <summary>
/// A tiny HTTP/1.1 server on a loopback address and an OS-chosen port, one request per connection
/// (Connection: close). It records every request; tests never reach beyond loopback.
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<LoopbackRequest, LoopbackResponse> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;

    public LoopbackHttpServer(IPAddress address, Func<LoopbackRequest, LoopbackResponse> handler)
    {
        _handler = handler;
        _listener = new TcpListener(address, 0);
        _listener.Start();
        var endpoint = (IPEndPoint)_listener.LocalEndpoint;
        BaseUri = new Uri($"http://{endpoint.Address}:{endpoint.Port}");
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds to 127.0.0.2 where the OS allows it (Linux, Windows), else to 127.0.0.1 (another port
    /// is still another authority for the client's token rule).</summary>
    public static LoopbackHttpServer OnSecondLoopback(Func<LoopbackRequest, LoopbackResponse> handler)
    {
        try { return new LoopbackHttpServer(IPAddress.Parse("127.0.0.2"), handler); }
        catch (SocketException) { return new LoopbackHttpServer(IPAddress.Loopback, handler); }
    }

    public Uri BaseUri { get; }

    public ConcurrentQueue<LoopbackRequest> Requests { get; } = new();

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var request = await ReadRequestAsync(stream);
                if (request is null) return;
                Requests.Enqueue(request);
                LoopbackResponse response;
                try { response = _handler(request); }
                catch (Exception e) { response = LoopbackResponse.Text(500, e.ToString()); }
                await WriteResponseAsync(stream, request, response);
            }
            catch (IOException) { }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
        }
    }

    private async Task<LoopbackRequest?> ReadRequestAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        byte[] one = new byte[1];
        while (head.Count < 65536)
        {
            int n = await stream.ReadAsync(one, _stop.Token);
            if (n == 0) return null;
            head.Add(one[0]);
            int c = head.Count;
            if (c >= 4 && head[c - 4] == '\r' && head[c - 3] == '\n' && head[c - 2] == '\r' && head[c - 1] == '\n') break;
        }
        string[] lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n");
        string[] first = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        }
        return new LoopbackRequest(first[0], first[1], headers, BaseUri.Authority);
    }

    private static async Task WriteResponseAsync(NetworkStream stream, LoopbackRequest request, LoopbackResponse response)
    {
        byte[] body = response.Body ?? [];
        var sb = new StringBuilder();
        sb.Append("HTTP/1.1 ").Append(response.Status).Append(' ').Append(Reason(response.Status)).Append("\r\n");
        bool hasLength = false;
        foreach (var (name, value) in response.Headers ?? [])
        {
            sb.Append(name).Append(": ").Append(value).Append("\r\n");
            hasLength |= name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase);
        }
        if (!hasLength) sb.Append("Content-Length: ").Append(body.Length).Append("\r\n");
        sb.Append("Connection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()));
        if (request.Method != "HEAD")
        {
            int count = response.DropAfter is int drop ? Math.Min(drop, body.Length) : body.Length;
            await stream.WriteAsync(body.AsMemory(0, count));
        }
        await stream.FlushAsync();
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK", 206 => "Partial Content", 302 => "Found", 307 => "Temporary Redirect", 401 => "Unauthorized",
        403 => "Forbidden", 404 => "Not Found", 416 => "Range Not Satisfiable", _ => "Status",
    };

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _acceptLoop; } catch (Exception) { }
        _stop.Dispose();
    }
}
