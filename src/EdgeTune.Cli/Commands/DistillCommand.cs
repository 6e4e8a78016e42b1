using System.CommandLine;
using System.Globalization;
using EdgeTune.Compression.Distillation;
using EdgeTune.Training;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune distill</c>: trains a smaller student from a teacher model (knowledge distillation) and saves
/// it as a loadable model folder; binds flags to <see cref="DistillationJobOptions"/>, the work is <see cref="DistillationJob"/>'s.</summary>
public static class DistillCommand
{
    public static Command Create()
    {
        var teacher = new Option<string>("--teacher") { Description = "Teacher model folder or file (safetensors + config.json, GGUF, llama2.c)", Required = true };
        var tokenizer = ModelOptions.Tokenizer();
        var student = new Option<string?>("--student") { Description = "An existing student model to train (default: a new random one, see --student-*)" };
        var hidden = new Option<int?>("--student-hidden") { Description = "New student's hidden size (default: half the teacher's)" };
        var layers = new Option<int?>("--student-layers") { Description = "New student's layers (default: the teacher's)" };
        var heads = new Option<int?>("--student-heads") { Description = "New student's attention heads (default: hidden / the teacher's head size)" };
        var kvHeads = new Option<int?>("--student-kv-heads") { Description = "New student's key/value heads (default: the teacher's ratio)" };
        var inter = new Option<int?>("--student-intermediate") { Description = "New student's MLP size (default: scaled with the hidden size)" };
        var data = new Option<string>("--data") { Description = "Training data (.txt, JSONL); the last 10% of lines are held out for validation", Required = true };
        var kl = new Option<string>("--kl") { Description = "KL direction: forward KL(teacher||student) or reverse KL(student||teacher)", DefaultValueFactory = _ => "forward" };
        kl.AcceptOnlyFromAmong("forward", "reverse");
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature of both distributions (1 did best on tinyshakespeare; 2 was worse)", DefaultValueFactory = _ => 1.0 };
        var alpha = new Option<double>("--alpha") { Description = "Weight of the KL term (1 - alpha weighs the ground-truth cross-entropy)", DefaultValueFactory = _ => 0.5 };
        var topK = new Option<int>("--top-k") { Description = "Use only the teacher's k most likely tokens per position (renormalised); 0: full logits", DefaultValueFactory = _ => 0 };
        var cache = new Option<string?>("--teacher-cache") { Description = "Top-k teacher cache file: read if present, else built from the data first (needs --top-k)" };
        var training = new TrainingCliOptions("Seed of the data order and the student's init");
        var output = new Option<string>("--out") { Description = "Run folder (the student is saved under model/)", DefaultValueFactory = _ => Path.Combine("runs", "distill") };

        var command = new Command("distill", "Train a smaller student model from a teacher (knowledge distillation)");
        foreach (var o in new Option[] { teacher, tokenizer, student, hidden, layers, heads, kvHeads, inter, data, kl, temperature, alpha, topK, cache, output })
            command.Options.Add(o);
        training.AddTo(command);
        var encryption = new EncryptionCliOptions(writes: true);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var outp = parse.InvocationConfiguration.Output;
            var t = training.Apply(parse, new TrainingOptions());
            using var key = encryption.BindForWriting(parse, parse.GetValue(output)!, err);
            var options = new DistillationJobOptions
            {
                Teacher = parse.GetValue(teacher)!,
                Tokenizer = parse.GetValue(tokenizer),
                Student = parse.GetValue(student),
                StudentShape = new StudentShape(parse.GetValue(hidden), parse.GetValue(layers), parse.GetValue(heads), parse.GetValue(kvHeads), parse.GetValue(inter)),
                Data = parse.GetValue(data)!,
                Settings = new DistillationSettings(parse.GetValue(kl) == "reverse" ? KlDirection.Reverse : KlDirection.Forward, parse.GetValue(temperature), parse.GetValue(alpha)),
                TopK = parse.GetValue(topK),
                TeacherCachePath = parse.GetValue(cache),
                Training = t,
                OutputDir = parse.GetValue(output)!,
                Encryption = key,
            };
            var c = CultureInfo.InvariantCulture;
            var log = new SyncProgress<string>(err.WriteLine);
            var progress = new SyncProgress<TrainingStatus>(s =>
            {
                if (s.Event == TrainingEvent.Eval) err.WriteLine(string.Create(c, $"step {s.Step}: validation loss {s.EvalLoss:F4} ppl {s.EvalPerplexity:F2}"));
                else if (s.Event == TrainingEvent.Step && (s.Step % 50 == 0 || s.Step == s.TotalSteps))
                    err.WriteLine(string.Create(c, $"{s.Step}/{s.TotalSteps} loss {s.Loss:F4} lr {s.LearningRate:E2} {s.TokensPerSecond:F0} tok/s"));
            });
            var result = await DistillationJob.RunAsync(options, progress, log, ct).ConfigureAwait(false);
            if (result.Teacher is { } te) await outp.WriteLineAsync(string.Create(c, $"teacher validation:        loss {te.Loss:F4} ppl {te.Perplexity:F2} ({result.TeacherParameters:N0} parameters)")).ConfigureAwait(false);
            if (result.StudentBefore is { } b0) await outp.WriteLineAsync(string.Create(c, $"student validation before: loss {b0.Loss:F4} ppl {b0.Perplexity:F2}")).ConfigureAwait(false);
            if (result.StudentAfter is { } a0) await outp.WriteLineAsync(string.Create(c, $"student validation after:  loss {a0.Loss:F4} ppl {a0.Perplexity:F2} ({result.StudentParameters:N0} parameters)")).ConfigureAwait(false);
            var tr = result.Training;
            await outp.WriteLineAsync(string.Create(c, $"stopped: {tr.Reason} at step {tr.LastStep}/{tr.TotalSteps}")).ConfigureAwait(false);
            await outp.WriteLineAsync($"saved: {result.SavedTo}\nmetrics: {result.MetricsPath}").ConfigureAwait(false);
            if (tr.Energy is { } en) await outp.WriteLineAsync(FinetuneCommand.EnergySummary(en)).ConfigureAwait(false);
            return tr.Reason == TrainingStopReason.NonFinite ? 1 : 0;
        });
        return command;
    }

    /// <summary>Calls back on the reporting thread, in order.</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
