using System.Security.Cryptography;
using EdgeTune.Formats;
using EdgeTune.Security;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;

namespace EdgeTune.Tests.Security;

public sealed class EncryptedFileTests : IDisposable
{
    private const int Chunk = 4096; // the smallest chunk size, so boundary cases stay small
    private const string Name = "runs/r1/adapter.safetensors";
    private readonly TempDir _dir = new();
    private readonly EncryptionKey _key = EncryptionKey.Generate();

    public void Dispose()
    {
        _key.Dispose();
        _dir.Dispose();
    }

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static long ChunkOffset(long index, int chunk = Chunk) => EncryptedFile.HeaderSize + index * (chunk + 16L);

    private string WriteSample(string file, byte[] data, int chunk = Chunk, EncryptionKey? key = null, string name = Name)
    {
        string path = _dir.File(file);
        EncryptedFile.Write(path, name, data, key ?? _key, chunk);
        return path;
    }

    [Theory]
    [InlineData(0, Chunk)]
    [InlineData(1, Chunk)]
    [InlineData(Chunk - 1, Chunk)]
    [InlineData(Chunk, Chunk)]
    [InlineData(Chunk + 1, Chunk)]
    [InlineData(3 * Chunk, Chunk)]
    [InlineData(5 * 1024 * 1024 + 123, EncryptedFile.DefaultChunkSize)]
    public void RoundTripsEverySizeAndLayoutMatchesTheFormat(int size, int chunk)
    {
        byte[] data = RandomBytes(size, size);
        string path = _dir.File("f.etenc");
        using (var src = new MemoryStream(data))
            EncryptedFile.Write(path, Name, src, _key, chunk);

        long chunks = size == 0 ? 1 : (size + chunk - 1) / chunk;
        Assert.Equal(EncryptedFile.HeaderSize + size + 16 * chunks, new FileInfo(path).Length);
        Assert.True(EncryptedFile.IsEncrypted(path));
        var info = EncryptedFile.ReadInfo(path);
        Assert.Equal((size, chunk, chunks, KdfAlgorithm.None), (info.PlaintextLength, info.ChunkSize, info.ChunkCount, info.Kdf.Algorithm));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));
        if (size >= 64) // ciphertext is not the plaintext
            Assert.False(File.ReadAllBytes(path).AsSpan(EncryptedFile.HeaderSize, 64).SequenceEqual(data.AsSpan(0, 64)));

        Assert.Equal(data, EncryptedFile.ReadAllBytes(path, Name, _key));

        using (var s = EncryptedFile.OpenRead(path, Name, _key))
        using (var copy = new MemoryStream())
        {
            Assert.Equal(size, s.Length);
            s.CopyTo(copy);
            Assert.Equal(data, copy.ToArray());
            Assert.Equal(0, s.Read(new byte[10]));
        }

        using (var copy = new MemoryStream())
        {
            EncryptedFile.DecryptTo(path, Name, _key, copy);
            Assert.Equal(data, copy.ToArray());
        }

        using var mem = EncryptedFile.DecryptToMemory(path, Name, _key);
        Assert.Equal(size, mem.ByteLength);
        Assert.True(mem.IsReadOnly);
        unsafe { Assert.True(new ReadOnlySpan<byte>(mem.Pointer, size).SequenceEqual(data)); }
    }

    [Fact]
    public void RandomAccessReadsAtRandomOffsetsEqualThePlaintext()
    {
        const int chunk = 64 * 1024;
        byte[] data = RandomBytes(3 * 1024 * 1024 + 17, 7);
        string path = WriteSample("ra.etenc", data, chunk);
        var rng = new Random(42);
        using var s = EncryptedFile.OpenRead(path, Name, _key, cachedChunks: 2);
        Assert.True(s.CanSeek);
        Assert.False(s.CanWrite);
        for (int i = 0; i < 300; i++)
        {
            long offset = rng.Next(data.Length + 10);
            int count = rng.Next(3) switch { 0 => rng.Next(1, 16), 1 => rng.Next(1, 2 * chunk + 5), _ => rng.Next(1, 300) };
            if (rng.Next(2) == 0) s.Position = offset;
            else s.Seek(offset - data.Length, SeekOrigin.End);
            var buffer = new byte[count];
            int got = 0, n;
            while (got < count && (n = s.Read(buffer, got, count - got)) > 0) got += n;
            int expected = (int)Math.Clamp(data.Length - offset, 0, count);
            Assert.Equal(expected, got);
            Assert.True(buffer.AsSpan(0, got).SequenceEqual(data.AsSpan((int)Math.Min(offset, data.Length), got)), $"offset {offset}, count {count}");
            Assert.Equal(offset + got, s.Position);
        }
        s.Position = chunk - 1;
        Assert.Equal(data[chunk - 1], s.ReadByte());
        Assert.Equal(data[chunk], s.ReadByte());
        s.Seek(-1, SeekOrigin.End);
        Assert.Equal(data[^1], s.ReadByte());
        Assert.Equal(-1, s.ReadByte());
        Assert.Throws<NotSupportedException>(() => s.Write(new byte[1], 0, 1));
        Assert.Throws<IOException>(() => s.Seek(-1, SeekOrigin.Begin));
    }

    [Fact]
    public void WrongKeyIsRejectedNamingTheFile()
    {
        string path = WriteSample("k.etenc", RandomBytes(10_000, 1));
        using var other = EncryptionKey.Generate();
        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, Name, other));
        Assert.Contains($"wrong key or tampered file '{path}'", e.Message);
        Assert.Equal(path, e.FilePath);
        Assert.IsAssignableFrom<CryptographicException>(e);
        Assert.Throws<EncryptedFileException>(() => EncryptedFile.OpenRead(path, Name, other));
    }

    [Fact]
    public void TamperedChunkByteIsRejectedNamingTheChunk()
    {
        byte[] data = RandomBytes(3 * Chunk + 100, 2);
        string path = WriteSample("t.etenc", data);
        byte[] raw = File.ReadAllBytes(path);
        raw[ChunkOffset(2) + 123] ^= 0x01;
        File.WriteAllBytes(path, raw);

        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, Name, _key));
        Assert.Contains($"wrong key or tampered file '{path}' (chunk 2 of 4)", e.Message);
        Assert.Equal(2, e.Chunk);

        // Random access: untouched chunks still read, the tampered one fails when reached.
        using var s = EncryptedFile.OpenRead(path, Name, _key);
        var first = new byte[2 * Chunk];
        s.ReadExactly(first);
        Assert.Equal(data.AsSpan(0, 2 * Chunk).ToArray(), first);
        Assert.Equal(2, Assert.Throws<EncryptedFileException>(() => s.ReadByte()).Chunk);

        // The tag too.
        raw = File.ReadAllBytes(WriteSample("t2.etenc", data));
        raw[ChunkOffset(1) + Chunk + 5] ^= 0x80;
        File.WriteAllBytes(_dir.File("t2.etenc"), raw);
        Assert.Equal(1, Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(_dir.File("t2.etenc"), Name, _key)).Chunk);
    }

    [Fact]
    public void ReorderedChunksAreRejected()
    {
        string path = WriteSample("o.etenc", RandomBytes(3 * Chunk + 100, 3));
        byte[] raw = File.ReadAllBytes(path);
        int block = Chunk + 16;
        byte[] c0 = raw.AsSpan((int)ChunkOffset(0), block).ToArray();
        raw.AsSpan((int)ChunkOffset(1), block).CopyTo(raw.AsSpan((int)ChunkOffset(0)));
        c0.CopyTo(raw.AsSpan((int)ChunkOffset(1)));
        File.WriteAllBytes(path, raw);
        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, Name, _key));
        Assert.Equal(0, e.Chunk);
        Assert.Contains("(chunk 0 of 4)", e.Message);
    }

    [Fact]
    public void ChunkCopiedFromAnotherFileWithTheSameKeyAndNameIsRejected()
    {
        byte[] data = RandomBytes(3 * Chunk, 4);
        string a = WriteSample("a.etenc", data);
        string b = WriteSample("b.etenc", data); // same key, name and plaintext: only the file id differs
        byte[] rawA = File.ReadAllBytes(a), rawB = File.ReadAllBytes(b);
        rawB.AsSpan((int)ChunkOffset(1), Chunk + 16).CopyTo(rawA.AsSpan((int)ChunkOffset(1)));
        File.WriteAllBytes(a, rawA);
        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(a, Name, _key));
        Assert.Equal(1, e.Chunk);
        Assert.Contains($"'{a}'", e.Message);

        // A whole header swapped in from the other file authenticates, but then no chunk does.
        rawA = File.ReadAllBytes(WriteSample("a.etenc", data));
        rawB.AsSpan(0, EncryptedFile.HeaderSize).CopyTo(rawA);
        File.WriteAllBytes(a, rawA);
        Assert.Equal(0, Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(a, Name, _key)).Chunk);
    }

    [Fact]
    public void TruncatedOrExtendedFileIsRejected()
    {
        foreach (int size in new[] { 3 * Chunk, 3 * Chunk + 100 })
        {
            string path = WriteSample("tr.etenc", RandomBytes(size, size));
            long chunks = EncryptedFile.ReadInfo(path).ChunkCount;
            using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(ChunkOffset(chunks - 1)); // drop the last chunk
            var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, Name, _key));
            Assert.Contains($"encrypted file '{path}' is truncated", e.Message);
            Assert.Throws<EncryptedFileException>(() => EncryptedFile.OpenRead(path, Name, _key));
        }

        string p2 = WriteSample("ext.etenc", RandomBytes(100, 9));
        File.AppendAllText(p2, "x");
        Assert.Contains("1 bytes after its last chunk", Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(p2, Name, _key)).Message);

        string p3 = WriteSample("hdr.etenc", RandomBytes(100, 9));
        using (var fs = new FileStream(p3, FileMode.Open)) fs.SetLength(50);
        Assert.Contains("too short", Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(p3, Name, _key)).Message);
    }

    [Fact]
    public void RenamedLogicalNameIsRejectedButSeparatorsAreNormalized()
    {
        byte[] data = RandomBytes(5000, 5);
        string path = WriteSample("n.etenc", data);
        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, "runs/r1/other.safetensors", _key));
        Assert.Contains($"wrong key or tampered file '{path}' (header)", e.Message);
        Assert.Contains("'runs/r1/other.safetensors'", e.Message);
        Assert.Null(e.Chunk);
        Assert.Equal(data, EncryptedFile.ReadAllBytes(path, @"runs\r1\adapter.safetensors", _key));
    }

    [Theory]
    [InlineData(64, "(header)")]   // plaintext length
    [InlineData(60, "(header)")]   // chunk size (stays in range: 4096 -> 4097)
    [InlineData(41, "(header)")]   // file id
    [InlineData(100, "(header)")]  // the MAC itself
    [InlineData(9, "reserved header bytes")]
    [InlineData(6, "version")]
    [InlineData(0, "no ETENC1 magic")]
    public void TamperedHeaderIsRejected(int offset, string expected)
    {
        string path = WriteSample("h.etenc", RandomBytes(3 * Chunk, 6));
        byte[] raw = File.ReadAllBytes(path);
        raw[offset] ^= 0x01;
        File.WriteAllBytes(path, raw);
        var e = Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(path, Name, _key));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void FailedWriteLeavesAnExistingDestinationIntact()
    {
        string path = WriteSample("keep.etenc", RandomBytes(10_000, 8));
        byte[] before = File.ReadAllBytes(path);
        using var failing = new FailingStream(RandomBytes(3 * Chunk, 9), failAfter: 2 * Chunk + 10);
        Assert.Throws<IOException>(() => EncryptedFile.Write(path, Name, failing, _key, Chunk));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));
        Assert.Equal(RandomBytes(10_000, 8), EncryptedFile.ReadAllBytes(path, Name, _key));
    }

    [Fact]
    public void ChunkSizeOutOfRangeIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => EncryptedFile.Write(_dir.File("x"), Name, new byte[1], _key, 100));
        Assert.False(File.Exists(_dir.File("x")));
    }

    [Fact]
    public void EncryptedSafeTensorsOpensFromDecryptedMemory()
    {
        string plain = _dir.File("m.safetensors");
        using var a = Tensor.From<float>([1f, -2.5f, 3f, 4f, 5f, 6f], [2, 3], "a");
        using var b = Tensor.From<int>([7, 8, 9], [3], "b");
        SafeTensorsWriter.Write(plain, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b }, new Dictionary<string, string> { ["format"] = "pt" });
        string enc = _dir.File("m.safetensors.etenc");
        using (var src = File.OpenRead(plain)) EncryptedFile.Write(enc, "m.safetensors", src, _key);
        File.Delete(plain);

        using (var st = SafeTensorsFile.OpenEncrypted(enc, "m.safetensors", _key))
        {
            Assert.Equal("pt", st.Metadata["format"]);
            var ta = st.GetTensor("a");
            Assert.True(ta.IsReadOnly);
            Assert.Equal([2, 3], ta.Shape.ToArray());
            Assert.Equal([1f, -2.5f, 3f, 4f, 5f, 6f], ta.ReadOnlySpan<float>().ToArray());
            Assert.Equal([7, 8, 9], st.GetTensor("b").ReadOnlySpan<int>().ToArray());
        }

        Assert.Throws<EncryptedFileException>(() => SafeTensorsFile.OpenEncrypted(enc, "other.safetensors", _key));
        using var wrong = EncryptionKey.Generate();
        Assert.Throws<EncryptedFileException>(() => SafeTensorsFile.OpenEncrypted(enc, "m.safetensors", wrong));
    }

    /// <summary>Serves bytes, then throws part-way, like a source that dies mid-copy.</summary>
    private sealed class FailingStream(byte[] data, int failAfter) : MemoryStream(data, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (Position >= failAfter) throw new IOException("source failed mid-stream");
            return base.Read(buffer, offset, (int)Math.Min(count, failAfter - Position));
        }
    }
}
