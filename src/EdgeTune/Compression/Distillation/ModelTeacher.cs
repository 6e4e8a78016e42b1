using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// A teacher model run in inference mode (no tape) on every micro-batch: any <see cref="ICausalLM"/>
/// (a larger model, a quantized one, or the same model before pruning). Each sequence of the batch is
/// one batched forward over a reused KV cache; the result is the full logits [B·T, V], or their top-k
/// when <see cref="TopK"/> &gt; 0 (see <see cref="TeacherTargets"/> for how top-k is normalised).
/// The model is not owned.
/// </summary>
public sealed class ModelTeacher : IDistillationTeacher, IDisposable
{
    private readonly ICausalLM _model;
    private KvCache? _cache;

    /// <param name="model">the teacher, not owned.</param>
    /// <param name="topK">0 for full logits; otherwise keep the k most likely ids per position.</param>
    public ModelTeacher(ICausalLM model, int topK = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (topK < 0 || topK > model.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"top-k must lie in [0, {model.VocabSize}] (0: full logits)");
        _model = model;
        TopK = topK;
    }

    public int VocabSize => _model.VocabSize;

    /// <summary>0: full logits; otherwise the number of ids kept per position.</summary>
    public int TopK { get; }

    /// <summary>Positions the teacher has run (a measure of the teacher's cost).</summary>
    public long PositionsRun { get; private set; }

    public TeacherTargets Predict(int[] tokens, int[] targets, int batch, int time)
    {
        float[] logits = Logits(tokens, targets, batch, time);
        int v = _model.VocabSize;
        return TopK > 0 ? TeacherTargets.TopKOf(logits, batch * time, v, TopK) : TeacherTargets.Full(logits, batch * time, v);
    }

    /// <summary>Teacher logits [B·T, V] of <paramref name="tokens"/>; rows whose targets are all ignored are left 0.</summary>
    public float[] Logits(int[] tokens, int[]? targets, int batch, int time)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (batch < 1 || time < 1 || tokens.Length != batch * time || (targets is not null && targets.Length != tokens.Length))
            throw new ShapeException($"ModelTeacher: tokens ({tokens.Length}) and targets ({targets?.Length}) must hold B×T = {batch}×{time} ids");
        if (time > _model.MaxPositions)
            throw new ArgumentException($"ModelTeacher: sequences of {time} positions exceed the teacher's {_model.MaxPositions}");
        int v = _model.VocabSize;
        var logits = new float[checked(batch * time * v)];
        if (_cache is null || _cache.Capacity < time)
        {
            _cache?.Dispose();
            _cache = _model.CreateCache(time);
        }
        for (int b = 0; b < batch; b++)
        {
            if (targets is not null && AllIgnored(targets.AsSpan(b * time, time))) continue;
            foreach (int id in tokens.AsSpan(b * time, time))
                if ((uint)id >= (uint)v) throw new ShapeException($"ModelTeacher: token id {id} in sequence {b} is outside the teacher's vocabulary [0, {v})");
            _cache.Truncate(0);
            _model.Forward(tokens.AsSpan(b * time, time), _cache, logits.AsSpan(b * time * v, time * v));
            PositionsRun += time;
        }
        return logits;
    }

    private static bool AllIgnored(ReadOnlySpan<int> targets)
    {
        foreach (int t in targets) if (t != CrossEntropy.IgnoreIndex) return false;
        return true;
    }

    public void Dispose()
    {
        _cache?.Dispose();
        _cache = null;
    }
}
