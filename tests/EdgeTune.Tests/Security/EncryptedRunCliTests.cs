using EdgeTune.Security;
using EdgeTune.Tests.Cli;

namespace EdgeTune.Tests.Security;

/// <summary>The CLI's --encrypt and key options end to end on the built-in model: an encrypted fine-tuning run writes
/// no plaintext, gives the same model as a plain run, is read back by generate/eval with the key, resumes with it,
/// and is refused (exit code 7, nothing changed) without it or with another key.</summary>
public sealed class EncryptedRunCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-enc-cli-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void EncryptedFinetuneIsReadBackWithTheKeyOnlyAndResumes()
    {
        string run = Path.Combine(_dir, "run"), plainRun = Path.Combine(_dir, "plain"), key = Path.Combine(_dir, "run.key");
        string[] common = ["finetune", "--steps", "4", "--checkpoint-every", "2", "--eval-every", "0"];
        var enc = Run([.. common, "--out", run, "--encrypt", "--key-file", key]);
        Assert.True(enc.Code == 0, enc.Err + enc.Out);
        Assert.Contains("created key file", enc.Err);
        Assert.Contains("encrypted: every file", enc.Out);
        Assert.True(File.Exists(Path.Combine(run, RunFiles.ManifestFile)));
        foreach (string f in Directory.GetFiles(run, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != RunFiles.ManifestFile))
            Assert.True(EncryptedFile.IsEncrypted(f), $"'{f}' is plain");
        Assert.False(File.Exists(Path.Combine(run, "loss.png")));
        foreach (string f in new[] { "metrics.jsonl", "data_report.json", "model/model.safetensors", "model/config.json", "model/tokenizer.bin" })
            Assert.True(File.Exists(Path.Combine(run, f)), f);

        // the same run, plain: the encrypted model generates exactly what the plain one does
        var plain = Run([.. common, "--out", plainRun]);
        Assert.True(plain.Code == 0, plain.Err);
        string[] gen = ["generate", "--prompt", "Zog is a little", "--temperature", "0", "--max-new-tokens", "8"];
        var g1 = Run([.. gen, "--model", Path.Combine(plainRun, "model")]);
        var g2 = Run([.. gen, "--model", Path.Combine(run, "model"), "--key-file", key]);
        Assert.True(g2.Code == 0, g2.Err);
        Assert.Equal(g1.Out, g2.Out);
        var eval = Run("eval", "--model", Path.Combine(run, "model"), "--key-file", key, "--data", EdgeTune.Models.BuiltInModels.DemoDataPath(), "--seq-len", "64", "--max-tokens", "2000");
        Assert.True(eval.Code == 0, eval.Err);

        // without the key, with another key, or resuming without it: exit 7, one clear line, nothing changed
        var before = Snapshot(run);
        var noKey = Run([.. gen, "--model", Path.Combine(run, "model")]);
        Assert.Equal(7, noKey.Code);
        Assert.Contains("is encrypted", noKey.Err);
        string other = Path.Combine(_dir, "other.key");
        EncryptionKey.CreateKeyFile(other).Dispose();
        var wrong = Run([.. gen, "--model", Path.Combine(run, "model"), "--key-file", other]);
        Assert.Equal(7, wrong.Code);
        Assert.Contains("wrong key", wrong.Err);
        var resumeNoKey = Run("finetune", "--steps", "6", "--checkpoint-every", "2", "--eval-every", "0", "--out", run, "--resume");
        Assert.Equal(7, resumeNoKey.Code);
        var exportInside = Run("export", "--model", Path.Combine(run, "model"), "--key-file", key, "--format", "safetensors", "--out", Path.Combine(run, "exported"));
        Assert.Equal(2, exportInside.Code);
        Assert.Contains("inside the encrypted run folder", exportInside.Err);
        Assert.Equal(before, Snapshot(run));

        // a key for a new plain folder without --encrypt is a usage error (nothing gets encrypted by surprise)
        var surprise = Run([.. common, "--out", Path.Combine(_dir, "new"), "--key-file", key]);
        Assert.Equal(2, surprise.Code);

        // with the key the run resumes from its encrypted checkpoint and stays encrypted
        var resumed = Run("finetune", "--steps", "6", "--checkpoint-every", "2", "--eval-every", "0", "--out", run, "--resume", "--key-file", key);
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("resumed from", resumed.Err);
        Assert.Contains("stopped: Completed at step 6/6", resumed.Out);
        foreach (string f in Directory.GetFiles(run, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != RunFiles.ManifestFile))
            Assert.True(EncryptedFile.IsEncrypted(f), $"'{f}' is plain");
    }

    [Fact]
    public void PassphraseFromAnEnvironmentVariableAndKeyOptionErrors()
    {
        string run = Path.Combine(_dir, "pass");
        string variable = "EDGETUNE_TEST_PASSPHRASE_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(variable, "a long test passphrase");
        try
        {
            var r = Run("finetune", "--steps", "2", "--checkpoint-every", "0", "--eval-every", "0", "--out", run, "--encrypt", "--passphrase-env", variable);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains("Argon2id", File.ReadAllText(Path.Combine(run, RunFiles.ManifestFile)));
            var g = Run("generate", "--model", Path.Combine(run, "model"), "--prompt", "Zog", "--temperature", "0", "--max-new-tokens", "4", "--passphrase-env", variable);
            Assert.True(g.Code == 0, g.Err);
        }
        finally { Environment.SetEnvironmentVariable(variable, null); }
        var unset = Run("generate", "--model", Path.Combine(run, "model"), "--prompt", "Zog", "--passphrase-env", variable);
        Assert.Equal(2, unset.Code);
        Assert.Contains("not set", unset.Err);
        var noSource = Run("finetune", "--steps", "1", "--out", Path.Combine(_dir, "x"), "--encrypt");
        Assert.Equal(2, noSource.Code);
        Assert.Contains("--encrypt needs a key", noSource.Err);
        var two = Run("generate", "--model", Path.Combine(run, "model"), "--key-env", "A", "--key-file", "b");
        Assert.Equal(2, two.Code);
    }
}
