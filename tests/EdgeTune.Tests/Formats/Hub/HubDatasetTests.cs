using EdgeTune.Formats.Hub;
using EdgeTune.Tests.Text.Datasets;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;
using EdgeTune.Training.FineTuning;
using static EdgeTune.Tests.Text.Datasets.DataFileWriters;

namespace EdgeTune.Tests.Formats.Hub;

/// <summary><c>hf://datasets/...</c>: parsing, split selection, and a fake Hub on loopback serving Parquet shards
/// that are downloaded into the shared cache, loaded, and trained on again from the cache offline.</summary>
public class HubDatasetTests
{
    private static readonly ByteTokenizer Tok = new();
    private static readonly ChatTemplate ChatMl = new(ChatTemplates.ChatML);

    [Fact]
    public void Parse_ReadsRepoRevisionConfigAndSplit()
    {
        var a = HubDatasetReference.Parse("hf://datasets/org/name");
        Assert.Equal((HubRepoType.Dataset, "org/name", "main", null, null), (a.Repo.Type, a.Repo.RepoId, a.Repo.Revision, a.Config, a.Split));
        Assert.Equal("datasets--org--name", a.Repo.CacheFolderName);
        var b = HubDatasetReference.Parse("hf://datasets/org/name@v1.0/test");
        Assert.Equal(("v1.0", null, "test"), (b.Repo.Revision, b.Config, b.Split));
        var c = HubDatasetReference.Parse("hf://datasets/org/name@refs%2Fconvert%2Fparquet/default/train");
        Assert.Equal(("refs/convert/parquet", "default", "train"), (c.Repo.Revision, c.Config, c.Split));
        Assert.Equal("hf://datasets/org/name@refs%2Fconvert%2Fparquet/default/train", c.ToString());
        Assert.Equal(c, HubDatasetReference.Parse(c.ToString()));

        Assert.Contains("only Hub datasets", Assert.Throws<FormatException>(() => HubDatasetReference.Parse("hf://org/model")).Message);
        Assert.Throws<FormatException>(() => HubDatasetReference.Parse("hf://datasets/org"));
        Assert.Throws<FormatException>(() => HubDatasetReference.Parse("hf://datasets/org/bad--name"));
        Assert.Throws<FormatException>(() => HubDatasetReference.Parse("hf://datasets/org/name/a/b/c"));
        Assert.True(HubDatasetReference.IsHubReference("HF://datasets/x/y"));
        Assert.False(HubDatasetReference.IsHubReference("data/train.jsonl"));
        Assert.Throws<ArgumentException>(() => TrainingDataset.Load("hf://datasets/org/name", Tok, null));
    }

