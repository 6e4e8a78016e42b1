using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeTune.Energy;

/// <summary>The power state on macOS from <c>pmset -g batt</c> (no administrator rights): the power source
/// ("AC Power" / "Battery Power"), battery percent and charging state.</summary>
public sealed partial class MacPowerStateSource : IPowerStateSource
{
    private readonly Func<string> _pmset;

    /// <param name="pmset">Returns the output of <c>pmset -g batt</c>; tests pass canned text.</param>
    public MacPowerStateSource(Func<string>? pmset = null) => _pmset = pmset ?? RunPmset;

    public PowerState Read()
    {
        try { return Parse(_pmset()); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
        {
            return PowerState.Unknown with { Source = $"pmset -g batt failed: {e.Message}" };
        }
    }

    /// <summary>Parses e.g.
    /// <code>Now drawing from 'Battery Power'
    ///  -InternalBattery-0 (id=1234)	85%; discharging; 4:15 remaining present: true</code></summary>
    public static PowerState Parse(string output)
    {
        bool? onAc = null;
        var from = DrawingFrom().Match(output);
        if (from.Success)
        {
            var src = from.Groups[1].Value;
            onAc = src.Contains("AC", StringComparison.OrdinalIgnoreCase) ? true
                : src.Contains("Battery", StringComparison.OrdinalIgnoreCase) ? false : null;
        }
        var bat = BatteryLine().Match(output);
        if (!bat.Success)
            return new PowerState(onAc, null, BatteryStatus.NoBattery, null, null, "pmset -g batt");
        double percent = double.Parse(bat.Groups[1].Value, CultureInfo.InvariantCulture);
        var rest = bat.Groups[2].Value.ToLowerInvariant();
        var status = rest.Contains("discharging", StringComparison.Ordinal) ? BatteryStatus.Discharging
            : rest.Contains("not charging", StringComparison.Ordinal) ? BatteryStatus.NotCharging
            : rest.Contains("charging", StringComparison.Ordinal) || rest.Contains("finishing charge", StringComparison.Ordinal) ? BatteryStatus.Charging
            : rest.Contains("charged", StringComparison.Ordinal) ? BatteryStatus.Full
            : BatteryStatus.Unknown;
        if (onAc is null && status == BatteryStatus.Discharging) onAc = false;
        return new PowerState(onAc, percent, status, null, null, "pmset -g batt");
    }

    [GeneratedRegex(@"drawing from '([^']*)'", RegexOptions.IgnoreCase)]
    private static partial Regex DrawingFrom();

    [GeneratedRegex(@"(\d{1,3})%;([^\n]*)")]
    private static partial Regex BatteryLine();

    private static string RunPmset()
    {
        var psi = new ProcessStartInfo("pmset", "-g batt")
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("pmset could not be started");
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit(5000);
        return text;
    }
}
