using EdgeTune.Federated.Aggregation;

namespace EdgeTune.Federated.Validation;

/// <summary>
/// Checks client updates against the round's layout and the server's limits. Returns an
/// <see cref="UpdateRejection"/> (or null when accepted) rather than throwing, so the server can record
/// why an update was refused and go on with the round. Two steps: <see cref="CheckHeader"/> on what the
/// client declares (before reading a payload) and <see cref="Check"/> on the decoded update.
/// </summary>
public sealed class UpdateValidator
{
    public UpdateValidator(UpdateLayout layout, UpdateLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        Limits = limits ?? new UpdateLimits();
        Fingerprint = LayoutFingerprint.Of(layout);
    }

    public UpdateLayout Layout { get; }
    public UpdateLimits Limits { get; }

    /// <summary>The fingerprint clients must declare.</summary>
    public string Fingerprint { get; }

    /// <summary>Checks layout, dtype, length, declared size and example count; null when acceptable.</summary>
    public UpdateRejection? CheckHeader(UpdateHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (header.LayoutFingerprint != Fingerprint)
            return new(UpdateRejection.LayoutMismatch, $"client '{header.ClientId}' trained layout {header.LayoutFingerprint}; the round's layout is {Fingerprint}");
        if (header.DType is null || !Limits.AllowedDTypes.Contains(header.DType))
            return new(UpdateRejection.UnsupportedDType, $"client '{header.ClientId}' sent dtype '{header.DType}'; accepted: {string.Join(", ", Limits.AllowedDTypes.Order(StringComparer.Ordinal))}");
        if (header.Length != Layout.TotalLength)
            return new(UpdateRejection.LengthMismatch, $"client '{header.ClientId}' declared {header.Length} values; the layout has {Layout.TotalLength}");
        if (header.PayloadBytes < 0 || header.PayloadBytes > Limits.MaxPayloadBytes)
            return new(UpdateRejection.TooLarge, $"client '{header.ClientId}' declared a {header.PayloadBytes}-byte payload; the limit is {Limits.MaxPayloadBytes}");
        return CheckExamples(header.ClientId, header.NumExamples);
    }

    /// <summary>Checks a decoded update: length, example count, finiteness and the L2 bound; null when acceptable.</summary>
    public UpdateRejection? Check(ClientUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.Delta is null || update.Delta.LongLength != Layout.TotalLength)
            return new(UpdateRejection.LengthMismatch, $"client '{update.ClientId}' delta has {update.Delta?.LongLength ?? 0} values; the layout has {Layout.TotalLength}");
        var examples = CheckExamples(update.ClientId, update.NumExamples);
        if (examples is not null) return examples;
        double sq = 0;
        var d = update.Delta;
        for (int i = 0; i < d.Length; i++)
        {
            float x = d[i];
            if (!float.IsFinite(x))
                return new(UpdateRejection.NonFinite, $"client '{update.ClientId}' delta value {i} ({SlotOf(i)}) is {x}");
            sq += (double)x * x;
        }
        double norm = Math.Sqrt(sq);
        if (norm > Limits.MaxL2Norm)
            return new(UpdateRejection.NormTooLarge, $"client '{update.ClientId}' delta has L2 norm {norm:G6}; the bound is {Limits.MaxL2Norm:G6}");
        return null;
    }

    private UpdateRejection? CheckExamples(string clientId, long n)
    {
        if (n <= 0) return new(UpdateRejection.BadExampleCount, $"client '{clientId}' reports {n} examples; a positive count is expected");
        if (n > Limits.MaxExamples) return new(UpdateRejection.BadExampleCount, $"client '{clientId}' reports {n} examples; at most {Limits.MaxExamples} are accepted");
        return null;
    }

    private string SlotOf(long index)
    {
        foreach (var s in Layout.Slots)
            if (index >= s.Offset && index < s.Offset + s.Count) return $"tensor '{s.Name}' element {index - s.Offset}";
        return "outside the layout";
    }
}
