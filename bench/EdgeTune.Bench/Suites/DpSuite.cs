using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Bench.Common;
using EdgeTune.Models;
using EdgeTune.Privacy;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// What DP-SGD's per-example clipping costs on a SmolLM2-135M-shaped model with LoRA (r = 8 on q and v, random
/// weights, real shapes): one lot's private gradient by ghost clipping (one batched forward and backward, per-example
/// norms from the LoRA layers' inputs and output gradients) against the reference, the per-example loop (one forward
/// and backward per example), timed alternately in the same run. Peak tensor memory of each is measured on its own
/// run (<see cref="TensorMemory.PeakBytes"/> above what was live before); the bytes that per-example gradient buffers
/// would take (B × adapter size, as a vectorised per-example backward holds them) are printed for scale. Both
/// gradients are compared (same noise seed).
/// </summary>
public sealed class DpSuite : IBenchSuite
{
    public string Name => "dp";
    public string Description => "DP-SGD per-example clipping for LoRA: ghost clipping vs the per-example loop, time and peak tensor memory, SmolLM2-135M-shaped";

    public int Run(BenchOptions options)
    {
        int layers = options.Quick ? 4 : 30, batch = options.Batch ?? 8, time = options.Quick ? 64 : 128;
        var config = TrainSuite.Config(layers);
        using var model = DecoderModel.CreateRandom(config, seed: 7, std: 0.02f);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 8, Alpha = 16 });
        var rngB = new Rng(5);
        foreach (var m in adapter.Modules) // B starts at zero; give the update a size so that norms are not degenerate
        {
            var s = m.B.Value.Span<float>();
            for (int i = 0; i < s.Length; i++) s[i] = (float)(0.02 * rngB.NextGaussian());
        }
        var trainable = adapter.Parameters.Trainable.ToList();
        var lm = DelegateTrainableModel.For(model);
        var rng = new Rng(11);
        var tokens = new int[batch * time];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(config.VocabSize);
        var targets = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++) targets[i] = (i + 1) % time == 0 ? CrossEntropy.IgnoreIndex : tokens[i + 1];
        var lot = new TrainingBatch(tokens, targets, batch, time);
        long adapterParams = trainable.Sum(p => p.ElementCount);
        Console.WriteLine($"dp suite: SmolLM2-135M-shaped ({layers} layers), LoRA r=8 on q,v ({adapterParams:N0} parameters), lot {batch} x {time} tokens, " +
            $"{Environment.ProcessorCount} processors, {WorkerPool.Shared.Threads} threads");

        DpSgd Make(DpPerExampleMode mode) => new(1.0, 1e-9, batch, 1000, 1e-5, new Rng(3)) { PerExample = mode };
        float[][] Step(DpPerExampleMode mode, out long peak, out DpSgd dp)
        {
            foreach (var p in trainable) p.ZeroGrad();
            dp = Make(mode);
            long before = TensorMemory.LiveBytes;
            TensorMemory.ResetPeak();
            dp.ComputeGradient(lm, trainable, [lot]);
            peak = TensorMemory.PeakBytes - before;
            return trainable.Select(p => p.Grad!.ReadOnlySpan<float>().ToArray()).ToArray();
        }
        var loopGrad = Step(DpPerExampleMode.Loop, out long loopPeak, out var loopDp);
        var ghostGrad = Step(DpPerExampleMode.Ghost, out long ghostPeak, out var ghostDp);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < loopGrad.Length; i++)
            for (int j = 0; j < loopGrad[i].Length; j++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(loopGrad[i][j] - ghostGrad[i][j]));
                maxAbs = Math.Max(maxAbs, Math.Abs(loopGrad[i][j]));
            }
        if (ghostDp.GhostUnsupported is { } why) throw new InvalidOperationException($"ghost clipping fell back: {why}");

        int reps = options.Quick ? 3 : 3;
        var (loop, ghostN) = Timing.BestPair(() => Step(DpPerExampleMode.Loop, out _, out _), () => Step(DpPerExampleMode.Ghost, out _, out _),
            warmup: 0, minReps: reps, maxReps: reps, budgetSeconds: 0);
        var ghost = ghostN!.Value;
        var loopGhost = ghost;
        // Without DP: the same lot's plain batched gradient (the floor both approach), its peak memory measured alike.
        void Plain()
        {
            foreach (var p in trainable) p.ZeroGrad();
            using var tape = new Tape();
            tape.Backward(lm.Loss(tape, tokens, targets, batch, time));
        }
        long liveBefore = TensorMemory.LiveBytes;
        TensorMemory.ResetPeak();
        Plain();
        long plainPeak = TensorMemory.PeakBytes - liveBefore;
        // Ghost against the plain backward, alternated as well (the machine's load moves between rounds).
        var (ghost2, plainN) = Timing.BestPair(() => Step(DpPerExampleMode.Ghost, out _, out _), Plain, warmup: 0, minReps: reps, maxReps: reps, budgetSeconds: 0);
        double plain = plainN!.Value.Wall;
        ghost = ghost.Wall <= ghost2.Wall ? ghost : ghost2;

        var c = CultureInfo.InvariantCulture;
        double mb = 1 << 20;
        long perExampleBuffers = batch * adapterParams * sizeof(float);
        Console.WriteLine(string.Create(c, $"{"per-example clipping, one lot",-36} {"time",9} {"peak tensors",13}"));
        Console.WriteLine(string.Create(c, $"{"per-example loop (reference)",-36} {loop.Wall,8:F3}s {loopPeak / mb,10:F1} MiB"));
        Console.WriteLine(string.Create(c, $"{"ghost clipping",-36} {ghost.Wall,8:F3}s {ghostPeak / mb,10:F1} MiB   ({ghostDp.LastCapturedBytes / mb:F1} MiB of kept inputs/output gradients)"));
        Console.WriteLine(string.Create(c, $"{"no DP (plain batched backward)",-36} {plain,8:F3}s {plainPeak / mb,10:F1} MiB"));
        Console.WriteLine(string.Create(c, $"ghost / loop time {loopGhost.Wall / loop.Wall:F2}x (alternated pair), ghost / plain {ghost2.Wall / plain:F2}x (alternated pair); per-example gradient buffers would take {perExampleBuffers / mb:F1} MiB (B x adapter); " +
            $"clipped {ghostDp.LastClipped}/{ghostDp.LastExamples} (loop {loopDp.LastClipped}/{loopDp.LastExamples}); max |ghost - loop| {maxDiff:G3} of max |g| {maxAbs:G3}"));
        Json.WriteLast(new JsonObject
        {
            ["suite"] = Name, ["layers"] = layers, ["batch"] = batch, ["time"] = time, ["adapter_parameters"] = adapterParams,
            ["processors"] = Environment.ProcessorCount, ["loop_s"] = Json.Number(loop.Wall, 3), ["ghost_s"] = Json.Number(ghost.Wall, 3),
            ["plain_s"] = Json.Number(plain, 3), ["plain_peak_bytes"] = plainPeak, ["loop_peak_bytes"] = loopPeak, ["ghost_peak_bytes"] = ghostPeak,
            ["ghost_captured_bytes"] = ghostDp.LastCapturedBytes, ["per_example_buffer_bytes"] = perExampleBuffers,
            ["max_abs_diff"] = Json.Number(maxDiff, 9), ["max_abs_grad"] = Json.Number(maxAbs, 9),
        });
        return 0;
    }
}
