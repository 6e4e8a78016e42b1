using System.Security.Cryptography;

namespace EdgeTune.Security;

/// <summary>
/// Write-only stream that encrypts what is written to it into ETENC1 format on a seekable
/// <c>target</c> (positioned at the file's start): a placeholder header, then each chunk as it fills. A full chunk
/// is held back until the next byte arrives, so that the last chunk (full or not) is the one flagged final;
/// <see cref="Complete"/> encrypts it and writes the real header (length and MAC) over the placeholder. Without
/// <see cref="Complete"/> the file stays invalid (its header is zeros), which readers reject. The target is not
/// disposed. Not thread-safe.
/// </summary>
internal sealed class EncryptedWriteStream : Stream
{
    private readonly Stream _target;
    private readonly long _origin;
    private readonly EncryptedFileHeader _header;
    private readonly byte[] _headerKey;
    private readonly byte[] _name;
    private readonly AesGcm _gcm;
    private readonly byte[] _plain;
    private readonly byte[] _cipher;
    private int _filled;
    private long _index;
    private long _total;
    private bool _completed;
    private bool _disposed;

    /// <summary>Starts an encrypted file on <paramref name="target"/> under <paramref name="logicalName"/>.</summary>
    /// <param name="kdf">KDF recorded in the header (<see cref="KdfAlgorithm.None"/> for a raw key).</param>
    /// <param name="salt">Salt recorded in the header (and used to derive a passphrase key); zeros for a raw key.</param>
    public EncryptedWriteStream(Stream target, string logicalName, EncryptionKey key, KdfParameters kdf, byte[] salt, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(key);
        if (!target.CanSeek || !target.CanWrite) throw new ArgumentException("the target of an encrypted file must be writable and seekable", nameof(target));
        if (chunkSize < EncryptedFileHeader.MinChunkSize || chunkSize > EncryptedFileHeader.MaxChunkSize)
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize,
                $"chunk size must be in [{EncryptedFileHeader.MinChunkSize}, {EncryptedFileHeader.MaxChunkSize}]");
        if (salt.Length != EncryptionKey.SaltBytes) throw new ArgumentException($"a salt is {EncryptionKey.SaltBytes} bytes", nameof(salt));
        _target = target;
        _origin = target.Position;
        _name = EncryptedFileHeader.NameBytes(logicalName);
        _header = new EncryptedFileHeader
        {
            Kdf = kdf,
            Salt = salt.ToArray(),
            FileId = RandomNumberGenerator.GetBytes(16),
            NoncePrefix = RandomNumberGenerator.GetBytes(4),
            ChunkSize = chunkSize,
            PlaintextLength = 0,
        };
        var (chunkKey, headerKey) = _header.DeriveKeys(key.Resolve(kdf, salt, logicalName));
        try { _gcm = new AesGcm(chunkKey, EncryptedFileHeader.TagBytes); }
        finally { CryptographicOperations.ZeroMemory(chunkKey); }
        _headerKey = headerKey;
        _plain = new byte[chunkSize];
        _cipher = new byte[chunkSize];
        Span<byte> placeholder = stackalloc byte[EncryptedFileHeader.Size];
        placeholder.Clear();
        _target.Write(placeholder);
    }

    /// <summary>Plaintext bytes written so far.</summary>
    public long PlaintextLength => _total + _filled;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_disposed && !_completed;
    public override long Length => throw new NotSupportedException("an encrypted write stream has no length until it is complete");
    public override long Position
    {
        get => PlaintextLength;
        set => throw new NotSupportedException("an encrypted write stream is written front to back");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) throw new InvalidOperationException("the encrypted file is already complete");
        while (buffer.Length > 0)
        {
            if (_filled == _plain.Length) EncryptHeld(final: false); // more data arrived: the held chunk is not the last
            int n = Math.Min(buffer.Length, _plain.Length - _filled);
            buffer[..n].CopyTo(_plain.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
        }
    }

    public override void WriteByte(byte value)
    {
        ReadOnlySpan<byte> one = [value];
        Write(one);
    }

    /// <summary>Encrypts the last chunk and writes the final header; the stream takes no more data afterwards.</summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) return;
        EncryptHeld(final: true);
        _header.PlaintextLength = _total;
        _header.Mac = _header.ComputeMac(_headerKey, _name);
        Span<byte> head = stackalloc byte[EncryptedFileHeader.Size];
        _header.WriteTo(head);
        long end = _target.Position;
        _target.Position = _origin;
        _target.Write(head);
        _target.Position = end;
        _completed = true;
    }

    private void EncryptHeld(bool final)
    {
        Span<byte> nonce = stackalloc byte[12], tag = stackalloc byte[EncryptedFileHeader.TagBytes];
        _header.Nonce(_index, nonce);
        _gcm.Encrypt(nonce, _plain.AsSpan(0, _filled), _cipher.AsSpan(0, _filled), tag, _header.AssociatedData(_index, final, _name));
        _target.Write(_cipher, 0, _filled);
        _target.Write(tag);
        _total += _filled;
        _filled = 0;
        _index++;
    }

    public override void Flush() { } // chunks reach the target as they fill; the caller flushes the target
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("an encrypted write stream is write-only");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("an encrypted write stream is written front to back");
    public override void SetLength(long value) => throw new NotSupportedException("an encrypted write stream is written front to back");

    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing)
        {
            _disposed = true;
            _gcm.Dispose();
            CryptographicOperations.ZeroMemory(_plain);
            CryptographicOperations.ZeroMemory(_headerKey);
        }
        base.Dispose(disposing);
    }
}
