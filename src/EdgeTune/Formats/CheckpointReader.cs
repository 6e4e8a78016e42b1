using System.Buffers.Binary;

namespace EdgeTune.Formats;

/// <summary>Opens any supported checkpoint by looking at it, and finds its config.</summary>
public static class CheckpointReader
{
    /// <summary>
    /// A folder or <c>.index.json</c> opens as a (sharded) safetensors checkpoint; a file starting with
    /// "GGUF" or named <c>*.gguf</c> as GGUF; a file whose first 8 bytes are a plausible header length followed by '{' as
    /// safetensors; anything else as a legacy llama2.c checkpoint.
    /// </summary>
    public static ICheckpointReader Open(string path)
    {
        if (Directory.Exists(path) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return TextTowerOrSelf(SafeTensorsCheckpoint.Open(path));
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist", path);
        Span<byte> head = stackalloc byte[9];
        int n;
        using (var fs = File.OpenRead(path)) n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        // A .gguf file is read as GGUF whatever its first bytes, so that a bad magic is reported as such.
        if ((n >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == GgufFile.Magic) || path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return GgufFile.Open(path);
        // Likewise a .safetensors file: a broken header is reported as one, not as a llama2.c file that is too short.
        if ((n == 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) <= SafeTensorsFile.MaxHeaderBytes)
            || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return TextTowerOrSelf(SafeTensorsCheckpoint.Open(path));
        return Llama2cCheckpoint.Open(path);
    }

    /// <summary>A multimodal checkpoint's text tower under plain names (e.g. Gemma 3 4B's language model), else the checkpoint.</summary>
    private static ICheckpointReader TextTowerOrSelf(SafeTensorsCheckpoint checkpoint) =>
        HfTextTower.HasPrefixedTextTower(checkpoint) ? new TextTowerCheckpoint(checkpoint) : checkpoint;

    /// <summary>
    /// The model config of an opened checkpoint: llama2.c's header, GGUF metadata, or for
    /// safetensors the <c>config.json</c> beside the file (an error naming the path when absent).
    /// </summary>
    public static HfConfig ConfigFor(ICheckpointReader checkpoint) => checkpoint switch
    {
        Llama2cCheckpoint l => l.Config,
        GgufFile g => GgufLlama.ToHfConfig(g),
        _ => HfConfig.Load(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpoint.Source)) ?? ".", "config.json")),
    };
}
