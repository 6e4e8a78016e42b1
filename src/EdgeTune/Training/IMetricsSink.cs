using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Internal;

namespace EdgeTune.Training;

/// <summary>Receives one record per step and per evaluation (e.g. to write JSONL).</summary>
public interface IMetricsSink
{
    void Write(TrainingStatus status);
}

/// <summary>
/// Appends one JSON object per line: <c>{"event":"step","step":12,"total":200,"loss":..,"lr":..,
/// "grad_norm":..,"tokens_per_s":..,"elapsed_s":..,"rss_bytes":..,"tensor_bytes":..}</c>, with
/// <c>eval_loss</c>/<c>perplexity</c> for evaluations, <c>message</c> where present, and the step's energy where
/// the trainer accounts it: <c>joules</c>, <c>wh</c>, <c>avg_w</c>, <c>j_per_token</c>, <c>cum_joules</c>,
/// <c>co2e_g</c>, <c>estimated</c> (true when the figures are modelled, not measured), <c>meter</c>; and
/// <c>dp_epsilon</c> (ε spent so far) in differentially private runs. Each line is
/// flushed as written, so a killed run keeps its metrics.
/// </summary>
public sealed class JsonlMetricsSink : IMetricsSink, IDisposable
{
    private readonly Lock _gate = new();
    private StreamWriter _writer;

    public JsonlMetricsSink(string path, bool append = true) : this(path, append, null) { }

    /// <summary>A sink writing through <paramref name="files"/>: in an encrypted run folder the rows are kept in memory
    /// and the whole file is rewritten encrypted (atomically) at most every <see cref="EncryptedRewriteInterval"/>, on
    /// <see cref="TruncateAfterStep"/> and on dispose (ETENC1 files cannot be appended to); a kill loses at most the
    /// rows of that interval, which a resumed run writes again anyway.</summary>
    public JsonlMetricsSink(string path, bool append, Security.RunFiles? files)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        if (files is { IsEncrypted: true })
        {
            _files = files;
            _rows = append && File.Exists(Path)
                ? [.. files.ReadAllText(Path).Split('\n', StringSplitOptions.RemoveEmptyEntries)]
                : [];
            _writer = StreamWriter.Null;
            Persist();
            return;
        }
        _writer = Open(Path, append);
    }

    /// <summary>Longest time rows of an encrypted sink wait before the file is rewritten.</summary>
    public static readonly TimeSpan EncryptedRewriteInterval = TimeSpan.FromSeconds(2);

    private readonly Security.RunFiles? _files;
    private readonly List<string>? _rows;
    private long _lastPersist;

    private void Persist()
    {
        var text = new StringBuilder();
        foreach (string row in _rows!) text.Append(row).Append('\n');
        _files!.WriteAllText(Path, text.ToString());
        _lastPersist = Environment.TickCount64;
    }

    private static StreamWriter Open(string path, bool append) =>
        new(new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));

    public string Path { get; }

    public void Write(TrainingStatus status) => WriteLine(Format(status));

    /// <summary>Writes a raw JSON line (e.g. the resolved options at the start of a run).</summary>
    public void WriteLine(string json)
    {
        lock (_gate)
        {
            if (_rows is not null)
            {
                _rows.Add(json);
                if (Environment.TickCount64 - _lastPersist >= (long)EncryptedRewriteInterval.TotalMilliseconds) Persist();
                return;
            }
            _writer.Write(json);
            _writer.Write('\n');
            _writer.Flush();
        }
    }

    /// <summary>
    /// Drops the rows a resumed run is about to write again: keeps, in their order, the rows whose <c>step</c> is at most
    /// <paramref name="step"/> (the resumed checkpoint's step), or none when <paramref name="step"/> is null (a fresh start).
    /// A line that is not a JSON object with a step (a row torn by a kill) is dropped too. The kept rows go to a
    /// temporary file in the same folder which then replaces the metrics file in one rename, so a crash at any point
    /// leaves either the old file or the new one, never fewer rows up to the checkpoint. Later rows append as before.
    /// </summary>
    /// <returns>The number of rows dropped.</returns>
    public int TruncateAfterStep(long? step)
    {
        lock (_gate)
        {
            if (_rows is not null)
            {
                int before = _rows.Count;
                _rows.RemoveAll(line => !(step is long max && StepOf(line) is long s && s <= max));
                Persist();
                return before - _rows.Count;
            }
            _writer.Dispose();
            int dropped = 0;
            string temp = Path + ".tmp";
            try
            {
                using (var input = new StreamReader(new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite), Encoding.UTF8))
                using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
                using (var w = new StreamWriter(output, new UTF8Encoding(false)))
                {
                    for (string? line = input.ReadLine(); line is not null; line = input.ReadLine())
                    {
                        if (line.Length == 0) continue;
                        if (step is long max && StepOf(line) is long s && s <= max)
                        {
                            w.Write(line);
                            w.Write('\n');
                        }
                        else dropped++;
                    }
                    w.Flush();
                    output.Flush(flushToDisk: true);
                }
                File.Move(temp, Path, overwrite: true);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
                _writer = Open(Path, append: true);
            }
            return dropped;
        }
    }

    /// <summary>The "step" of one metrics row, or null when the line is not a complete JSON object carrying one.</summary>
    private static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("step", out var v) && v.TryGetInt64(out long s) ? s : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>One status as a single-line JSON object.</summary>
    public static string Format(TrainingStatus s) => EdgeTuneJson.Write(MetricsRowJson.From(s), EdgeTuneJson.Default.MetricsRowJson);

    public void Dispose()
    {
        lock (_gate)
        {
            if (_rows is not null) Persist();
            _writer.Dispose();
        }
    }
}

/// <summary>One metrics.jsonl row as <see cref="JsonlMetricsSink"/> writes it. Null members are left out (a step
/// without an evaluation has no eval_loss, one without energy accounting no energy keys); non-finite numbers are
/// written as the strings "NaN", "Infinity" and "-Infinity". Times are rounded here: elapsed to 1 ms, ETA to 0.1 s.</summary>
internal sealed record MetricsRowJson(
    string Event,
    long Step,
    long Total,
    double? Loss,
    double Lr,
    double? GradNorm,
    double TokensPerS,
    double ElapsedS,
    double? EtaS,
    long ManagedBytes,
    long RssBytes,
    long TensorBytes,
    double? EvalLoss,
    double? Perplexity,
    string? Message,
    double? DpEpsilon,
    double? Joules,
    double? Wh,
    double? AvgW,
    double? JPerToken,
    double? CumJoules,
    [property: JsonPropertyName("co2e_g")] double? Co2eG,
    bool? Estimated,
    string? Meter)
{
    public static MetricsRowJson From(TrainingStatus s)
    {
        var e = s.Energy;
        return new MetricsRowJson(
            s.Event.ToString().ToLowerInvariant(),
            s.Step,
            s.TotalSteps,
            s.Loss,
            s.LearningRate,
            s.GradNorm,
            s.TokensPerSecond,
            Math.Round(s.Elapsed.TotalSeconds, 3),
            s.Eta is TimeSpan eta ? Math.Round(eta.TotalSeconds, 1) : null,
            s.ManagedBytes,
            s.WorkingSetBytes,
            s.TensorBytes,
            s.EvalLoss,
            s.EvalPerplexity,
            s.Message,
            s.DpEpsilon,
            e?.Joules,
            e?.WattHours,
            e?.AverageWatts,
            e?.JoulesPerToken,
            e?.CumulativeJoules,
            e?.Co2eGrams,
            e?.Estimated,
            e?.Meter);
    }
}
