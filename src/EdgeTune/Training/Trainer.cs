using System.Diagnostics;
using EdgeTune.Autograd;
using EdgeTune.Diagnostics;
using EdgeTune.Energy;
using EdgeTune.Privacy;
using EdgeTune.Tensors;
using EdgeTune.Training.Internal;

namespace EdgeTune.Training;

/// <summary>
/// The training loop. One optimizer step: <see cref="TrainingOptions.GradAccumulation"/> micro-batches,
/// each a tape forward (loss scaled by 1/accumulation) and backward that accumulate into the trainable
/// parameters' gradients; global-norm clipping; the scheduled learning rate; an optimizer step; zeroed
/// gradients. A NaN/∞ loss or gradient skips the step (reported, gradients zeroed) and
/// <see cref="TrainingOptions.MaxConsecutiveNonFinite"/> skips in a row stop the run. Evaluates every
/// <see cref="TrainingOptions.EvalEvery"/> steps on the validation source (no recording), stops early
/// after <see cref="TrainingOptions.EarlyStoppingPatience"/> evaluations without improvement, writes
/// checkpoints every <see cref="TrainingOptions.CheckpointEvery"/> steps, at the end and on
/// cancellation, and resumes exactly (<see cref="Resume"/>): same losses, bit for bit. Optionally evaluates
/// power policies between steps (<see cref="PowerPolicies"/>: pause with a checkpoint and resume by itself,
/// throttle, or stop cleanly) and accounts each step's energy (<see cref="Energy"/>) into its metrics line and
/// the result; neither changes the work done, so the final weights equal an unpaused run's. With
/// <see cref="Privacy"/> set, each step's gradient is DP-SGD's (per-example clipping and Gaussian noise, see
/// <see cref="DpSgd"/>) instead, global-norm clipping is not applied, and ε spent is reported with every step.
/// </summary>
public sealed class Trainer : IDisposable
{
    /// <summary>Name of the trainer's own generator in checkpoints.</summary>
    public const string TrainerRngName = "trainer";

    private readonly ITrainableModel _model;
    private readonly IBatchSource _train;
    private readonly IBatchSource? _validation;
    private readonly bool _ownsOptimizer;
    private readonly Dictionary<string, Rng> _rngs = new(StringComparer.Ordinal);
    private readonly List<(long, double)> _evals = [];
    private long _lastCheckpointStep = -1;

    public Trainer(ITrainableModel model, IBatchSource train, TrainingOptions options, IBatchSource? validation = null, IOptimizer? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        _train = train;
        _validation = validation;
        Options = options.Validate();
        Trainable = model.Parameters.Trainable.ToList();
        if (Trainable.Count == 0) throw new ArgumentException("Trainer: the model has no trainable parameter", nameof(model));
        _ownsOptimizer = optimizer is null;
        Optimizer = optimizer ?? new AdamW(Trainable, new AdamWOptions { LearningRate = options.LearningRate, WeightDecay = options.WeightDecay });
        TotalSteps = PlanSteps(options, train);
        Schedule = LrSchedule.From(options, TotalSteps);
        Rng = new Rng(options.Seed);
        _rngs[TrainerRngName] = Rng;
        State = new TrainingState { TotalSteps = TotalSteps };
    }

