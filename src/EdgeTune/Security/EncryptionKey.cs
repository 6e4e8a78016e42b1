using System.Security.Cryptography;
using System.Text;

namespace EdgeTune.Security;

/// <summary>
/// The secret that encrypts and decrypts <see cref="EncryptedFile"/>s: either a raw 256-bit key, or a
/// passphrase that is stretched per file with the KDF parameters and salt stored in that file's header.
/// Secret bytes are zeroed on <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// A passphrase key remembers the keys it derived (per salt and parameters, in this instance only), so
/// opening several files written in one go does not pay the KDF again for each.
/// </remarks>
public sealed class EncryptionKey : IDisposable
{
    /// <summary>Raw key length in bytes (AES-256).</summary>
    public const int KeyBytes = 32;
    /// <summary>Salt length in bytes stored in the header of passphrase-derived files.</summary>
    public const int SaltBytes = 16;
    /// <summary>Environment variable read by <see cref="FromEnvironment"/> when no name is given.</summary>
    public const string DefaultEnvironmentVariable = "EDGETUNE_ENCRYPTION_KEY";

    private byte[]? _raw;            // raw key, or null for a passphrase
    private byte[]? _passphrase;     // UTF-8 passphrase, or null for a raw key
    private readonly Dictionary<string, byte[]> _derived = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    private EncryptionKey(byte[]? raw, byte[]? passphrase, KdfParameters kdf, string description)
    {
        _raw = raw;
        _passphrase = passphrase;
        Kdf = kdf;
        Description = description;
    }

    /// <summary>The KDF used for new files: <see cref="KdfAlgorithm.None"/> for a raw key.</summary>
    public KdfParameters Kdf { get; }

    /// <summary>Where the key came from, for messages (never the secret itself).</summary>
    public string Description { get; }

    /// <summary>True for a passphrase key (derived per file), false for a raw key.</summary>
    public bool IsPassphrase => _passphrase is not null;

    /// <summary>A raw 32-byte key (copied).</summary>
    public static EncryptionKey FromBytes(ReadOnlySpan<byte> key, string description = "raw key")
    {
        if (key.Length != KeyBytes)
            throw new ArgumentException($"an encryption key is {KeyBytes} bytes, got {key.Length}", nameof(key));
        return new EncryptionKey(key.ToArray(), null, default, description);
    }

    /// <summary>A fresh random 32-byte key.</summary>
    public static EncryptionKey Generate() => new(RandomNumberGenerator.GetBytes(KeyBytes), null, default, "generated key");

    /// <summary>A raw key given as base64 of exactly 32 bytes.</summary>
    public static EncryptionKey FromBase64(string base64, string description = "base64 key")
    {
        ArgumentNullException.ThrowIfNull(base64);
        byte[] bytes;
        try { bytes = Convert.FromBase64String(base64.Trim()); }
        catch (FormatException e) { throw new FormatException($"{description}: not valid base64", e); }
        try
        {
            if (bytes.Length != KeyBytes)
                throw new FormatException($"{description}: decodes to {bytes.Length} bytes, an encryption key is {KeyBytes}");
            return new EncryptionKey(bytes.ToArray(), null, default, description);
        }
        finally { CryptographicOperations.ZeroMemory(bytes); }
    }

    /// <summary>
    /// A raw key from an environment variable holding its base64 (default
    /// <see cref="DefaultEnvironmentVariable"/>).
    /// </summary>
    public static EncryptionKey FromEnvironment(string variable = DefaultEnvironmentVariable)
    {
        string? value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException($"environment variable {variable} is not set; it should hold the base64 of a {KeyBytes}-byte key");
        return FromBase64(value, $"environment variable {variable}");
    }

    /// <summary>
    /// A raw key from a key file: either exactly 32 raw bytes, or base64 text of 32 bytes (whitespace around
    /// it is ignored).
    /// </summary>
    public static EncryptionKey FromKeyFile(string path)
    {
        byte[] content = File.ReadAllBytes(path);
        try
        {
            if (content.Length == KeyBytes) return new EncryptionKey(content.ToArray(), null, default, $"key file {path}");
            return FromBase64(Encoding.ASCII.GetString(content), $"key file {path}");
        }
        finally { CryptographicOperations.ZeroMemory(content); }
    }

