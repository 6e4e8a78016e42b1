using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Internal;
using EdgeTune.Security;
using EdgeTune.Tensors;

namespace EdgeTune.Training;

/// <summary>
/// Resumable checkpoints: one folder per step, <c>step-00000012/</c>, under a checkpoints folder,
/// holding <c>weights.safetensors</c> (trainable parameters by name), <c>optimizer.bin</c>
/// (<see cref="IOptimizer.SaveState"/>), <c>state.json</c> (<see cref="TrainingState"/>),
/// <c>options.json</c> and <c>manifest.json</c> (format, step, and each file's byte count and
/// SHA-256). A folder is written under a temporary name and renamed when complete, so a crash never
/// leaves a folder that looks finished; <see cref="FindLatest(string)"/> still verifies every checksum and
/// passes over corrupt or partial folders, newest first. Every file goes through a <see cref="RunFiles"/>: in an
/// encrypted run folder each is an ETENC1 file bound to its final path (the manifest included; its checksums are of
/// the bytes on disk), and a file that does not authenticate makes the checkpoint count as corrupt.
/// </summary>
public static class TrainingCheckpoint
{
    public const string Format = "edgetune-training-checkpoint";
    public const int Version = 1;
    public const string ManifestFile = "manifest.json";
    public const string WeightsFile = "weights.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string StateFile = "state.json";
    public const string OptionsFile = "options.json";
    private const string Prefix = "step-";

    /// <summary>The folder name of step <paramref name="step"/>.</summary>
    public static string FolderName(long step) => Prefix + step.ToString("D8", CultureInfo.InvariantCulture);

    /// <summary>
    /// Writes a checkpoint of <paramref name="state"/> into <paramref name="directory"/> and deletes all
    /// but the newest <paramref name="keep"/>. Returns the new folder.
    /// </summary>
    public static string Write(string directory, TrainingState state, IEnumerable<Parameter> trainable, IOptimizer optimizer,
        TrainingOptions? options = null, int keep = int.MaxValue) =>
        Write(RunFiles.Plain, directory, state, trainable, optimizer, options, keep);

    /// <summary>As <see cref="Write(string, TrainingState, IEnumerable{Parameter}, IOptimizer, TrainingOptions?, int)"/>,
    /// every file through <paramref name="runFiles"/> (encrypted in an encrypted run folder).</summary>
    public static string Write(RunFiles runFiles, string directory, TrainingState state, IEnumerable<Parameter> trainable, IOptimizer optimizer,
        TrainingOptions? options = null, int keep = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(runFiles);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(trainable);
        ArgumentNullException.ThrowIfNull(optimizer);
        Directory.CreateDirectory(directory);
        string final = Path.Combine(directory, FolderName(state.Step));
        string tmp = Path.Combine(directory, $".tmp-{FolderName(state.Step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        var files = runFiles.Staging(tmp, final); // bound to the names they have once the folder is renamed
        try
        {
            SafeTensorsWriter.Write(files, Path.Combine(tmp, WeightsFile),
                trainable.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)),
                new Dictionary<string, string> { ["format"] = Format, ["step"] = state.Step.ToString(CultureInfo.InvariantCulture) });
            files.Write(Path.Combine(tmp, OptimizerFile), optimizer.SaveState);
            files.WriteAllText(Path.Combine(tmp, StateFile), StateToJson(state));
            files.WriteAllText(Path.Combine(tmp, OptionsFile), options?.ToJson() ?? "{}");
            WriteManifest(files, tmp, state.Step);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(tmp, final);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        Prune(directory, keep);
        return final;
    }

    /// <summary>Null when every file the manifest lists is present with its size and SHA-256; else why not.</summary>
    public static string? Verify(string folder) => Verify(RunFiles.Plain, folder);

