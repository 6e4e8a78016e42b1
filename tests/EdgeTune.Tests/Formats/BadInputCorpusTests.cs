using System.Diagnostics;
using System.Runtime.CompilerServices;
using EdgeTune.Formats;
using EdgeTune.Models;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Formats;

/// <summary>
/// Every malformed file or model folder of tests/EdgeTune.Tests/Corpus goes through CheckpointReader.Open (and every
/// tensor view), CheckpointReader.ConfigFor and ModelLoader.Load: each must fail with a clear exception whose message
/// names the file and the problem, quickly and without large managed allocations.
/// </summary>
public sealed class BadInputCorpusTests(ITestOutputHelper output)
{
    /// <summary>Corpus entry → words its error message must contain (besides the entry's name).</summary>
    private static readonly Dictionary<string, string[]> Expected = new()
    {
        ["st-truncated.safetensors"] = ["data_offsets", "out of range"],
        ["st-header-beyond-file.safetensors"] = ["header length", "beyond the end"],
        ["st-offsets-out-of-range.safetensors"] = ["data_offsets", "out of range"],
        ["st-offsets-overlap.safetensors"] = ["overlap"],
        ["st-absurd-shape.safetensors"] = ["[1048576, 1048576]"],
        ["st-absurd-shape-overflow.safetensors"] = ["too large"],
        ["st-unknown-dtype.safetensors"] = ["dtype", "F7"],
        ["st-header-not-json.safetensors"] = ["not valid JSON"],
        ["gguf-bad-magic.gguf"] = ["bad magic", "'GGUF'"],
        ["gguf-absurd-tensor-count.gguf"] = ["tensor count", "impossible"],
        ["gguf-absurd-metadata-count.gguf"] = ["metadata count", "impossible"],
        ["gguf-absurd-string-length.gguf"] = ["string length", "beyond the end"],
        ["gguf-truncated-data.gguf"] = ["tensor 'w'", "out of range", "truncated"],
        ["gguf-truncated-header.gguf"] = ["metadata count", "impossible"],
        ["llama2c-truncated.bin"] = ["truncated"],
        ["llama2c-absurd-header.bin"] = ["impossibly large"],
        ["llama2c-negative-field.bin"] = ["hidden_dim"],
        ["model-config-gpt2"] = ["model_type 'gpt2'", "hidden_size", "missing"],
        ["model-config-mamba"] = ["model_type", "mamba", "not supported"],
        ["model-config-missing-fields"] = ["field 'num_attention_heads'", "missing", "model_type 'llama'"],
        ["model-config-not-json"] = ["config.json", "not valid JSON"],
        ["model-config-zero-heads"] = ["num_attention_heads"],
        ["model-missing-tensors"] = ["missing", "model.layers.0."],
        ["model-wrong-shape"] = ["model.embed_tokens.weight", "shape"],
        ["model-no-config"] = ["config.json", "does not exist"],
    };

    private const long MaxAllocatedBytes = 64L << 20;
    private static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(10);

    private static string CorpusDir => Path.Combine(AppContext.BaseDirectory, "Corpus");

    private static string SourceCorpusDir([CallerFilePath] string here = "") =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(here)!)!, "Corpus");

    private static IEnumerable<string> Entries(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Where(n => n is not null && !n.StartsWith('.') && n != "README.md").Order(StringComparer.Ordinal)!;

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (string name in Expected.Keys.Order(StringComparer.Ordinal)) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CorpusEntryFailsCleanly(string name)
    {
        string path = Path.Combine(CorpusDir, name);
        Assert.True(File.Exists(path) || Directory.Exists(path), $"corpus entry {path} is missing from the test output");
        Exception? error = null;
        long allocated = 0;
        var sw = Stopwatch.StartNew();
        var run = Task.Factory.StartNew(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            error = LoadAll(path);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, TaskCreationOptions.LongRunning);
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeLimit)) == run, $"{name}: loading did not finish within {TimeLimit.TotalSeconds} s (a hang?)");
        output.WriteLine($"{name}: {sw.ElapsedMilliseconds} ms, {allocated / 1024} KiB allocated");
        Assert.NotNull(error);
        output.WriteLine($"  {error!.GetType().Name}: {error.Message}");
        Assert.True(error is CheckpointFormatException or NotSupportedException or InvalidDataException or FileNotFoundException,
            $"{name}: unexpected exception {error}");
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
        string problem = error.Message.Replace(path, "", StringComparison.Ordinal); // the words must not come from the path
        foreach (string word in Expected[name]) Assert.Contains(word, problem, StringComparison.Ordinal);
        Assert.True(allocated < MaxAllocatedBytes, $"{name}: {allocated} bytes allocated while failing");
    }

    /// <summary>Open, touch every tensor view, find the config, then load as the CLI does; the first failure.</summary>
    private static Exception? LoadAll(string path)
    {
        try
        {
            using (var reader = CheckpointReader.Open(path))
            {
                foreach (var t in reader.Tensors) using (reader.GetTensor(t.Name)) { }
                CheckpointReader.ConfigFor(reader);
            }
            using var loaded = ModelLoader.Load(path);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    [Fact]
    public void EveryCorpusEntryHasAnExpectationAndIsSmall()
    {
        Assert.Equal(Expected.Keys.Order(StringComparer.Ordinal), Entries(CorpusDir));
        foreach (string file in Directory.EnumerateFiles(CorpusDir, "*", SearchOption.AllDirectories))
            Assert.True(new FileInfo(file).Length < 4096, $"{file} is {new FileInfo(file).Length} bytes; corpus files stay under 4 KB");
    }

    /// <summary>The committed files are what the generator writes (EDGETUNE_REGEN_CORPUS=1 rewrites the source copy).</summary>
    [Fact]
    public void CommittedCorpusMatchesTheGenerator()
    {
        if (Environment.GetEnvironmentVariable("EDGETUNE_REGEN_CORPUS") == "1")
        {
            string src = SourceCorpusDir();
            foreach (string entry in Entries(src).ToList())
            {
                string p = Path.Combine(src, entry);
                if (Directory.Exists(p)) Directory.Delete(p, true); else File.Delete(p);
            }
            BadInputCorpusGenerator.Generate(src);
        }
        using var dir = new TempDir();
        string fresh = Path.Combine(dir.Path, "corpus");
        BadInputCorpusGenerator.Generate(fresh);
        var expectedFiles = Directory.EnumerateFiles(fresh, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(fresh, f)).Order(StringComparer.Ordinal).ToList();
        var committed = Directory.EnumerateFiles(CorpusDir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(CorpusDir, f))
            .Where(f => f != "README.md").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expectedFiles, committed);
        foreach (string rel in expectedFiles)
            Assert.True(File.ReadAllBytes(Path.Combine(fresh, rel)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(CorpusDir, rel))),
                $"Corpus/{rel} differs from the generator's output (regenerate with EDGETUNE_REGEN_CORPUS=1)");
    }
}
