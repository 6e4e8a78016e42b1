using EdgeTune.Tensors;
using EdgeTune.Tensors.Quantized.Internal;

namespace EdgeTune.Tests.Compression.Quantization;

/// <summary>The vector quantizer of decode activations (Q8 blocks of 32) against its scalar reference, bit for bit:
/// random rows of odd lengths, exact ties (amax 127 makes the scale 1, so ±k.5 are ties), zero, subnormal, Inf and NaN blocks.</summary>
public class QuantizeActivationTests
{
    [Fact]
    public void VectorQuantizerEqualsTheScalarReferenceBitForBit()
    {
        var rng = new Rng(77);
        var rows = new List<float[]>();
        foreach (int len in new[] { 32, 33, 96, 575, 1536 })
        {
            var x = new float[len];
            rng.FillGaussian(x, 0, 3f);
            rows.Add(x);
        }
        var ties = new float[64];
        for (int i = 0; i < 32; i++) ties[i] = (i % 2 == 0 ? 1 : -1) * (i * 4 + 0.5f);   // ±0.5, ±4.5, …, ±124.5
        ties[5] = 127f;
        for (int i = 32; i < 64; i++) ties[i] = (i - 48) * 0.37f;
        ties[40] = -127f * 0.37f;
        rows.Add(ties);
        var specials = new float[5 * 32];
        for (int i = 32; i < 64; i++) specials[i] = (i - 40) * 1e-42f;       // subnormals
        specials[64 + 3] = float.PositiveInfinity; specials[64 + 4] = 2f;      // an Inf block
        specials[96 + 7] = float.NaN; specials[96 + 8] = -5f;                  // a NaN block
        for (int i = 128; i < 160; i++) specials[i] = i % 3 == 0 ? -0f : 1e-3f * i;
        rows.Add(specials);
        int tiesSeen = 0;
        foreach (var x in rows)
        {
            int blocks = x.Length / 32;
            var q = new sbyte[blocks * 32]; var s = new float[blocks];
            var qr = new sbyte[blocks * 32]; var sr = new float[blocks];
            QuantIntDot.QuantizeActivation(x, q, s);
            QuantIntDot.QuantizeActivationScalar(x, qr, sr);
            Assert.Equal(qr, q);
            for (int b = 0; b < blocks; b++)
                Assert.Equal(BitConverter.SingleToInt32Bits(sr[b]), BitConverter.SingleToInt32Bits(s[b]));
            for (int i = 0; i < blocks * 32; i++)
                if (sr[i / 32] == 1f && Math.Abs(x[i] % 1) == 0.5f) tiesSeen++;
        }
        Assert.True(tiesSeen >= 30, $"only {tiesSeen} exact ties were exercised");
        // The reference rounds ties away from zero (spot check: 0.5 → 1, −4.5 → −5).
        var one = new sbyte[64]; var sc = new float[2];
        QuantIntDot.QuantizeActivation(ties, one, sc);
        Assert.Equal(1f, sc[0]);
        Assert.Equal((sbyte)1, one[0]);
        Assert.Equal((sbyte)-5, one[1]);
    }
}