    /// <summary>
    /// A passphrase, stretched per file with <paramref name="kdf"/> (default
    /// <see cref="KdfParameters.Argon2idDefault"/>) and a fresh random salt for each file written.
    /// </summary>
    public static EncryptionKey FromPassphrase(string passphrase, KdfParameters? kdf = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(passphrase);
        var p = kdf ?? KdfParameters.Argon2idDefault;
        if (p.Algorithm == KdfAlgorithm.None) throw new ArgumentException("a passphrase needs a KDF", nameof(kdf));
        if (p.Problem() is { } problem) throw new ArgumentException(problem, nameof(kdf));
        return new EncryptionKey(null, Encoding.UTF8.GetBytes(passphrase), p, "passphrase");
    }

    /// <summary>Writes a new random key as base64 to <paramref name="path"/> (fails if it exists) and returns it.</summary>
    public static EncryptionKey CreateKeyFile(string path)
    {
        var key = Generate();
        var (raw, _) = key.Material();
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // owner only
            using var fs = new FileStream(path, options);
            fs.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(raw!) + "\n"));
        }
        catch { key.Dispose(); throw; }
        return key;
    }

    /// <summary>The raw key as base64 (throws for a passphrase key). Treat the result as a secret.</summary>
    public string ExportBase64()
    {
        if (IsPassphrase) throw new InvalidOperationException("a passphrase key has no single raw key to export");
        return Convert.ToBase64String(Material().Raw!);
    }

    /// <summary>The key that a file with this KDF and salt was written with.</summary>
    internal byte[] Resolve(KdfParameters kdf, ReadOnlySpan<byte> salt, string path)
    {
        var (raw, pass) = Material();
        if (raw is not null)
        {
            if (kdf.Algorithm != KdfAlgorithm.None)
                throw new EncryptedFileException(path, $"the file was encrypted with a passphrase ({kdf.Algorithm}), but a raw key ({Description}) was given");
            return raw;
        }
        if (kdf.Algorithm == KdfAlgorithm.None)
            throw new EncryptedFileException(path, "the file was encrypted with a raw key, but a passphrase was given");
        string id = $"{kdf.Algorithm}:{kdf.Iterations}:{kdf.MemoryKiB}:{kdf.Parallelism}:{Convert.ToHexString(salt)}";
        lock (_gate)
        {
            if (_derived.TryGetValue(id, out var cached)) return cached;
        }
        byte[] key = Derive(pass!, kdf, salt);
        lock (_gate)
        {
            if (_derived.TryGetValue(id, out var raced)) { CryptographicOperations.ZeroMemory(key); return raced; }
            _derived[id] = key;
            return key;
        }
    }

    private static byte[] Derive(byte[] passphrase, KdfParameters kdf, ReadOnlySpan<byte> salt)
    {
        switch (kdf.Algorithm)
        {
            case KdfAlgorithm.Pbkdf2Sha256:
                return Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, kdf.Iterations, HashAlgorithmName.SHA256, KeyBytes);
            case KdfAlgorithm.Argon2id:
                using (var a = new Konscious.Security.Cryptography.Argon2id(passphrase.ToArray()))
                {
                    a.Salt = salt.ToArray();
                    a.Iterations = kdf.Iterations;
                    a.MemorySize = kdf.MemoryKiB;
                    a.DegreeOfParallelism = kdf.Parallelism;
                    return a.GetBytes(KeyBytes);
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(kdf), kdf.Algorithm, "no derivation for this KDF");
        }
    }

    private (byte[]? Raw, byte[]? Passphrase) Material()
    {
        var raw = _raw; var pass = _passphrase;
        if (raw is null && pass is null) throw new ObjectDisposedException(nameof(EncryptionKey), $"the encryption key ({Description}) was disposed");
        return (raw, pass);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_raw is not null) CryptographicOperations.ZeroMemory(_raw);
            if (_passphrase is not null) CryptographicOperations.ZeroMemory(_passphrase);
            foreach (var k in _derived.Values) CryptographicOperations.ZeroMemory(k);
            _derived.Clear();
            _raw = null;
            _passphrase = null;
        }
    }

    public override string ToString() => $"EncryptionKey({Description})";
}
