using EdgeTune.Autograd;

namespace EdgeTune.Training;

/// <summary>Updates trainable parameters from their accumulated gradients.</summary>
public interface IOptimizer : IDisposable
{
    /// <summary>"AdamW", "Sgd": written into saved state and checked on load.</summary>
    string Kind { get; }

    /// <summary>The parameters this optimizer updates: those trainable when it was made, in order.</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The learning rate of the next step (schedules set it before each step).</summary>
    double LearningRate { get; set; }

    /// <summary>Steps taken so far (restored by <see cref="LoadState"/>).</summary>
    long StepCount { get; }

    /// <summary>Applies one update to every parameter that has a gradient. Does not zero gradients.</summary>
    void Step();

    /// <summary>Zeroes the gradients of <see cref="Parameters"/>.</summary>
    void ZeroGrad();

    /// <summary>Writes step count and per-parameter state (see <see cref="Optimizer"/> for the format).</summary>
    void SaveState(Stream stream);

    /// <summary>Restores exactly what <see cref="SaveState"/> wrote; throws
    /// <see cref="InvalidDataException"/> naming the field when kind, names, dtypes or shapes differ.</summary>
    void LoadState(Stream stream);
}
