using System.Globalization;

namespace EdgeTune.Energy;

/// <summary><c>--min-battery 30</c>: while the battery drains, pause when its charge falls to the floor;
/// resume when it is back above floor + hysteresis (a resting battery's reading recovers a few percent,
/// which must not restart training), or as soon as the machine is on mains power and the battery no
/// longer discharges (unless <c>resumeOnAc</c> is false).</summary>
public sealed class BatteryFloorPolicy : IPowerPolicy
{
    private bool _paused;

    /// <param name="floorPercent">The floor, 0-100.</param>
    /// <param name="hysteresisPercent">Resume at floor + this (default 5).</param>
    /// <param name="pollInterval">Pause poll interval (default 30 s).</param>
    /// <param name="resumeOnAc">Resume when plugged in and not discharging, before the charge is back above the floor.</param>
    public BatteryFloorPolicy(double floorPercent, double hysteresisPercent = 5, TimeSpan? pollInterval = null, bool resumeOnAc = true)
    {
        if (!(floorPercent >= 0 && floorPercent <= 100)) throw new ArgumentOutOfRangeException(nameof(floorPercent), floorPercent, "battery floor must be a percentage in [0, 100]");
        if (!(hysteresisPercent >= 0 && hysteresisPercent <= 100)) throw new ArgumentOutOfRangeException(nameof(hysteresisPercent), hysteresisPercent, "hysteresis must be in [0, 100]");
        FloorPercent = floorPercent;
        HysteresisPercent = hysteresisPercent;
        PollInterval = pollInterval ?? TimeSpan.FromSeconds(30);
        ResumeOnAc = resumeOnAc;
    }

    public double FloorPercent { get; }

    public double HysteresisPercent { get; }

    public TimeSpan PollInterval { get; }

    public bool ResumeOnAc { get; }

    /// <summary>True while this policy holds training paused.</summary>
    public bool IsPaused => _paused;

    public string Name => string.Create(CultureInfo.InvariantCulture, $"min-battery {FloorPercent:0.#}%");

    public PolicyDecision Evaluate(PolicyContext context)
    {
        var s = context.State;
        if (s.BatteryPercent is not double pct) { _paused = false; return PolicyDecision.Go; }
        bool draining = s.BatteryStatus == BatteryStatus.Discharging || s.OnAc == false;
        double resumeAt = Math.Min(100, FloorPercent + HysteresisPercent);
        if (_paused)
        {
            if (pct >= resumeAt || (ResumeOnAc && !draining && s.OnAc == true)) _paused = false;
        }
        else if (draining && pct <= FloorPercent)
        {
            _paused = true;
        }
        return _paused
            ? new PolicyDecision.Pause(string.Create(CultureInfo.InvariantCulture,
                $"battery {pct:0.#}% <= floor {FloorPercent:0.#}%; resumes at {resumeAt:0.#}%{(ResumeOnAc ? " or on mains power" : "")}"), PollInterval)
            : PolicyDecision.Go;
    }
}
