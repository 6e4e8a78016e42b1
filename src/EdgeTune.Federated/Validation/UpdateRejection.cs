namespace EdgeTune.Federated.Validation;

/// <summary>Why an update was refused: a stable machine-readable <see cref="Code"/> and a sentence for
/// people (stored by the server with the update's record).</summary>
public sealed record UpdateRejection(string Code, string Reason)
{
    public const string LayoutMismatch = "layout";
    public const string LengthMismatch = "length";
    public const string UnsupportedDType = "dtype";
    public const string TooLarge = "size";
    public const string NonFinite = "non-finite";
    public const string NormTooLarge = "norm";
    public const string BadExampleCount = "examples";

    public override string ToString() => $"{Code}: {Reason}";
}
