using System.Security.Cryptography;
using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Compression.Distillation;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Security;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Models;
using EdgeTune.Training;

namespace EdgeTune.Tests.Security;

/// <summary>Whole run folders encrypted through <see cref="RunFiles"/>: every file kind round-trips, and a wrong key, a
/// tampered, reordered, truncated or moved file is refused with a clear error, without changing what is saved.</summary>
public sealed class RunFolderEncryptionTests : IDisposable
{
    private const int Chunk = 4096; // small chunks, so that even small files have several
    private readonly TempDir _dir = new();
    private readonly EncryptionKey _key = EncryptionKey.Generate();

    public void Dispose()
    {
        _key.Dispose();
        _dir.Dispose();
    }

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static DecoderModel SmallModel(ulong seed = 3) =>
        DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: seed, std: 0.2f, trainable: true);

    private static float[] Logits(ICausalLM m, int[] tokens)
    {
        using var cache = m.CreateCache(16);
        var logits = new float[tokens.Length * m.VocabSize];
        m.Forward(tokens, cache, logits);
        return logits;
    }

    private static void AssertAllEncrypted(string root)
    {
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != RunFiles.ManifestFile).ToList();
        Assert.NotEmpty(files);
        foreach (string f in files) Assert.True(EncryptedFile.IsEncrypted(f), $"'{f}' is written plain in an encrypted run folder");
    }

    private static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    // ---- the write stream ----

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(3 * Chunk + 17)]
    public void PushWritesInUnevenPiecesRoundTrip(int size)
    {
        byte[] data = RandomBytes(size, size + 1);
        string path = _dir.File("push.etenc");
        EncryptedFile.Write(path, "a/b.bin", s =>
        {
            var rng = new Random(size);
            for (int at = 0; at < data.Length;)
            {
                int n = Math.Min(rng.Next(1, 3 * Chunk / 2), data.Length - at);
                if (n == 1) s.WriteByte(data[at]); else s.Write(data, at, n);
                at += n;
            }
        }, _key, Chunk);
        long chunks = size == 0 ? 1 : (size + Chunk - 1) / Chunk;
        Assert.Equal(EncryptedFile.HeaderSize + size + 16 * chunks, new FileInfo(path).Length);
        Assert.Equal(data, EncryptedFile.ReadAllBytes(path, "a/b.bin", _key));
    }

    [Fact]
    public void FailedWriteLeavesTheOldFileAndNoTemporary()
    {
        var files = RunFiles.ForWriting(_dir.File("run"), _key, Chunk);
        string path = Path.Combine(files.Root!, "state.json");
        files.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => files.Write(path, s =>
        {
            s.Write(RandomBytes(3 * Chunk, 1));
            throw new InvalidOperationException("disk went away");
        }));
        Assert.Equal("old", files.ReadAllText(path));
        Assert.Single(Directory.GetFiles(files.Root!), f => Path.GetFileName(f) == "state.json");
    }

    // ---- the manifest ----

    [Fact]
    public void ManifestRecordsKdfAndOneSaltPerFolderAndNoKeyMaterial()
    {
        using var pass = EncryptionKey.FromPassphrase("correct horse battery staple", KdfParameters.Argon2id(1, 64, 1));
        string root = _dir.File("run");
        var files = RunFiles.ForWriting(root, pass, Chunk);
        files.WriteAllText(Path.Combine(root, "a.json"), "{}");
        files.WriteAllBytes(Path.Combine(root, "sub", "b.bin"), RandomBytes(10_000, 2));

        string text = File.ReadAllText(Path.Combine(root, RunFiles.ManifestFile));
        using var doc = JsonDocument.Parse(text);
        var m = doc.RootElement;
        Assert.Equal(RunFiles.Format, m.GetProperty("format").GetString());
        Assert.Equal("Argon2id", m.GetProperty("kdf").GetProperty("algorithm").GetString());
        Assert.Equal(64, m.GetProperty("kdf").GetProperty("memory_kib").GetInt32());
        byte[] salt = Convert.FromBase64String(m.GetProperty("salt").GetString()!);
        Assert.Equal(EncryptionKey.SaltBytes, salt.Length);
        Assert.DoesNotContain("horse", text, StringComparison.Ordinal);
        // every file of the folder carries the folder's salt (bytes 24..40 of the ETENC1 header)
        foreach (string f in new[] { Path.Combine(root, "a.json"), Path.Combine(root, "sub", "b.bin") })
            Assert.Equal(salt, File.ReadAllBytes(f).AsSpan(24, 16).ToArray());
        // and the passphrase re-opens it; another passphrase is a wrong key
        using var again = EncryptionKey.FromPassphrase("correct horse battery staple", KdfParameters.Argon2id(1, 64, 1));
        Assert.Equal("{}", RunFiles.ForReading(Path.Combine(root, "sub"), again).ReadAllText(Path.Combine(root, "a.json")));
        using var other = EncryptionKey.FromPassphrase("tr0ub4dor&3", KdfParameters.Argon2id(1, 64, 1));
        var e = Assert.Throws<EncryptedFileException>(() => RunFiles.ForReading(root, other));
        Assert.Contains("wrong key", e.Message);
        Assert.Throws<EncryptedFileException>(() => RunFiles.ForReading(root, _key)); // a raw key for a passphrase folder
    }

    [Fact]
    public void MissingOrWrongKeyAndPlainFolderAreRefusedWithoutChangingAnything()
    {
        string root = _dir.File("run");
        var files = RunFiles.ForWriting(root, _key, Chunk);
        files.WriteAllText(Path.Combine(root, "data_report.json"), "{\"rows\":3}");
        var before = Snapshot(root);

        var none = Assert.Throws<EncryptionKeyRequiredException>(() => RunFiles.ForWriting(root, null));
        Assert.Contains("is encrypted", none.Message);
        Assert.Throws<EncryptionKeyRequiredException>(() => RunFiles.ForReading(Path.Combine(root, "data_report.json"), null));
        using var wrong = EncryptionKey.Generate();
        Assert.Contains("wrong key", Assert.Throws<EncryptedFileException>(() => RunFiles.ForWriting(root, wrong)).Message);
        Assert.Equal(before, Snapshot(root));

        // a key for a folder that already holds plain outputs: refused, no manifest appears
        string plain = _dir.File("plain");
        Directory.CreateDirectory(plain);
        File.WriteAllText(Path.Combine(plain, "metrics.jsonl"), "{}\n");
        Assert.Throws<EncryptionKeyRequiredException>(() => RunFiles.ForWriting(plain, _key));
        Assert.False(File.Exists(Path.Combine(plain, RunFiles.ManifestFile)));

        // a plain file dropped into the encrypted folder is not trusted
        File.WriteAllText(Path.Combine(root, "options.json"), "{}");
        Assert.Contains("plain file", Assert.Throws<EncryptedFileException>(() => files.ReadAllText(Path.Combine(root, "options.json"))).Message);
        // an encrypted file read where no manifest is found
        string lone = _dir.File("lone.bin");
        File.Copy(Path.Combine(root, "data_report.json"), lone);
        Assert.Throws<EncryptionKeyRequiredException>(() => RunFiles.Plain.ReadAllBytes(lone));
    }

    // ---- every file kind ----

    /// <summary>An encrypted run folder holding one of each file kind, written by the library's own writers.</summary>
    private (string Root, RunFiles Files, DecoderModel Model, LoraAdapter Adapter) BuildRun()
    {
        string root = _dir.File("run");
        var files = RunFiles.ForWriting(root, _key, Chunk);
        var model = SmallModel();
        ModelExporter.ExportSafetensors(model, Path.Combine(root, "model"), DType.F32, files: files); // the base, before LoRA
        var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllProjections });
        foreach (var p in adapter.Parameters) // non-zero B so the adapter changes outputs
        {
            var v = p.Value.Span<float>();
            var r = new Random(p.Name.Length);
            for (int i = 0; i < v.Length; i++) v[i] = (float)(r.NextDouble() - 0.5);
        }
        AdapterFiles.Save(adapter, Path.Combine(root, "adapter"), "small", files);
        using (var teacher = new ModelTeacher(model, topK: 4))
            TeacherCache.Build(teacher, [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]], 8, 4, Path.Combine(root, "teacher.cache"), files);
        files.WriteAllText(Path.Combine(root, "canaries.json"), "{\"secrets\":[\"123456\"]}");
        files.WriteAllText(Path.Combine(root, "identity.json"), "{\"client_id\":\"c1\",\"credential\":\"s3cret\"}");
        using (var metrics = new JsonlMetricsSink(Path.Combine(root, "metrics.jsonl"), append: false, files))
            metrics.WriteLine("{\"event\":\"step\",\"step\":1,\"loss\":2.5}");
        var opt = new AdamW(adapter.Parameters, new AdamWOptions());
        TrainingCheckpoint.Write(files, Path.Combine(root, "checkpoints"), new TrainingState { Step = 3, TotalSteps = 9 }, adapter.Parameters, opt, new TrainingOptions());
        return (root, files, model, adapter);
    }

    public static TheoryData<string> FileKinds() =>
    [
        "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
        "model/config.json", "model/generation_config.json", "model/model.safetensors",
        "teacher.cache", "canaries.json", "identity.json", "metrics.jsonl",
        "checkpoints/step-00000003/weights.safetensors", "checkpoints/step-00000003/optimizer.bin",
        "checkpoints/step-00000003/state.json", "checkpoints/step-00000003/options.json", "checkpoints/step-00000003/manifest.json",
    ];

    [Fact]
    public void EveryFileKindRoundTripsThroughItsOwnReader()
    {
        var (root, files, model, adapter) = BuildRun();
        AssertAllEncrypted(root);
        foreach (string kind in FileKinds()) Assert.True(File.Exists(Path.Combine(root, kind)), kind);
        Assert.Empty(Directory.GetDirectories(root, ".*")); // no temporary folders left

        // adapter: a fresh model with the loaded adapter gives the same logits
        int[] tokens = [1, 5, 9, 13, 2, 7];
        float[] expected = Logits(model, tokens);
        adapter.Dispose();
        using var model2 = SmallModel();
        using (var loaded = AdapterFiles.Load(Path.Combine(root, "adapter"), model2, "default", RunFiles.ForReading(Path.Combine(root, "adapter"), _key)))
            Assert.Equal(expected, Logits(model2, tokens));
        Assert.Equal(2, AdapterFiles.ReadConfig(Path.Combine(root, "adapter"), model2, files).Rank);

        // the exported model loads (weights decrypted into memory) with the same weights as the source
        using (var plainModel = SmallModel())
        using (var enc = ModelLoader.Load(Path.Combine(root, "model"), null, null, _key))
        {
            var d = Assert.IsType<DecoderModel>(enc.Model);
            float[] a = Logits(plainModel, tokens), b = Logits(d, tokens);
            Assert.Equal(a, b);
        }
        var noKey = Assert.Throws<EncryptionKeyRequiredException>(() => ModelLoader.Load(Path.Combine(root, "model"), null, null, null));
        Assert.Contains(root, noKey.Message);

        // teacher cache
        var cache = TeacherCache.Open(Path.Combine(root, "teacher.cache"), files);
        Assert.Equal((2, 4, 8), (cache.Count, cache.K, cache.SeqLen));

        // metrics: appended rows survive a reopen
        using (var metrics = new JsonlMetricsSink(Path.Combine(root, "metrics.jsonl"), append: true, files))
            metrics.WriteLine("{\"event\":\"step\",\"step\":2,\"loss\":2.25}");
        Assert.Equal(2, files.ReadAllText(Path.Combine(root, "metrics.jsonl")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // checkpoint: verifies and loads into fresh parameters
        var ckpt = Path.Combine(root, "checkpoints", TrainingCheckpoint.FolderName(3));
        Assert.Null(TrainingCheckpoint.Verify(files, ckpt));
        using var model3 = SmallModel();
        using var adapter3 = LoraInjector.Apply(model3, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllProjections });
        var opt = new AdamW(adapter3.Parameters, new AdamWOptions());
        var state = TrainingCheckpoint.Load(files, ckpt, adapter3.Parameters, opt);
        Assert.Equal(3, state.Step);
        Assert.Contains("s3cret", files.ReadAllText(Path.Combine(root, "identity.json")));
        Assert.True(File.ReadAllBytes(Path.Combine(root, "identity.json")).AsSpan().IndexOf("s3cret"u8) < 0, "the credential is readable on disk");
    }

    public enum Damage { WrongKey, FlippedByte, ReorderedChunks, Truncated, MovedToAnotherName }

    public static TheoryData<string, Damage> KindsAndDamage()
    {
        var data = new TheoryData<string, Damage>();
        foreach (string kind in FileKinds())
            foreach (var d in Enum.GetValues<Damage>()) data.Add(kind, d);
        return data;
    }

    [Theory]
    [MemberData(nameof(KindsAndDamage))]
    public void EveryFileKindRejectsDamageWithAClearError(string kind, Damage damage)
    {
        var (root, files, model, adapter) = BuildRun();
        using (model) using (adapter) { }
        string path = Path.Combine(root, kind);
        byte[] original = File.ReadAllBytes(path);
        var info = EncryptedFile.ReadInfo(path);
        long ChunkAt(long i) => EncryptedFile.HeaderSize + i * (info.ChunkSize + 16L);
        Exception error;
        switch (damage)
        {
            case Damage.WrongKey:
                using (var wrong = EncryptionKey.Generate())
                    error = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, files.LogicalName(path), wrong));
                Assert.Contains("wrong key", error.Message);
                return;
            case Damage.FlippedByte:
            {
                var b = original.ToArray();
                b[ChunkAt(info.ChunkCount - 1)] ^= 0x01; // the last chunk's first ciphertext byte
                File.WriteAllBytes(path, b);
                error = Assert.ThrowsAny<EncryptedFileException>(() => files.ReadAllBytes(path));
                Assert.Contains("chunk", error.Message);
                break;
            }
            case Damage.ReorderedChunks:
            {
                if (info.ChunkCount < 2)
                {
                    // one chunk: splice in the chunk of another file of the same run (same key, other file id)
                    string other = Path.Combine(root, kind == "canaries.json" ? "identity.json" : "canaries.json");
                    byte[] o = File.ReadAllBytes(other);
                    var b = original.Take(EncryptedFile.HeaderSize).Concat(o.Skip(EncryptedFile.HeaderSize)).ToArray();
                    File.WriteAllBytes(path, b);
                    error = Assert.ThrowsAny<EncryptedFileException>(() => files.ReadAllBytes(path));
                    break;
                }
                var swapped = original.ToArray();
                int len = info.ChunkSize + 16;
                Array.Copy(original, ChunkAt(1), swapped, ChunkAt(0), len);
                Array.Copy(original, ChunkAt(0), swapped, ChunkAt(1), len);
                File.WriteAllBytes(path, swapped);
                error = Assert.ThrowsAny<EncryptedFileException>(() => files.ReadAllBytes(path));
                Assert.Contains("chunk 0", error.Message);
                break;
            }
            case Damage.Truncated:
                File.WriteAllBytes(path, original.AsSpan(0, original.Length - (info.ChunkCount > 1 ? (int)(info.PlaintextLength % info.ChunkSize) + 16 : 7)).ToArray());
                error = Assert.ThrowsAny<EncryptedFileException>(() => files.ReadAllBytes(path));
                Assert.Contains("truncated", error.Message);
                break;
            case Damage.MovedToAnotherName:
            {
                string moved = Path.Combine(root, "moved-" + Path.GetFileName(kind));
                File.Copy(path, moved);
                error = Assert.ThrowsAny<EncryptedFileException>(() => files.ReadAllBytes(moved));
                Assert.Contains("logical name", error.Message);
                return;
            }
            default: throw new ArgumentOutOfRangeException(nameof(damage));
        }
        Assert.Contains(path, error.Message);
        // the kind's own reader refuses too (a checkpoint file makes the checkpoint unusable, never half-loaded)
        if (kind.StartsWith("checkpoints/", StringComparison.Ordinal))
            Assert.Null(TrainingCheckpoint.FindLatest(files, Path.Combine(root, "checkpoints")).Folder);
        else if (kind == "teacher.cache")
            Assert.ThrowsAny<EncryptedFileException>(() => TeacherCache.Open(path, files));
        else if (kind == "model/model.safetensors" || kind == "model/config.json")
            Assert.ThrowsAny<EncryptedFileException>(() => ModelLoader.Load(Path.Combine(root, "model"), null, null, _key));
        else if (kind.StartsWith("adapter/", StringComparison.Ordinal))
            using (var m = SmallModel())
                Assert.ThrowsAny<EncryptedFileException>(() => AdapterFiles.Load(Path.Combine(root, "adapter"), m, "default", files));
    }

    // ---- random access ----

    [Fact]
    public void EncryptedWeightsGiveRandomAccessToEveryTensor()
    {
        string root = _dir.File("run");
        var files = RunFiles.ForWriting(root, _key, Chunk);
        var rng = new Random(5);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, shape) in new[] { ("a", new[] { 37, 29 }), ("b", new[] { 1000 }), ("c", new[] { 3, 5, 7 }), ("d", new[] { 4097 }) })
        {
            var v = new float[shape.Aggregate(1, (x, y) => x * y)];
            for (int i = 0; i < v.Length; i++) v[i] = (float)rng.NextDouble();
            tensors.Add(new(name, Tensor.From(v, shape)));
        }
        string path = Path.Combine(root, "w.safetensors");
        SafeTensorsWriter.Write(files, path, tensors);
        Assert.True(EncryptedFile.IsEncrypted(path));
        Assert.True(EncryptedFile.ReadInfo(path).ChunkCount > 4);
        using var f = files.OpenSafeTensors(path);
        foreach (var (name, t) in tensors.AsEnumerable().Reverse()) // out of file order
            Assert.Equal(t.ToFloatArray(), f.GetTensor(name).ToFloatArray());
        // and a seekable stream decrypts only what it reads, across chunk boundaries
        using var s = files.OpenRead(path);
        byte[] plain = new byte[s.Length];
        foreach (long at in new long[] { s.Length - 5, 0, Chunk - 3, 2 * Chunk + 1 })
        {
            s.Position = at;
            int n = (int)Math.Min(9, s.Length - at);
            s.ReadExactly(plain, (int)at, n);
        }
        using var all = new MemoryStream();
        EncryptedFile.DecryptTo(path, files.LogicalName(path), _key, all);
        foreach (long at in new long[] { s.Length - 5, 0, Chunk - 3, 2 * Chunk + 1 })
            Assert.Equal(all.ToArray().AsSpan((int)at, (int)Math.Min(9, s.Length - at)).ToArray(), plain.AsSpan((int)at, (int)Math.Min(9, s.Length - at)).ToArray());
    }
}
