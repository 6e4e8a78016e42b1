namespace EdgeTune.Compression.Quantization.Calibration;

public static partial class WeightedQuantizer
{
    // NF4: written against the NF4 layout once it lands (qkernels); until then the plain reference.
    private static void Nf4Row(ReadOnlySpan<float> row, float[] importance, Span<byte> dst) =>
        QuantReference.QuantizeRow(QuantFormat.NF4, row, dst);
}
