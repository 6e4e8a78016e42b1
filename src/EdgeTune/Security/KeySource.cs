using System.Runtime.Versioning;
using System.Security.Cryptography;

namespace EdgeTune.Security;

/// <summary>
/// Where an <see cref="EncryptionKey"/> comes from: an environment variable, a key file, a passphrase, or
/// an operating-system key store. Each call to <see cref="GetKey"/> returns a new key the caller disposes.
/// </summary>
public abstract class KeySource
{
    /// <summary>What the source is, for messages (never the secret).</summary>
    public abstract string Description { get; }

    /// <summary>Loads the key; throws with a message naming the source when it cannot.</summary>
    public abstract EncryptionKey GetKey();

    public override string ToString() => Description;

    /// <summary>Base64 of a 32-byte key in an environment variable.</summary>
    public static KeySource Environment(string variable = EncryptionKey.DefaultEnvironmentVariable) =>
        new Delegated($"environment variable {variable}", () => EncryptionKey.FromEnvironment(variable));

    /// <summary>A key file (32 raw bytes or base64 text).</summary>
    public static KeySource KeyFile(string path) => new Delegated($"key file {path}", () => EncryptionKey.FromKeyFile(path));

    /// <summary>A passphrase read when the key is needed (e.g. from a prompt).</summary>
    public static KeySource Passphrase(Func<string> read, KdfParameters? kdf = null) =>
        new Delegated("passphrase", () => EncryptionKey.FromPassphrase(read(), kdf));

    /// <summary>
    /// A key kept in a file protected by Windows DPAPI for the current user (see <see cref="DpapiKeySource"/>).
    /// </summary>
    public static DpapiKeySource WindowsDpapi(string protectedKeyPath) => new(protectedKeyPath);

    /// <summary>The running system's key store under <paramref name="name"/> (<see cref="StoredKeySource.ForPlatform"/>):
    /// Windows DPAPI key file, Linux kernel keyring, macOS Keychain.</summary>
    public static StoredKeySource OsKeyStore(string name) => StoredKeySource.ForPlatform(name);

    private sealed class Delegated(string description, Func<EncryptionKey> load) : KeySource
    {
        public override string Description => description;
        public override EncryptionKey GetKey() => load();
    }
}

/// <summary>
/// A 32-byte key stored in a file encrypted with the Windows Data Protection API (DPAPI,
/// <see cref="DataProtectionScope.CurrentUser"/>), so only the same Windows user on the same machine can
/// load it. Not available on other systems: there it throws <see cref="PlatformNotSupportedException"/>
/// (use <see cref="KeySource.KeyFile"/> or <see cref="KeySource.Environment"/> instead).
/// </summary>
public sealed class DpapiKeySource(string protectedKeyPath) : StoredKeySource
{
    private static readonly byte[] Entropy = "EdgeTune ETENC1 DPAPI key"u8.ToArray();

    public string ProtectedKeyPath { get; } = protectedKeyPath;

    public override string Description => $"Windows DPAPI key file {ProtectedKeyPath}";

    public override bool Exists => File.Exists(ProtectedKeyPath);

    /// <summary>Writes the key DPAPI-protected (fails if the file exists).</summary>
    protected override void Store(byte[] raw)
    {
        if (!OperatingSystem.IsWindows()) throw NotWindows();
        byte[] blob = ProtectCurrentUser(raw);
        using var fs = new FileStream(ProtectedKeyPath, FileMode.CreateNew, FileAccess.Write);
        fs.Write(blob);
    }

    public override EncryptionKey GetKey()
    {
        if (!OperatingSystem.IsWindows()) throw NotWindows();
        byte[] raw;
        try { raw = UnprotectCurrentUser(File.ReadAllBytes(ProtectedKeyPath)); }
        catch (CryptographicException e)
        {
            throw new CryptographicException($"{Description}: DPAPI could not unprotect the key (another user or machine, or a damaged file)", e);
        }
        try { return EncryptionKey.FromBytes(raw, Description); }
        finally { CryptographicOperations.ZeroMemory(raw); }
    }

    private static PlatformNotSupportedException NotWindows() =>
        new(
                "the Windows DPAPI key store is only available on Windows; on this system use a key file (KeySource.KeyFile) " +
                $"or the {EncryptionKey.DefaultEnvironmentVariable} environment variable (KeySource.Environment)");

    [SupportedOSPlatform("windows")]
    private static byte[] ProtectCurrentUser(byte[] data) => ProtectedData.Protect(data, Entropy, DataProtectionScope.CurrentUser);

    [SupportedOSPlatform("windows")]
    private static byte[] UnprotectCurrentUser(byte[] blob) => ProtectedData.Unprotect(blob, Entropy, DataProtectionScope.CurrentUser);
}
