using System.Diagnostics;
using EdgeTune.Diagnostics;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Tests.Models;
using EdgeTune.Training;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace EdgeTune.Tests.Diagnostics;

/// <summary>The OpenTelemetry SDK picks the library's instruments and spans up by name with the "EdgeTune.*" wildcard, on the
/// shared meters a trainer and a generator use by default.</summary>
[Collection(nameof(TelemetryCollection))]
public sealed class OpenTelemetryExportTests
{
    [Fact]
    public void TheSdkExportsTrainingAndGenerationUnderTheWildcard()
    {
        var metrics = new List<Metric>();
        var spans = new List<Activity>();
        using var meterProvider = Sdk.CreateMeterProviderBuilder().AddMeter("EdgeTune.*").AddInMemoryExporter(metrics).Build();
        using var tracerProvider = Sdk.CreateTracerProviderBuilder().AddSource("EdgeTune.*").AddInMemoryExporter(spans).Build();

        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 5, std: 0.1f, trainable: true);
        var data = Enumerable.Range(0, 200).Select(i => i * 7 % 53).ToArray();
        var options = new TrainingOptions { Steps = 2, MicroBatch = 1, SeqLen = 8, GradAccumulation = 1, LearningRate = 1e-3 };
        TrainingResult result;
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), new TokenStreamBatchSource(data), options))
            result = trainer.Run();
        var generated = new TokenGenerator(model).Generate([1, 2], 3, new EdgeTune.Generation.Sampler(SamplingOptions.Greedy)).ToList();
        Assert.Equal(3, generated.Count);
        Assert.True(meterProvider.ForceFlush());
        Assert.True(tracerProvider.ForceFlush());

        var byName = metrics.GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.Last()); // cumulative: the last export has it all
        var tokens = byName[TrainingTelemetry.TokensName];
        Assert.Equal((TrainingTelemetry.MeterName, "{token}", MetricType.LongSum), (tokens.MeterName, tokens.Unit, tokens.MetricType));
        Assert.Equal(2 * options.TokensPerStep, Points(tokens).Sum(p => p.GetSumLong()));
        var loss = byName[TrainingTelemetry.LossName];
        Assert.Equal(MetricType.DoubleGauge, loss.MetricType);
        Assert.Equal(result.Losses[^1], Assert.Single(Points(loss)).GetGaugeLastValueDouble());
        var duration = byName[TrainingTelemetry.StepDurationName];
        Assert.Equal(("s", MetricType.Histogram), (duration.Unit, duration.MetricType));
        Assert.Equal(2, Points(duration).Sum(p => p.GetHistogramCount()));
        var output = Points(byName[GenerationTelemetry.TokensName]).Single(p => Tag(p, GenerationTelemetry.TokenTypeTag) is GenerationTelemetry.Output);
        Assert.Equal(3, output.GetSumLong());
        Assert.Equal(1, Points(byName[GenerationTelemetry.TimeToFirstTokenName]).Sum(p => p.GetHistogramCount()));

        var run = Assert.Single(spans, s => s.OperationName == TrainingTelemetry.RunSpanName);
        Assert.Equal(2, spans.Count(s => s.OperationName == TrainingTelemetry.StepSpanName && s.ParentSpanId == run.SpanId));
        var gen = Assert.Single(spans, s => s.OperationName == GenerationTelemetry.GenerateSpanName);
        Assert.Equal(2, spans.Count(s => s.ParentSpanId == gen.SpanId));
    }

    private static List<MetricPoint> Points(Metric metric)
    {
        var points = new List<MetricPoint>();
        foreach (ref readonly var p in metric.GetMetricPoints()) points.Add(p);
        return points;
    }

    private static object? Tag(MetricPoint point, string key)
    {
        foreach (var t in point.Tags)
            if (t.Key == key) return t.Value;
        return null;
    }
}
