using System.Text.Json;
using EdgeTune.Text.Datasets.Internal;
using Parquet;
using Parquet.Schema;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Reads an Apache Parquet data file (as the Hugging Face Hub serves datasets) with Parquet.Net, fully managed. The
/// top-level columns name the <see cref="DataFormat"/> layout. Text columns are strings; <c>messages</c>,
/// <c>conversations</c>, <c>instances</c> (and conversational <c>prompt</c>/<c>completion</c>) are lists of structs of
/// strings (e.g. <c>list&lt;struct&lt;role: string, content: string&gt;&gt;</c>). Only the columns the layout uses
/// are read. Rows are numbered from 1 across the row groups.
/// </summary>
public static class ParquetDataFileReader
{
    private static readonly string[] Used = ["text", "instruction", "input", "output", "instances", "messages", "conversations", "prompt", "completion"];

    /// <exception cref="InvalidDataException">not a Parquet file, no known columns, or a used column of an unsupported type.</exception>
    internal static async Task<JsonlReader.Result> ReadAsync(string path, DataFormat format, RejectionLog rejections, CancellationToken ct = default)
    {
        ParquetReader reader;
        try
        {
            reader = await ParquetReader.CreateAsync(path, new ParquetOptions { TreatByteArrayAsString = true }, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
        await using (reader.ConfigureAwait(false))
        {
            var top = reader.Schema.Fields;
            string[] columns = top.Select(f => f.Name).ToArray();
            if (format == DataFormat.Auto) format = DataLayouts.Detect(columns, path);
            var fields = top.Where(f => Used.Contains(f.Name)).ToArray();
            var json = new JsonRows();
            var samples = new List<DataSample>();
            int row = 0;
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                var group = reader.OpenRowGroupReader(g);
                int count = checked((int)group.RowCount);
                var cells = new List<(string Name, object?[] Values)>(fields.Length);
                foreach (var field in fields) cells.Add((field.Name, await ReadColumnAsync(path, group, field, count, ct).ConfigureAwait(false)));
                for (int r = 0; r < count; r++)
                {
                    using var doc = json.Build(w =>
                    {
                        foreach (var (name, values) in cells)
                        {
                            w.WritePropertyName(name);
                            WriteValue(w, values[r]);
                        }
                    });
                    RowConverter.Convert(++row, doc.RootElement, format, samples, rejections);
                }
            }
            return new JsonlReader.Result(format, row, samples) { Columns = DataLayouts.Mapping(format, columns) };
        }
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case List<Dictionary<string, string?>?> list:
                w.WriteStartArray();
                foreach (var item in list)
                {
                    if (item is null) { w.WriteNullValue(); continue; }
                    w.WriteStartObject();
                    foreach (var (k, v) in item)
                    {
                        if (v is null) w.WriteNull(k);
                        else w.WriteString(k, v);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                break;
            default: throw new InvalidOperationException(value.GetType().Name);
        }
    }

    /// <summary>One value per row: a string, a list of string-valued objects, or null.</summary>
    private static async Task<object?[]> ReadColumnAsync(string path, ParquetRowGroupReader group, Field field, int rows, CancellationToken ct)
    {
        if (field is DataField data && IsString(data) && data.MaxRepetitionLevel == 0)
        {
            var (values, def, _) = await ReadLeafAsync(group, data, ct).ConfigureAwait(false);
            var result = new object?[rows];
            int v = 0;
            for (int r = 0; r < rows; r++)
                if (def is null || def[r] == data.MaxDefinitionLevel) result[r] = values[v++];
            return result;
        }
        if (field is ListField { Item: StructField item } list && item.Fields.All(f => f is DataField d && IsString(d)) && item.Fields.Count > 0)
        {
            var leaves = new List<(string Name, DataField Field, string?[] Values, int[]? Def, int[] Rep)>();
            foreach (var child in item.Fields.Cast<DataField>())
            {
                var (values, def, rep) = await ReadLeafAsync(group, child, ct).ConfigureAwait(false);
                leaves.Add((child.Name, child, values, def, rep ?? throw new InvalidDataException($"{path}: column '{field.Name}' has no repetition levels")));
            }
            int slots = leaves[0].Rep.Length;
            if (leaves.Any(l => l.Rep.Length != slots))
                throw new InvalidDataException($"{path}: the fields of list column '{field.Name}' have different lengths");
            var result = new object?[rows];
            var next = new int[leaves.Count];
            int r = -1;
            List<Dictionary<string, string?>?>? current = null;
            for (int i = 0; i < slots; i++)
            {
                var first = leaves[0];
                int d0 = first.Def?[i] ?? first.Field.MaxDefinitionLevel;
                if (first.Rep[i] == 0)
                {
                    if (++r >= rows) throw new InvalidDataException($"{path}: list column '{field.Name}' holds more rows than its row group ({rows})");
                    current = d0 >= list.MaxDefinitionLevel - 1 ? [] : null; // below: the list itself is null
                    result[r] = current;
                }
                if (current is null || d0 < list.MaxDefinitionLevel) { SkipValues(leaves, next, i); continue; } // an empty list
                var entry = new Dictionary<string, string?>(leaves.Count, StringComparer.Ordinal);
                bool any = false;
                for (int k = 0; k < leaves.Count; k++)
                {
                    var leaf = leaves[k];
                    bool present = (leaf.Def?[i] ?? leaf.Field.MaxDefinitionLevel) == leaf.Field.MaxDefinitionLevel;
                    entry[leaf.Name] = present ? leaf.Values[next[k]++] : null;
                    any |= (leaf.Def?[i] ?? leaf.Field.MaxDefinitionLevel) > list.MaxDefinitionLevel;
                }
                current.Add(any || item.Fields.Count == 0 ? entry : null);
            }
            return result;
        }
        throw new InvalidDataException(
            $"{path}: column '{field.Name}' is {Describe(field)}; expected a string column, or a list of structs of strings (messages, conversations)");
    }

    private static void SkipValues(List<(string Name, DataField Field, string?[] Values, int[]? Def, int[] Rep)> leaves, int[] next, int i)
    {
        for (int k = 0; k < leaves.Count; k++)
            if ((leaves[k].Def?[i] ?? leaves[k].Field.MaxDefinitionLevel) == leaves[k].Field.MaxDefinitionLevel) next[k]++;
    }

    private static async Task<(string?[] Values, int[]? Def, int[]? Rep)> ReadLeafAsync(ParquetRowGroupReader group, DataField field, CancellationToken ct)
    {
        long n = group.GetMetadata(field)?.MetaData?.NumValues ?? group.RowCount;
        var values = new ReadOnlyMemory<char>[n];
        int[]? def = field.MaxDefinitionLevel > 0 ? new int[n] : null;
        int[]? rep = field.MaxRepetitionLevel > 0 ? new int[n] : null;
        await group.ReadRawAsync<ReadOnlyMemory<char>>(field, values,
            def is null ? null : (Memory<int>?)def, rep is null ? null : (Memory<int>?)rep, ct).ConfigureAwait(false);
        int present = def is null ? values.Length : def.Count(d => d == field.MaxDefinitionLevel);
        var strings = new string?[present];
        for (int i = 0; i < present; i++) strings[i] = values[i].ToString();
        return (strings, def, rep);
    }

    private static bool IsString(DataField f) => f.ClrType == typeof(ReadOnlyMemory<char>) || f.ClrType == typeof(string);

    private static string Describe(Field f) => f switch
    {
        DataField d => $"{d.ClrType.Name}{(d.MaxRepetitionLevel > 0 ? " (repeated)" : "")}",
        ListField l => $"a list of {Describe(l.Item)}",
        StructField s => $"a struct of ({string.Join(", ", s.Fields.Select(x => x.Name))})",
        _ => f.SchemaType.ToString(),
    };
}
