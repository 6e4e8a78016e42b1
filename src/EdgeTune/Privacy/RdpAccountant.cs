namespace EdgeTune.Privacy;

/// <summary>
/// Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism, the mechanism of DP-SGD (Abadi et al. 2016,
/// "Deep Learning with Differential Privacy") and DP-FedAvg: each round every record (example or client) takes part
/// with probability q, the clipped contributions (L2 sensitivity C) are summed and N(0, (z·C)²) noise is added
/// (z = noise multiplier).
/// <para>Per round, for integer orders α ≥ 2 (Mironov, Talwar, Zhang 2019, "Rényi Differential
/// Privacy of the Sampled Gaussian Mechanism", the integer-α closed form):
/// <c>RDP(α) = log( Σ_{k=0..α} C(α,k)·(1−q)^{α−k}·q^k·exp((k²−k)/(2z²)) ) / (α−1)</c>,
/// which for q = 1 is the Gaussian mechanism's α/(2z²). Rounds compose by adding RDP; the (ε, δ)
/// guarantee is <c>ε = min_α RDP_total(α) + log(1/δ)/(α−1)</c> (Mironov 2017, Prop. 3).</para>
/// Computed in log space (log-sum-exp), so large orders and small z do not overflow.
/// </summary>
public sealed class RdpAccountant
{
    private readonly double[] _perRound;
    private readonly double[] _total;

    /// <summary>Integer orders 2..128 and a few larger ones; the optimum for practical (q, z, δ) lies inside.</summary>
    public static IReadOnlyList<int> DefaultOrders { get; } =
        [.. Enumerable.Range(2, 127), 160, 192, 256, 320, 384, 512, 768, 1024];

    /// <param name="samplingRate">q in (0, 1]: probability that a given client takes part in a round.</param>
    /// <param name="noiseMultiplier">z &gt; 0: noise standard deviation over the clipping bound.</param>
    /// <param name="orders">Integer orders α ≥ 2 to track (default <see cref="DefaultOrders"/>).</param>
    public RdpAccountant(double samplingRate, double noiseMultiplier, IReadOnlyList<int>? orders = null)
    {
        if (!(samplingRate > 0 && samplingRate <= 1)) throw new ArgumentOutOfRangeException(nameof(samplingRate), samplingRate, "RDP accountant: sampling rate q must be in (0, 1]");
        if (!(noiseMultiplier > 0) || double.IsInfinity(noiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "RDP accountant: noise multiplier z must be finite and > 0");
        Orders = (orders ?? DefaultOrders).ToArray();
        if (Orders.Count == 0 || Orders.Any(a => a < 2)) throw new ArgumentException("RDP accountant: orders must be integers ≥ 2", nameof(orders));
        SamplingRate = samplingRate;
        NoiseMultiplier = noiseMultiplier;
        _perRound = Orders.Select(a => SampledGaussianRdp(samplingRate, noiseMultiplier, a)).ToArray();
        _total = new double[Orders.Count];
    }

    public double SamplingRate { get; }
    public double NoiseMultiplier { get; }
    public IReadOnlyList<int> Orders { get; }

    /// <summary>Rounds accounted so far.</summary>
    public long Rounds { get; private set; }

    /// <summary>Accumulated RDP at each of <see cref="Orders"/>.</summary>
    public IReadOnlyList<double> TotalRdp => _total;

    /// <summary>Accounts for <paramref name="rounds"/> more rounds.</summary>
    public void Step(long rounds = 1)
    {
        if (rounds < 0) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "RDP accountant: rounds must be ≥ 0");
        for (int i = 0; i < _total.Length; i++) _total[i] += rounds * _perRound[i];
        Rounds += rounds;
    }

    /// <summary>Sets the number of rounds accounted (restoring a saved run).</summary>
    public void SetRounds(long rounds)
    {
        if (rounds < 0) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "RDP accountant: rounds must be ≥ 0");
        for (int i = 0; i < _total.Length; i++) _total[i] = rounds * _perRound[i];
        Rounds = rounds;
    }

    /// <summary>The smallest ε over the tracked orders for which the rounds so far are (ε, δ)-DP, and that order.</summary>
    public (double Epsilon, int Order) GetEpsilon(double delta)
    {
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "RDP accountant: δ must be in (0, 1)");
        double best = double.PositiveInfinity;
        int order = Orders[0];
        for (int i = 0; i < _total.Length; i++)
        {
            double eps = _total[i] + Math.Log(1 / delta) / (Orders[i] - 1);
            if (eps < best) { best = eps; order = Orders[i]; }
        }
        return (Math.Max(0, best), order);
    }

    /// <summary>RDP at integer order α of one round of the Gaussian mechanism with noise multiplier z,
    /// on a Poisson sample with rate q.</summary>
    public static double SampledGaussianRdp(double q, double z, int alpha)
    {
        if (alpha < 2) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "RDP: integer order α ≥ 2 expected");
        if (!(q > 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "RDP: q must be in (0, 1]");
        if (!(z > 0)) throw new ArgumentOutOfRangeException(nameof(z), z, "RDP: z must be > 0");
        if (q == 1) return alpha / (2 * z * z);
        double logQ = Math.Log(q), log1mQ = double.LogP1(-q), inv2z2 = 1 / (2 * z * z);
        // log-sum-exp over k of log C(α,k) + (α−k)·log(1−q) + k·log q + (k²−k)/(2z²)
        var terms = new double[alpha + 1];
        double logBinom = 0, max = double.NegativeInfinity;
        for (int k = 0; k <= alpha; k++)
        {
            if (k > 0) logBinom += Math.Log(alpha - k + 1) - Math.Log(k);
            terms[k] = logBinom + (alpha - k) * log1mQ + k * logQ + ((double)k * k - k) * inv2z2;
            if (terms[k] > max) max = terms[k];
        }
        double sum = 0;
        foreach (double t in terms) sum += Math.Exp(t - max);
        return (max + Math.Log(sum)) / (alpha - 1);
    }
}