    /// <summary>As <see cref="Verify(string)"/>, reading the manifest through <paramref name="files"/>.</summary>
    public static string? Verify(RunFiles files, string folder)
    {
        ArgumentNullException.ThrowIfNull(files);
        string manifest = Path.Combine(folder, ManifestFile);
        if (!File.Exists(manifest)) return $"checkpoint '{folder}': {ManifestFile} is missing (partial checkpoint)";
        try
        {
            using var doc = JsonDocument.Parse(files.ReadAllBytes(manifest));
            var root = doc.RootElement;
            if (root.GetProperty("format").GetString() != Format) return $"checkpoint '{folder}': {ManifestFile} is not a {Format}";
            if (root.GetProperty("version").GetInt32() != Version) return $"checkpoint '{folder}': manifest version {root.GetProperty("version")} is not {Version}";
            var listed = root.GetProperty("files");
            foreach (string required in new[] { WeightsFile, OptimizerFile, StateFile })
                if (!listed.TryGetProperty(required, out _)) return $"checkpoint '{folder}': the manifest lists no {required}";
            foreach (var f in listed.EnumerateObject())
            {
                string path = Path.Combine(folder, f.Name);
                if (!File.Exists(path)) return $"checkpoint '{folder}': {f.Name} is missing";
                long bytes = f.Value.GetProperty("bytes").GetInt64();
                long actual = new FileInfo(path).Length;
                if (actual != bytes) return $"checkpoint '{folder}': {f.Name} is {actual} bytes, the manifest says {bytes}";
                string expected = f.Value.GetProperty("sha256").GetString() ?? "";
                string hash = Sha256(path);
                if (!string.Equals(hash, expected, StringComparison.OrdinalIgnoreCase))
                    return $"checkpoint '{folder}': {f.Name} has SHA-256 {hash}, the manifest says {expected} (corrupt)";
            }
            return null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or EncryptedFileException)
        {
            return $"checkpoint '{folder}': {ManifestFile} is unreadable ({e.Message})";
        }
    }

