using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Energy;
using EdgeTune.Training;

namespace EdgeTune.Compression.Distillation;

/// <summary>Everything a distillation run needs (<see cref="DistillationJob"/>); the CLI's <c>edgetune distill</c> binds its flags to it.</summary>
public sealed record DistillationJobOptions
{
    /// <summary>The teacher: a model folder or file (safetensors + config.json, GGUF, llama2.c).</summary>
    public required string Teacher { get; init; }

    /// <summary>Tokenizer file or folder shared by teacher and student; default: the teacher's folder.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>An existing student model to train further (all weights); null builds a random one from <see cref="StudentShape"/>.</summary>
    public string? Student { get; init; }

    /// <summary>The new student's sizes; unset sizes follow <see cref="Distiller.StudentConfig"/>'s defaults (half the teacher's width).</summary>
    public StudentShape StudentShape { get; init; } = new();

    /// <summary>Training data: .txt or JSONL, as for fine-tuning.</summary>
    public required string Data { get; init; }

    public DistillationSettings Settings { get; init; } = DistillationSettings.Default;

    /// <summary>0: the teacher's full logits; otherwise keep its k most likely ids per position (renormalised, see <see cref="TeacherTargets"/>).</summary>
    public int TopK { get; init; }

    /// <summary>A <see cref="TeacherCache"/> file: read when it exists, otherwise built from the training data first (needs <see cref="TopK"/> &gt; 0).</summary>
    public string? TeacherCachePath { get; init; }

    /// <summary>Steps, batch, sequence length, learning rate, seed (also the student's init seed), evaluation and checkpoints.</summary>
    public TrainingOptions Training { get; init; } = new();

    /// <summary>Held-out share of the data (for plain text: the last lines) for the perplexities before/after.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Run folder: checkpoints, metrics.jsonl, and the student model under model/.</summary>
    public string OutputDir { get; init; } = Path.Combine("runs", "distill");

    /// <summary>Encrypt the run folder (checkpoints, teacher cache, metrics, the student) with this key, or read it
    /// with it when it is already encrypted (<see cref="Security.RunFiles"/>); null: plain, and an encrypted folder is
    /// refused. The caller owns and disposes the key.</summary>
    public Security.EncryptionKey? Encryption { get; init; }

    /// <summary>How energy is reported; the meters found on the machine are used, as for fine-tuning.</summary>
    public EnergyAccountingOptions EnergyAccounting { get; init; } = EnergyAccountingOptions.Default;

    /// <summary>Meters to use instead of probing the machine (tests, embedding).</summary>
    public EnergyMeterSet? Meters { get; init; }
}

/// <summary>Sizes of a new student; null keeps <see cref="Distiller.StudentConfig"/>'s default for that size.</summary>
public sealed record StudentShape(int? HiddenSize = null, int? Layers = null, int? Heads = null, int? KeyValueHeads = null, int? IntermediateSize = null);
