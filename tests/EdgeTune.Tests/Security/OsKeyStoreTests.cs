using System.Runtime.Versioning;
using EdgeTune.Security;
using EdgeTune.Tests.Cli;

namespace EdgeTune.Tests.Security;

/// <summary>The OS key stores: the Linux kernel keyring for real on this machine (skipped, with the reason, where the
/// keyring syscalls are refused), and the platform choice behind --key-store.</summary>
public sealed class OsKeyStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-keystore-").FullName;
    private readonly List<LinuxKeyringKeySource> _made = [];

    public void Dispose()
    {
        if (OperatingSystem.IsLinux()) foreach (var k in _made) try { k.Delete(); } catch (IOException) { }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [SupportedOSPlatform("linux")]
    private LinuxKeyringKeySource NewKeyringName()
    {
        var source = new LinuxKeyringKeySource("test-" + Guid.NewGuid().ToString("N"));
        _made.Add(source);
        return source;
    }

    /// <summary>Skips unless this is Linux and the kernel keyring answers (a sandbox's seccomp policy may refuse it).</summary>
    [SupportedOSPlatform("linux")]
    private static void RequireKeyring()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the kernel keyring exists on Linux only");
        var probe = new LinuxKeyringKeySource("probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            probe.CreateKey().Dispose();
            probe.Delete();
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException)
        {
            Skip.If(true, $"the Linux kernel keyring is not usable here: {e.Message}");
        }
    }

    [SkippableFact]
    [SupportedOSPlatform("linux")]
    public void LinuxKeyringStoresReadsAndRemovesAKey()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the kernel keyring exists on Linux only");
        RequireKeyring();
        var source = NewKeyringName();
        Assert.False(source.Exists);
        Assert.Throws<KeyNotFoundException>(() => source.GetKey());
        using (var created = source.CreateKey())
        {
            Assert.True(source.Exists);
            using var loaded = source.GetKey();
            Assert.Equal(created.ExportBase64(), loaded.ExportBase64());
            // the key encrypts and decrypts a file like any other
            string f = Path.Combine(_dir, "x.enc");
            EncryptedFile.Write(f, "x", "secret"u8.ToArray(), created);
            Assert.Equal("secret"u8.ToArray(), EncryptedFile.ReadAllBytes(f, "x", loaded));
        }
        // a second create does not replace the stored key
        Assert.Throws<IOException>(() => source.CreateKey());
        // another name is another key
        var other = NewKeyringName();
        using (var k2 = other.CreateKey())
        using (var k1 = source.GetKey())
            Assert.NotEqual(k1.ExportBase64(), k2.ExportBase64());
        Assert.True(source.Delete());
        Assert.False(source.Exists);
        Assert.False(source.Delete());
        Assert.Contains("edgetune:" + source.Name, source.Description);
    }

    [Fact]
    public void ThePlatformStoreIsChosenByTheRunningSystem()
    {
        var store = KeySource.OsKeyStore("name");
        if (OperatingSystem.IsWindows()) Assert.IsType<DpapiKeySource>(store);
        else if (OperatingSystem.IsLinux()) Assert.IsType<LinuxKeyringKeySource>(store);
        else if (OperatingSystem.IsMacOS()) Assert.IsType<MacKeychainKeySource>(store);
        Assert.Throws<ArgumentException>(() => KeySource.OsKeyStore(""));
    }

    [SkippableFact]
    [SupportedOSPlatform("linux")]
    public void KeyStoreOptionEncryptsARunAndReadsItBack()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "this end-to-end case uses the Linux kernel keyring");
        RequireKeyring();
        var source = NewKeyringName();
        string run = Path.Combine(_dir, "run");
        var r = CliRunner.Run("finetune", "--steps", "2", "--checkpoint-every", "0", "--eval-every", "0", "--out", run, "--encrypt", "--key-store", source.Name);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("kernel keyring", r.Err);
        Assert.True(source.Exists);
        Assert.True(EncryptedFile.IsEncrypted(Path.Combine(run, "model", "model.safetensors")));
        var g = CliRunner.Run("generate", "--model", Path.Combine(run, "model"), "--prompt", "Zog", "--temperature", "0", "--max-new-tokens", "4", "--key-store", source.Name);
        Assert.True(g.Code == 0, g.Err);
        // a name with no key behind it: exit 7, naming the store
        var missing = CliRunner.Run("generate", "--model", Path.Combine(run, "model"), "--prompt", "Zog", "--key-store", "absent-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(7, missing.Code);
        Assert.Contains("no such key", missing.Err);
    }
}
