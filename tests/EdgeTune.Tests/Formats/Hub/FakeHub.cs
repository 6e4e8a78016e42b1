using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace EdgeTune.Tests.Formats.Hub;

/// <summary>A repository the fake Hub serves. LFS files are redirected to the second ("CDN") server.</summary>
public sealed class FakeRepo
{
    public required string Id { get; init; }
    public string Commit { get; init; } = Convert.ToHexStringLower(SHA1.HashData(Guid.NewGuid().ToByteArray()));
    public Dictionary<string, (byte[] Bytes, bool Lfs)> Files { get; } = new(StringComparer.Ordinal);
    public bool Gated { get; init; }
    /// <summary>A dataset repo (served under /datasets/ and /api/datasets/).</summary>
    public bool Dataset { get; init; }
    /// <summary>The branch or ref this repo answers for (besides its commit), e.g. refs/convert/parquet.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>The key the fake Hub files it under.</summary>
    public string Key => (Dataset ? "datasets/" : "") + Id + "@" + Revision;

    public FakeRepo Add(string name, byte[] bytes, bool lfs = false) { Files[name] = (bytes, lfs); return this; }
    public FakeRepo Add(string name, string text) => Add(name, Encoding.UTF8.GetBytes(text));

    /// <summary>The etag huggingface_hub would store: sha256 for LFS files, the git blob oid otherwise.</summary>
    public string EtagOf(string name)
    {
        var (bytes, lfs) = Files[name];
        if (lfs) return Convert.ToHexStringLower(SHA256.HashData(bytes));
        byte[] header = Encoding.ASCII.GetBytes($"blob {bytes.Length}\0");
        return Convert.ToHexStringLower(SHA1.HashData([.. header, .. bytes]));
    }
}

