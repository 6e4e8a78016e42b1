using System.Security.Cryptography;
using EdgeTune.Formats.Internal;
using EdgeTune.Tensors;
using Microsoft.Win32.SafeHandles;

namespace EdgeTune.Security;

/// <summary>
/// Encryption at rest for run files (checkpoints, adapters, data): the ETENC1 format, written atomically
/// and read whole, as a seekable stream, or into memory.
/// </summary>
/// <remarks>
/// <para>Layout: a 104-byte header (see <see cref="EncryptedFileInfo"/> and the README), then the plaintext
/// cut into chunks of a fixed size (default 1 MiB; the last one shorter, an empty file one empty chunk),
/// each stored as AES-256-GCM ciphertext followed by its 16-byte tag.</para>
/// <para>Keys: each file has a random 16-byte id; its chunk key and header key are HKDF-SHA256 of the master
/// key (raw, or derived from a passphrase with the KDF and salt in the header) with that id as salt. A
/// chunk's nonce is the file's random 4-byte prefix then the chunk index; its associated data holds the file
/// id, the index, a final-chunk flag and the file's logical name. The header is authenticated by an
/// HMAC-SHA256 over its fields and the logical name.</para>
/// <para>So a wrong key, a changed byte, chunks reordered, a chunk copied from another file, a file cut short
/// or extended, a changed header, or a file opened under another logical name (the relative path inside the
/// run folder, compared with '/' separators) are all rejected with an <see cref="EncryptedFileException"/>
/// naming the file and, for a chunk, its index.</para>
/// <para>Memory-mapped readers cannot map ciphertext: <see cref="DecryptToMemory"/> decrypts into anonymous
/// native memory (zeroed again when disposed), which is what they use in place of a file mapping.</para>
/// </remarks>
public static class EncryptedFile
{
    /// <summary>Default plaintext chunk size (1 MiB).</summary>
    public const int DefaultChunkSize = 1 << 20;

    /// <summary>Size of the fixed header in bytes.</summary>
    public const int HeaderSize = EncryptedFileHeader.Size;

