using System.Security.Cryptography;
using System.Text;
using EdgeTune.Formats;
using EdgeTune.Formats.Internal;
using EdgeTune.Internal;

namespace EdgeTune.Security;

/// <summary>
/// The one way the library reads and writes the files of a run folder (checkpoints, adapter, merged model, teacher
/// cache, data report, canaries, metrics, a federated client's identity): plain files, or ETENC1 files
/// (<see cref="EncryptedFile"/>) when the folder is encrypted. Every write is atomic (temporary file and rename).
/// </summary>
/// <remarks>
/// <para>An encrypted run folder holds <see cref="ManifestFile"/> (plain JSON): the format, the KDF and the salt of a
/// passphrase key (one salt per folder, so the passphrase is stretched once per run, not once per file) and a key
/// check value, HMAC-SHA256 of the folder's master key over a fixed label, which tells a wrong key from a damaged
/// file before anything is read. No key material is stored.</para>
/// <para>Each file is bound to its logical name, its path relative to the run folder with '/' separators: a file
/// moved or renamed inside the folder, or copied from another run, does not decrypt. Code that assembles a folder
/// under a temporary name and renames it (checkpoints, exports) writes through <see cref="Staging"/>, so files are
/// bound to where they end up. A file outside the run folder is bound to its file name.</para>
/// <para>Rules that keep saved work safe: an encrypted folder opened without a key is refused
/// (<see cref="EncryptionKeyRequiredException"/>) before anything is written; a wrong key is refused by the key check
/// (<see cref="EncryptedFileException"/>); a key is refused for a folder that already holds plain outputs; a plain file
/// found in an encrypted folder is refused rather than trusted; an encrypted file found where no manifest is, likewise.</para>
/// <para>Instances do not own the key: the caller disposes it after the last use.</para>
/// </remarks>
public sealed class RunFiles
{
    /// <summary>The manifest that marks a run folder as encrypted.</summary>
    public const string ManifestFile = "encryption.json";
    /// <summary>Format name written in the manifest.</summary>
    public const string Format = "edgetune-run-encryption";
    /// <summary>Manifest version.</summary>
    public const int Version = 1;

    private static readonly byte[] KeyCheckLabel = "EdgeTune run folder key check v1"u8.ToArray();

    private readonly EncryptionKey? _key;
    private readonly KdfParameters _kdf;
    private readonly byte[] _salt;
    private readonly (string From, string To)? _staging;
    private readonly int _chunkSize;

    private RunFiles(string? root, EncryptionKey? key, KdfParameters kdf, byte[] salt, (string, string)? staging, int chunkSize = EncryptedFile.DefaultChunkSize)
    {
        _chunkSize = chunkSize;
        Root = root;
        _key = key;
        _kdf = kdf;
        _salt = salt;
        _staging = staging;
    }

    /// <summary>Plain files anywhere (no run folder, no encryption); an encrypted file met through it is refused.</summary>
    public static RunFiles Plain { get; } = new(null, null, default, new byte[EncryptionKey.SaltBytes], null);

    /// <summary>The run folder (full path); null for <see cref="Plain"/>.</summary>
    public string? Root { get; }

    /// <summary>True when files are written and read encrypted.</summary>
    public bool IsEncrypted => _key is not null;

    /// <summary>What protects the folder, for messages: "plain" or the key's description and KDF.</summary>
    public string Describe() => _key is null ? "plain" : $"encrypted (AES-256-GCM, {_key.Description}{(_kdf.Algorithm == KdfAlgorithm.None ? "" : ", " + _kdf.Algorithm)})";

