using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.UpdateCompression;
using EdgeTune.Federated.Validation;

namespace EdgeTune.Tests.Federated.Validation;

public class UpdateValidatorTests
{
    private static readonly UpdateLayout Layout = new([("a.lora_a", [2, 3]), ("a.lora_b", [3, 2])]);

    private static UpdateHeader Header(string? fp = null, string dtype = UpdateCodec.Float32, long length = 12, long bytes = 64, long examples = 5) =>
        new("c1", fp ?? LayoutFingerprint.Of(Layout), dtype, length, bytes, examples);

    [Fact]
    public void AcceptsAGoodUpdate()
    {
        var v = new UpdateValidator(Layout, new UpdateLimits { MaxL2Norm = 10 });
        Assert.Null(v.CheckHeader(Header()));
        Assert.Null(v.Check(new ClientUpdate("c1", new float[12], 3)));
    }

    [Fact]
    public void HeaderRejectionsNameTheirReason()
    {
        var v = new UpdateValidator(Layout, new UpdateLimits { MaxPayloadBytes = 100, MaxExamples = 1000 });
        var other = LayoutFingerprint.Of(new UpdateLayout([("a.lora_a", [3, 2]), ("a.lora_b", [3, 2])]));
        Assert.Equal(UpdateRejection.LayoutMismatch, v.CheckHeader(Header(fp: other))!.Code);
        Assert.Equal(UpdateRejection.UnsupportedDType, v.CheckHeader(Header(dtype: "f16"))!.Code);
        Assert.Equal(UpdateRejection.LengthMismatch, v.CheckHeader(Header(length: 11))!.Code);
        Assert.Equal(UpdateRejection.TooLarge, v.CheckHeader(Header(bytes: 101))!.Code);
        Assert.Equal(UpdateRejection.BadExampleCount, v.CheckHeader(Header(examples: 0))!.Code);
        Assert.Equal(UpdateRejection.BadExampleCount, v.CheckHeader(Header(examples: 1001))!.Code);
    }

    [Fact]
    public void UpdateRejectionsNameTheirReason()
    {
        var v = new UpdateValidator(Layout, new UpdateLimits { MaxL2Norm = 1 });
        Assert.Equal(UpdateRejection.LengthMismatch, v.Check(new ClientUpdate("c1", new float[13], 3))!.Code);
        Assert.Equal(UpdateRejection.BadExampleCount, v.Check(new ClientUpdate("c1", new float[12], -1))!.Code);
        var nan = new float[12]; nan[7] = float.NaN;
        var r = v.Check(new ClientUpdate("c1", nan, 3))!;
        Assert.Equal(UpdateRejection.NonFinite, r.Code);
        Assert.Contains("a.lora_b", r.Reason);
        var inf = new float[12]; inf[0] = float.NegativeInfinity;
        Assert.Equal(UpdateRejection.NonFinite, v.Check(new ClientUpdate("c1", inf, 3))!.Code);
        var big = new float[12]; big[0] = 0.8f; big[1] = 0.7f;
        Assert.Equal(UpdateRejection.NormTooLarge, v.Check(new ClientUpdate("c1", big, 3))!.Code);
    }

    [Fact]
    public void FingerprintIsStableAndShapeSensitive()
    {
        Assert.Equal(LayoutFingerprint.Of(Layout), LayoutFingerprint.Of(new UpdateLayout([("a.lora_a", [2, 3]), ("a.lora_b", [3, 2])])));
        Assert.NotEqual(LayoutFingerprint.Of(Layout), LayoutFingerprint.Of(new UpdateLayout([("a.lora_b", [3, 2]), ("a.lora_a", [2, 3])])));
        Assert.Equal(32, LayoutFingerprint.Of(Layout).Length);
    }
}
