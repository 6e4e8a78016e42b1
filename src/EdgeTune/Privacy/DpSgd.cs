using System.Globalization;
using System.Security.Cryptography;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Privacy;

/// <summary>
/// DP-SGD's private gradient (Abadi et al. 2016, "Deep Learning with Differential Privacy", Algorithm 1): every
/// example of a lot gets its own gradient, clipped to L2 norm C (g / max(1, ‖g‖/C), the norm taken over all trainable
/// parameters together); the clipped gradients are summed, N(0, σ²C²) is added to every coordinate, and the sum is
/// divided by the expected lot size L. The optimizer then steps on that gradient (post-processing: AdamW's state
/// sees only privatized gradients).
/// <para>Per-example gradients (<see cref="PerExample"/>): by default "ghost clipping" — one batched forward and
/// backward in which every trainable Linear weight (the LoRA A and B factors) keeps its input and output gradient
/// (<see cref="PerExampleLinearGradients"/>); each example's norm comes from those, and the clipped sum is one
/// reweighted product per weight, so no per-example gradient buffer exists. The fallback runs the tape once per
/// example (a batch of one row), never holding more than one example's gradient besides the running sum.</para>
/// <para>Accounting: <see cref="Accountant"/> is the RDP accountant of the Poisson-subsampled Gaussian mechanism at
/// q = L / N. The trainer draws shuffled fixed-size batches (each example once per epoch), not Poisson samples; the
/// figure is therefore the one commonly reported for such training (as TF Privacy's and Opacus' accountants do), not a
/// proof for the sampling actually used — shuffling can be weaker (Chua et al. 2024, "How Private are DP-SGD
/// Implementations?"). The unit protected is one training sequence (a packed sequence, or one window of plain text).
/// Noise comes from <see cref="Rng"/> (xoshiro, Box–Muller), not a cryptographic sampler, and floating-point noise is
/// known to leak in theory (Mironov 2012); this is an engineering implementation, not a certified one.</para>
/// </summary>
public sealed class DpSgd
{
    /// <summary>The name under which the trainer checkpoints <see cref="NoiseRng"/>.</summary>
    public const string NoiseRngName = "dp-noise";

    private double[][]? _sums;