    /// <summary>
    /// Encrypts <paramref name="source"/> (read to its end, streaming) into <paramref name="path"/> through a
    /// temporary file and a rename: if anything fails, an existing <paramref name="path"/> is left untouched.
    /// </summary>
    /// <param name="logicalName">The name the file is bound to, e.g. its relative path in the run folder.</param>
    public static void Write(string path, string logicalName, Stream source, EncryptionKey key, int chunkSize = DefaultChunkSize)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(key);
        var (kdf, salt) = FreshSalt(key);
        AtomicFile.Write(path, fs =>
        {
            using var enc = new EncryptedWriteStream(fs, logicalName, key, kdf, salt, chunkSize);
            source.CopyTo(enc, chunkSize);
            enc.Complete();
        });
    }

    /// <summary>
    /// Encrypts whatever <paramref name="write"/> writes into <paramref name="path"/>, streaming (no plaintext
    /// reaches the disk), through a temporary file and a rename like <see cref="Write(string, string, Stream, EncryptionKey, int)"/>.
    /// The stream given to <paramref name="write"/> is write-only and cannot seek.
    /// </summary>
    public static void Write(string path, string logicalName, Action<Stream> write, EncryptionKey key, int chunkSize = DefaultChunkSize)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentNullException.ThrowIfNull(key);
        var (kdf, salt) = FreshSalt(key);
        WriteWithSalt(path, logicalName, write, key, kdf, salt, chunkSize);
    }

    /// <summary>As <see cref="Write(string, string, Action{Stream}, EncryptionKey, int)"/>, with the KDF and salt given
    /// (a run folder's, so a passphrase is stretched once per folder rather than once per file).</summary>
    internal static void WriteWithSalt(string path, string logicalName, Action<Stream> write, EncryptionKey key, KdfParameters kdf, byte[] salt,
        int chunkSize = DefaultChunkSize) =>
        AtomicFile.Write(path, fs =>
        {
            using var enc = new EncryptedWriteStream(fs, logicalName, key, kdf, salt, chunkSize);
            write(enc);
            enc.Complete();
        });

    /// <summary>A new random salt for a passphrase key (zeros and no KDF for a raw key).</summary>
    internal static (KdfParameters Kdf, byte[] Salt) FreshSalt(EncryptionKey key) =>
        key.IsPassphrase ? (key.Kdf, RandomNumberGenerator.GetBytes(EncryptionKey.SaltBytes)) : (default, new byte[EncryptionKey.SaltBytes]);

    /// <summary>Encrypts <paramref name="data"/> into <paramref name="path"/> (atomic, like the stream overload).</summary>
    public static void Write(string path, string logicalName, byte[] data, EncryptionKey key, int chunkSize = DefaultChunkSize)
    {
        using var ms = new MemoryStream(data, writable: false);
        Write(path, logicalName, ms, key, chunkSize);
    }

    /// <summary>True when <paramref name="path"/> starts with the ETENC1 magic (nothing is authenticated).</summary>
    public static bool IsEncrypted(string path)
    {
        Span<byte> magic = stackalloc byte[6];
        using var handle = File.OpenHandle(path);
        return RandomAccess.Read(handle, magic, 0) == magic.Length && magic.SequenceEqual(EncryptedFileHeader.Magic);
    }

    /// <summary>The header's public fields (no key needed, nothing authenticated).</summary>
    public static EncryptedFileInfo ReadInfo(string path)
    {
        using var handle = File.OpenHandle(path);
        var b = new byte[HeaderSize];
        int n = RandomAccess.Read(handle, b, 0);
        return EncryptedFileHeader.Parse(b.AsSpan(0, n), path).ToInfo();
    }

    /// <summary>Decrypts the whole file into an array (up to <see cref="Array.MaxLength"/> bytes).</summary>
    public static byte[] ReadAllBytes(string path, string logicalName, EncryptionKey key)
    {
        using var r = EncryptedFileReader.Open(path, logicalName, key);
        long length = r.Header.PlaintextLength;
        if (length > Array.MaxLength)
            throw new EncryptedFileException(path, $"'{path}' holds {length} bytes, too many for one array: use OpenRead or DecryptToMemory");
        var result = new byte[length];
        var scratch = r.NewScratch();
        for (long i = 0; i < r.Header.ChunkCount; i++)
            r.DecryptChunk(i, result.AsSpan((int)(i * r.Header.ChunkSize)), scratch);
        return result;
    }

    /// <summary>Decrypts the whole file into <paramref name="destination"/>, chunk by chunk.</summary>
    public static void DecryptTo(string path, string logicalName, EncryptionKey key, Stream destination)
    {
        using var r = EncryptedFileReader.Open(path, logicalName, key);
        var scratch = r.NewScratch();
        var plain = new byte[r.Header.ChunkSize];
        try
        {
            for (long i = 0; i < r.Header.ChunkCount; i++)
                destination.Write(plain, 0, r.DecryptChunk(i, plain, scratch));
        }
        finally { CryptographicOperations.ZeroMemory(plain); }
    }

    /// <summary>
    /// A read-only, seekable stream over the plaintext that decrypts chunks when they are read, keeping the
    /// last <paramref name="cachedChunks"/> decrypted. The header and the file length are checked on open;
    /// each chunk is authenticated when first read.
    /// </summary>
    public static Stream OpenRead(string path, string logicalName, EncryptionKey key, int cachedChunks = 4) =>
        new EncryptedReadStream(EncryptedFileReader.Open(path, logicalName, key), cachedChunks);

    /// <summary>
    /// Decrypts the whole file into 64-byte aligned anonymous native memory, for code that needs one contiguous
    /// span (memory-mapped weights). There is no way to map ciphertext and see plaintext: this is the honest
    /// equivalent, and it costs the file's size in RAM. The storage is read-only for tensors and zeroed when
    /// disposed.
    /// </summary>
    public static unsafe TensorStorage DecryptToMemory(string path, string logicalName, EncryptionKey key)
    {
        using var r = EncryptedFileReader.Open(path, logicalName, key);
        var storage = DecryptedMemory.Allocate(r.Header.PlaintextLength);
        try
        {
            var scratch = r.NewScratch();
            for (long i = 0; i < r.Header.ChunkCount; i++)
            {
                long at = i * r.Header.ChunkSize;
                r.DecryptChunk(i, new Span<byte>(storage.Pointer + at, (int)r.Header.ChunkPlainLength(i)), scratch);
            }
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }
}

