using System.Text;
using EdgeTune.Adapters;
using EdgeTune.Models.Bert;
using EdgeTune.Security;
using EdgeTune.Tests.Cli;
using EdgeTune.Tests.Models.Bert;
using EdgeTune.Training;
using EdgeTune.Tests.Training;

namespace EdgeTune.Tests.Security;

/// <summary>Encoder fine-tuning (<c>finetune --task embed|classify --encrypt</c>) encrypts every file of its run folder
/// through <see cref="RunFiles"/>, as decoder runs do; <c>embed</c>, <c>classify</c>, <c>export --format onnx</c> and the
/// library read it back with the key only; a killed encrypted run resumes to the uninterrupted result; altered, swapped or
/// truncated chunks of the encrypted weights are refused.</summary>
public sealed class EncryptedEncoderRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-enc-encoder-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static readonly string[] Words = ["cat", "dog", "sun", "rain", "mat", "red", "blue", "big", "small", "wet"];

    private string Data(EncoderTask task)
    {
        string path = Path.Combine(_dir, task == EncoderTask.Embed ? "pairs.jsonl" : "labels.jsonl");
        File.WriteAllLines(path, task == EncoderTask.Embed
            ? Words.Select((w, i) => $$"""{"anchor": "the {{w}}", "positive": "a {{Words[(i + 3) % Words.Length]}} is hot"}""")
            : Words.Select((w, i) => $$"""{"text": "the {{w}} sat on a mat", "label": "{{(i % 2 == 0 ? "weather" : "pets")}}"}"""));
        return path;
    }

    /// <summary>Text that must not appear in any file of an encrypted run: JSON keys of the config, metrics, options and
    /// labels, the safetensors header's, a vocabulary token and a label of the data.</summary>
    private static readonly string[] Plaintext =
        ["__metadata__", "\"dtype\"", "hidden_size", "pooling_mode", "\"step\"", "\"loss\"", "[MASK]", "weather", "sentence_transformers", "\"verb\""];

    private static SortedSet<string> RelativeFiles(string root) =>
        new(Directory.GetFiles(root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')), StringComparer.Ordinal);

    [Theory]
    [InlineData("embed")]
    [InlineData("classify")]
    public async Task AnEncryptedEncoderRunHoldsNoPlaintextAndReadsBackWithItsKeyOnly(string task)
    {
        string tiny = BertFolderTests.TinyFolder(_dir), data = Data(task == "embed" ? EncoderTask.Embed : EncoderTask.Classify);
        string plain = Path.Combine(_dir, "plain"), enc = Path.Combine(_dir, "enc"), key = Path.Combine(_dir, "run.key");
        string[] common = ["finetune", "--task", task, "--model", tiny, "--data", data, "--steps", "4", "--batch", "4", "--checkpoint-every", "2", "--lr", "1e-2"];
        var p = CliRunner.Run([.. common, "--out", plain]);
        Assert.True(p.Code == 0, p.Err + p.Out);
        var e = CliRunner.Run([.. common, "--out", enc, "--encrypt", "--key-file", key]);
        Assert.True(e.Code == 0, e.Err + e.Out);
        Assert.Contains("encrypted: every file of", e.Out);

        // the same files as the plain run (encoder, tokenizer, pooling, head, checkpoints, metrics, options) plus the
        // manifest, every one of them ETENC1 with none of the plain run's text in it
        var files = RelativeFiles(enc);
        Assert.True(files.Remove(RunFiles.ManifestFile));
        Assert.Equal(RelativeFiles(plain), files);
        Assert.Contains("model.safetensors", files);
        Assert.Contains("1_Pooling/config.json", files);
        Assert.Contains(files, f => f.StartsWith("checkpoints/", StringComparison.Ordinal));
        if (task == "classify") Assert.Contains("labels.json", files);
        var markers = Plaintext.Where(text => files.Any(f => Encoding.Latin1.GetString(File.ReadAllBytes(Path.Combine(plain, f))).Contains(text, StringComparison.Ordinal))).ToList();
        Assert.True(markers.Count >= 8, $"the plain run shows only {string.Join(", ", markers)}"); // what the check below looks for is really there in a plain run
        foreach (string f in files)
        {
            string path = Path.Combine(enc, f);
            Assert.True(EncryptedFile.IsEncrypted(path), $"'{f}' is plain");
            string latin = Encoding.Latin1.GetString(File.ReadAllBytes(path));
            foreach (string text in markers) Assert.False(latin.Contains(text, StringComparison.Ordinal), $"'{f}' holds \"{text}\" in the clear");
        }

        // with the key: exactly the plain run's outputs (same seed); without it, or with another key: exit 7
        string other = Path.Combine(_dir, "other.key");
        EncryptionKey.CreateKeyFile(other).Dispose();
        string[] read = task == "embed" ? ["embed", "--text", "the cat sat", "--text", "a big red sun", "--format", "tsv"] : ["classify", "--text", "the cat sat", "--text", "a big red sun"];
        var expected = CliRunner.Run([.. read, "--model", plain]);
        Assert.True(expected.Code == 0, expected.Err);
        var got = CliRunner.Run([.. read, "--model", enc, "--key-file", key]);
        Assert.True(got.Code == 0, got.Err);
        Assert.Equal(expected.Out, got.Out);
        var noKey = CliRunner.Run([.. read, "--model", enc]);
        Assert.Equal(7, noKey.Code);
        Assert.Contains("is encrypted", noKey.Err);
        var wrongKey = CliRunner.Run([.. read, "--model", enc, "--key-file", other]);
        Assert.Equal(7, wrongKey.Code);
        Assert.Contains("wrong key", wrongKey.Err);
        Assert.Equal(2, CliRunner.Run([.. read, "--model", enc, "--key-file", key, "--key-env", "X"]).Code);

        // resuming the encrypted run without its key is refused before anything is written
        var before = files.ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(enc, f)));
        var resume = CliRunner.Run([.. common, "--out", enc, "--resume"]);
        Assert.Equal(7, resume.Code);
        foreach (var (f, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(enc, f)));
        Assert.Equal(files.ToList(), RelativeFiles(enc).Where(f => f != RunFiles.ManifestFile).ToList());

        if (task != "embed") return;
        // the library: refused without the key, the plain run's embeddings with it
        Assert.Throws<EncryptionKeyRequiredException>(() => BertFolder.Load(enc));
        using var k = EncryptionKey.FromKeyFile(key);
        var (plainEncoder, plainTok) = BertFolder.Load(plain);
        var (encEncoder, encTok) = BertFolder.Load(enc, k);
        using (plainEncoder)
        using (encEncoder)
        using (var a = new BertEmbeddingGenerator(plainEncoder, plainTok, maxLength: 16))
        using (var b = new BertEmbeddingGenerator(encEncoder, encTok, maxLength: 16))
        {
            var va = (await a.GenerateAsync(["the dog ran"]))[0].Vector.ToArray();
            var vb = (await b.GenerateAsync(["the dog ran"]))[0].Vector.ToArray();
            Assert.Equal(va, vb);
        }

        // export --format onnx of the encrypted encoder: with the key, the same plain ONNX folder (graph and vocabulary) as
        // the plain run's export, written outside the run; without the key, refused and nothing written
        string onnx = Path.Combine(_dir, "onnx"), onnxPlain = Path.Combine(_dir, "onnx-plain");
        var export = CliRunner.Run("export", "--model", enc, "--format", "onnx", "--out", onnx, "--key-file", key);
        Assert.True(export.Code == 0, export.Err);
        Assert.True(CliRunner.Run("export", "--model", plain, "--format", "onnx", "--out", onnxPlain).Code == 0);
        Assert.Contains("vocab.txt", RelativeFiles(onnx));
        Assert.Equal(RelativeFiles(onnxPlain).ToList(), RelativeFiles(onnx).ToList());
        foreach (string f in RelativeFiles(onnx))
        {
            Assert.False(EncryptedFile.IsEncrypted(Path.Combine(onnx, f)));
            Assert.Equal(File.ReadAllBytes(Path.Combine(onnxPlain, f)), File.ReadAllBytes(Path.Combine(onnx, f)));
        }
        Assert.Equal(7, CliRunner.Run("export", "--model", enc, "--format", "onnx", "--out", Path.Combine(_dir, "onnx2")).Code);
        Assert.False(Directory.Exists(Path.Combine(_dir, "onnx2")));
        Assert.Equal(2, CliRunner.Run("export", "--model", enc, "--format", "onnx", "--out", Path.Combine(enc, "onnx"), "--key-file", key).Code); // plain output inside the run
    }

    private static EncoderJobResult Job(string model, string data, string outDir, EncoderTask task, EncryptionKey? key, bool resume, int? stopAfter)
    {
        using var cts = new CancellationTokenSource();
        var options = new EncoderJobOptions
        {
            Model = model, Data = data, OutputDir = outDir, Resume = resume, HeldOut = 0, Encryption = key,
            Recipe = new EncoderFineTuneOptions
            {
                Task = task,
                Lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["query", "value"], InitSeed = 11 },
                Training = new TrainingOptions { Steps = 6, MicroBatch = 4, SeqLen = 16, LearningRate = 1e-2, WarmupSteps = 2, EvalEvery = 0, CheckpointEvery = 2, Seed = 5 },
            },
        };
        return EncoderFineTuneJob.Run(options, new SyncProgress(s => { if (s.Event == TrainingEvent.Step && s.Step == stopAfter) cts.Cancel(); }), cts.Token);
    }

    [Theory]
    [InlineData(EncoderTask.Embed)]
    [InlineData(EncoderTask.Classify)]
    public void AKilledEncryptedEncoderRunResumesToTheUninterruptedResult(EncoderTask task)
    {
        string tiny = BertFolderTests.TinyFolder(_dir), data = Data(task);
        string whole = Path.Combine(_dir, "whole"), parts = Path.Combine(_dir, "parts");
        var full = Job(tiny, data, whole, task, key: null, resume: false, stopAfter: null);
        Assert.Equal(TrainingStopReason.Completed, full.Training.Reason);

        using var key = EncryptionKey.Generate();
        var first = Job(tiny, data, parts, task, key, resume: false, stopAfter: 3);
        Assert.Equal(TrainingStopReason.Cancelled, first.Training.Reason);
        foreach (string f in Directory.GetFiles(Path.Combine(parts, "checkpoints"), "*", SearchOption.AllDirectories))
            Assert.True(EncryptedFile.IsEncrypted(f), f);
        // without the key, or with another, the run is refused and nothing in its folder changes
        var before = Directory.GetFiles(parts, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        Assert.Throws<EncryptionKeyRequiredException>(() => Job(tiny, data, parts, task, key: null, resume: true, stopAfter: null));
        using (var other = EncryptionKey.Generate())
            Assert.Throws<EncryptedFileException>(() => Job(tiny, data, parts, task, other, resume: true, stopAfter: null));
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(parts, "*", SearchOption.AllDirectories).Order());
        foreach (var (f, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(f));

        var second = Job(tiny, data, parts, task, key, resume: true, stopAfter: null);
        Assert.NotNull(second.ResumedFrom);
        Assert.Equal(full.Training.Losses, first.Training.Losses.Take((int)second.Training.FirstStep).Concat(second.Training.Losses)); // exact
        var files = RunFiles.ForReading(parts, key);
        Assert.Equal(6, files.ReadAllText(Path.Combine(parts, "metrics.jsonl")).Split('\n').Count(l => l.Contains("\"event\":\"step\"", StringComparison.Ordinal)));
        foreach (string f in (string[])(task == EncoderTask.Classify ? ["model.safetensors", "classifier.safetensors", "labels.json"] : ["model.safetensors", "vocab.txt"]))
        {
            Assert.True(EncryptedFile.IsEncrypted(Path.Combine(parts, f)), f);
            Assert.Equal(File.ReadAllBytes(Path.Combine(whole, f)), files.ReadAllBytes(Path.Combine(parts, f)));
        }
    }

    [Fact]
    public void AlteredSwappedOrTruncatedChunksOfEncryptedEncoderWeightsAreRefused()
    {
        string tiny = BertFolderTests.TinyFolder(_dir), data = Data(EncoderTask.Embed), run = Path.Combine(_dir, "run"), keyFile = Path.Combine(_dir, "run.key");
        using var key = EncryptionKey.CreateKeyFile(keyFile);
        RunFiles.ForWriting(run, key, 4096); // the smallest chunks, so the weights span several
        Job(tiny, data, run, EncoderTask.Embed, key, resume: false, stopAfter: null);
        string weights = Path.Combine(run, "model.safetensors");
        var info = EncryptedFile.ReadInfo(weights);
        Assert.True(info.ChunkCount >= 3, $"{info.ChunkCount} chunks");
        byte[] good = File.ReadAllBytes(weights);
        var (loaded, _) = BertFolder.Load(run, key); // reads as written
        loaded.Dispose();
        int chunk = info.ChunkSize + 16;
        int Offset(int i) => EncryptedFile.HeaderSize + i * chunk;

        var flipped = (byte[])good.Clone();
        flipped[Offset(1) + 10] ^= 0x40;
        var swapped = (byte[])good.Clone();
        Array.Copy(good, Offset(0), swapped, Offset(1), chunk);
        Array.Copy(good, Offset(1), swapped, Offset(0), chunk);
        foreach (var (bytes, message) in new[] { (flipped, "chunk 1"), (swapped, "chunk 0"), (good[..Offset(2)], "model.safetensors") })
        {
            File.WriteAllBytes(weights, bytes);
            var e = Assert.Throws<EncryptedFileException>(() => BertFolder.Load(run, key));
            Assert.Contains(message, e.Message);
            // the CLI with the right key: exit 7 naming the file, which is left as it is
            var r = CliRunner.Run("embed", "--model", run, "--text", "the cat", "--key-file", keyFile);
            Assert.Equal(7, r.Code);
            Assert.Contains("model.safetensors", r.Err);
            Assert.Equal(bytes, File.ReadAllBytes(weights));
        }
        File.WriteAllBytes(weights, good);
        Assert.Equal(0, CliRunner.Run("embed", "--model", run, "--text", "the cat", "--key-file", keyFile).Code);
    }
}
