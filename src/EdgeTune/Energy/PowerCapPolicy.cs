using System.Globalization;

namespace EdgeTune.Energy;

/// <summary><c>--power-cap 10W</c>: hold the average power under a cap with fewer threads and duty cycling
/// (a sleep after each step). It keeps a working fraction f of full speed (threads × duty ≈ f × max
/// threads) and corrects it from the power measured over the last interval, sleep included:
/// f ← f × (cap × margin / measured), limited to halving or doubling per step. Threads are
/// ceil(f × max); the duty cycle d = f × max / threads ≤ 1 gives a sleep of step time × (1/d − 1).
/// Idle power (which no throttling removes) is part of what is measured, so a cap below it ends at one
/// thread with the longest sleep allowed.</summary>
public sealed class PowerCapPolicy : IPowerPolicy
{
    private double _fraction = 1;

    /// <param name="capWatts">The cap on the average power (see <see cref="EnergyUnits.ParsePower"/>).</param>
    /// <param name="margin">Aim at cap × margin to stay under the cap despite noise (default 0.95).</param>
    /// <param name="minFraction">Lowest working fraction (default 0.02).</param>
    /// <param name="maxSleepFactor">Longest sleep as a multiple of the step time (default 20).</param>
    public PowerCapPolicy(double capWatts, double margin = 0.95, double minFraction = 0.02, double maxSleepFactor = 20)
    {
        if (!(capWatts > 0) || double.IsInfinity(capWatts)) throw new ArgumentOutOfRangeException(nameof(capWatts), capWatts, "power cap must be a finite number of watts > 0");
        if (!(margin > 0 && margin <= 1)) throw new ArgumentOutOfRangeException(nameof(margin), margin, "margin must be in (0, 1]");
        if (!(minFraction > 0 && minFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(minFraction), minFraction, "minimum fraction must be in (0, 1]");
        if (!(maxSleepFactor >= 0)) throw new ArgumentOutOfRangeException(nameof(maxSleepFactor), maxSleepFactor, "maximum sleep factor must be >= 0");
        CapWatts = capWatts;
        Margin = margin;
        MinFraction = minFraction;
        MaxSleepFactor = maxSleepFactor;
    }

    public double CapWatts { get; }

    public double Margin { get; }

    public double MinFraction { get; }

    public double MaxSleepFactor { get; }

    /// <summary>The current working fraction of full speed (1 = unthrottled).</summary>
    public double Fraction => _fraction;

    public string Name => string.Create(CultureInfo.InvariantCulture, $"power-cap {CapWatts:0.##} W");

    public PolicyDecision Evaluate(PolicyContext context)
    {
        int max = Math.Max(1, context.MaxThreads);
        if (context.AverageWatts is double measured && measured > 0)
        {
            double ratio = Math.Clamp(CapWatts * Margin / measured, 0.5, 2.0);
            _fraction = Math.Clamp(_fraction * ratio, MinFraction, 1.0);
        }
        if (_fraction >= 1.0) return PolicyDecision.Go;

        int threads = Math.Clamp((int)Math.Ceiling(_fraction * max - 1e-9), 1, max);
        double duty = Math.Min(1.0, _fraction * max / threads);
        double step = context.LastStepSeconds ?? 0;
        double sleep = duty >= 1 ? 0 : Math.Min(step * (1 / duty - 1), step * MaxSleepFactor);
        string measuredText = context.AverageWatts is double w
            ? string.Create(CultureInfo.InvariantCulture, $"measured {w:0.##} W{(context.EnergyIsEstimate ? " (estimated)" : "")}")
            : "no measurement yet";
        return new PolicyDecision.Throttle(threads, TimeSpan.FromSeconds(sleep), string.Create(CultureInfo.InvariantCulture,
            $"power cap {CapWatts:0.##} W: {measuredText}; {threads}/{max} threads, duty {duty:P0}"));
    }
}