    /// <summary>Checkpoint folders in <paramref name="directory"/>, newest step first.</summary>
    public static IReadOnlyList<(long Step, string Folder)> List(string directory)
    {
        if (!Directory.Exists(directory)) return [];
        var list = new List<(long, string)>();
        foreach (var d in Directory.GetDirectories(directory, Prefix + "*"))
            if (long.TryParse(Path.GetFileName(d).AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                list.Add((step, d));
        return list.OrderByDescending(x => x.Item1).ToList();
    }

    /// <summary>The newest checkpoint that verifies, and the reasons newer ones were passed over.</summary>
    public static (string? Folder, IReadOnlyList<string> Rejected) FindLatest(string directory) => FindLatest(RunFiles.Plain, directory);

    /// <summary>As <see cref="FindLatest(string)"/>, reading through <paramref name="files"/>.</summary>
    public static (string? Folder, IReadOnlyList<string> Rejected) FindLatest(RunFiles files, string directory)
    {
        var rejected = new List<string>();
        foreach (var (_, folder) in List(directory))
        {
            string? why = Verify(files, folder);
            if (why is null) return (folder, rejected);
            rejected.Add(why);
        }
        return (null, rejected);
    }

    /// <summary>
    /// Loads a verified checkpoint into the trainable <paramref name="parameters"/> (by name; every one must be
    /// present with its dtype and shape) and <paramref name="optimizer"/>; returns the trainer state.
    /// </summary>
    public static TrainingState Load(string folder, IEnumerable<Parameter> parameters, IOptimizer optimizer) =>
        Load(RunFiles.Plain, folder, parameters, optimizer);

    /// <summary>As <see cref="Load(string, IEnumerable{Parameter}, IOptimizer)"/>, reading through <paramref name="files"/>
    /// (an encrypted checkpoint's weights are decrypted into memory, its other files streamed).</summary>
    public static TrainingState Load(RunFiles files, string folder, IEnumerable<Parameter> parameters, IOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (Verify(files, folder) is { } why) throw new InvalidDataException(why);
        string weights = Path.Combine(folder, WeightsFile);
        using (var file = files.OpenSafeTensors(weights))
        {
            foreach (var p in parameters)
            {
                if (!file.Contains(p.Name)) throw new InvalidDataException($"checkpoint '{weights}': no tensor for trainable parameter '{p.Name}'");
                var t = file.GetTensor(p.Name);
                if (t.DType != p.Value.DType || !t.Shape.SequenceEqual(p.Value.Shape))
                    throw new InvalidDataException($"checkpoint '{weights}': '{p.Name}' is {t.DType}{t.ShapeString}, the parameter is {p.Value.DType}{p.Value.ShapeString}");
                Copy(t, p.Value);
            }
        }
        using (var fs = files.OpenRead(Path.Combine(folder, OptimizerFile))) optimizer.LoadState(fs);
        return StateFromJson(files.ReadAllText(Path.Combine(folder, StateFile)), folder);
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints (and stale temporary folders).</summary>
    public static void Prune(string directory, int keep)
    {
        foreach (var (_, folder) in List(directory).Skip(Math.Max(keep, 1)))
            Directory.Delete(folder, recursive: true);
        // temporary folders left by a write that crashed (this writer has renamed its own by now)
        foreach (var tmp in Directory.GetDirectories(directory, ".tmp-" + Prefix + "*"))
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static unsafe void Copy(Tensor from, Tensor to) =>
        from.Bytes.CopyTo(new Span<byte>(to.Pointer, checked((int)to.ByteLength)));

    private static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    private static void WriteManifest(RunFiles runFiles, string folder, long step)
    {
        var files = new Dictionary<string, CheckpointManifestJson.FileEntry>(StringComparer.Ordinal);
        foreach (var path in Directory.GetFiles(folder).OrderBy(p => p, StringComparer.Ordinal))
            files[Path.GetFileName(path)] = new(new FileInfo(path).Length, Sha256(path));
        string json = EdgeTuneJson.Write(new CheckpointManifestJson(Format, Version, step, files), EdgeTuneJson.Default.CheckpointManifestJson, indented: true);
        // the manifest is written last: its presence marks a complete folder
        runFiles.WriteAllText(Path.Combine(folder, ManifestFile), json);
    }

    internal static string StateToJson(TrainingState s)
    {
        var rngs = new Dictionary<string, TrainingStateJson.Rng>(StringComparer.Ordinal);
        foreach (var (name, r) in s.Rngs)
            rngs[name] = new(Hex(r.S0), Hex(r.S1), Hex(r.S2), Hex(r.S3), r.HasSpare, Bits(r.Spare));
        // doubles as their exact bits, so a resumed run compares exactly as the original did
        var json = new TrainingStateJson(s.Step, s.TotalSteps, s.Tokens, s.DataPosition, s.BestEvalLoss is double best ? Bits(best) : null,
            s.EvalsWithoutImprovement, s.ConsecutiveNonFinite, rngs);
        return EdgeTuneJson.Write(json, EdgeTuneJson.Default.TrainingStateJson, indented: true);
    }

    private static string Hex(ulong v) => v.ToString("X16", CultureInfo.InvariantCulture);

    internal static TrainingState StateFromJson(string json, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            var rngs = new Dictionary<string, RngState>(StringComparer.Ordinal);
            foreach (var p in r.GetProperty("rngs").EnumerateObject())
            {
                var v = p.Value;
                rngs[p.Name] = new RngState(Hex(v, "s0"), Hex(v, "s1"), Hex(v, "s2"), Hex(v, "s3"),
                    v.GetProperty("has_spare").GetBoolean(), FromBits(v.GetProperty("spare_bits").GetString()!));
            }
            var best = r.GetProperty("best_eval_loss_bits");
            return new TrainingState
            {
                Step = r.GetProperty("step").GetInt64(),
                TotalSteps = r.GetProperty("total_steps").GetInt64(),
                Tokens = r.GetProperty("tokens").GetInt64(),
                DataPosition = r.GetProperty("data_position").GetString(),
                BestEvalLoss = best.ValueKind == JsonValueKind.Null ? null : FromBits(best.GetString()!),
                EvalsWithoutImprovement = r.GetProperty("evals_without_improvement").GetInt32(),
                ConsecutiveNonFinite = r.GetProperty("consecutive_non_finite").GetInt32(),
                Rngs = rngs,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"checkpoint '{source}': {StateFile} is unreadable ({e.Message})", e);
        }
    }

    private static ulong Hex(JsonElement e, string name) => ulong.Parse(e.GetProperty(name).GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static string Bits(double d) => BitConverter.DoubleToInt64Bits(d).ToString("X16", CultureInfo.InvariantCulture);

    private static double FromBits(string s) => BitConverter.Int64BitsToDouble(long.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
}

/// <summary>manifest.json of a checkpoint: format, version, step, and each file's byte count and SHA-256 (by file name,
/// in ordinal order).</summary>
internal sealed record CheckpointManifestJson(string Format, int Version, long Step, Dictionary<string, CheckpointManifestJson.FileEntry> Files)
{
    internal sealed record FileEntry(long Bytes, [property: JsonPropertyName("sha256")] string Sha256);
}

/// <summary>state.json of a checkpoint (read back by <see cref="TrainingCheckpoint"/>'s StateFromJson): data_position and
/// best_eval_loss_bits are written as null when unset; the random states and doubles as hexadecimal bit patterns.</summary>
internal sealed record TrainingStateJson(
    long Step,
    long TotalSteps,
    long Tokens,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? DataPosition,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? BestEvalLossBits,
    int EvalsWithoutImprovement,
    int ConsecutiveNonFinite,
    Dictionary<string, TrainingStateJson.Rng> Rngs)
{
    internal sealed record Rng(
        [property: JsonPropertyName("s0")] string S0,
        [property: JsonPropertyName("s1")] string S1,
        [property: JsonPropertyName("s2")] string S2,
        [property: JsonPropertyName("s3")] string S3,
        bool HasSpare,
        string SpareBits);
}
