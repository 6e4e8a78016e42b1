namespace EdgeTune.Energy;

/// <summary>Whether a meter can be read, and if not, why and how to fix it.</summary>
/// <param name="IsAvailable">True when readings can be taken.</param>
/// <param name="Reason">Why it cannot be read (null when available).</param>
/// <param name="Fix">What the user can do about it (null when nothing or not needed).</param>
public sealed record MeterAvailability(bool IsAvailable, string? Reason = null, string? Fix = null)
{
    public static MeterAvailability Available { get; } = new(true);

    public static MeterAvailability Unavailable(string reason, string? fix = null) => new(false, reason, fix);

    /// <summary>The advice for RAPL counters that recent kernels (since 5.10, CVE-2020-8694 "Platypus")
    /// make readable by root only.</summary>
    public const string RaplPermissionFix =
        "recent Linux kernels make the RAPL counters readable by root only (CVE-2020-8694). " +
        "Either run once per boot: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj ; " +
        "or make it permanent with a udev rule, e.g. /etc/udev/rules.d/99-edgetune-rapl.rules containing: " +
        "SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chmod o+r /sys%p/energy_uj\" " +
        "(then: sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=powercap). " +
        "Note that this lets any local user read energy counters, which leak a little about what other processes compute.";

    public override string ToString() =>
        IsAvailable ? "available" : Fix is null ? $"unavailable: {Reason}" : $"unavailable: {Reason} (fix: {Fix})";
}
