namespace EdgeTune.Energy;

/// <summary>What part of the machine a meter covers.</summary>
public enum MeasureKind
{
    /// <summary>A whole CPU package (socket): cores, caches, uncore; RAPL "package-N".</summary>
    Package,
    /// <summary>The CPU cores only (RAPL "core", power plane 0).</summary>
    Core,
    /// <summary>The uncore / integrated GPU (RAPL "uncore", power plane 1).</summary>
    Uncore,
    /// <summary>Memory (RAPL "dram").</summary>
    Dram,
    /// <summary>A discrete GPU board.</summary>
    Gpu,
    /// <summary>The whole platform (RAPL "psys" or a wall meter).</summary>
    WholeSystem,
    /// <summary>Energy drawn from a battery while discharging (the whole laptop, off mains).</summary>
    Battery,
    /// <summary>Not a sensor: a model of power (e.g. CPU time × per-core watts).</summary>
    Estimate,
    /// <summary>Several meters added together.</summary>
    Sum,
}

/// <summary>What a meter measures: its kind, a human label, and where the numbers come from
/// (a sysfs path, a library, a command).</summary>
/// <param name="Kind">The part of the machine covered.</param>
/// <param name="Label">A human label, e.g. "CPU package 0 (package-0)".</param>
/// <param name="Source">Where the numbers are read, e.g. "/sys/class/powercap/intel-rapl:0/energy_uj".</param>
public sealed record EnergyScope(MeasureKind Kind, string Label, string Source)
{
    /// <summary>A one-line description for listings: "Label [Kind] from Source".</summary>
    public string Describe() => $"{Label} [{Kind}] from {Source}";

    public override string ToString() => Describe();
}
