using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public sealed class CorruptFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Random byte changes and truncations either still open or fail with a CheckpointFormatException, never anything else.</summary>
    private void Fuzz(byte[] good, Func<string, IDisposable> open, int rounds, int seed)
    {
        var rng = new Rng((ulong)seed);
        string path = _dir.File("fuzz.bin");
        int failures = 0;
        for (int round = 0; round < rounds; round++)
        {
            byte[] b = (byte[])good.Clone();
            int edits = 1 + rng.NextInt(4);
            for (int e = 0; e < edits; e++)
            {
                int at = rng.NextInt(Math.Min(b.Length, 512)); // the header and metadata live at the front
                b[at] = (byte)(rng.NextInt(4) == 0 ? 0xFF : rng.NextInt(256));
            }
            if (rng.NextInt(4) == 0) b = b[..rng.NextInt(b.Length)];
            File.WriteAllBytes(path, b);
            try { open(path).Dispose(); }
            catch (CheckpointFormatException) { failures++; }
        }
        Assert.True(failures > rounds / 10, $"only {failures} of {rounds} corrupted files were rejected");
    }

    [Fact]
    public void CorruptGgufFilesFailCleanly()
    {
        string path = _dir.File("ok.gguf");
        using (var t = Tensor.From<float>(Enumerable.Range(0, 64).Select(i => (float)i).ToArray(), [2, 32], "w"))
        using (var q = GgufQuant.Quantize(t, DType.Q4_0))
            GgufWriter.Write(path, [new("general.architecture", "llama"), new("a", GgufValue.Array(new[] { "x", "yz" })),
                new("n", GgufValue.Array(new[] { GgufValue.Array(new[] { 1, 2 }) })), new("f", 1.5f)], new KeyValuePair<string, Tensor>[] { new("w", t), new("q", q) });
        Fuzz(File.ReadAllBytes(path), p => GgufFile.Open(p), 400, 1);
    }

    [Fact]
    public void CorruptSafeTensorsFilesFailCleanly()
    {
        string path = _dir.File("ok.safetensors");
        using (var a = Tensor.From<float>([1, 2, 3, 4], [2, 2], "a"))
        using (var b = Tensor.From<byte>([1, 2, 3], [3], "b"))
            SafeTensorsWriter.Write(path, [a, b], new Dictionary<string, string> { ["k"] = "v" });
        Fuzz(File.ReadAllBytes(path), p => SafeTensorsFile.Open(p), 400, 2);
    }
}
