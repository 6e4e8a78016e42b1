using EdgeTune.Federated.Aggregation;

namespace EdgeTune.Federated.Client;

/// <summary>One round's local work as the server asked for it.</summary>
public sealed record LocalFitRequest(int Round, long GlobalVersion, UpdateLayout Layout, float[] Global, FitInstructions Fit);

/// <summary>What local training produced: <c>local − global</c> (flat, layout order), its example count and metrics ("train_loss" …).</summary>
public sealed record LocalFitResult(float[] Delta, long NumExamples, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A client's local training: <see cref="LoraLocalTrainer"/> trains a LoRA adapter with the
/// <see cref="Training.Trainer"/>; tests and benchmarks use synthetic ones.</summary>
public interface ILocalTrainer
{
    /// <summary>Training examples this client holds (FedAvg's weight).</summary>
    long NumExamples { get; }

    LocalFitResult Fit(LocalFitRequest request, CancellationToken cancellationToken);

    /// <summary>Metrics of <paramref name="global"/> on the client's own validation data ("loss" …), or null when it has none.</summary>
    IReadOnlyDictionary<string, double>? Evaluate(UpdateLayout layout, float[] global) => null;
}
