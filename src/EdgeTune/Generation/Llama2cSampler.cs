namespace EdgeTune.Generation;

/// <summary>
/// A sampler that draws exactly as llama2.c's <c>run.c</c> does (xorshift64* coin, temperature,
/// softmax, top-p with its (1−p)/(n−1) pre-filter and descending sort), so seeded runs reproduce
/// its reference outputs token for token. Use <see cref="Sampler"/> for everything else.
/// </summary>
public sealed class Llama2cSampler : ITokenSampler
{
    private readonly float _temperature;
    private readonly float _topP;
    private ulong _state;
    private (float Prob, int Index)[] _candidates = [];

    public Llama2cSampler(float temperature, float topP, ulong seed)
    {
        if (!(temperature >= 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be >= 0");
        if (!(topP > 0 && topP <= 1)) throw new ArgumentOutOfRangeException(nameof(topP), topP, "top-p must be in (0, 1]");
        if (seed == 0) throw new ArgumentOutOfRangeException(nameof(seed), seed, "xorshift needs a non-zero seed");
        _temperature = temperature;
        _topP = topP;
        _state = seed;
    }

    private uint NextU32()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return (uint)((_state * 0x2545F4914F6CDD1DUL) >> 32);
    }

    private float NextFloat() => (NextU32() >> 8) / 16777216.0f;

    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        if (_temperature == 0f) return Sampler.ArgMax(logits);
        for (int i = 0; i < logits.Length; i++) logits[i] /= _temperature;
        Softmax(logits);
        float coin = NextFloat();
        return _topP <= 0 || _topP >= 1 ? SampleMult(logits, coin) : SampleTopP(logits, coin);
    }

    private static void Softmax(Span<float> x)
    {
        float max = x[0];
        for (int i = 1; i < x.Length; i++) if (x[i] > max) max = x[i];
        float sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        for (int i = 0; i < x.Length; i++) x[i] /= sum;
    }

    private static int SampleMult(ReadOnlySpan<float> probs, float coin)
    {
        float cdf = 0;
        for (int i = 0; i < probs.Length; i++) { cdf += probs[i]; if (coin < cdf) return i; }
        return probs.Length - 1;
    }

    private int SampleTopP(ReadOnlySpan<float> probs, float coin)
    {
        int n = probs.Length;
        if (_candidates.Length < n) _candidates = new (float, int)[n];
        float cutoff = (1.0f - _topP) / (n - 1);
        int n0 = 0;
        for (int i = 0; i < n; i++) if (probs[i] >= cutoff) _candidates[n0++] = (probs[i], i);
        var c = _candidates.AsSpan(0, n0);
        c.Sort((a, b) => b.Prob.CompareTo(a.Prob));
        float cum = 0;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++) { cum += c[i].Prob; if (cum > _topP) { last = i; break; } }
        float r = coin * cum;
        float cdf = 0;
        for (int i = 0; i <= last; i++) { cdf += c[i].Prob; if (r < cdf) return c[i].Index; }
        return c[last].Index;
    }
}
