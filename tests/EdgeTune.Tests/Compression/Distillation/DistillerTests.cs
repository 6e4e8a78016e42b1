using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Compression.Distillation;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Compression.Distillation;

/// <summary>The Distiller: student configs, vocabulary checks, evaluation as plain cross-entropy, α = 0 as the
/// plain loss, and a short training run with the Trainer that brings the student towards the teacher.</summary>
public class DistillerTests
{
    [Fact]
    public void StudentConfigHalvesTheWidthAndKeepsVocabularyAndHeadSize()
    {
        var teacher = DistillationFixtures.Config(vocab: 512, hidden: 64) with { IntermediateSize = 172, NumAttentionHeads = 8, NumKeyValueHeads = 4, HeadDim = 8 };
        var s = Distiller.StudentConfig(teacher);
        Assert.Equal((32, 4, 2, 8, 88, 2, 512), (s.HiddenSize, s.NumAttentionHeads, s.NumKeyValueHeads, s.HeadDim, s.IntermediateSize, s.NumHiddenLayers, s.VocabSize));
        var t = Distiller.StudentConfig(teacher, hiddenSize: 48, layers: 3, heads: 6, kvHeads: 3, intermediateSize: 100);
        Assert.Equal((48, 3, 6, 3, 8, 100), (t.HiddenSize, t.NumHiddenLayers, t.NumAttentionHeads, t.NumKeyValueHeads, t.HeadDim, t.IntermediateSize));
        Assert.Throws<ArgumentException>(() => Distiller.StudentConfig(teacher, hiddenSize: 30, heads: 4));
        using var student = Distiller.CreateStudent(s, seed: 3);
        Assert.True(student.Parameters.TrainableElementCount > 0 && student.Parameters.ElementCount < 260_000 / 2);
    }

    [Fact]
    public void VocabularyMismatchIsRefused()
    {
        using var teacherModel = DistillationFixtures.Teacher(vocab: 40);
        using var teacher = new ModelTeacher(teacherModel);
        using var student = Distiller.CreateStudent(DistillationFixtures.Config(vocab: 32, hidden: 8), seed: 1);
        var e = Assert.Throws<ArgumentException>(() => Distiller.CreateTrainable(student, teacher, DistillationSettings.Default));
        Assert.Contains("40", e.Message);
    }

    [Fact]
    public void EvaluationAndAlphaZeroArePlainCrossEntropy()
    {
        using var teacherModel = DistillationFixtures.Teacher();
        using var teacher = new ModelTeacher(teacherModel);
        using var student = Distiller.CreateStudent(DistillationFixtures.Config(hidden: 8), seed: 2);
        var seq = DistillationFixtures.Training(DistillationFixtures.Sequences(2, 8));
        int[] tokens = [.. seq[0].Tokens, .. seq[1].Tokens], targets = [.. seq[0].Targets, .. seq[1].Targets];
        double Loss(ITrainableModel m, bool recording)
        {
            using var tape = new Tape { IsRecording = recording };
            return m.Loss(tape, tokens, targets, 2, 8).Item();
        }
        double ce = Loss(DelegateTrainableModel.For(student), false);
        var kd = Distiller.CreateTrainable(student, teacher, new(KlDirection.Forward, 2, 0.5));
        Assert.Equal(ce, Loss(kd, false));
        Assert.NotEqual(ce, Loss(kd, true));
        long before = teacher.PositionsRun;
        Assert.Equal(ce, Loss(Distiller.CreateTrainable(student, teacher, new(KlDirection.Reverse, 2, 0)), true));
        Assert.Equal(before, teacher.PositionsRun); // α = 0 never runs the teacher
    }

    [Theory]
    [InlineData(KlDirection.Forward)]
    [InlineData(KlDirection.Reverse)]
    public void AModelDistilledFromItselfHasZeroKl(KlDirection dir)
    {
        // The teacher's inference forward (KV cache) and the student's training forward (tape) must agree position by position.
        using var model = DistillationFixtures.Teacher();
        using var teacher = new ModelTeacher(model);
        var seqs = DistillationFixtures.Training(DistillationFixtures.Sequences(3, 12));
        var tokens = seqs.SelectMany(s => s.Tokens).ToArray();
        var targets = seqs.SelectMany(s => s.Targets).ToArray();
        var trainable = Distiller.CreateTrainable(model, teacher, new(dir, 1.5, 1.0));
        using var tape = new Tape();
        double kl = trainable.Loss(tape, tokens, targets, 3, 12).Item();
        Assert.InRange(kl, -1e-5, 1e-4);
        using var tape2 = new Tape { IsRecording = false };
        Assert.True(model.Loss(tape2, tokens, targets, 3, 12).Item() > 0.1); // while the plain loss is not 0
    }

    [Theory]
    [InlineData(KlDirection.Forward, 0)]
    [InlineData(KlDirection.Reverse, 0)]
    [InlineData(KlDirection.Forward, 8)]
    public void TrainingWithTheTrainerBringsTheStudentTowardsTheTeacher(KlDirection dir, int topK)
    {
        using var teacherModel = DistillationFixtures.Teacher();
        using var teacher = new ModelTeacher(teacherModel, topK);
        using var student = Distiller.CreateStudent(DistillationFixtures.Config(hidden: 8, layers: 1), seed: 4);
        var seqs = DistillationFixtures.Training(DistillationFixtures.Sequences(16, 8));
        var settings = new DistillationSettings(dir, 1.0, 1.0);
        var trainable = Distiller.CreateTrainable(student, teacher, settings);
        var tokens = seqs.Take(4).SelectMany(s => s.Tokens).ToArray();
        var targets = seqs.Take(4).SelectMany(s => s.Targets).ToArray();
        double Kl()
        {
            using var tape = new Tape();
            double v = trainable.Loss(tape, tokens, targets, 4, 8).Item();
            tape.Reset();
            return v;
        }
        double kl0 = Kl();
        var options = new TrainingOptions { Steps = 40, MicroBatch = 4, SeqLen = 8, LearningRate = 2e-2, WarmupSteps = 0, EvalEvery = 0, CheckpointEvery = 0, Seed = 9 };
        using (var trainer = new Trainer(trainable, new SequenceBatcherSource(new global::EdgeTune.Text.Datasets.SequenceBatcher(seqs, 4, 9)), options))
            Assert.Equal(TrainingStopReason.Completed, trainer.Run().Reason);
        double kl1 = Kl();
        Assert.True(kl1 < 0.7 * kl0, $"KL {kl0} -> {kl1}");
    }
}
