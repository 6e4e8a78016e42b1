using System.Security.Cryptography;
using System.Text;
using EdgeTune.Federated.Aggregation;

namespace EdgeTune.Federated.Validation;

/// <summary>A stable text fingerprint of an <see cref="UpdateLayout"/> (SHA-256 of its names and shapes,
/// hex, first 16 bytes), equal on every machine and process, to compare layouts over the network.</summary>
public static class LayoutFingerprint
{
    public static string Of(UpdateLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var sb = new StringBuilder();
        foreach (var s in layout.Slots) sb.Append(s.Name).Append('[').Append(string.Join(',', s.Shape)).Append("];");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())).AsSpan(0, 16));
    }
}