    [Fact]
    public void Select_FindsTheSplitsFiles()
    {
        HubDatasetReference Ref(string s) => HubDatasetReference.Parse("hf://datasets/org/name" + s);
        string[] files =
        [
            "README.md", ".gitattributes", "dataset_info.json", "data/train.jsonl",
            "data/train-00001-of-00002.parquet", "data/train-00000-of-00002.parquet", "data/test-00000-of-00001.parquet",
        ];
        Assert.Equal(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"], HubDatasetFiles.Select(files, Ref("")));
        Assert.Equal(["data/test-00000-of-00001.parquet"], HubDatasetFiles.Select(files, Ref("/test")));
        var e = Assert.Throws<HubException>(() => HubDatasetFiles.Select(files, Ref("/validation")));
        Assert.Equal(HubErrorKind.NotFound, e.Kind);
        Assert.Contains("no data files of split 'validation'", e.Message);

        Assert.Equal(["rows.jsonl"], HubDatasetFiles.Select(["README.md", "rows.jsonl"], Ref(""))); // no split named: all of it
        Assert.Throws<HubException>(() => HubDatasetFiles.Select(["rows.jsonl"], Ref("/test")));
        Assert.Throws<HubException>(() => HubDatasetFiles.Select(["README.md"], Ref("")));

        string[] converted = ["default/train/0000.parquet", "default/train/0001.parquet", "extra/train/0000.parquet", "default/partial-test/0000.parquet"];
        Assert.Equal(["default/train/0000.parquet", "default/train/0001.parquet"], HubDatasetFiles.Select(converted, Ref("")));
        Assert.Equal(["extra/train/0000.parquet"], HubDatasetFiles.Select(converted, Ref("/extra/train")));
        Assert.Equal(["default/partial-test/0000.parquet"], HubDatasetFiles.Select(converted, Ref("/test")));
        Assert.Contains("several configs", Assert.Throws<HubException>(() => HubDatasetFiles.Select(["a/train/0.parquet", "b/train/0.parquet"], Ref(""))).Message);
        Assert.Contains("no config 'zzz'", Assert.Throws<HubException>(() => HubDatasetFiles.Select(converted, Ref("/zzz/train"))).Message);
    }

    private static MessagesRow Chat(int id, string user, string assistant) => new() { Id = id, Messages = [T("user", user), T("assistant", assistant)] };

    private static FakeRepo ChatDataset(string id = "org/chat") => new FakeRepo { Id = id, Dataset = true }
        .Add("README.md", "# chat")
        .Add("data/train-00000-of-00002.parquet", ParquetBytes(Enumerable.Range(0, 6).Select(i => Chat(i, $"What is {i}+1?", $"{i + 1}."))), lfs: true)
        .Add("data/train-00001-of-00002.parquet", ParquetBytes(Enumerable.Range(6, 4).Select(i => Chat(i, $"What is {i}+1?", $"{i + 1}."))), lfs: true)
        .Add("data/test-00000-of-00001.parquet", ParquetBytes([Chat(99, "Test?", "Yes.")]), lfs: true);

    private static HubOptions Options(Uri endpoint, string cache, bool offline = false) => new()
    {
        Endpoint = endpoint, CacheDirectory = cache, Offline = offline,
        MetadataTimeout = TimeSpan.FromSeconds(5), ReadTimeout = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task HubDataset_DownloadsTheSplitIntoTheCache_LoadsIt_AndTrainsFromTheCacheOffline()
    {
        using var cache = new TempDir();
        using var run = new TempDir();
        FakeRepo repo;
        await using (var hub = new FakeHub())
        {
            repo = hub.AddRepo(ChatDataset());
            var ds = await TrainingDataset.LoadAsync("hf://datasets/org/chat", Tok, ChatMl, new DatasetOptions { SeqLen = 128, Pack = false },
                Options(hub.Hub.BaseUri, cache.Path));
            var r = ds.Report;
            Assert.Equal(("hf://datasets/org/chat", DataFormat.Chat, DataFileKind.Parquet), (r.Source, r.Format, r.FileKind));
            Assert.Equal((10, 10, 0), (r.RowsRead, r.RowsUsed, r.RowsRejected)); // both train shards, not the test split
            Assert.Equal(10, ds.Train.Count);
            Assert.Equal("1.<|im_end|>", Tok.Decode(ds.Train[0].Targets.Where(t => t >= 0).ToArray()));
            Assert.Contains(hub.AllRequests, q => q.Target.StartsWith("/api/datasets/org/chat/revision/main", StringComparison.Ordinal));
            Assert.DoesNotContain(hub.AllRequests, q => q.Target.Contains("test-00000", StringComparison.Ordinal));
        }

        // Laid out as huggingface_hub lays out datasets, beside the models.
        string snapshot = Path.Combine(cache.Path, "datasets--org--chat", "snapshots", repo.Commit);
        Assert.Equal(repo.Files["data/train-00001-of-00002.parquet"].Bytes, File.ReadAllBytes(Path.Combine(snapshot, "data", "train-00001-of-00002.parquet")));
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(cache.Path, "datasets--org--chat", "refs", "main")));

        // The Hub is gone: offline, the cached split trains through FineTuneJob.
        var dead = HubTestKit.DeadEndpoint();
        var result = await FineTuneJob.RunAsync(new FineTuneOptions
        {
            Data = "hf://datasets/org/chat",
            Hub = Options(dead, cache.Path, offline: true),
            OutputDir = run.Path,
            ValidationFraction = 0,
            Training = new() { Steps = 2, SeqLen = 64, MicroBatch = 2, EvalEvery = 0, CheckpointEvery = 0, WarmupSteps = 1 },
            SampleTokens = 2,
        });
        Assert.Equal(2, result.Training.LastStep);
        Assert.All(result.Training.Losses, l => Assert.True(double.IsFinite(l) && l > 0));
        Assert.Equal((DataFormat.Chat, 10), (result.Data.Format, result.Data.RowsUsed));
        Assert.Contains("\"file_kind\":\"Parquet\"", File.ReadAllText(Path.Combine(run.Path, "data_report.json")));

        // A split that was never downloaded is not complete in the cache.
        var e = await Assert.ThrowsAsync<HubException>(() => TrainingDataset.LoadAsync("hf://datasets/org/chat/test", Tok, ChatMl, null,
            Options(dead, cache.Path, offline: true)));
        Assert.Equal(HubErrorKind.NotInCache, e.Kind);
        Assert.Contains("missing: data/test-00000-of-00001.parquet", e.Message);
        // Online but unreachable: the cached train split still answers.
        var again = await TrainingDataset.LoadAsync("hf://datasets/org/chat/train", Tok, ChatMl, null, Options(dead, cache.Path));
        Assert.Equal(10, again.Report.RowsRead);
    }

    [Fact]
    public async Task HubDataset_WithoutDataFiles_IsReadFromTheParquetConversion()
    {
        using var cache = new TempDir();
        await using var hub = new FakeHub();
        hub.AddRepo(new FakeRepo { Id = "org/scripted", Dataset = true }.Add("README.md", "# rows made by a script").Add("scripted.py", "# builder"));
        var converted = hub.AddRepo(new FakeRepo { Id = "org/scripted", Dataset = true, Revision = HubDatasetFiles.ParquetConversionRevision }
            .Add("default/train/0000.parquet", ParquetBytes(new[] { new PromptCompletionRow { Prompt = "2+2=", Completion = " 4" } }), lfs: true));
        var ds = await TrainingDataset.LoadAsync("hf://datasets/org/scripted", Tok, null, null, Options(hub.Hub.BaseUri, cache.Path));
        Assert.Equal((DataFormat.PromptCompletion, 1), (ds.Report.Format, ds.Report.RowsUsed));
        Assert.True(File.Exists(Path.Combine(cache.Path, "datasets--org--scripted", "snapshots", converted.Commit, "default", "train", "0000.parquet")));

        var offline = await TrainingDataset.LoadAsync("hf://datasets/org/scripted", Tok, null, null, Options(hub.Hub.BaseUri, cache.Path, offline: true));
        Assert.Equal(1, offline.Report.RowsUsed);

        var missing = await Assert.ThrowsAsync<HubException>(() => TrainingDataset.LoadAsync("hf://datasets/org/none", Tok, null, null, Options(hub.Hub.BaseUri, cache.Path)));
        Assert.Equal(HubErrorKind.NotFound, missing.Kind);
    }
}
