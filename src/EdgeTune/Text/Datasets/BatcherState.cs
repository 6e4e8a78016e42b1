using System.Text.Json;
using EdgeTune.Tensors;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Where a <see cref="SequenceBatcher"/> stands: the epoch, the index of the next batch in it, and the random state
/// at the START of that epoch (the epoch's order is re-drawn from it on restore; the generator then continues from
/// where that draw left it). <see cref="Sequences"/> and <see cref="BatchSize"/> guard against restoring into a
/// batcher over other data.
/// </summary>
public sealed record BatcherState(int Epoch, int Index, RngState EpochRng, int Sequences, int BatchSize)
{
    /// <summary>One line of JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, EdgeTune.Internal.EdgeTuneJson.Default.BatcherState);

    /// <summary>Reads a state written by <see cref="ToJson"/>.</summary>
    public static BatcherState FromJson(string json) =>
        JsonSerializer.Deserialize(json, EdgeTune.Internal.EdgeTuneJson.Default.BatcherState)
        ?? throw new JsonException("BatcherState.FromJson: the JSON is null");
}
