using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>The QLoRA rows of the train suite: the NF4 checkpoint they load and the peak-RSS comparison.</summary>
internal static class QloraBench
{
    /// <summary>Writes the random SmolLM2-shaped model (seed 1, as the F32 rows) as an NF4 checkpoint: projections and the
    /// tied embedding / LM head NF4 (frozen in QLoRA; <see cref="ModelQuantizer.Quantize(DecoderModel, QuantFormat, bool)"/> with includeEmbeddings), norms BF16. Returns the folder.</summary>
    public static string WriteNf4Checkpoint(HfConfig config)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"edgetune-bench-qlora-{Environment.ProcessId}");
        using var model = DecoderModel.CreateRandom(config, seed: 1, dtype: DType.BF16);
        var report = ModelQuantizer.Quantize(model, QuantFormat.NF4, includeEmbeddings: true);
        QuantizedCheckpoint.Save(model, folder);
        long bytes = new FileInfo(Path.Combine(folder, "model.safetensors")).Length;
        Console.WriteLine($"qlora-nf4 base: {report.Layers} projections + tied embedding/LM head NF4: {MemoryPlanner.Format(bytes)} checkpoint (F32 would be {MemoryPlanner.Format(4 * DecoderModel.ExpectedTensors(config).Sum(t => t.Shape.Aggregate(1L, (a, d) => a * d)))})");
        return folder;
    }

    /// <summary>The NF4 checkpoint loaded with its projections kept quantized (memory-mapped).</summary>
    public static DecoderModel LoadNf4(string folder)
    {
        var reader = CheckpointReader.Open(folder);
        try { return DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader)); }
        catch { reader.Dispose(); throw; }
    }

    /// <summary>Prints qlora-nf4 peak RSS as a share of lora-ckpt's at each thread count (the issue asks ≤ 40%).</summary>
    public static void Compare(JsonArray results)
    {
        foreach (var g in results.OfType<JsonObject>().GroupBy(r => r["threads"]!.GetValue<int>()))
        {
            var f32 = g.FirstOrDefault(r => r["method"]!.GetValue<string>() == "lora-ckpt");
            var nf4 = g.FirstOrDefault(r => r["method"]!.GetValue<string>() == "qlora-nf4");
            if (f32 is null || nf4 is null) continue;
            double a = f32["peak_rss_mb"]!.GetValue<double>(), b = nf4["peak_rss_mb"]!.GetValue<double>();
            double ratio = b / a;
            nf4["peak_rss_vs_f32_lora"] = Math.Round(ratio, 3);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"==> QLoRA NF4 vs LoRA on the F32 base ({g.Key} thread(s), both activation-checkpointed): peak RSS {b:F0} MB vs {a:F0} MB = {ratio:P1} " +
                $"({(ratio <= 0.40 ? "meets" : "MISSES")} the <= 40% target); tokens/s {nf4["tokens_per_s"]} vs {f32["tokens_per_s"]}"));
        }
    }
}
