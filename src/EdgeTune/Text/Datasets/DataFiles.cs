using System.Buffers;
using System.Text;
using System.Text.Unicode;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Tells what container a data file is (<see cref="DataFileKind"/>) from its extension and first bytes, and refuses
/// what cannot be training data: binary files (a NUL byte or invalid UTF-8 in a text file), a .parquet without the
/// Parquet magic. Refusals are <see cref="InvalidDataException"/>s whose one-line message names the file and what was
/// expected; nothing is ever trained as text by accident.
/// </summary>
public static class DataFiles
{
    private const int SniffBytes = 64 * 1024;
    private static readonly byte[] ParquetMagic = "PAR1"u8.ToArray();
    private const string Expected = "expected UTF-8 text (.txt/.md), JSONL, a JSON array (.json), CSV/TSV with a header, or Parquet";

    /// <summary>The container of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">binary content, or a .parquet that is not Parquet.</exception>
    public static DataFileKind DetectKind(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] head = ReadHead(path, out bool whole);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        bool parquetMagic = head.AsSpan().StartsWith(ParquetMagic);
        if (ext == ".parquet")
            return parquetMagic ? DataFileKind.Parquet : throw new InvalidDataException($"{path}: not a Parquet file (it does not start with the PAR1 magic)");
        if (parquetMagic) return DataFileKind.Parquet;
        RequireText(path, head, whole, 0);
        if (ext is ".csv" or ".tsv") return DataFileKind.Csv;
        if (ext is ".jsonl" or ".ndjson") return DataFileKind.Jsonl;
        if (ext is ".txt" or ".md" or ".text") return DataFileKind.Text;
        char first = FirstNonBlank(head);
        if (ext == ".json") return first == '[' ? DataFileKind.JsonArray : first == '{' ? DataFileKind.Jsonl
            : throw new InvalidDataException($"{path}: a .json data file must hold an array of row objects or one object per line; it starts with '{first}'");
        return first == '{' ? DataFileKind.Jsonl : DataFileKind.Text;
    }

    /// <summary>The whole file as text.</summary>
    /// <exception cref="InvalidDataException">a NUL byte or invalid UTF-8.</exception>
    public static string ReadText(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        RequireText(path, bytes, whole: true, 0);
        int skip = bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? Encoding.UTF8.Preamble.Length : 0;
        return Encoding.UTF8.GetString(bytes, skip, bytes.Length - skip);
    }

    /// <summary>Reads the rows of a JSONL, JSON array, CSV or Parquet file.</summary>
    internal static JsonlReader.Result Read(string path, DataFileKind kind, DataFormat format, RejectionLog log) => kind switch
    {
        DataFileKind.JsonArray => JsonArrayReader.Read(path, format, log),
        DataFileKind.Csv => CsvDataFileReader.Read(path, format, log),
        // Parquet.Net reads asynchronously; run it off any synchronization context so a blocking caller cannot deadlock.
        DataFileKind.Parquet => Task.Run(() => ParquetDataFileReader.ReadAsync(path, format, log)).GetAwaiter().GetResult(),
        _ => JsonlReader.Read(path, format, log),
    };

    private static byte[] ReadHead(string path, out bool whole)
    {
        using var stream = File.OpenRead(path);
        byte[] buffer = new byte[(int)Math.Min(SniffBytes, Math.Max(0, stream.Length))];
        int n = 0, r;
        while (n < buffer.Length && (r = stream.Read(buffer, n, buffer.Length - n)) > 0) n += r;
        whole = stream.Position >= stream.Length;
        return n == buffer.Length ? buffer : buffer[..n];
    }

    /// <summary>Throws when <paramref name="bytes"/> hold a NUL or a byte sequence that is not UTF-8 (a sequence cut
    /// at the end of a partial read is fine).</summary>
    private static void RequireText(string path, byte[] bytes, bool whole, long offset)
    {
        int nul = bytes.AsSpan().IndexOf((byte)0);
        if (nul >= 0) throw new InvalidDataException($"{path}: binary data (a NUL byte at offset {offset + nul}); {Expected}");
        char[] chars = ArrayPool<char>.Shared.Rent(Math.Max(1, bytes.Length));
        try
        {
            var status = Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false, isFinalBlock: whole);
            if (status == OperationStatus.InvalidData)
                throw new InvalidDataException($"{path}: binary data (invalid UTF-8 at byte {offset + read}); {Expected}");
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    private static char FirstNonBlank(byte[] head)
    {
        int skip = head.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? Encoding.UTF8.Preamble.Length : 0;
        foreach (byte b in head.AsSpan(skip))
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return (char)b;
        return '\0';
    }
}
