using System.Runtime.InteropServices;
using EdgeTune.Federated.Aggregation;
using Microsoft.Win32.SafeHandles;

namespace EdgeTune.Federated.Storage;

/// <summary>
/// A round's decoded updates in a scratch file (one float32 row per update, native byte order), read back by blocks of
/// coordinates (<see cref="IUpdateColumns"/>): what the robust strategies aggregate from, so that the server holds one
/// update while writing and one block while aggregating, never the whole round. The file is deleted when disposed
/// (and by the next round's spill after a crash).
/// </summary>
internal sealed class UpdateSpill : IUpdateColumns, IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly List<(string ClientId, long NumExamples)> _rows = [];

    public UpdateSpill(string path, int length)
    {
        Length = length;
        Path = path;
        _file = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
    }

    public string Path { get; }
    public int Count => _rows.Count;
    public int Length { get; }
    public string ClientId(int index) => _rows[index].ClientId;
    public long NumExamples(int index) => _rows[index].NumExamples;

    /// <summary>Appends one update's values.</summary>
    public void Append(string clientId, long numExamples, ReadOnlySpan<float> delta)
    {
        if (delta.Length != Length) throw new ArgumentException($"update spill: {delta.Length} values; {Length} expected", nameof(delta));
        RandomAccess.Write(_file, MemoryMarshal.AsBytes(delta), 4L * Length * _rows.Count);
        _rows.Add((clientId, numExamples));
    }

    public void Read(int start, int length, Span<float> block)
    {
        if (start < 0 || length < 0 || start + length > Length || block.Length < (long)length * Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"update spill: block [{start}, {start + length}) of {Length} values into {block.Length} floats");
        for (int c = 0; c < Count; c++) ReadAt(c, start, block.Slice(c * length, length));
    }

    /// <summary>All of update <paramref name="index"/>'s values.</summary>
    public void ReadRow(int index, Span<float> values)
    {
        if ((uint)index >= (uint)Count || values.Length != Length) throw new ArgumentOutOfRangeException(nameof(index), $"update spill: row {index} of {Count} into {values.Length} floats");
        ReadAt(index, 0, values);
    }

    private void ReadAt(int row, int start, Span<float> values)
    {
        var bytes = MemoryMarshal.AsBytes(values);
        long offset = 4L * ((long)Length * row + start);
        for (int done = 0; done < bytes.Length;)
        {
            int n = RandomAccess.Read(_file, bytes[done..], offset + done);
            if (n <= 0) throw new IOException($"update spill '{Path}' ended early");
            done += n;
        }
    }

    public void Dispose() => _file.Dispose();
}