/// <summary>
/// A fake Hugging Face Hub on loopback: the Hub host (api listing, resolve with X-Repo-Commit/ETag,
/// 302 for LFS files, 401 for gated repos without the token, 404 with X-Error-Code) and a second
/// "CDN" host serving LFS blobs with Range support, optional dropped connections, a mode that ignores
/// Range, and a mode that corrupts bytes.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    public const string GoodToken = "hf_test_token";
    private readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
    private int _dropsLeft;

    public FakeHub()
    {
        Hub = new LoopbackHttpServer(IPAddress.Loopback, HandleHub);
        Cdn = LoopbackHttpServer.OnSecondLoopback(HandleCdn);
    }

    public LoopbackHttpServer Hub { get; }
    public LoopbackHttpServer Cdn { get; }

    /// <summary>The next N CDN downloads send only half of the body, then close the connection.</summary>
    public int DropNextDownloads { set => _dropsLeft = value; }

    /// <summary>The CDN answers every GET with 200 and the whole file, ignoring Range.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>The CDN flips one byte of every body (same length): the sha256 check must catch it.</summary>
    public bool Corrupt { get; set; }

    public FakeRepo AddRepo(FakeRepo repo)
    {
        _repos[repo.Key] = repo;
        foreach (var name in repo.Files.Keys.Where(n => repo.Files[n].Lfs)) _blobs[repo.EtagOf(name)] = repo.Files[name].Bytes;
        return repo;
    }

    public IReadOnlyList<LoopbackRequest> AllRequests => [.. Hub.Requests, .. Cdn.Requests];

    public void ClearRequests() { Hub.Requests.Clear(); Cdn.Requests.Clear(); }

    private LoopbackResponse HandleHub(LoopbackRequest request)
    {
        string path = Uri.UnescapeDataString(request.Target.Split('?')[0]);
        // /api/models/{org}/{name}/revision/{revision} (or /api/datasets/...)
        bool apiDataset = path.StartsWith("/api/datasets/", StringComparison.Ordinal);
        if (path.StartsWith("/api/models/", StringComparison.Ordinal) || apiDataset)
        {
            string[] p = path[(apiDataset ? "/api/datasets/" : "/api/models/").Length..].Split('/', 4);
            if (p.Length < 4 || p[2] != "revision") return LoopbackResponse.Text(400, "bad api path");
            if (Check(request, (apiDataset ? "datasets/" : "") + p[0] + "/" + p[1], p[3], out var repo) is { } error) return error;
            string json = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["id"] = repo!.Id,
                ["sha"] = repo.Commit,
                ["siblings"] = repo.Files.Keys.Select(f => new Dictionary<string, string> { ["rfilename"] = f }).ToList(),
            });
            return LoopbackResponse.Text(200, json, ("Content-Type", "application/json"));
        }
        // /{org}/{name}/resolve/{revision}/{file}; the revision was escaped (refs%2Fpr%2F1), so split the raw target
        string target = request.Target.Split('?')[0].TrimStart('/');
        bool dataset = target.StartsWith("datasets/", StringComparison.Ordinal);
        string[] raw = (dataset ? target["datasets/".Length..] : target).Split('/', 5);
        if (raw.Length == 5 && raw[2] == "resolve")
        {
            string repoId = (dataset ? "datasets/" : "") + raw[0] + "/" + raw[1], revision = Uri.UnescapeDataString(raw[3]), file = Uri.UnescapeDataString(raw[4]);
            if (repoId == "old-org/renamed") // a renamed repo: relative redirect on the same host
                return new LoopbackResponse(307, null, [KeyValuePair.Create("Location", $"/org/tiny/resolve/{raw[3]}/{raw[4]}")]);
            if (Check(request, repoId, revision, out var repo) is { } error) return error;
            if (!repo!.Files.TryGetValue(file, out var entry))
                return LoopbackResponse.Text(404, "entry not found", ("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", repo.Commit));
            string etag = repo.EtagOf(file);
            if (entry.Lfs)
                return new LoopbackResponse(302, null,
                [
                    KeyValuePair.Create("Location", $"{Cdn.BaseUri}lfs/{etag}?signature=xyz"),
                    KeyValuePair.Create("X-Repo-Commit", repo.Commit),
                    KeyValuePair.Create("X-Linked-Etag", $"\"{etag}\""),
                    KeyValuePair.Create("X-Linked-Size", entry.Bytes.Length.ToString()),
                    KeyValuePair.Create("ETag", "W/\"not-the-content-etag\""),
                ]);
            return new LoopbackResponse(200, entry.Bytes,
            [
                KeyValuePair.Create("X-Repo-Commit", repo.Commit),
                KeyValuePair.Create("ETag", $"\"{etag}\""),
            ]);
        }
        return LoopbackResponse.Text(404, "no route");
    }

    private LoopbackResponse? Check(LoopbackRequest request, string repoId, string revision, out FakeRepo? repo)
    {
        var all = _repos.Values.Where(r => (r.Dataset ? "datasets/" : "") + r.Id == repoId).ToList();
        repo = all.FirstOrDefault(r => revision == r.Revision || revision == r.Commit);
        if (all.Count == 0)
            return LoopbackResponse.Text(404, "repo not found", ("X-Error-Code", "RepoNotFound"));
        if (all[0].Gated && request.Header("Authorization") != "Bearer " + GoodToken)
            return LoopbackResponse.Text(401, "gated", ("X-Error-Code", "GatedRepo"), ("X-Error-Message", "Access to this model is restricted."));
        if (repo is null)
            return LoopbackResponse.Text(404, "revision not found", ("X-Error-Code", "RevisionNotFound"));
        return null;
    }

    private LoopbackResponse HandleCdn(LoopbackRequest request)
    {
        string path = request.Target.Split('?')[0];
        if (!path.StartsWith("/lfs/", StringComparison.Ordinal) || !_blobs.TryGetValue(path[5..], out var bytes))
            return LoopbackResponse.Text(404, "no such blob");
        if (Corrupt) { bytes = [.. bytes]; bytes[bytes.Length / 2] ^= 0x5A; }
        long from = 0;
        string? range = request.Header("Range");
        if (range is not null && !IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
            from = long.Parse(range[6..^1]);
        if (from > bytes.Length) return LoopbackResponse.Text(416, "");
        byte[] body = bytes[(int)from..];
        var headers = new List<KeyValuePair<string, string>> { KeyValuePair.Create("Accept-Ranges", "bytes") };
        if (from > 0) headers.Add(KeyValuePair.Create("Content-Range", $"bytes {from}-{bytes.Length - 1}/{bytes.Length}"));
        var response = new LoopbackResponse(from > 0 ? 206 : 200, body, headers);
        if (request.Method == "GET" && Interlocked.Decrement(ref _dropsLeft) >= 0) response = response with { DropAfter = body.Length / 2 };
        return response;
    }

    public async ValueTask DisposeAsync()
    {
        await Hub.DisposeAsync();
        await Cdn.DisposeAsync();
    }
}
