using System.Globalization;

namespace EdgeTune.Training.Plots.Internal;

/// <summary>Round-number axis ticks (steps of 1, 2 or 5 × 10^k) and their labels.</summary>
internal static class AxisTicks
{
    /// <summary>The data range widened to a usable one: a single value or an empty range gets some width.</summary>
    public static (double Min, double Max) Usable(double min, double max)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max)) return (0, 1);
        if (max < min) (min, max) = (max, min);
        if (max - min <= Math.Max(Math.Abs(max), Math.Abs(min)) * 1e-12)
        {
            double w = min == 0 ? 1 : Math.Abs(min) * 0.1;
            return (min - w, max + w);
        }
        return (min, max);
    }

    /// <summary>A step near (max − min) / <paramref name="target"/> of the form 1, 2 or 5 × 10^k.</summary>
    public static double Step(double min, double max, int target = 5)
    {
        double raw = (max - min) / Math.Max(1, target);
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double f = raw / mag;
        return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    }

    /// <summary>The multiples of <paramref name="step"/> inside [min, max].</summary>
    public static List<double> Ticks(double min, double max, double step)
    {
        var ticks = new List<double>();
        double first = Math.Ceiling(min / step - 1e-9) * step;
        for (int i = 0; i < 100; i++)
        {
            double t = first + i * step;
            if (t > max + step * 1e-9) break;
            ticks.Add(Math.Abs(t) < step * 1e-9 ? 0 : t);
        }
        return ticks;
    }

    /// <summary>A label with just enough decimals for <paramref name="step"/>; exponent form for very large or
    /// very small magnitudes.</summary>
    public static string Label(double value, double step)
    {
        var ci = CultureInfo.InvariantCulture;
        double mag = Math.Max(Math.Abs(value), step);
        if (mag >= 1e6 || step < 1e-4) return value == 0 ? "0" : value.ToString("0.##e+0", ci);
        int decimals = Math.Clamp(-(int)Math.Floor(Math.Log10(step) + 1e-9), 0, 6);
        return value.ToString("F" + decimals.ToString(ci), ci);
    }
}
