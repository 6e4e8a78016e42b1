using System.Text.Json;
using EdgeTune.Training.Plots;

namespace EdgeTune.Training.FineTuning;

/// <summary>Draws the training and validation loss of a metrics.jsonl file into a PNG.</summary>
public static class LossCurves
{
    public static void Save(string metricsPath, string pngPath)
    {
        var trainX = new List<double>(); var trainY = new List<double>();
        var evalX = new List<double>(); var evalY = new List<double>();
        foreach (string line in File.ReadLines(metricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            string? ev = root.TryGetProperty("event", out var e) ? e.GetString() : null;
            double step = root.TryGetProperty("step", out var s) ? s.GetDouble() : double.NaN;
            if (ev == "step" && root.TryGetProperty("loss", out var l) && l.ValueKind == JsonValueKind.Number) { trainX.Add(step); trainY.Add(l.GetDouble()); }
            if (root.TryGetProperty("eval_loss", out var v) && v.ValueKind == JsonValueKind.Number) { evalX.Add(step); evalY.Add(v.GetDouble()); }
        }
        var plot = new LinePlot { Title = "EdgeTune fine-tuning" };
        var panel = plot.AddPanel("Loss", "step", "cross-entropy (nats)");
        panel.Add("train", trainX, trainY);
        if (evalX.Count > 0) panel.Add("validation", evalX, evalY, markers: true);
        plot.SavePng(pngPath);
    }
}
