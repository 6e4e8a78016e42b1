using System.Text.Json;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Models;

/// <summary>
/// How far float32 logits (ours and llama2.c's run.c) are from the same network evaluated in double
/// precision (our F64 tape path, the scalar references). Two float32 programs that sum in different
/// orders differ by a few 1e-6 on these logits (|z| up to 18); this pins both against the exact value.
/// </summary>
public class Stories260KPrecisionTests
{
    internal static double[] DoubleLogits(int[] ids)
    {
        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        var cfg = CheckpointReader.ConfigFor(reader);
        using var f32 = DecoderModel.Load(reader, cfg);
        using var f64 = DecoderModel.CreateRandom(cfg, 0, f32.RopeStyle, dtype: DType.F64);
        foreach (var p in f64.Parameters)
        {
            float[] src = f32.Parameters[p.Name].Value.ToFloatArray();
            var dst = p.Value.Span<double>();
            for (int i = 0; i < src.Length; i++) dst[i] = src[i];
        }
        using var tape = new Tape { IsRecording = false };
        var logits = tape.Linear(f64.Hidden(tape, ids, 1, ids.Length), f64.LmHead.Variable);
        return logits.Value.ReadOnlySpan<double>().ToArray();
    }

    [SkippableFact]
    public void OursAndRunCAreBothWithinFloatRoundingOfTheExactLogits()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestAssets.Require("stories260K/ref_logits_full_5pos.json")));
        var positions = doc.RootElement.GetProperty("positions").EnumerateArray().ToArray();
        int[] ids = positions.Select(p => p.GetProperty("input_token").GetInt32()).ToArray();
        double[] exact = DoubleLogits(ids);
        int v = exact.Length / ids.Length;

        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        using var model = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
        var ours = new float[exact.Length];
        using (var cache = model.CreateCache(ids.Length)) model.Forward(ids, cache, ours);

        double oursErr = 0, runcErr = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            double[] runc = positions[t].GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int j = 0; j < v; j++)
            {
                oursErr = Math.Max(oursErr, Math.Abs(ours[t * v + j] - exact[t * v + j]));
                runcErr = Math.Max(runcErr, Math.Abs(runc[j] - exact[t * v + j]));
            }
        }
        Assert.True(oursErr <= 1e-5, $"ours vs exact: {oursErr:E3} (run.c vs exact: {runcErr:E3})");
        Assert.True(runcErr < 2.5e-5, $"the reference file itself is {runcErr:E3} from the exact logits");
    }
}
