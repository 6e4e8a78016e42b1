using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// An opened checkpoint: lists its tensors and hands them out by name. Tensors are read-only
/// views into a memory-mapped file; they stay valid until the reader is disposed.
/// </summary>
public interface ICheckpointReader : IDisposable
{
    /// <summary>The file (or index file) the checkpoint was opened from.</summary>
    string Source { get; }

    /// <summary>The RoPE pairing that the q/k projection rows of this checkpoint follow.</summary>
    RopeStyle RopeLayout { get; }

    /// <summary>Every tensor, in file order.</summary>
    IReadOnlyList<TensorInfo> Tensors { get; }

    bool Contains(string name);

    /// <summary>A read-only view of the named tensor; throws <see cref="KeyNotFoundException"/> naming the checkpoint if absent.</summary>
    Tensor GetTensor(string name);
}
