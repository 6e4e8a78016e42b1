using System.Diagnostics;
using EdgeTune.Diagnostics;
using EdgeTune.Energy;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Diagnostics;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.UpdateCompression;
using EdgeTune.Federated.Validation;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Energy;
using EdgeTune.Tests.Federated;
using EdgeTune.Tests.Models;
using EdgeTune.Training;
using EdgeTune.Tests.Training;

namespace EdgeTune.Tests.Diagnostics;

[Collection(nameof(TelemetryCollection))]
public sealed class TelemetryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-telemetry-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void TrainingRecordsTheRunsTokensLossesEnergyAndSpans()
    {
        using var factory = new TestMeterFactory();
        using var metrics = new MetricRecorder(factory);
        using var spans = new SpanRecorder();
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var data = TrainingTestData.TokenStream(400, 53);
        var options = new TrainingOptions
        {
            Steps = 4, MicroBatch = 2, SeqLen = 8, GradAccumulation = 2, LearningRate = 3e-3, WarmupSteps = 1,
            EvalEvery = 2, EvalBatches = 1, CheckpointEvery = 2, KeepCheckpoints = 1, OutputDir = _dir,
        };
        var meter = new FakeEnergyMeter { Joules = 100 };
        var telemetry = new TrainingTelemetry(factory);
        TrainingResult result;
        ActivityTraceId trace;
        using (var test = SpanRecorder.TestSource.StartActivity("training test"))
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), new TokenStreamBatchSource(data[..300], shuffle: true, seed: 5), options,
            new TokenStreamBatchSource(data[300..]))
        {
            Telemetry = telemetry,
            Energy = new EnergyAccountant(meter),
            BeforeStep = step => meter.Joules += 1.5 * step, // step n uses 1.5·n J
        })
        {
            Assert.NotNull(test);
            trace = test.TraceId;
            result = trainer.Run();
            Assert.Same(test, Activity.Current); // the run's spans are closed and the caller's is current again
        }
        Assert.Equal(TrainingStopReason.Completed, result.Reason);

        var tokens = metrics.Of(TrainingTelemetry.TokensName);
        Assert.Equal(4, tokens.Count);
        Assert.Equal(4 * options.TokensPerStep, tokens.Sum(m => m.Value));
        Assert.Equal("{token}", tokens[0].Unit);

        var steps = metrics.Of(TrainingTelemetry.StepsName);
        Assert.Equal(4, steps.Sum(m => m.Value));
        Assert.All(steps, m => Assert.Equal(TrainingTelemetry.Completed, m.Tag(TrainingTelemetry.StepOutcomeTag)));

        var losses = metrics.Of(TrainingTelemetry.LossName);
        Assert.Equal(result.Losses, losses.Where(m => (string?)m.Tag(TrainingTelemetry.SplitTag) == TrainingTelemetry.Train).Select(m => m.Value));
        Assert.Equal(result.Evals.Select(e => e.Loss), losses.Where(m => (string?)m.Tag(TrainingTelemetry.SplitTag) == TrainingTelemetry.Validation).Select(m => m.Value));
        Assert.Equal(2, result.Evals.Count);

        var durations = metrics.Of(TrainingTelemetry.StepDurationName);
        Assert.Equal(4, durations.Count);
        Assert.All(durations, m => { Assert.True(m.Value > 0); Assert.Equal("s", m.Unit); });

        var energy = metrics.Of(TrainingTelemetry.EnergyName);
        Assert.Equal([1.5, 3.0, 4.5, 6.0], energy.Select(m => m.Value));
        Assert.Equal(result.Energy!.Joules, energy.Sum(m => m.Value), 9);
        Assert.All(energy, m => { Assert.Equal("fake", m.Tag(TrainingTelemetry.EnergyMeterTag)); Assert.Equal(false, m.Tag(TrainingTelemetry.EnergyEstimatedTag)); });

        var lrs = metrics.Of(TrainingTelemetry.LearningRateName);
        Assert.Equal(4, lrs.Count);
        Assert.Equal(3e-3, lrs[1].Value, 12); // one warmup step, then the full rate

        var peaks = metrics.Of(TrainingTelemetry.MemoryPeakName);
        Assert.Equal(result.PeakRssBytes, peaks.Last(m => (string?)m.Tag(TrainingTelemetry.MemoryTypeTag) == "rss").Value);
        Assert.Equal(result.PeakTensorBytes, peaks.Last(m => (string?)m.Tag(TrainingTelemetry.MemoryTypeTag) == "tensor").Value);
        Assert.All(peaks, m => Assert.Equal("By", m.Unit));

        var run = Assert.Single(spans.Named(TrainingTelemetry.RunSpanName, trace));
        Assert.Equal("Completed", run.GetTagItem(TrainingTelemetry.StopReasonTag));
        var stepSpans = spans.Named(TrainingTelemetry.StepSpanName, trace);
        Assert.Equal([1L, 2L, 3L, 4L], stepSpans.Select(s => (long)s.GetTagItem(TrainingTelemetry.StepTag)!));
        Assert.Equal(result.Losses, stepSpans.Select(s => (double)s.GetTagItem(TrainingTelemetry.LossTag)!));
        var evals = spans.Named(TrainingTelemetry.EvalSpanName, trace);
        var checkpoints = spans.Named(TrainingTelemetry.CheckpointSpanName, trace);
        Assert.Equal(2, evals.Count);
        Assert.Equal(2, checkpoints.Count); // steps 2 and 4
        Assert.All(stepSpans.Concat(evals).Concat(checkpoints), s => Assert.Equal(run.SpanId, s.ParentSpanId));
        Assert.All(stepSpans, s => Assert.True(s.StartTimeUtc >= run.StartTimeUtc && s.StartTimeUtc + s.Duration <= run.StartTimeUtc + run.Duration));
    }

    [Fact]
    public void GenerationRecordsPromptAndOutputTokensTimesAndSpans()
    {
        using var factory = new TestMeterFactory();
        using var metrics = new MetricRecorder(factory);
        using var spans = new SpanRecorder();
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 3, std: 0.2f);
        var generator = new TokenGenerator(model) { Telemetry = new GenerationTelemetry(factory) };
        using var test = SpanRecorder.TestSource.StartActivity("generation test");
        Assert.NotNull(test);

        var ids = new List<int>();
        foreach (int id in generator.Generate([1, 2, 3], 5, new Sampler(SamplingOptions.Greedy)))
        {
            Assert.Same(test, Activity.Current); // the generation's spans never become the consumer's current activity
            ids.Add(id);
        }
        Assert.Equal(5, ids.Count);
        Assert.Same(test, Activity.Current);

        var tokens = metrics.Of(GenerationTelemetry.TokensName);
        Assert.Equal(3, tokens.Where(m => (string?)m.Tag(GenerationTelemetry.TokenTypeTag) == GenerationTelemetry.Input).Sum(m => m.Value));
        Assert.Equal(5, tokens.Where(m => (string?)m.Tag(GenerationTelemetry.TokenTypeTag) == GenerationTelemetry.Output).Sum(m => m.Value));
        var duration = Assert.Single(metrics.Of(GenerationTelemetry.DurationName));
        Assert.Equal("MaxTokens", duration.Tag(GenerationTelemetry.StopReasonTag));
        var ttft = Assert.Single(metrics.Of(GenerationTelemetry.TimeToFirstTokenName));
        Assert.InRange(ttft.Value, double.Epsilon, duration.Value);
        var rate = Assert.Single(metrics.Of(GenerationTelemetry.ThroughputName));
        Assert.Equal(5 / duration.Value, rate.Value, 9);

        var gen = Assert.Single(spans.Named(GenerationTelemetry.GenerateSpanName, test.TraceId));
        Assert.Equal(test.SpanId, gen.ParentSpanId);
        Assert.Equal(5, gen.GetTagItem(GenerationTelemetry.OutputTokensTag));
        Assert.Equal(3, gen.GetTagItem(GenerationTelemetry.InputTokensTag));
        var prefill = Assert.Single(spans.Named(GenerationTelemetry.PrefillSpanName, test.TraceId));
        var decode = Assert.Single(spans.Named(GenerationTelemetry.DecodeSpanName, test.TraceId));
        Assert.Equal(gen.SpanId, prefill.ParentSpanId);
        Assert.Equal(gen.SpanId, decode.ParentSpanId);
        Assert.True(prefill.StartTimeUtc + prefill.Duration <= decode.StartTimeUtc);

        // a consumer that stops reading early (as at a stop string): the tokens it took, and why it ended
        int taken = 0;
        foreach (int id in generator.Generate([1, 2, 3], 5, new Sampler(SamplingOptions.Greedy)))
            if (++taken == 2) break;
        Assert.Equal(5 + 2, metrics.Of(GenerationTelemetry.TokensName)
            .Where(m => (string?)m.Tag(GenerationTelemetry.TokenTypeTag) == GenerationTelemetry.Output).Sum(m => m.Value));
        Assert.Equal(GenerationTelemetry.ConsumerStopped, metrics.Of(GenerationTelemetry.DurationName)[1].Tag(GenerationTelemetry.StopReasonTag));
        Assert.Equal(2, spans.Named(GenerationTelemetry.GenerateSpanName, test.TraceId).Count);
        Assert.Same(test, Activity.Current);
    }

    [Fact]
    public async Task FederatedServerCountsEnrolmentsAcceptedAndRejectedUpdatesAndRounds()
    {
        using var factory = new TestMeterFactory();
        using var metrics = new MetricRecorder(factory);
        using var spans = new SpanRecorder();
        var layout = FlTestServer.Layout(4, 5);
        int n = (int)layout.TotalLength;
        using var server = new FlServer(FlTestServer.Options(Path.Combine(_dir, "state"), minClients: 2) with { MaxUpdateNorm = 100 },
            layout, new float[n], evaluate: g => new Dictionary<string, double> { ["mean"] = g.Average() }, telemetry: new FederatedTelemetry(factory));
        await using var host = await FlServerHost.StartAsync(server, new FlHostOptions { Port = 0 });
        FlClient Client() => new(new FlClientOptions { Server = host.Url, Token = FlTestServer.Token, RetryFor = TimeSpan.FromSeconds(20) }, new ConstantTrainer(1f));
        using var a = Client();
        using var b = Client();
        await a.EnrolAsync();
        await b.EnrolAsync();
        var ta = await a.GetTaskAsync();
        var tb = await b.GetTaskAsync();
        Assert.Equal(TaskKind.Train, ta.Kind);

        var nan = Enumerable.Repeat(0.1f, n).ToArray();
        nan[3] = float.NaN;
        Assert.Equal(UploadStatus.Rejected, (await Upload(a, ta, UpdateCodec.EncodeFloat32(nan))).Status);
        Assert.Equal(UploadStatus.Accepted, (await Upload(a, ta, Values(n, 0.1f))).Status);
        Assert.Equal(UploadStatus.Accepted, (await Upload(b, tb, Values(n, 0.3f))).Status);
        await server.Completion.WaitAsync(TimeSpan.FromSeconds(30));

        var round = Assert.Single(server.Results());
        Assert.Equal((2, 1), (round.Accepted, round.Rejected));
        Assert.Equal(2, metrics.Of(FederatedTelemetry.ClientsEnrolledName).Sum(m => m.Value));
        Assert.Equal(round.Accepted, metrics.Of(FederatedTelemetry.UpdatesAcceptedName).Sum(m => m.Value));
        var rejected = Assert.Single(metrics.Of(FederatedTelemetry.UpdatesRejectedName));
        Assert.Equal(UpdateRejection.NonFinite, rejected.Tag(FederatedTelemetry.RejectionReasonTag));
        var rounds = Assert.Single(metrics.Of(FederatedTelemetry.RoundsName));
        Assert.Equal(FederatedTelemetry.Completed, rounds.Tag(FederatedTelemetry.RoundOutcomeTag));
        Assert.Equal("all-delivered", rounds.Tag(FederatedTelemetry.ClosedByTag));
        Assert.Equal(round.Duration.TotalSeconds, Assert.Single(metrics.Of(FederatedTelemetry.RoundDurationName)).Value, 9);

        var span = Assert.Single(spans.Named(FederatedTelemetry.RoundSpanName));
        Assert.Equal(1L, span.GetTagItem(FederatedTelemetry.VersionTag));
        Assert.Equal(default, span.ParentSpanId); // a root: the round is not part of the upload that closed it
        Assert.Equal(1, span.GetTagItem(FederatedTelemetry.RoundTag));
        Assert.Equal((2, 1), ((int)span.GetTagItem(FederatedTelemetry.AcceptedTag)!, (int)span.GetTagItem(FederatedTelemetry.RejectedTag)!));
        Assert.Equal(span.SpanId, Assert.Single(spans.Named(FederatedTelemetry.AggregateSpanName, span.TraceId)).ParentSpanId);
        Assert.Equal(span.SpanId, Assert.Single(spans.Named(FederatedTelemetry.EvaluateSpanName, span.TraceId)).ParentSpanId);
        Assert.InRange(span.Duration, round.Duration - TimeSpan.FromMilliseconds(5), round.Duration + TimeSpan.FromSeconds(10));
    }

    private static byte[] Values(int n, float v) => UpdateCodec.EncodeFloat32(Enumerable.Repeat(v, n).ToArray());

    private static Task<UploadReply> Upload(FlClient c, TaskReply t, byte[] payload) =>
        c.UploadPayloadAsync(FlClient.Header(t.Round, t.GlobalVersion, payload, 10), payload);
}
