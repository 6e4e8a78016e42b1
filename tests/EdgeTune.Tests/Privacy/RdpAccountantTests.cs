using EdgeTune.Privacy;

namespace EdgeTune.Tests.Privacy;

public class RdpAccountantTests
{
    [Theory]
    [InlineData(0.5, 2)]
    [InlineData(1.0, 7)]
    [InlineData(3.0, 64)]
    public void FullParticipationIsTheGaussianClosedForm(double z, int alpha)
    {
        Assert.Equal(alpha / (2 * z * z), RdpAccountant.SampledGaussianRdp(1, z, alpha), 12);
        var acc = new RdpAccountant(1, z, [alpha]);
        acc.Step(5);
        Assert.Equal(5 * alpha / (2 * z * z), acc.TotalRdp[0], 10);
        Assert.Equal(5 * alpha / (2 * z * z) + Math.Log(1e5) / (alpha - 1), acc.GetEpsilon(1e-5).Epsilon, 10);
    }

    /// <summary>Independent check of the integer-α formula: numerically integrate
    /// E_{x~N(0,z²)}[((1−q) + q·exp((2x − 1)/(2z²)))^α], the α-th moment of the likelihood ratio between
    /// the subsampled mechanism and N(0, z²) (sensitivity 1), and compare exp((α−1)·RDP).</summary>
    [Theory]
    [InlineData(0.01, 1.1, 2)]
    [InlineData(0.01, 1.1, 16)]
    [InlineData(0.1, 2.0, 8)]
    [InlineData(0.3, 0.8, 5)]
    public void SampledGaussianMatchesNumericalIntegration(double q, double z, int alpha)
    {
        double lo = -30 * z, hi = 30 * z + alpha, h = 1e-4 * z, integral = 0;
        for (double x = lo; x <= hi; x += h)
        {
            double density = Math.Exp(-x * x / (2 * z * z)) / (z * Math.Sqrt(2 * Math.PI));
            double ratio = (1 - q) + q * Math.Exp((2 * x - 1) / (2 * z * z));
            integral += density * Math.Pow(ratio, alpha) * h;
        }
        double rdp = RdpAccountant.SampledGaussianRdp(q, z, alpha);
        Assert.Equal(Math.Log(integral) / (alpha - 1), rdp, 6);
    }

    [Fact]
    public void EpsilonGrowsWithRoundsAndShrinksWithNoise()
    {
        double Eps(double z, long rounds) { var a = new RdpAccountant(0.05, z); a.Step(rounds); return a.GetEpsilon(1e-5).Epsilon; }
        Assert.True(Eps(1.0, 10) < Eps(1.0, 100));
        Assert.True(Eps(1.0, 100) < Eps(1.0, 1000));
        Assert.True(Eps(2.0, 100) < Eps(1.0, 100));
        Assert.True(Eps(4.0, 100) < Eps(2.0, 100));
        // Subsampling amplifies privacy.
        var full = new RdpAccountant(1, 1.0); full.Step(100);
        Assert.True(Eps(1.0, 100) < full.GetEpsilon(1e-5).Epsilon);
        Assert.Equal(0, new RdpAccountant(0.05, 1.0).Rounds);
    }

    /// <summary>Reference figure: TensorFlow Privacy's MNIST DP-SGD tutorial README lists ε = 2.92 at δ = 1e-5 for
    /// noise multiplier 1.1, batch 256 of 60 000 examples (q = 256/60000), 60 epochs (14 062 steps), computed with
    /// this RDP formula and the same conversion over orders that include fractional ones (quoted from memory of
    /// that README; integer orders only can give a slightly larger ε).</summary>
    [Fact]
    public void MatchesThePublishedDpSgdFigure()
    {
        var acc = new RdpAccountant(256.0 / 60000, 1.1);
        acc.Step(14062);
        var (eps, order) = acc.GetEpsilon(1e-5);
        Assert.InRange(eps, 2.85, 3.05);
        Assert.InRange(order, 5, 40);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpAccountant(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpAccountant(1.5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpAccountant(0.1, 0));
        Assert.Throws<ArgumentException>(() => new RdpAccountant(0.1, 1, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpAccountant(0.1, 1).GetEpsilon(0));
    }
}
