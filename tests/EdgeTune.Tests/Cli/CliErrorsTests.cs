using System.CommandLine;
using System.Diagnostics;
using EdgeTune.Cli;

namespace EdgeTune.Tests.Cli;

/// <summary>
/// Every user error ends with one line on stderr, "edgetune VERB: ...", that names the thing, and its documented exit
/// code; no stack trace unless --verbose. Bugs keep their stack trace and exit 1.
/// </summary>
public sealed class CliErrorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-clierrors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Notes()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EdgeTune.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "samples", "notes.jsonl");
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    /// <summary>Files for the cases: {T} in a case is this test's temporary folder, {NOTES} the sample data.</summary>
    private void MakeFiles()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        File.WriteAllText(Path.Combine(_dir, "notes.bin"), "these are my notes, not a checkpoint\n");
        File.WriteAllText(Path.Combine(_dir, "bad.gguf"), "GGUF? no: plain text");
        File.WriteAllText(Path.Combine(_dir, "bad.safetensors"), "{\"a\":");
        File.WriteAllBytes(Path.Combine(_dir, "truncated.gguf"), [(byte)'G', (byte)'G', (byte)'U', (byte)'F', 3, 0, 0, 0, 1, 2]);
        File.WriteAllText(Path.Combine(_dir, "norows.jsonl"), "{\"text\":\"\"}\n{\"text\":null}\n");
        // A Hugging Face folder whose safetensors header length points far past the end of the file.
        string st = Directory.CreateDirectory(Path.Combine(_dir, "st")).FullName;
        File.WriteAllText(Path.Combine(st, "config.json"),
            "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":2,\"vocab_size\":16,\"max_position_embeddings\":32,\"rms_norm_eps\":1e-5}");
        File.WriteAllBytes(Path.Combine(st, "model.safetensors"), [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']);
        // A folder of an architecture EdgeTune does not run.
        string bert = Directory.CreateDirectory(Path.Combine(_dir, "bert")).FullName;
        File.WriteAllText(Path.Combine(bert, "config.json"), "{\"model_type\":\"bert\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":16}");
        File.WriteAllBytes(Path.Combine(bert, "model.safetensors"), [2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']);
        // A full fine-tuning run folder: model/, no adapter/.
        string full = Directory.CreateDirectory(Path.Combine(_dir, "fullrun", "model")).FullName;
        File.WriteAllText(Path.Combine(full, "config.json"), "{}");
    }

    public static TheoryData<string, string, int, string> Cases => new()
    {
        // name, command line ({T}: temp folder), exit code, text the message must name
        { "missing model path", "generate --model {T}/nope.gguf --prompt hi", CliErrors.Input, "nope.gguf" },
        { "missing model folder", "eval --model {T}/empty --data {NOTES}", CliErrors.Input, "empty" },
        { "file that is not a checkpoint", "generate --model {T}/notes.bin", CliErrors.Model, "notes.bin" },
        { "malformed GGUF", "generate --model {T}/bad.gguf", CliErrors.Model, "bad.gguf" },
        { "truncated GGUF", "eval --model {T}/truncated.gguf --data {NOTES}", CliErrors.Model, "truncated.gguf" },
        { "malformed safetensors", "generate --model {T}/st", CliErrors.Model, "model.safetensors" },
        { "safetensors file that is not one", "generate --model {T}/bad.safetensors", CliErrors.Model, "bad.safetensors" },
        { "unsupported model type", "generate --model {T}/bert", CliErrors.Model, "bert" },
        { "missing data file", "finetune --data {T}/missing.jsonl --steps 1 --out {T}/run", CliErrors.Input, "missing.jsonl" },
        { "eval data file missing", "eval --model {T}/nope.gguf --data {T}/missing.txt", CliErrors.Input, "missing.txt" },
        { "JSONL with no usable rows", "finetune --data {T}/norows.jsonl --steps 1 --out {T}/run", CliErrors.Input, "norows.jsonl" },
        { "--adapter at an empty folder", "generate --model {T}/nope.gguf --adapter {T}/empty", CliErrors.Input, "empty" },
        { "--adapter at a missing folder", "eval --model {T}/nope.gguf --data {NOTES} --adapter {T}/gone", CliErrors.Input, "gone" },
        { "--adapter at a full fine-tuning run", "export --model {T}/nope.gguf --adapter {T}/fullrun --format gguf --out {T}/x.gguf", CliErrors.Input, "fullrun" },
        { "--adapter at a file", "generate --model {T}/nope.gguf --adapter {T}/notes.bin", CliErrors.Input, "notes.bin" },
        { "bad flag combination", "finetune --base-dtype nf4 --method full --data {NOTES} --steps 1 --out {T}/run", CliErrors.Usage, "--base-dtype" },
        { "flags export cannot combine", "export --model {T}/nope.gguf --format lora-gguf --out {T}/a.gguf", CliErrors.Usage, "--adapter DIR" },
        { "unknown flag", "generate --model m --bogus", CliErrors.Usage, "--bogus" },
        { "missing required flag", "eval --data {NOTES}", CliErrors.Usage, "--model" },
        { "value out of range", "finetune --data {NOTES} --steps 0 --out {T}/run", CliErrors.Usage, "Steps" },
        { "unparsable size", "finetune --max-memory 2XB --steps 1 --out {T}/run", CliErrors.Usage, "2XB" },
        { "no verb", "", CliErrors.Usage, "command" },
        { "missing tokenizer", "tokenize --tokenizer {T}/empty --text hi", CliErrors.Input, "empty" },
        { "memory budget", "finetune --data {NOTES} --max-memory 1KB --steps 1 --out {T}/run", CliErrors.Resources, "1.0 KB" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void UserErrorIsOneLineWithItsExitCode(string name, string commandLine, int expectedCode, string named)
    {
        MakeFiles();
        string[] args = commandLine.Replace("{T}", _dir).Replace("{NOTES}", Notes()).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var (code, _, stderr) = Run(args);
        AssertOneErrorLine(name, stderr, named);
        Assert.True(code == expectedCode, $"{name}: exit code {code}, expected {expectedCode}; stderr: {stderr}");
    }

    /// <summary>Progress lines (e.g. "model: ...") may come first; the error is the single "edgetune" line, and last.</summary>
    private static void AssertOneErrorLine(string name, string stderr, string named)
    {
        Assert.DoesNotContain("Unhandled exception", stderr);
        string[] lines = stderr.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain(lines, l => l.StartsWith("   at ", StringComparison.Ordinal));
        var errors = lines.Where(l => l.StartsWith("edgetune", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 1, $"{name}: expected one error line, got: {stderr}");
        Assert.Equal(errors[0], lines[^1]);
        Assert.Contains(named, errors[0]);
        Assert.True(errors[0].Length > "edgetune x: ".Length + named.Length, $"{name}: the line says nothing else: {errors[0]}");
    }

    [Fact]
    public void VerboseAddsTheStackTrace()
    {
        MakeFiles();
        var (code, _, stderr) = Run("generate", "--model", Path.Combine(_dir, "bad.gguf"), "--verbose");
        Assert.Equal(CliErrors.Model, code);
        Assert.StartsWith("edgetune generate: ", stderr);
        Assert.Contains("   at ", stderr);
        Assert.Contains(nameof(EdgeTune.Formats.CheckpointFormatException), stderr);
    }

    [Fact]
    public void HelpNamesEdgetuneAndListsTheExitCodes()
    {
        var (code, stdout, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("edgetune [command] [options]", stdout);
        Assert.DoesNotContain("EdgeTune.Cli", stdout);
        Assert.Contains("Exit codes:", stdout);
        foreach (int c in new[] { CliErrors.Usage, CliErrors.Input, CliErrors.Model, CliErrors.Network, CliErrors.Resources })
            Assert.Contains($"\n  {c} ", stdout.ReplaceLineEndings("\n"));
        var sub = Run("finetune", "--help");
        Assert.Equal(0, sub.Code);
        Assert.Contains("edgetune finetune [options]", sub.Out);
        Assert.DoesNotContain("Exit codes:", sub.Out);
    }

    private static Exception Thrown(Action a)
    {
        try { a(); }
        catch (Exception e) { return e; }
        throw new InvalidOperationException("nothing was thrown");
    }

    [Fact]
    public void BugsKeepTheirTraceAndExitOne()
    {
        // An exception EdgeTune does not classify, and a runtime argument exception (an index out of range in a list),
        // are bugs: the whole exception is printed.
        var bug = Thrown(() => throw new InvalidOperationException("state machine confused"));
        var error = new StringWriter();
        Assert.Equal(CliErrors.Internal, CliErrors.Report(bug, "edgetune test", verbose: false, error));
        Assert.Contains("internal error", error.ToString());
        Assert.Contains("   at ", error.ToString());
        var index = Thrown(() => _ = new List<int>()[3]);
        Assert.IsType<ArgumentOutOfRangeException>(index);
        Assert.Equal(CliErrors.Internal, CliErrors.Classify(index));
        // The same type thrown by EdgeTune itself, rejecting a value, is a usage error.
        var options = Thrown(() => new EdgeTune.Training.TrainingOptions { Steps = 0 }.Validate());
        Assert.Equal(CliErrors.Usage, CliErrors.Classify(options));
        Assert.Equal(CliErrors.Network, CliErrors.Classify(new EdgeTune.Formats.Hub.HubException(EdgeTune.Formats.Hub.HubErrorKind.NotInCache, "x")));
        Assert.Equal(CliErrors.Resources, CliErrors.Classify(new InsufficientMemoryException("x")));
        Assert.Equal(CliErrors.Model, CliErrors.Classify(new AggregateException(new EdgeTune.Formats.CheckpointFormatException("f", "bad"))));
    }

    /// <summary>A Hub id while offline (HF_HUB_OFFLINE=1, an empty cache), through the real executable so the
    /// environment stays the child's: exit 5, one line naming the repository, no trace.</summary>
    [Fact]
    public async Task HubIdWhileOfflineIsANetworkError()
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "EdgeTune.Cli.dll");
        Assert.True(File.Exists(cli), cli);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { cli, "generate", "--model", "edgetune-test/no-such-model", "--prompt", "hi" }) start.ArgumentList.Add(a);
        start.Environment["HF_HUB_OFFLINE"] = "1";
        start.Environment["HF_HOME"] = Path.Combine(_dir, "hf");
        start.Environment["HF_HUB_CACHE"] = Path.Combine(_dir, "hf", "hub");
        start.Environment["HF_ENDPOINT"] = "http://127.0.0.1:9";
        using var p = Process.Start(start)!;
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token);
        string stderr = await stderrTask;
        await stdoutTask;
        AssertOneErrorLine("offline Hub", stderr, "edgetune-test/no-such-model");
        Assert.Contains("HF_HUB_OFFLINE", stderr);
        Assert.Equal(CliErrors.Network, p.ExitCode);
    }
}