    /// <summary>The optimizer steps a run of <paramref name="options"/> over <paramref name="train"/> takes:
    /// ⌈epochs × batches per epoch / accumulation⌉ when epochs are set and the source knows its size, else Steps.</summary>
    public static int PlanSteps(TrainingOptions options, IBatchSource train)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(train);
        long? perEpoch = options.Epochs is double ? train.BatchesPerEpoch(options.MicroBatch, options.SeqLen) : null;
        return perEpoch is long n ? (int)Math.Max(1, Math.Ceiling(options.Epochs!.Value * n / options.GradAccumulation)) : options.Steps;
    }

    public TrainingOptions Options { get; }
    public IOptimizer Optimizer { get; }
    public LrSchedule Schedule { get; }
    public int TotalSteps { get; }
    /// <summary>The parameters trained and checkpointed (trainable when the trainer was made).</summary>
    public IReadOnlyList<Parameter> Trainable { get; }
    /// <summary>The trainer's generator (seeded from <see cref="TrainingOptions.Seed"/>; saved in checkpoints):
    /// give it (or forks registered with <see cref="AddRng"/>) to dropout.</summary>
    public Rng Rng { get; }
    /// <summary>Completed steps and bookkeeping; restored by <see cref="Resume"/>.</summary>
    public TrainingState State { get; private set; }

    public IProgress<TrainingStatus>? Progress { get; init; }
    public IMetricsSink? Metrics { get; init; }
    public IClock Clock { get; init; } = SystemClock.Instance;
    /// <summary>The planner's prediction for this run, reported against the measured peaks at the end.</summary>
    public MemoryEstimate? PredictedMemory { get; init; }

    /// <summary>Called before each step with its 1-based number (e.g. power policies, energy accounting).</summary>
    public Action<long>? BeforeStep { get; init; }

    /// <summary>Called once the step's gradients are complete (all micro-batches), before clipping and the
    /// optimizer step, with the trainable parameters: adds extra gradient terms (FedProx's μ·(w − w_global))
    /// or zeroes gradients of masked weights.</summary>
    public Action<IReadOnlyList<Parameter>>? AfterBackward { get; init; }

    /// <summary>Called after each optimizer step with the trainable parameters: re-applies constraints on the
    /// weights (pruning masks kept fixed during recovery fine-tuning).</summary>
    public Action<IReadOnlyList<Parameter>>? AfterStep { get; init; }

    /// <summary>Power policies evaluated between steps (before each one): Pause writes a checkpoint, reports
    /// <see cref="TrainingEvent.Paused"/>, waits with <see cref="PolicyDelay"/> polling the policies, then reports
    /// <see cref="TrainingEvent.Resumed"/> and goes on; Throttle sets the thread count (<see cref="SetThreads"/>) and
    /// sleeps after each step; Stop checkpoints and ends the run with <see cref="TrainingStopReason.PolicyStopped"/>.
    /// Give the engine the same <see cref="Clock"/>. Null: no policy.</summary>
    public PolicyEngine? PowerPolicies { get; init; }

    /// <summary>Records each step's energy (<see cref="EnergyAccountant.RecordStep"/>) into its status and metrics
    /// line; paused time is left out (<see cref="EnergyAccountant.Skip"/>); the run's <see cref="EnergyReport"/> is
    /// in <see cref="TrainingResult.Energy"/>. Null: no energy accounting.</summary>
    public EnergyAccountant? Energy { get; init; }

    /// <summary>Where steps, losses, energy and memory peaks are measured (System.Diagnostics.Metrics); the library's
    /// shared meter unless one made from an <see cref="System.Diagnostics.Metrics.IMeterFactory"/> is given.</summary>
    public TrainingTelemetry Telemetry { get; init; } = TrainingTelemetry.Shared;

    /// <summary>How the power policies wait (pause polls, duty-cycle sleeps); <see cref="Task.Delay(TimeSpan, CancellationToken)"/>
    /// when null. Tests pass <see cref="ManualClock.AsDelay"/> so that nothing really sleeps.</summary>
    public Func<TimeSpan, CancellationToken, Task>? PolicyDelay { get; init; }

    /// <summary>Sets the worker threads when a policy throttles (and restores them after);
    /// <see cref="WorkerPool.Configure"/> when null.</summary>
    public Action<int>? SetThreads { get; init; }

    /// <summary>Differentially private training (DP-SGD): each step's gradient is computed per example, clipped,
    /// summed and noised by this object, whose lot size must equal micro-batch × accumulation; its noise generator is
    /// checkpointed (<see cref="DpSgd.NoiseRngName"/>) and its accountant follows the step count (resume included).
    /// <see cref="TrainingOptions.MaxGradNorm"/> is not applied (the noisy gradient is not clipped again). Null: plain training.</summary>
    public DpSgd? Privacy
    {
        get => _privacy;
        init
        {
            _privacy = value;
            if (value is not null) _rngs[DpSgd.NoiseRngName] = value.NoiseRng;
        }
    }

    private readonly DpSgd? _privacy;

    /// <summary>How checkpoint files are written and read: <see cref="Security.RunFiles.Plain"/> by default, or the run
    /// folder's <see cref="Security.RunFiles"/> (encrypted checkpoints in an encrypted run folder).</summary>
    public Security.RunFiles Files { get; init; } = Security.RunFiles.Plain;

    /// <summary>Where checkpoints go: OutputDir/checkpoints (null without an output folder).</summary>
    public string? CheckpointDirectory => Options.OutputDir is null ? null : Path.Combine(Options.OutputDir, "checkpoints");

    /// <summary>Saves and restores <paramref name="rng"/> with checkpoints under <paramref name="name"/>.</summary>
    public void AddRng(string name, Rng rng) => _rngs.Add(name, rng);

    /// <summary>
    /// Restores the newest checkpoint in <see cref="CheckpointDirectory"/> whose checksums verify; corrupt or
    /// partial ones are reported (progress message) and passed over. Returns the folder, or null when none is usable.
    /// </summary>
    public string? Resume()
    {
        if (CheckpointDirectory is null) throw new InvalidOperationException("Trainer.Resume: TrainingOptions.OutputDir is not set");
        var (folder, rejected) = TrainingCheckpoint.FindLatest(Files, CheckpointDirectory);
        foreach (var why in rejected) Report(TrainingEvent.Checkpoint, null, null, why + "; using an older checkpoint");
        if (folder is null) return null;
        ResumeFrom(folder);
        return folder;
    }

    /// <summary>Restores one checkpoint folder (weights, optimizer, schedule position, data position, generators).</summary>
    public void ResumeFrom(string folder)
    {
        var state = TrainingCheckpoint.Load(Files, folder, Trainable, Optimizer);
        if (state.DataPosition is not null) _train.RestorePosition(state.DataPosition);
        foreach (var (name, s) in state.Rngs)
            if (_rngs.TryGetValue(name, out var rng)) rng.State = s;
        State = state with { TotalSteps = TotalSteps };
        _lastCheckpointStep = state.Step;
        Report(TrainingEvent.Resumed, null, null, $"resumed from '{folder}' at step {state.Step}");
    }

    /// <summary>Writes a checkpoint of the current state now (needs an output folder); returns its folder.</summary>
    public string WriteCheckpoint()
    {
        if (CheckpointDirectory is null) throw new InvalidOperationException("Trainer.WriteCheckpoint: TrainingOptions.OutputDir is not set");
        var state = State with
        {
            DataPosition = _train.SavePosition(),
            Rngs = _rngs.ToDictionary(kv => kv.Key, kv => kv.Value.State, StringComparer.Ordinal),
        };
        using var span = TrainingTelemetry.Source.StartActivity(TrainingTelemetry.CheckpointSpanName);
        string folder = TrainingCheckpoint.Write(Files, CheckpointDirectory, state, Trainable, Optimizer, Options, Options.KeepCheckpoints);
        _lastCheckpointStep = state.Step;
        LastCheckpoint = folder;
        Report(TrainingEvent.Checkpoint, null, null, $"checkpoint written to '{folder}'");
        return folder;
    }

    /// <summary>The folder of the last checkpoint written or resumed from.</summary>
    public string? LastCheckpoint { get; private set; }

    /// <summary>Mean loss over <see cref="TrainingOptions.EvalBatches"/> validation batches (from the start of
    /// the source, no tape recording) and its perplexity e^loss.</summary>
    public (double Loss, double Perplexity) Evaluate(IBatchSource? source = null)
    {
        var src = source ?? _validation ?? throw new InvalidOperationException("Trainer.Evaluate: no validation source");
        using var span = TrainingTelemetry.Source.StartActivity(TrainingTelemetry.EvalSpanName);
        src.Reset();
        double sum = 0;
        for (int i = 0; i < Options.EvalBatches; i++)
        {
            var b = src.Next(Options.MicroBatch, Options.SeqLen).Validate("validation source");
            using var tape = new Tape { IsRecording = false };
            sum += _model.Loss(tape, b.Tokens, b.Targets, b.Batch, b.Time).Item();
        }
        double loss = sum / Options.EvalBatches;
        span?.SetTag(TrainingTelemetry.LossTag, loss);
        Telemetry.RecordEvaluation(loss);
        return (loss, Math.Exp(loss));
    }

    /// <summary>Trains from <see cref="State"/>'s step to <see cref="TotalSteps"/>; returns early on cancellation
    /// (after writing a checkpoint when an output folder is set), early stopping or repeated non-finite steps.</summary>
    public TrainingResult Run(CancellationToken cancellationToken = default)
    {
        using var runSpan = TrainingTelemetry.Source.StartActivity(TrainingTelemetry.RunSpanName);
        long firstStep = State.Step;
        var losses = new List<double>();
        _evals.Clear();
        TimeSpan start = Clock.Elapsed;
        long runTokens = 0;
        var reason = TrainingStopReason.Completed;
        string? message = null;
        if (Privacy is { } dp)
        {
            if (dp.LotSize != Options.MicroBatch * Options.GradAccumulation)
                throw new InvalidOperationException($"Trainer: DP-SGD was set up for lots of {dp.LotSize} examples, but a step takes micro-batch {Options.MicroBatch} × accumulation {Options.GradAccumulation} = {Options.MicroBatch * Options.GradAccumulation}");
            dp.Accountant.SetRounds(State.Step);
        }
        Optimizer.ZeroGrad();
        var gate = PowerPolicies is { IsEmpty: false } engine
            ? new PowerGate(engine, Clock, PolicyDelay, SetThreads, WorkerPool.Shared.Threads, Energy)
            : null;
        Energy?.Restart();

        while (State.Step < TotalSteps)
        {
            if (cancellationToken.IsCancellationRequested) { reason = TrainingStopReason.Cancelled; message = $"cancelled after step {State.Step}"; break; }
            long step = State.Step + 1;
            if (gate is not null)
            {
                var outcome = gate.BeforeStep(step, CheckpointIfDue, (e, m) => Report(e, null, null, m), cancellationToken);
                if (outcome == GateOutcome.Cancelled) { reason = TrainingStopReason.Cancelled; message = $"cancelled while paused after step {State.Step}"; break; }
                if (outcome == GateOutcome.Stop) { reason = TrainingStopReason.PolicyStopped; message = $"stopped by power policy after step {State.Step}: {gate.StopReason}"; break; }
            }
            BeforeStep?.Invoke(step);
            double lr = Schedule.At(step - 1);
            Optimizer.LearningRate = lr;
            long stepStart = Stopwatch.GetTimestamp();
            var (loss, norm, skip) = TrainStep();
            double stepSeconds = Stopwatch.GetElapsedTime(stepStart).TotalSeconds;
            gate?.AfterStep(step == TotalSteps, cancellationToken);
            var energy = Energy?.RecordStep(step, Options.TokensPerStep);
            runTokens += Options.TokensPerStep;
            State = State with { Step = step, Tokens = State.Tokens + Options.TokensPerStep };
            Telemetry.RecordStep(Options.TokensPerStep, loss, skip is not null, lr, stepSeconds, energy);
            Privacy?.Accountant.SetRounds(step); // a skipped step counts too: its gradients were computed from the data
            var elapsed = Clock.Elapsed - start;
            double tps = elapsed.TotalSeconds > 0 ? runTokens / elapsed.TotalSeconds : 0;
            TimeSpan? eta = step > firstStep ? elapsed / (step - firstStep) * (TotalSteps - step) : null;
            if (skip is not null)
            {
                losses.Add(double.NaN);
                State = State with { ConsecutiveNonFinite = State.ConsecutiveNonFinite + 1 };
                Report(TrainingEvent.Skipped, loss, norm, $"step {step} skipped: {skip}", lr, tps, elapsed, eta, energy);
                if (State.ConsecutiveNonFinite >= Options.MaxConsecutiveNonFinite)
                {
                    reason = TrainingStopReason.NonFinite;
                    message = $"stopped: {State.ConsecutiveNonFinite} consecutive steps had a non-finite loss or gradient (last: {skip})";
                    break;
                }
            }
            else
            {
                losses.Add(loss!.Value);
                State = State with { ConsecutiveNonFinite = 0 };
                Report(TrainingEvent.Step, loss, norm, null, lr, tps, elapsed, eta, energy);
            }

            bool last = step == TotalSteps;
            if (_validation is not null && ((Options.EvalEvery > 0 && step % Options.EvalEvery == 0) || (last && (Options.EvalEvery == 0 || step % Options.EvalEvery != 0))))
            {
                if (EvaluateAndCheckPatience(step, lr, tps, elapsed, eta))
                {
                    reason = TrainingStopReason.EarlyStopped;
                    message = $"early stop at step {step}: no improvement in {State.EvalsWithoutImprovement} evaluations (best {State.BestEvalLoss:G6})";
                    break;
                }
            }
            if (CheckpointDirectory is not null && Options.CheckpointEvery > 0 && step % Options.CheckpointEvery == 0) WriteCheckpoint();
        }

        gate?.End();
        CheckpointIfDue();
        message ??= $"completed {State.Step} of {TotalSteps} steps";
        var energyReport = Energy?.Report();
        if (energyReport is not null) message += "; " + energyReport.Describe();
        if (Privacy is not null) message += "; " + Privacy.Describe();
        long rss = ProcessMemory.PeakRssBytes(), tensors = TensorMemory.PeakBytes;
        message += $"; peak RSS {MemoryPlanner.Format(rss)}" + (PredictedMemory is { } p ? $" (predicted {MemoryPlanner.Format(p.Total)})" : "")
            + $", peak tensor memory {MemoryPlanner.Format(tensors)}" + (PredictedMemory is { } q ? $" (predicted {MemoryPlanner.Format(q.TensorBytes)})" : "");
        Report(TrainingEvent.Stopped, null, null, message);
        Telemetry.RecordMemory(rss, tensors);
        TensorStorage.ReleaseCachedBlocks(); // the run's activation blocks were kept for reuse between steps
        runSpan?.SetTag(TrainingTelemetry.StopReasonTag, reason.ToString()).SetTag(TrainingTelemetry.StepTag, State.Step);
        return new TrainingResult(reason, firstStep, State.Step, TotalSteps, losses, _evals.ToList(), State.BestEvalLoss, LastCheckpoint,
            tensors, rss, message, PredictedMemory?.Total, PredictedMemory?.TensorBytes, energyReport,
            gate?.Pauses ?? 0, gate?.PausedTime ?? TimeSpan.Zero, Privacy?.Epsilon);
    }

    /// <summary>Writes a checkpoint unless there is no output folder or the current step already has one.</summary>
    private void CheckpointIfDue()
    {
        if (CheckpointDirectory is not null && State.Step != _lastCheckpointStep) WriteCheckpoint();
    }

    /// <summary>One optimizer step; returns the mean micro-batch loss, the pre-clip gradient norm, and a skip reason.</summary>
    private (double? Loss, double? Norm, string? Skip) TrainStep()
    {
        int accum = Options.GradAccumulation;
        double sum = 0;
        using var span = TrainingTelemetry.StartStep(State.Step + 1);
        try
        {
            if (Privacy is { } dp)
            {
                var lot = new TrainingBatch[accum];
                for (int a = 0; a < accum; a++) lot[a] = _train.Next(Options.MicroBatch, Options.SeqLen).Validate("training source");
                double meanLoss = dp.ComputeGradient(_model, Trainable, lot);
                sum = meanLoss * accum;
                AfterBackward?.Invoke(Trainable);
                double noisyNorm = GradClip.GlobalNorm(Trainable);
                if (!double.IsFinite(noisyNorm)) throw new NonFiniteException("Trainer", "private gradient norm", noisyNorm);
                Optimizer.Step();
                AfterStep?.Invoke(Trainable);
                return (meanLoss, noisyNorm, null);
            }
            for (int a = 0; a < accum; a++)
            {
                var b = _train.Next(Options.MicroBatch, Options.SeqLen).Validate("training source");
                using var tape = new Tape();
                var loss = _model.Loss(tape, b.Tokens, b.Targets, b.Batch, b.Time);
                sum += loss.Item();
                tape.Backward(accum == 1 ? loss : tape.Scale(loss, 1.0 / accum));
            }
            AfterBackward?.Invoke(Trainable);
            double norm = Options.MaxGradNorm > 0 ? GradClip.ClipGlobalNorm(Trainable, Options.MaxGradNorm) : GradClip.GlobalNorm(Trainable);
            if (!double.IsFinite(norm)) throw new NonFiniteException("Trainer", "global gradient norm", norm);
            Optimizer.Step();
            AfterStep?.Invoke(Trainable);
            span?.SetTag(TrainingTelemetry.LossTag, sum / accum);
            return (sum / accum, norm, null);
        }
        catch (NonFiniteException e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            return (double.IsFinite(sum) ? null : sum, null, e.Message);
        }
        finally
        {
            Optimizer.ZeroGrad();
        }
    }

    private bool EvaluateAndCheckPatience(long step, double lr, double tps, TimeSpan elapsed, TimeSpan? eta)
    {
        var (loss, ppl) = Evaluate();
        _evals.Add((step, loss));
        bool better = State.BestEvalLoss is not double best || loss < best;
        State = better
            ? State with { BestEvalLoss = loss, EvalsWithoutImprovement = 0 }
            : State with { EvalsWithoutImprovement = State.EvalsWithoutImprovement + 1 };
        var status = Status(TrainingEvent.Eval, null, null, null, lr, tps, elapsed, eta) with { EvalLoss = loss, EvalPerplexity = ppl };
        Publish(status);
        return Options.EarlyStoppingPatience > 0 && State.EvalsWithoutImprovement >= Options.EarlyStoppingPatience;
    }

    private void Report(TrainingEvent e, double? loss, double? norm, string? message, double lr = double.NaN, double tps = 0,
        TimeSpan elapsed = default, TimeSpan? eta = null, EnergyStepRecord? energy = null) =>
        Publish(Status(e, loss, norm, message, double.IsNaN(lr) ? Optimizer.LearningRate : lr, tps, elapsed, eta) with { Energy = energy });

    private TrainingStatus Status(TrainingEvent e, double? loss, double? norm, string? message, double lr, double tps, TimeSpan elapsed, TimeSpan? eta) =>
        new(e, State.Step, TotalSteps, loss, lr, norm, tps, elapsed, eta, GC.GetTotalMemory(false), Environment.WorkingSet, TensorMemory.LiveBytes,
            Message: message, DpEpsilon: Privacy?.Epsilon);

    private void Publish(TrainingStatus status)
    {
        Progress?.Report(status);
        if (status.Event is TrainingEvent.Step or TrainingEvent.Eval or TrainingEvent.Skipped or TrainingEvent.Stopped
            or TrainingEvent.Paused or TrainingEvent.Resumed or TrainingEvent.Throttled) Metrics?.Write(status);
    }

    public void Dispose()
    {
        if (_ownsOptimizer) Optimizer.Dispose();
    }
}
