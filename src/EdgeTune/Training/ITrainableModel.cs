using EdgeTune.Autograd;

namespace EdgeTune.Training;

/// <summary>What the trainer needs of a model: its parameters (trainable ones are trained and
/// checkpointed) and a tape forward to a scalar mean loss.</summary>
public interface ITrainableModel
{
    ParameterCollection Parameters { get; }

    /// <summary>Mean loss of one micro-batch, recorded on <paramref name="tape"/> (not recording during evaluation).</summary>
    Variable Loss(Tape tape, int[] tokens, int[] targets, int batch, int time);
}

/// <summary>An <see cref="ITrainableModel"/> from a parameter collection and a loss function.</summary>
public sealed class DelegateTrainableModel(ParameterCollection parameters, Func<Tape, int[], int[], int, int, Variable> loss) : ITrainableModel
{
    public ParameterCollection Parameters { get; } = parameters ?? throw new ArgumentNullException(nameof(parameters));

    public Variable Loss(Tape tape, int[] tokens, int[] targets, int batch, int time) => loss(tape, tokens, targets, batch, time);

    /// <summary>A Llama model's training loss with the given vocabulary chunk; sets the model's
    /// <see cref="Models.DecoderModel.ActivationCheckpointing"/>.</summary>
    public static DelegateTrainableModel For(Models.DecoderModel model, int vocabChunk = Tensors.CrossEntropy.DefaultChunk, bool activationCheckpointing = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.ActivationCheckpointing = activationCheckpointing;
        return new(model.Parameters, (tape, tokens, targets, b, t) => model.Loss(tape, tokens, targets, b, t, vocabChunk));
    }
}
