namespace EdgeTune.Federated.Validation;

/// <summary>What a client declares about an update before its payload is decoded.</summary>
/// <param name="ClientId">Sender.</param>
/// <param name="LayoutFingerprint">The sender's <see cref="Validation.LayoutFingerprint.Of"/> of its layout.</param>
/// <param name="DType">Payload encoding (an <see cref="UpdateCompression.UpdateCodec"/> name).</param>
/// <param name="Length">Number of floats the payload decodes to.</param>
/// <param name="PayloadBytes">Size of the payload in bytes.</param>
/// <param name="NumExamples">Training examples behind the update.</param>
public sealed record UpdateHeader(string ClientId, string LayoutFingerprint, string DType, long Length, long PayloadBytes, long NumExamples);
