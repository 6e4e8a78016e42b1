using System.CommandLine;
using EdgeTune.Training;

namespace EdgeTune.Cli.Commands;

/// <summary>The training-loop flags shared by the commands that train (<c>finetune</c>, <c>distill</c>):
/// <c>--steps --seq-len --batch --grad-accum --lr --eval-every --checkpoint-every --seed</c>.
/// <see cref="AddTo"/> puts them on a command; <see cref="Apply"/> overrides the given
/// <see cref="TrainingOptions"/> with the flags that were passed.</summary>
public sealed class TrainingCliOptions(string seedDescription)
{
    public Option<int?> Steps { get; } = new("--steps") { Description = "Optimizer steps" };
    public Option<int?> SeqLen { get; } = new("--seq-len") { Description = "Tokens per sequence" };
    public Option<int?> Batch { get; } = new("--batch") { Description = "Sequences per micro-batch" };
    public Option<int?> GradAccumulation { get; } = new("--grad-accum") { Description = "Micro-batches per optimizer step" };
    public Option<double?> LearningRate { get; } = new("--lr") { Description = "Peak learning rate" };
    public Option<int?> EvalEvery { get; } = new("--eval-every") { Description = "Evaluate every N steps" };
    public Option<int?> CheckpointEvery { get; } = new("--checkpoint-every") { Description = "Checkpoint every N steps" };
    public Option<ulong?> Seed { get; } = new("--seed") { Description = seedDescription };

    public IEnumerable<Option> All => [Steps, SeqLen, Batch, GradAccumulation, LearningRate, EvalEvery, CheckpointEvery, Seed];

    public void AddTo(Command command)
    {
        foreach (var o in All) command.Options.Add(o);
    }

    /// <summary><paramref name="defaults"/> with every flag that was given put in its place.</summary>
    public TrainingOptions Apply(ParseResult parse, TrainingOptions defaults) => defaults with
    {
        Steps = parse.GetValue(Steps) ?? defaults.Steps,
        SeqLen = parse.GetValue(SeqLen) ?? defaults.SeqLen,
        MicroBatch = parse.GetValue(Batch) ?? defaults.MicroBatch,
        GradAccumulation = parse.GetValue(GradAccumulation) ?? defaults.GradAccumulation,
        LearningRate = parse.GetValue(LearningRate) ?? defaults.LearningRate,
        EvalEvery = parse.GetValue(EvalEvery) ?? defaults.EvalEvery,
        CheckpointEvery = parse.GetValue(CheckpointEvery) ?? defaults.CheckpointEvery,
        Seed = parse.GetValue(Seed) ?? defaults.Seed,
    };
}
