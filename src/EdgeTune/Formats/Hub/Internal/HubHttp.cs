using System.Net;
using System.Net.Http.Headers;

namespace EdgeTune.Formats.Hub.Internal;

/// <summary>
/// The HTTP side of the Hub client: builds resolve/api URLs, sends requests, follows redirects by hand
/// (so the token is only ever sent to the Hub endpoint's own scheme/host/port, never to a CDN it
/// redirects to), and turns failures into <see cref="HubException"/>s that say what to do.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;
    private readonly HttpClient _client;
    private readonly HubOptions _options;

    public HubHttp(HubOptions options, HttpMessageHandler? handler, bool disposeHandler)
    {
        _options = options;
        if (handler is null)
        {
            handler = new SocketsHttpHandler
            {
                AllowAutoRedirect = false, // redirects are followed here, with the token policy above
                AutomaticDecompression = DecompressionMethods.None,
                ConnectTimeout = TimeSpan.FromSeconds(10),
            };
            disposeHandler = true;
        }
        _client = new HttpClient(handler, disposeHandler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public void Dispose() => _client.Dispose();

    /// <summary><c>{endpoint}/{org}/{name}/resolve/{revision}/{file}</c> (datasets: <c>{endpoint}/datasets/{org}/...</c>),
    /// revision fully escaped (refs/pr/1 → refs%2Fpr%2F1).</summary>
    public Uri ResolveUri(HubRepoId repo, string filename)
    {
        HubCache.ToRelativePath(filename); // validates
        string file = string.Join('/', filename.Split('/').Select(Uri.EscapeDataString));
        return new Uri($"{Base}/{(repo.Type == HubRepoType.Dataset ? "datasets/" : "")}{Uri.EscapeDataString(repo.Owner)}/{Uri.EscapeDataString(repo.Name)}/resolve/{Uri.EscapeDataString(repo.Revision)}/{file}");
    }

    /// <summary><c>{endpoint}/api/models/{org}/{name}/revision/{revision}</c> (datasets: <c>/api/datasets/...</c>).</summary>
    public Uri RepoInfoUri(HubRepoId repo) =>
        new($"{Base}/api/{(repo.Type == HubRepoType.Dataset ? "datasets" : "models")}/{Uri.EscapeDataString(repo.Owner)}/{Uri.EscapeDataString(repo.Name)}/revision/{Uri.EscapeDataString(repo.Revision)}");

    private string Base => _options.Endpoint.AbsoluteUri.TrimEnd('/');

    /// <summary>
    /// Sends a request and follows redirects. A relative <c>Location</c> (a renamed repository) is always
    /// followed; an absolute one (the LFS/CDN host) only when <paramref name="followAbsolute"/> (downloads),
    /// otherwise the 3xx response itself is returned, as huggingface_hub does for metadata: its headers
    /// describe the LFS file. The token goes only to the endpoint's scheme/host/port. The caller disposes
    /// the response.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, bool followAbsolute, long rangeFrom,
        CancellationToken ct)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.UserAgent.TryParseAdd(_options.UserAgent);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (_options.Token is { Length: > 0 } token && SameAuthority(uri, _options.Endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (rangeFrom > 0) request.Headers.Range = new RangeHeaderValue(rangeFrom, null);

            var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is < 300 or > 399 || response.Headers.Location is null) return response;

            bool absolute = response.Headers.Location.IsAbsoluteUri;
            if (absolute && !followAbsolute) return response;
            var target = absolute ? response.Headers.Location : new Uri(uri, response.Headers.Location);
            if (hop >= MaxRedirects)
            {
                response.Dispose();
                throw new HubException(HubErrorKind.Network, $"Hub: more than {MaxRedirects} redirects starting at {uri}");
            }
            response.Dispose();
            if (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps)
                throw new HubException(HubErrorKind.Network, $"Hub: redirect from {uri} to unsupported URL {target}");
            uri = target;
        }
    }

    /// <summary>Runs a metadata request under <see cref="HubOptions.MetadataTimeout"/>, mapping
    /// transport failures to <see cref="HubErrorKind.Network"/>.</summary>
    public async Task<HttpResponseMessage> SendMetadataAsync(HttpMethod method, Uri uri, bool followAbsolute, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.MetadataTimeout);
        try
        {
            var response = await SendAsync(method, uri, followAbsolute, 0, timeout.Token).ConfigureAwait(false);
            if (method != HttpMethod.Head && response.IsSuccessStatusCode)
                await response.Content.LoadIntoBufferAsync(timeout.Token).ConfigureAwait(false);
            return response;
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new HubException(HubErrorKind.Network, $"Hub: no answer from {uri} within {_options.MetadataTimeout.TotalSeconds:0.#} s (set HF_HUB_ETAG_TIMEOUT to wait longer)", e);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            throw new HubException(HubErrorKind.Network, $"Hub: could not reach {uri}: {e.Message}", e);
        }
    }

    public static bool IsTransportFailure(Exception e) =>
        e is HttpRequestException { StatusCode: null } or IOException or System.Net.Sockets.SocketException;

    public static bool SameAuthority(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    /// <summary>The error for a failed response, naming the repo, revision and file.</summary>
    public static HubException ErrorFor(HttpResponseMessage response, HubRepoId repo, string? filename)
    {
        int status = (int)response.StatusCode;
        string code = Header(response, "X-Error-Code") ?? "";
        string serverMessage = Header(response, "X-Error-Message") is string m ? $" (server: {m})" : "";
        string what = filename is null ? $"repository '{repo.RepoId}' at revision '{repo.Revision}'"
                                       : $"file '{filename}' in repository '{repo.RepoId}' at revision '{repo.Revision}'";
        if (status is 401 or 403)
        {
            string gated = code == "GatedRepo" ? "is gated: accept its terms on the Hub page, then " : "is gated or private (or does not exist): ";
            return new HubException(HubErrorKind.Unauthorized,
                $"Hub: access denied ({status}) to {what}. The repository {gated}set HF_TOKEN to a token with read access " +
                $"(or log in with `huggingface-cli login`, which writes HF_HOME/token){serverMessage}") { StatusCode = status, ServerErrorCode = code.Length > 0 ? code : null };
        }
        if (status == 404)
        {
            string detail = code switch
            {
                "RepoNotFound" => $"repository '{repo.RepoId}' does not exist (or is private: set HF_TOKEN)",
                "RevisionNotFound" => $"revision '{repo.Revision}' does not exist in '{repo.RepoId}'",
                "EntryNotFound" => $"file '{filename}' does not exist in '{repo.RepoId}' at revision '{repo.Revision}'",
                _ => $"{what} was not found",
            };
            return new HubException(HubErrorKind.NotFound, $"Hub: 404 Not Found: {detail}{serverMessage}") { StatusCode = status, ServerErrorCode = code.Length > 0 ? code : null };
        }
        return new HubException(HubErrorKind.Network,
            $"Hub: HTTP {status} {response.ReasonPhrase} for {what} at {response.RequestMessage?.RequestUri}{serverMessage}") { StatusCode = status, ServerErrorCode = code.Length > 0 ? code : null };
    }

    /// <summary>A response header (or content header) value, or null.</summary>
    public static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.TryGetValues(name, out var values)) return values.FirstOrDefault();
        if (response.Content.Headers.TryGetValues(name, out values)) return values.FirstOrDefault();
        return null;
    }

    /// <summary>An etag without W/ and quotes, as huggingface_hub normalizes it.</summary>
    public static string NormalizeEtag(string etag)
    {
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }
}