    /// <summary>
    /// The files of the run folder <paramref name="root"/>, for a command that writes there (it need not exist).
    /// With a key: an existing manifest is checked against it, or a new one is written (a folder that already holds
    /// plain files is refused). Without a key: an encrypted folder is refused.
    /// </summary>
    /// <exception cref="EncryptionKeyRequiredException">The folder is encrypted and no key was given, or a key was given
    /// for a folder with plain outputs.</exception>
    /// <exception cref="EncryptedFileException">The key is not the folder's.</exception>
    /// <param name="chunkSize">Plaintext chunk size of the files of a new encrypted folder (recorded in the manifest).</param>
    public static RunFiles ForWriting(string root, EncryptionKey? key, int chunkSize = EncryptedFile.DefaultChunkSize)
    {
        if (chunkSize < EncryptedFileHeader.MinChunkSize || chunkSize > EncryptedFileHeader.MaxChunkSize)
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, $"chunk size must be in [{EncryptedFileHeader.MinChunkSize}, {EncryptedFileHeader.MaxChunkSize}]");
        ArgumentException.ThrowIfNullOrEmpty(root);
        string full = Path.GetFullPath(root);
        string manifest = Path.Combine(full, ManifestFile);
        if (File.Exists(manifest)) return FromManifest(full, key);
        if (key is null) return new RunFiles(full, null, default, new byte[EncryptionKey.SaltBytes], null);
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new EncryptionKeyRequiredException(full,
                $"run folder '{full}' already holds plain (unencrypted) files and no {ManifestFile}: an encrypted run needs a new or empty folder " +
                "(nothing was changed; pass another --out, or resume it without a key)");
        var (kdf, salt) = EncryptedFile.FreshSalt(key);
        byte[] check = KeyCheck(key, kdf, salt, manifest);
        var json = new RunEncryptionJson(Format, Version, "AES-256-GCM", chunkSize,
            new RunEncryptionJson.KdfJson(kdf.Algorithm.ToString(), kdf.Iterations, kdf.MemoryKiB, kdf.Parallelism),
            Convert.ToBase64String(salt), Convert.ToBase64String(check));
        string text = EdgeTuneJson.Write(json, EdgeTuneJson.Default.RunEncryptionJson, indented: true);
        AtomicFile.Write(manifest, fs => fs.Write(Encoding.UTF8.GetBytes(text)));
        return new RunFiles(full, key, kdf, salt, null, chunkSize);
    }

    /// <summary>
    /// The files that <paramref name="path"/> (a file or folder inside a run folder, or anywhere) is read through: the
    /// nearest folder at or above it holding <see cref="ManifestFile"/> is the encrypted run folder, which needs
    /// <paramref name="key"/>; with no manifest the files are plain (a key is then not needed and ignored).
    /// </summary>
    public static RunFiles ForReading(string path, EncryptionKey? key)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string? root = FindEncryptedRoot(path);
        return root is null ? Plain : FromManifest(root, key);
    }

    /// <summary>The nearest folder at or above <paramref name="path"/> that holds <see cref="ManifestFile"/>, or null.</summary>
    public static string? FindEncryptedRoot(string path)
    {
        string full = Path.GetFullPath(path);
        string? dir = Directory.Exists(full) ? full : Path.GetDirectoryName(full);
        for (; dir is not null; dir = Path.GetDirectoryName(dir))
            if (File.Exists(Path.Combine(dir, ManifestFile))) return dir;
        return null;
    }

    /// <summary>A view whose files, written under <paramref name="stagingDir"/>, are bound to the names they get once
    /// <paramref name="stagingDir"/> is renamed to <paramref name="finalDir"/>.</summary>
    public RunFiles Staging(string stagingDir, string finalDir) =>
        new(Root, _key, _kdf, _salt, (Path.GetFullPath(stagingDir), Path.GetFullPath(finalDir)), _chunkSize);

    /// <summary>The name <paramref name="path"/> is bound to: its path relative to the run folder ('/' separators),
    /// after the staging mapping; the file name for a path outside the run folder.</summary>
    public string LogicalName(string path)
    {
        string full = Path.GetFullPath(path);
        if (_staging is var (from, to) && IsUnder(full, from)) full = Path.Join(to, Path.GetRelativePath(from, full));
        if (Root is null || !IsUnder(full, Root)) return Path.GetFileName(full);
        return Path.GetRelativePath(Root, full).Replace('\\', '/');
    }

    /// <summary>Writes <paramref name="path"/> atomically with what <paramref name="write"/> writes: encrypted (the stream
    /// is then write-only and cannot seek) or plain.</summary>
    public void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (_key is null) AtomicFile.Write(path, fs => write(fs));
        else EncryptedFile.WriteWithSalt(path, LogicalName(path), write, _key, _kdf, _salt, _chunkSize);
    }

    public void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>UTF-8 without a byte-order mark, like <see cref="File.WriteAllText(string, string)"/>.</summary>
    public void WriteAllText(string path, string text) => WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    /// <summary>Copies a plain file from outside (e.g. a tokenizer of the base model) into the run folder.</summary>
    public void CopyIn(string source, string destination)
    {
        using var src = File.OpenRead(source);
        Write(destination, s => src.CopyTo(s));
    }

    /// <summary>A readable, seekable stream over the file's plaintext.</summary>
    public Stream OpenRead(string path)
    {
        CheckKind(path);
        return _key is null ? File.OpenRead(path) : EncryptedFile.OpenRead(path, LogicalName(path), _key);
    }

    public byte[] ReadAllBytes(string path)
    {
        CheckKind(path);
        return _key is null ? File.ReadAllBytes(path) : EncryptedFile.ReadAllBytes(path, LogicalName(path), _key);
    }

    public string ReadAllText(string path)
    {
        byte[] b = ReadAllBytes(path);
        int bom = b.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        return Encoding.UTF8.GetString(b, bom, b.Length - bom);
    }

    /// <summary>Opens a safetensors file: memory-mapped when plain; decrypted into memory when encrypted
    /// (<see cref="SafeTensorsFile.OpenEncrypted"/>), which supports the same random access to tensors.</summary>
    public SafeTensorsFile OpenSafeTensors(string path)
    {
        CheckKind(path);
        return _key is null ? SafeTensorsFile.Open(path) : SafeTensorsFile.OpenEncrypted(path, LogicalName(path), _key);
    }

    /// <summary>Refuses a plain file in an encrypted folder (it was not written by this folder's key and would be
    /// trusted unauthenticated) and an encrypted file where no manifest says which key opens it.</summary>
    private void CheckKind(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist", path);
        bool encrypted = EncryptedFile.IsEncrypted(path);
        if (_key is not null && !encrypted)
            throw new EncryptedFileException(path, $"'{path}' is a plain file, but the run folder '{Root}' is encrypted: it was not written with the folder's key, so it is refused (remove it, or re-create it with the key)");
        if (_key is null && encrypted)
            throw new EncryptionKeyRequiredException(Path.GetDirectoryName(Path.GetFullPath(path)) ?? path,
                $"'{path}' is encrypted (ETENC1) but no {ManifestFile} was found in its folder or above it, or no key was given: " +
                "open it from inside its run folder and pass the run's key (--key-file, --key-env, --passphrase-env)");
    }

    private static RunFiles FromManifest(string root, EncryptionKey? key)
    {
        string manifest = Path.Combine(root, ManifestFile);
        if (key is null)
            throw new EncryptionKeyRequiredException(root,
                $"run folder '{root}' is encrypted ({ManifestFile}); pass its key (--key-file, --key-env or --passphrase-env; the library: an EncryptionKey). Nothing was read or written");
        RunEncryptionJson json;
        try
        {
            json = System.Text.Json.JsonSerializer.Deserialize(File.ReadAllText(manifest), EdgeTuneJson.Default.RunEncryptionJson)
                ?? throw new InvalidDataException("empty");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException or NotSupportedException)
        {
            throw new EncryptedFileException(manifest, $"'{manifest}' is not a readable run-folder encryption manifest ({e.Message})", inner: e);
        }
        if (json.Format != Format || json.Version != Version)
            throw new EncryptedFileException(manifest, $"'{manifest}': format {json.Format} version {json.Version} is not {Format} version {Version}");
        if (!Enum.TryParse<KdfAlgorithm>(json.Kdf.Algorithm, out var algorithm))
            throw new EncryptedFileException(manifest, $"'{manifest}': unknown KDF '{json.Kdf.Algorithm}'");
        var kdf = new KdfParameters(algorithm, json.Kdf.Iterations, json.Kdf.MemoryKib, json.Kdf.Parallelism);
        if (kdf.Problem() is { } problem) throw new EncryptedFileException(manifest, $"'{manifest}': bad KDF parameters: {problem}");
        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(json.Salt);
            expected = Convert.FromBase64String(json.KeyCheck);
        }
        catch (FormatException e) { throw new EncryptedFileException(manifest, $"'{manifest}': salt or key check is not base64", inner: e); }
        if (salt.Length != EncryptionKey.SaltBytes) throw new EncryptedFileException(manifest, $"'{manifest}': the salt is {salt.Length} bytes, not {EncryptionKey.SaltBytes}");
        if (key.IsPassphrase != (kdf.Algorithm != KdfAlgorithm.None))
            throw new EncryptedFileException(manifest, kdf.Algorithm == KdfAlgorithm.None
                ? $"run folder '{root}' is encrypted with a raw key (key file or key variable), but a passphrase was given"
                : $"run folder '{root}' is encrypted with a passphrase ({kdf.Algorithm}), but a raw key ({key.Description}) was given");
        if (json.ChunkSize < EncryptedFileHeader.MinChunkSize || json.ChunkSize > EncryptedFileHeader.MaxChunkSize)
            throw new EncryptedFileException(manifest, $"'{manifest}': chunk size {json.ChunkSize} is out of range");
        if (!CryptographicOperations.FixedTimeEquals(KeyCheck(key, kdf, salt, manifest), expected))
            throw new EncryptedFileException(manifest, $"wrong key for the encrypted run folder '{root}': {key.Description} does not match its key check ({ManifestFile}). Nothing was read or written");
        return new RunFiles(root, key, kdf, salt, null, json.ChunkSize);
    }

    private static byte[] KeyCheck(EncryptionKey key, KdfParameters kdf, byte[] salt, string path)
    {
        byte[] master = key.Resolve(kdf, salt, path);
        return HMACSHA256.HashData(master, KeyCheckLabel);
    }

    private static bool IsUnder(string full, string folder)
    {
        var cmp = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        string f = Path.TrimEndingDirectorySeparator(folder);
        return full.Equals(f, cmp) || (full.StartsWith(f, cmp) && full.Length > f.Length && (full[f.Length] == Path.DirectorySeparatorChar || full[f.Length] == Path.AltDirectorySeparatorChar));
    }
}

/// <summary>encryption.json of an encrypted run folder (see <see cref="RunFiles"/>).</summary>
internal sealed record RunEncryptionJson(string Format, int Version, string Cipher, int ChunkSize, RunEncryptionJson.KdfJson Kdf, string Salt, string KeyCheck)
{
    internal sealed record KdfJson(string Algorithm, int Iterations, int MemoryKib, int Parallelism);
}
