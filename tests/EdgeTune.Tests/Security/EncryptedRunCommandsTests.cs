using System.CommandLine;
using System.Text.Json;
using EdgeTune.Cli.Commands;
using EdgeTune.Security;
using EdgeTune.Tests.Cli;

namespace EdgeTune.Tests.Security;

/// <summary>"Every command reads encrypted folders given the key": the commands not covered by
/// <see cref="EncryptedRunCliTests"/> (generate, eval, finetune --resume) — audit, export, quantize, prune, serve and
/// distill — each open one encrypted fine-tuning run with its key, and refuse it (exit 7) without.</summary>
public sealed class EncryptedRunCommandsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-enc-cmds-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public async Task ReadingCommandsOpenAnEncryptedRunWithItsKeyOnly()
    {
        string run = Path.Combine(_dir, "run"), key = Path.Combine(_dir, "run.key"), outside = Path.Combine(_dir, "out");
        Directory.CreateDirectory(outside);
        var ft = Run("finetune", "--steps", "2", "--checkpoint-every", "0", "--eval-every", "0", "--canaries", "2", "--method", "lora", "--out", run, "--encrypt", "--key-file", key);
        Assert.True(ft.Code == 0, ft.Err + ft.Out);
        string model = Path.Combine(run, "model"), adapter = Path.Combine(run, "adapter");
        Assert.True(EncryptedFile.IsEncrypted(Path.Combine(run, "canaries.json")));
        Assert.True(EncryptedFile.IsEncrypted(Path.Combine(adapter, "adapter_model.safetensors")));

        // audit: the adapter, its base and the canaries beside it, all decrypted with the key
        string builtIn = Path.Combine(EdgeTune.Models.BuiltInModels.Stories260KFolder(), EdgeTune.Models.BuiltInModels.ModelFile);
        var audit = Run("audit", "--model", builtIn, "--tokenizer", Path.Combine(EdgeTune.Models.BuiltInModels.Stories260KFolder(), EdgeTune.Models.BuiltInModels.TokenizerFile), "--adapter", adapter, "--key-file", key, "--seq-len", "32", "--candidates", "20");
        Assert.True(audit.Code == 0, audit.Err);
        Assert.Contains("canary exposure", audit.Out);
        Assert.Equal(7, Run("audit", "--model", builtIn, "--tokenizer", Path.Combine(EdgeTune.Models.BuiltInModels.Stories260KFolder(), EdgeTune.Models.BuiltInModels.TokenizerFile), "--adapter", adapter, "--seq-len", "32", "--candidates", "20").Code);

        // export, quantize, prune: an encrypted model in, plain files written outside the run folder
        string gguf = Path.Combine(outside, "m.gguf");
        var export = Run("export", "--model", model, "--key-file", key, "--format", "gguf", "--out", gguf);
        Assert.True(export.Code == 0, export.Err);
        Assert.False(EncryptedFile.IsEncrypted(gguf));
        Assert.Equal(7, Run("export", "--model", model, "--format", "gguf", "--out", Path.Combine(outside, "n.gguf")).Code);
        var quant = Run("quantize", "--model", model, "--key-file", key, "--dtype", "q8_0", "--out", Path.Combine(outside, "q.gguf"));
        Assert.True(quant.Code == 0, quant.Err);
        Assert.Equal(7, Run("quantize", "--model", model, "--dtype", "q8_0", "--out", Path.Combine(outside, "q2.gguf")).Code);
        var prune = Run("prune", "--model", model, "--key-file", key, "--method", "magnitude", "--sparsity", "0.5", "--out", Path.Combine(outside, "pruned"));
        Assert.True(prune.Code == 0, prune.Err);
        Assert.Equal(7, Run("prune", "--model", model, "--method", "magnitude", "--out", Path.Combine(outside, "pruned2")).Code);

        // distill: the encrypted model as the teacher, into a new encrypted run with the same key
        string student = Path.Combine(_dir, "student");
        var distill = Run("distill", "--teacher", model, "--data", EdgeTune.Models.BuiltInModels.DemoDataPath(), "--student-layers", "1", "--steps", "1",
            "--seq-len", "16", "--batch", "2", "--out", student, "--encrypt", "--key-file", key);
        Assert.True(distill.Code == 0, distill.Err);
        foreach (string f in Directory.GetFiles(student, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != RunFiles.ManifestFile))
            Assert.True(EncryptedFile.IsEncrypted(f), $"'{f}' is plain");
        Assert.Equal(7, Run("distill", "--teacher", model, "--data", EdgeTune.Models.BuiltInModels.DemoDataPath(), "--steps", "1", "--out", Path.Combine(_dir, "s2")).Code);

        // serve: the encrypted model and adapter, answering over loopback
        var output = new ServeUrlWriter();
        var error = new StringWriter();
        var root = new RootCommand { ServeCommand.Create() };
        using var cts = new CancellationTokenSource();
        var serving = root.Parse(["serve", "--model", model, "--adapter", $"mine={adapter}", "--key-file", key, "--port", "0"])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cts.Token);
        var first = await Task.WhenAny(output.Url.Task, serving).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(first == output.Url.Task, $"serve ended early: {error}");
        using (var http = new HttpClient { BaseAddress = await output.Url.Task })
        {
            var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
            Assert.Contains("mine", models.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        }
        cts.Cancel();
        Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(7, Run("serve", "--model", model, "--port", "0").Code);
    }
}