/// <summary>An opened, header-verified ETENC1 file that decrypts chunks by index.</summary>
internal sealed class EncryptedFileReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly AesGcm _gcm;
    private readonly byte[] _name;

    private EncryptedFileReader(string path, SafeFileHandle handle, EncryptedFileHeader header, AesGcm gcm, byte[] name)
    {
        Path = path;
        _handle = handle;
        Header = header;
        _gcm = gcm;
        _name = name;
    }

    public string Path { get; }
    public EncryptedFileHeader Header { get; }

    public static EncryptedFileReader Open(string path, string logicalName, EncryptionKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] name = EncryptedFileHeader.NameBytes(logicalName);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            var b = new byte[EncryptedFileHeader.Size];
            int n = RandomAccess.Read(handle, b, 0);
            var header = EncryptedFileHeader.Parse(b.AsSpan(0, n), path);
            var (chunkKey, headerKey) = header.DeriveKeys(key.Resolve(header.Kdf, header.Salt, path));
            try
            {
                if (!header.Verify(headerKey, name))
                    throw new EncryptedFileException(path,
                        $"wrong key or tampered file '{path}' (header): it does not authenticate with {key.Description} " +
                        $"under the logical name '{logicalName}' (a wrong key, a changed header, or a file renamed or moved from another name)");
                if (fileLength < header.EncryptedLength)
                    throw new EncryptedFileException(path,
                        $"encrypted file '{path}' is truncated: {fileLength} bytes, but its header promises {header.PlaintextLength} bytes " +
                        $"of plaintext in {header.ChunkCount} chunks ({header.EncryptedLength} bytes)");
                if (fileLength > header.EncryptedLength)
                    throw new EncryptedFileException(path,
                        $"encrypted file '{path}' has {fileLength - header.EncryptedLength} bytes after its last chunk (tampered or appended to)");
                return new EncryptedFileReader(path, handle, header, new AesGcm(chunkKey, EncryptedFileHeader.TagBytes), name);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(chunkKey);
                CryptographicOperations.ZeroMemory(headerKey);
            }
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A buffer for one chunk's ciphertext and tag.</summary>
    public byte[] NewScratch() => new byte[Header.ChunkSize + EncryptedFileHeader.TagBytes];

    /// <summary>Decrypts chunk <paramref name="index"/> into the start of <paramref name="destination"/>; returns its length.</summary>
    public int DecryptChunk(long index, Span<byte> destination, byte[] scratch)
    {
        int len = (int)Header.ChunkPlainLength(index);
        int total = len + EncryptedFileHeader.TagBytes;
        int got = 0;
        while (got < total)
        {
            int n = RandomAccess.Read(_handle, scratch.AsSpan(got, total - got), Header.ChunkOffset(index) + got);
            if (n == 0)
                throw new EncryptedFileException(Path, $"encrypted file '{Path}' is truncated (it shrank while being read) at chunk {index}", index);
            got += n;
        }
        Span<byte> nonce = stackalloc byte[12];
        Header.Nonce(index, nonce);
        bool final = index == Header.ChunkCount - 1;
        try
        {
            _gcm.Decrypt(nonce, scratch.AsSpan(0, len), scratch.AsSpan(len, EncryptedFileHeader.TagBytes),
                destination[..len], Header.AssociatedData(index, final, _name));
        }
        catch (AuthenticationTagMismatchException e)
        {
            destination[..len].Clear();
            throw new EncryptedFileException(Path,
                $"wrong key or tampered file '{Path}' (chunk {index} of {Header.ChunkCount}): the chunk does not authenticate " +
                "(changed bytes, or a chunk moved from another position or another file)", index, e);
        }
        return len;
    }

    public void Dispose()
    {
        _gcm.Dispose();
        _handle.Dispose();
    }
}
