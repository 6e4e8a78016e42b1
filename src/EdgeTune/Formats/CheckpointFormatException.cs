namespace EdgeTune.Formats;

/// <summary>
/// Raised when a checkpoint or config file is malformed or unsupported. The message names the
/// file, the tensor or field when there is one, and what was expected.
/// </summary>
public sealed class CheckpointFormatException : IOException
{
    public CheckpointFormatException(string filePath, string message, string? tensorName = null, Exception? inner = null)
        : base(Compose(filePath, message, tensorName), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file that was being read or written.</summary>
    public string FilePath { get; }

    /// <summary>The tensor (or config field) the problem concerns, if any.</summary>
    public string? TensorName { get; }

    // In a JSON file (config.json, an index) the name is a field, not a tensor.
    private static string Compose(string file, string message, string? tensor) =>
        tensor is null ? $"{file}: {message}"
        : $"{file}: {(file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? "field" : "tensor")} '{tensor}': {message}";
}
