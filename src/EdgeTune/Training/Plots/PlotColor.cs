namespace EdgeTune.Training.Plots;

/// <summary>An opaque 8-bit RGB colour.</summary>
public readonly record struct PlotColor(byte R, byte G, byte B)
{
    public static PlotColor White { get; } = new(255, 255, 255);
    public static PlotColor Black { get; } = new(0, 0, 0);

    /// <summary>Series colours in the order they are handed out: well separated hues that stay apart for
    /// the common colour-vision deficiencies in the first few entries.</summary>
    public static IReadOnlyList<PlotColor> Palette { get; } =
    [
        new(31, 119, 180),  // blue
        new(255, 127, 14),  // orange
        new(44, 160, 44),   // green
        new(214, 39, 40),   // red
        new(148, 103, 189), // purple
        new(140, 86, 75),   // brown
        new(227, 119, 194), // pink
        new(23, 190, 207),  // cyan
        new(188, 189, 34),  // olive
        new(127, 127, 127), // grey
    ];

    /// <summary>Parses <c>#rrggbb</c> or <c>rrggbb</c>.</summary>
    /// <exception cref="FormatException">Not six hexadecimal digits.</exception>
    public static PlotColor FromHex(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        var s = hex.AsSpan().TrimStart('#');
        if (s.Length != 6 || !uint.TryParse(s, System.Globalization.NumberStyles.HexNumber, null, out uint v))
            throw new FormatException($"PlotColor: '{hex}' is not a colour of the form #rrggbb");
        return new((byte)(v >> 16), (byte)(v >> 8), (byte)v);
    }

    public override string ToString() => $"#{R:x2}{G:x2}{B:x2}";
}
