using System.Text.Json;
using EdgeTune.Training.Plots;

namespace EdgeTune.Training.FineTuning;

/// <summary>Draws the power and the cumulative energy of a training run from the energy fields of a
/// metrics.jsonl file (<see cref="JsonlMetricsSink"/>) into a PNG: average watts per step and cumulative
/// joules, over steps. Every title says "(estimate)" when any figure was estimated rather than measured.</summary>
public static class EnergyCurves
{
    /// <summary>Writes the PNG; returns false (writing nothing) when the file has no step with energy fields.</summary>
    public static bool Save(string metricsPath, string pngPath)
    {
        var steps = new List<double>();
        var watts = new List<double>();
        var joules = new List<double>();
        bool estimated = false;
        foreach (string line in File.ReadLines(metricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (!root.TryGetProperty("event", out var e) || e.GetString() is not ("step" or "skipped")) continue;
            if (!root.TryGetProperty("avg_w", out var w) || w.ValueKind != JsonValueKind.Number) continue;
            if (!root.TryGetProperty("cum_joules", out var j) || j.ValueKind != JsonValueKind.Number) continue;
            double step = root.TryGetProperty("step", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetDouble() : steps.Count + 1;
            steps.Add(step);
            watts.Add(w.GetDouble());
            joules.Add(j.GetDouble());
            if (root.TryGetProperty("estimated", out var est) && est.ValueKind == JsonValueKind.True) estimated = true;
        }
        if (steps.Count == 0) return false;
        MakeCumulativeAcrossResumes(joules);

        string tag = estimated ? " (estimate)" : "";
        var plot = new LinePlot { Title = "EdgeTune energy" + tag };
        plot.AddPanel("Power" + tag, "step", "average W per step").Add("power", steps, watts);
        plot.AddPanel("Cumulative energy" + tag, "step", "J").Add("energy", steps, joules);
        plot.SavePng(pngPath);
        return true;
    }

    /// <summary>A resumed run's accountant starts again from 0; add the earlier runs' totals so the curve keeps rising.</summary>
    private static void MakeCumulativeAcrossResumes(List<double> joules)
    {
        double offset = 0;
        double previousRaw = double.NegativeInfinity;
        for (int i = 0; i < joules.Count; i++)
        {
            double raw = joules[i];
            if (raw < previousRaw) offset += previousRaw;
            previousRaw = raw;
            joules[i] = raw + offset;
        }
    }
}