    /// <param name="clipNorm">C &gt; 0.</param>
    /// <param name="noiseMultiplier">σ &gt; 0 (noise standard deviation σ·C on the sum).</param>
    /// <param name="lotSize">L: examples per step (micro-batch × accumulation), the divisor of the noisy sum.</param>
    /// <param name="datasetSize">N: training examples; the sampling rate is q = L / N.</param>
    /// <param name="delta">δ of the reported ε.</param>
    /// <param name="noise">The generator the noise is drawn from.</param>
    public DpSgd(double clipNorm, double noiseMultiplier, int lotSize, int datasetSize, double delta, Rng noise)
    {
        ArgumentNullException.ThrowIfNull(noise);
        if (!(clipNorm > 0) || double.IsInfinity(clipNorm)) throw new ArgumentOutOfRangeException(nameof(clipNorm), clipNorm, "DP-SGD: C must be finite and > 0");
        if (!(noiseMultiplier > 0) || double.IsInfinity(noiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "DP-SGD: σ must be finite and > 0");
        if (lotSize <= 0) throw new ArgumentOutOfRangeException(nameof(lotSize), lotSize, "DP-SGD: the lot size must be > 0");
        if (datasetSize < lotSize)
            throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, $"DP-SGD: {lotSize} examples per step (micro-batch × accumulation) exceed the {datasetSize} training examples; the sampling rate would be above 1");
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "DP-SGD: δ must be in (0, 1)");
        ClipNorm = clipNorm;
        NoiseMultiplier = noiseMultiplier;
        LotSize = lotSize;
        DatasetSize = datasetSize;
        Delta = delta;
        NoiseRng = noise;
        Accountant = new RdpAccountant(SamplingRate, noiseMultiplier);
    }

    /// <summary>DP-SGD for a run of <paramref name="steps"/> steps: σ as given, or calibrated to the target ε;
    /// the noise generator from <see cref="DpSgdOptions.NoiseSeed"/> or the OS's secure random source.</summary>
    public static DpSgd Create(DpSgdOptions options, int lotSize, int datasetSize, long steps)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (lotSize <= 0 || datasetSize < lotSize)
            throw new ArgumentException($"DP-SGD: {lotSize} examples per step (micro-batch × accumulation) do not fit the {datasetSize} training examples (the sampling rate q = L/N must be in (0, 1]); lower the micro-batch or the accumulation");
        double q = (double)lotSize / datasetSize;
        double sigma = options.NoiseMultiplier ?? NoiseCalibration.NoiseMultiplierFor(options.TargetEpsilon!.Value, options.Delta, q, steps);
        ulong seed = options.NoiseSeed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        return new DpSgd(options.ClipNorm, sigma, lotSize, datasetSize, options.Delta, new Rng(seed)) { PerExample = options.PerExample };
    }

    public double ClipNorm { get; }
    public double NoiseMultiplier { get; }
    public int LotSize { get; }
    public int DatasetSize { get; }
    public double Delta { get; }
    public double SamplingRate => (double)LotSize / DatasetSize;
    public Rng NoiseRng { get; }
    public RdpAccountant Accountant { get; }

    /// <summary>ε at <see cref="Delta"/> after the steps accounted so far.</summary>
    public double Epsilon => Accountant.GetEpsilon(Delta).Epsilon;

    /// <summary>Examples in the last lot, and how many of them were scaled down by clipping.</summary>
    public int LastExamples { get; private set; }
    public int LastClipped { get; private set; }

    /// <summary>One line for logs: C, σ, q, and ε so far.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"DP-SGD C={ClipNorm:G4} sigma={NoiseMultiplier:G4} q={SamplingRate:G4} (lot {LotSize} of {DatasetSize}), epsilon={Epsilon:G4} at delta={Delta:G3} after {Accountant.Rounds} steps (RDP, Poisson-sampling assumption), per-example gradients: {PerExampleDescription}");

    private string PerExampleDescription => PerExample == DpPerExampleMode.Loop ? "loop" : GhostUnsupported is { } why ? $"loop (ghost clipping unsupported: {why})" : "ghost clipping";

    /// <summary>How per-example gradients are obtained. <see cref="DpPerExampleMode.Ghost"/> (the default) falls back to
    /// <see cref="DpPerExampleMode.Loop"/> for good when a trainable parameter is reached other than as a Linear weight
    /// (a DoRA magnitude, a full fine-tune's embeddings or norms); <see cref="GhostUnsupported"/> then says so.</summary>
    public DpPerExampleMode PerExample { get; init; } = DpPerExampleMode.Ghost;

    /// <summary>How ghost clipping computes each weight's per-example norms (by cost unless set).</summary>
    public PerExampleNormMethod NormMethod { get; init; } = PerExampleNormMethod.Auto;

    /// <summary>Set once ghost clipping met a parameter it cannot see; later lots run the per-example loop.</summary>
    public string? GhostUnsupported { get; private set; }

    /// <summary>Bytes the last ghost pass kept (layer inputs and output gradients), for benchmarks.</summary>
    public long LastCapturedBytes { get; private set; }

    /// <summary>
    /// The private gradient of one lot, written into the trainable parameters' gradients (which must be zero on entry):
    /// each row of each micro-batch with at least one trained target is one example, whose gradient is clipped to C
    /// and added to the sum; rows with no trained target (padding rows) are skipped. Then noise and the division by
    /// <see cref="LotSize"/>. Returns the mean loss over the lot's trained targets.
    /// <para>Ghost mode runs each micro-batch forward and backward once with the Linear weights captured
    /// (<see cref="PerExampleLinearGradients"/>): the model's loss must be the mean over the batch's trained targets
    /// with rows that do not interact (as <see cref="Models.DecoderModel.Loss"/>), so example i's own gradient is the
    /// batch's share of it times N/nᵢ (nᵢ its trained targets, N the batch's). Loop mode runs each example alone.</para>
    /// </summary>
    /// <exception cref="NonFiniteException">an example's loss or gradient is NaN/∞ (the sum is discarded).</exception>
    public double ComputeGradient(ITrainableModel model, IReadOnlyList<Parameter> trainable, IReadOnlyList<TrainingBatch> microBatches)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(trainable);
        ArgumentNullException.ThrowIfNull(microBatches);
        Begin(trainable);
        double lossSum = 0;
        long tokens = 0;
        LastCapturedBytes = 0;
        foreach (var b in microBatches)
        {
            var counts = new int[b.Batch];
            for (int r = 0; r < b.Batch; r++) counts[r] = b.Time - b.Targets.AsSpan(r * b.Time, b.Time).Count(CrossEntropy.IgnoreIndex);
            long n = counts.Sum(c => (long)c);
            if (n == 0) continue;
            if (PerExample == DpPerExampleMode.Ghost && GhostUnsupported is null && GhostBatch(model, trainable, b, counts, n) is double l)
                lossSum += l * n;
            else
                lossSum += LoopBatch(model, trainable, b, counts);
            tokens += n;
        }
        Release(trainable);
        return tokens == 0 ? 0 : lossSum / tokens;
    }

    // Each example alone: forward, backward, clip into the sum. Returns Σ nᵢ·lossᵢ.
    private double LoopBatch(ITrainableModel model, IReadOnlyList<Parameter> trainable, TrainingBatch b, int[] counts)
    {
        int t = b.Time;
        double weighted = 0;
        for (int r = 0; r < b.Batch; r++)
        {
            if (counts[r] == 0) continue;
            int[] tok = b.Tokens.AsSpan(r * t, t).ToArray(), tgt = b.Targets.AsSpan(r * t, t).ToArray();
            using (var tape = new Tape())
            {
                var loss = model.Loss(tape, tok, tgt, 1, t);
                double l = loss.Item();
                if (!double.IsFinite(l)) throw new NonFiniteException("DP-SGD", $"loss of example {LastExamples}", l);
                weighted += l * counts[r];
                tape.Backward(loss);
            }
            AddClipped(trainable);
        }
        return weighted;
    }

    // One batched pass with the Linear weights captured; null when a trainable parameter got a gradient the capture
    // did not see (then nothing was added and every gradient is zero again). Returns the batch's mean loss.
    private double? GhostBatch(ITrainableModel model, IReadOnlyList<Parameter> trainable, TrainingBatch b, int[] counts, long n)
    {
        using var capture = new PerExampleLinearGradients(trainable, b.Batch, b.Time, NormMethod);
        double l;
        using (var tape = new Tape { PerExample = capture })
        {
            var loss = model.Loss(tape, b.Tokens, b.Targets, b.Batch, b.Time);
            l = loss.Item();
            if (!double.IsFinite(l)) throw new NonFiniteException("DP-SGD", "loss of a micro-batch", l);
            tape.Backward(loss);
        }
        LastCapturedBytes = Math.Max(LastCapturedBytes, capture.CapturedBytes);
        foreach (var p in trainable)
            if (p.Grad is { } g && !IsZero(g))
            {
                GhostUnsupported = $"parameter '{p.Name}' is not (only) a Linear weight";
                foreach (var q in trainable) q.ZeroGrad();
                return null;
            }
        double[] sq = capture.SquaredNorms();
        var coef = new double[b.Batch];
        for (int r = 0; r < b.Batch; r++)
        {
            if (counts[r] == 0) continue;
            double share = (double)n / counts[r]; // example r's own gradient = share × its part of the batch gradient
            double norm = Math.Sqrt(sq[r]) * share;
            if (!double.IsFinite(norm)) throw new NonFiniteException("DP-SGD", $"per-example gradient norm of example {LastExamples}", norm);
            coef[r] = (norm > ClipNorm ? ClipNorm / norm : 1.0) * share;
            LastExamples++;
            if (norm > ClipNorm) LastClipped++;
        }
        capture.AccumulateWeighted(coef);
        AddToSum(trainable, 1.0);
        return l;
    }

    private static bool IsZero(Tensor g) => g.DType == DType.F64
        ? !g.ReadOnlySpan<double>().ContainsAnyExcept(0.0)
        : !g.ReadOnlySpan<float>().ContainsAnyExcept(0f);

    /// <summary>Starts a lot: clears the running sum (sized to <paramref name="trainable"/>) and the counters.</summary>
    public void Begin(IReadOnlyList<Parameter> trainable)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        if (_sums is null || _sums.Length != trainable.Count || _sums.Where((s, i) => s.Length != trainable[i].ElementCount).Any())
            _sums = trainable.Select(p => new double[p.ElementCount]).ToArray();
        else
            foreach (var s in _sums) Array.Clear(s);
        LastExamples = 0;
        LastClipped = 0;
    }

    /// <summary>Adds the gradients the parameters hold now (one example's) to the sum, scaled by min(1, C/‖g‖), and
    /// zeroes them; returns ‖g‖ before clipping.</summary>
    /// <exception cref="NonFiniteException">the gradient holds NaN or ∞.</exception>
    public double AddClipped(IReadOnlyList<Parameter> trainable)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        if (_sums is null || _sums.Length != trainable.Count) throw new InvalidOperationException("DP-SGD: call Begin with these parameters first");
        double sq = 0;
        foreach (var p in trainable)
        {
            var g = p.Grad ?? throw new InvalidOperationException($"DP-SGD: parameter '{p.Name}' has no gradient (frozen)");
            if (g.DType == DType.F64) foreach (double v in g.ReadOnlySpan<double>()) sq += v * v;
            else foreach (float v in g.ReadOnlySpan<float>()) sq += (double)v * v;
        }
        double norm = Math.Sqrt(sq);
        if (!double.IsFinite(norm)) throw new NonFiniteException("DP-SGD", "per-example gradient norm", norm);
        AddToSum(trainable, norm > ClipNorm ? ClipNorm / norm : 1.0);
        LastExamples++;
        if (norm > ClipNorm) LastClipped++;
        return norm;
    }

    // sum += scale · gradient, then the gradients are zeroed.
    private void AddToSum(IReadOnlyList<Parameter> trainable, double scale)
    {
        for (int i = 0; i < trainable.Count; i++)
        {
            if (trainable[i].Grad is not { } g) continue;
            var sum = _sums![i];
            if (g.DType == DType.F64) { var s = g.ReadOnlySpan<double>(); for (int j = 0; j < s.Length; j++) sum[j] += scale * s[j]; }
            else { var s = g.ReadOnlySpan<float>(); for (int j = 0; j < s.Length; j++) sum[j] += scale * s[j]; }
            trainable[i].ZeroGrad();
        }
    }

    /// <summary>Writes (sum + N(0, σ²C²) per coordinate) / <see cref="LotSize"/> into the parameters' gradients.</summary>
    public void Release(IReadOnlyList<Parameter> trainable)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        if (_sums is null || _sums.Length != trainable.Count) throw new InvalidOperationException("DP-SGD: call Begin with these parameters first");
        double std = NoiseMultiplier * ClipNorm, inv = 1.0 / LotSize;
        for (int i = 0; i < trainable.Count; i++)
        {
            var g = trainable[i].Grad!;
            var sum = _sums[i];
            if (g.DType == DType.F64) { var d = g.Span<double>(); for (int j = 0; j < d.Length; j++) d[j] = (sum[j] + std * NoiseRng.NextGaussian()) * inv; }
            else { var d = g.Span<float>(); for (int j = 0; j < d.Length; j++) d[j] = (float)((sum[j] + std * NoiseRng.NextGaussian()) * inv); }
        }
    }
}
