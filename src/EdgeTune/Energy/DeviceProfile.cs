namespace EdgeTune.Energy;

/// <summary>A rough power model of a CPU for the estimator: thermal design power (TDP) shared by its cores.
/// This is a ceiling-ish figure (a fully loaded core at sustained clocks), not a measurement.</summary>
/// <param name="Name">What it describes, e.g. "laptop U-series (15 W)".</param>
/// <param name="TdpWatts">Package TDP in watts.</param>
/// <param name="Cores">Number of logical processors the TDP is shared by.</param>
public sealed record DeviceProfile(string Name, double TdpWatts, int Cores)
{
    /// <summary>Watts attributed to one fully busy logical processor: TDP / cores.</summary>
    public double WattsPerCore => TdpWatts / Math.Max(1, Cores);

    /// <summary>Built-in profiles; pick one with <see cref="Find"/> or make your own record.</summary>
    public static IReadOnlyList<DeviceProfile> BuiltIn { get; } =
    [
        new("raspberry-pi-4", 6.4, 4),
        new("raspberry-pi-5", 12, 4),
        new("phone-soc", 8, 8),
        new("apple-m1", 20, 8),
        new("apple-m2", 22, 8),
        new("apple-m3-pro", 30, 12),
        new("laptop-u-15w", 15, 8),
        new("laptop-p-28w", 28, 12),
        new("laptop-h-45w", 45, 16),
        new("desktop-65w", 65, 16),
        new("desktop-125w", 125, 24),
        new("server-250w", 250, 64),
    ];

    /// <summary>The profile used when nothing better is known: 10 W per logical processor (a modern
    /// desktop/laptop core under full load), for this machine's processor count.</summary>
    public static DeviceProfile Default { get; } = new("default",
        10.0 * Environment.ProcessorCount, Environment.ProcessorCount);

    /// <summary>A built-in profile by name (case-insensitive), or null.</summary>
    public static DeviceProfile? Find(string name) =>
        BuiltIn.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Parses "NAME" (a built-in) or "TDP:CORES" such as "28:12" (custom), for options and flags.</summary>
    /// <exception cref="FormatException">Neither form.</exception>
    public static DeviceProfile Parse(string text)
    {
        if (Find(text) is { } p) return p;
        var parts = text.Split(':');
        if (parts.Length == 2
            && double.TryParse(parts[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var tdp) && tdp > 0
            && int.TryParse(parts[1], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var cores) && cores > 0)
            return new DeviceProfile($"custom ({tdp} W / {cores} cores)", tdp, cores);
        throw new FormatException(
            $"device profile '{text}': expected one of {string.Join(", ", BuiltIn.Select(b => b.Name))} or TDP:CORES such as 28:12");
    }
}
