using System.Text.Json;
using EdgeTune.Formats.Hub;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats.Hub;

/// <summary>A temporary cache folder, deleted afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "edgetune-hub-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Shared pieces of the Hub tests: a small sharded model repo and a client wired to the fake Hub.</summary>
public static class HubTestKit
{
    public static byte[] RandomBytes(int length, ulong seed)
    {
        var rng = new Rng(seed);
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) bytes[i] = (byte)rng.NextUInt64();
        return bytes;
    }

    /// <summary>config, tokenizer and generation files (plain git files), an index and two LFS shards,
    /// plus files a model folder does not need (README, a .bin) that must not be downloaded.</summary>
    public static FakeRepo TinyModel(string id = "org/tiny", bool gated = false)
    {
        string index = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["metadata"] = new Dictionary<string, long> { ["total_size"] = 500_000 },
            ["weight_map"] = new Dictionary<string, string>
            {
                ["model.embed_tokens.weight"] = "model-00001-of-00002.safetensors",
                ["model.norm.weight"] = "model-00002-of-00002.safetensors",
                ["lm_head.weight"] = "model-00002-of-00002.safetensors",
            },
        });
        return new FakeRepo { Id = id, Gated = gated }
            .Add("config.json", "{\"model_type\":\"llama\",\"hidden_size\":8}")
            .Add("generation_config.json", "{\"do_sample\":false}")
            .Add("tokenizer.json", "{\"version\":\"1.0\"}")
            .Add("tokenizer_config.json", "{\"bos_token\":\"<s>\"}")
            .Add("model.safetensors.index.json", index)
            .Add("model-00001-of-00002.safetensors", RandomBytes(300_000, 1), lfs: true)
            .Add("model-00002-of-00002.safetensors", RandomBytes(200_001, 2), lfs: true)
            .Add("README.md", "# tiny")
            .Add("pytorch_model.bin", RandomBytes(1000, 3), lfs: true)
            .Add("sub/nested.json", "{\"nested\":true}");
    }

    /// <summary>
    /// The real stories260K model as a Hub repository would hold it: config.json (a plain git file),
    /// model.safetensors (HF names and q/k layout, exported from llama2.c's stories260K.bin; LFS) and the
    /// SentencePiece tokenizer.model it was trained with (LFS). Skips the calling test without the assets.
    /// </summary>
    public static FakeRepo Stories260K(string id = "karpathy/stories260K")
    {
        string bin = TestAssets.Require("stories260K/stories260K.bin");
        byte[] tokenizerModel = File.ReadAllBytes(TestAssets.Require("stories260K/tok512.model"));
        using var scratch = new TempDir();
        string folder = System.IO.Path.Combine(scratch.Path, "hf");
        using (var loaded = EdgeTune.Models.ModelLoader.Load(bin))
            EdgeTune.Formats.Export.ModelExporter.ExportSafetensors((EdgeTune.Models.DecoderModel)loaded.Model, folder);
        return new FakeRepo { Id = id }
            .Add("config.json", File.ReadAllBytes(System.IO.Path.Combine(folder, "config.json")))
            .Add("model.safetensors", File.ReadAllBytes(System.IO.Path.Combine(folder, "model.safetensors")), lfs: true)
            .Add("tokenizer.model", tokenizerModel, lfs: true)
            .Add("README.md", "# stories260K");
    }

    public static readonly string[] ModelFiles =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    ];

    public static HubClient Client(FakeHub hub, string cacheDir, string? token = null, bool offline = false) =>
        Client(hub.Hub.BaseUri, cacheDir, token, offline);

    public static HubClient Client(Uri endpoint, string cacheDir, string? token = null, bool offline = false) =>
        new(new HubOptions
        {
            Endpoint = endpoint,
            CacheDirectory = cacheDir,
            Token = token,
            Offline = offline,
            MaxResumeAttempts = 3,
            MetadataTimeout = TimeSpan.FromSeconds(5),
            ReadTimeout = TimeSpan.FromSeconds(5),
        }, new SocketsHttpHandler { AllowAutoRedirect = false }, disposeHandler: true);

    /// <summary>Collects progress reports synchronously (Progress&lt;T&gt; would post them later).</summary>
    public sealed class ProgressLog : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    /// <summary>A port nothing listens on (bound by the OS, then released): connections are refused.</summary>
    public static Uri DeadEndpoint()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}");
    }
}
