using EdgeTune.Tensors;

namespace EdgeTune.Generation;

/// <summary>Chooses the next token from a row of logits: repetition penalty, then greedy or
/// temperature → top-k → softmax → min-p → top-p → one draw from <see cref="Rng"/>.</summary>
public sealed class Sampler : ITokenSampler
{
    private readonly SamplingOptions _options;
    private readonly Rng _rng;
    private (float Logit, int Id)[] _order = [];
    private float[] _probs = [];

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _rng = new Rng(options.Seed);
    }

    public RngState RandomState { get => _rng.State; set => _rng.State = value; }

    /// <summary>Picks a token id; <paramref name="logits"/> is modified (penalised and scaled).</summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        int v = logits.Length;
        if (v == 0) throw new ArgumentException("Sampler: empty logits row");
        foreach (float x in logits)
            if (float.IsNaN(x)) throw new ArgumentException("Sampler: the logits contain NaN; the model produced invalid numbers");
        ApplyRepetitionPenalty(logits, history);
        if (_options.Temperature == 0f) return ArgMax(logits);

        EnsureCapacity(v);
        float inv = 1f / _options.Temperature;
        for (int i = 0; i < v; i++) _order[i] = (logits[i], i);
        // Sort candidates by logit, descending; ties broken by id so the order is deterministic.
        var order = _order.AsSpan(0, v);
        order.Sort(static (a, b) => b.Logit.CompareTo(a.Logit) is var c && c != 0 ? c : a.Id.CompareTo(b.Id));
        int keep = _options.TopK > 0 ? Math.Min(_options.TopK, v) : v;

        // Softmax over the kept candidates, in sorted order.
        var probs = _probs.AsSpan(0, keep);
        float max = order[0].Logit * inv;
        double sum = 0;
        for (int i = 0; i < keep; i++) { float p = MathF.Exp(order[i].Logit * inv - max); probs[i] = p; sum += p; }
        for (int i = 0; i < keep; i++) probs[i] = (float)(probs[i] / sum);

        if (_options.MinP > 0)
        {
            float floor = _options.MinP * probs[0];
            int k = 1;
            while (k < keep && probs[k] >= floor) k++;
            keep = k;
        }
        if (_options.TopP < 1f)
        {
            double cum = 0;
            int k = 0;
            while (k < keep) { cum += probs[k]; k++; if (cum >= _options.TopP) break; }
            keep = k;
        }
        double mass = 0;
        for (int i = 0; i < keep; i++) mass += probs[i];
        double r = _rng.NextDouble() * mass, acc = 0;
        for (int i = 0; i < keep; i++)
        {
            acc += probs[i];
            if (r < acc) return order[i].Id;
        }
        return order[keep - 1].Id;
    }

    private void ApplyRepetitionPenalty(Span<float> logits, ReadOnlySpan<int> history)
    {
        float penalty = _options.RepetitionPenalty;
        if (penalty == 1f || history.IsEmpty || _options.RepetitionWindow == 0) return;
        var window = history.Length > _options.RepetitionWindow ? history[^_options.RepetitionWindow..] : history;
        var seen = new HashSet<int>();
        foreach (int id in window)
        {
            if ((uint)id >= (uint)logits.Length || !seen.Add(id)) continue;
            logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
        }
    }

    /// <summary>Index of the largest value; the first one on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private void EnsureCapacity(int v)
    {
        if (_order.Length < v) { _order = new (float, int)[v]; _probs = new float[v]; }
    }
}

/// <summary>Anything that picks the next token from a row of logits.</summary>
public interface ITokenSampler
{
    int Sample(Span<float> logits, ReadOnlySpan<int> history);
}
