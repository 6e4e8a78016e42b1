using System.Security.Cryptography;

namespace EdgeTune.Security;

/// <summary>
/// Read-only, seekable plaintext view of an ETENC1 file; chunks are decrypted (and authenticated) on demand
/// and the most recently used few are kept. Not thread-safe, like other streams.
/// </summary>
internal sealed class EncryptedReadStream : Stream
{
    private readonly EncryptedFileReader _reader;
    private readonly (long Index, byte[] Data, int Length, long LastUse)[] _cache;
    private readonly byte[] _scratch;
    private long _position;
    private long _clock;
    private bool _disposed;

    public EncryptedReadStream(EncryptedFileReader reader, int cachedChunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cachedChunks, 1);
        _reader = reader;
        _cache = new (long, byte[], int, long)[cachedChunks];
        for (int i = 0; i < _cache.Length; i++) _cache[i].Index = -1;
        _scratch = reader.NewScratch();
    }

    public override bool CanRead => !_disposed;
    public override bool CanSeek => !_disposed;
    public override bool CanWrite => false;
    public override long Length { get { ThrowIfDisposed(); return _reader.Header.PlaintextLength; } }

    public override long Position
    {
        get { ThrowIfDisposed(); return _position; }
        set
        {
            ThrowIfDisposed();
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ThrowIfDisposed();
        long length = _reader.Header.PlaintextLength;
        int chunkSize = _reader.Header.ChunkSize;
        int done = 0;
        while (done < buffer.Length && _position < length)
        {
            long index = _position / chunkSize;
            int within = (int)(_position - index * chunkSize);
            var (data, len) = Chunk(index);
            int n = Math.Min(len - within, buffer.Length - done);
            data.AsSpan(within, n).CopyTo(buffer[done..]);
            done += n;
            _position += n;
        }
        return done;
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        ThrowIfDisposed();
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _reader.Header.PlaintextLength + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        if (target < 0) throw new IOException($"seek to {target}, before the start of '{_reader.Path}'");
        return _position = target;
    }

    private (byte[] Data, int Length) Chunk(long index)
    {
        int victim = 0;
        for (int i = 0; i < _cache.Length; i++)
        {
            if (_cache[i].Index == index)
            {
                _cache[i].LastUse = ++_clock;
                return (_cache[i].Data, _cache[i].Length);
            }
            // Empty slots have LastUse 0 (or were emptied), so the least recently used slot is the victim.
            if (_cache[i].LastUse < _cache[victim].LastUse) victim = i;
        }
        var data = _cache[victim].Data ?? new byte[_reader.Header.ChunkSize];
        _cache[victim] = (-1, data, 0, 0); // stays empty if decryption throws
        int len = _reader.DecryptChunk(index, data, _scratch);
        _cache[victim] = (index, data, len, ++_clock);
        return (data, len);
    }

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException("an encrypted file stream is read-only");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("an encrypted file stream is read-only");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing)
        {
            _disposed = true;
            foreach (var e in _cache)
                if (e.Data is not null) CryptographicOperations.ZeroMemory(e.Data);
            _reader.Dispose();
        }
        base.Dispose(disposing);
    }
}
