using System.Reflection;
using System.Security.Cryptography;

namespace EdgeTune.Models;

/// <summary>
/// The small pre-trained model shipped inside the EdgeTune assembly, so fine-tuning works offline with no download:
/// Andrej Karpathy's stories260K (llama2.c, MIT; a 260 K-weight Llama-2 trained on TinyStories, 512-token vocabulary),
/// its tokenizer, and the demo's training data (stories that teach it a new character, Zog the little green dragon).
/// </summary>
/// <remarks>
/// The embedded files are written once to a folder under the system temp directory named after their content hash
/// (<see cref="Stories260KFolder"/>), because checkpoints are memory-mapped from files; the folder also holds the
/// model's MIT <c>LICENSE</c> and <c>PROVENANCE.md</c>. Concurrent callers are safe: every file is written beside its
/// target and renamed into place.
/// </remarks>
public static class BuiltInModels
{
    /// <summary>The name the built-in model is reported under (e.g. as an adapter's base model).</summary>
    public const string Stories260KName = "edgetune-builtin/stories260K";

    /// <summary>Checkpoint file name inside <see cref="Stories260KFolder"/>.</summary>
    public const string ModelFile = "stories260K.bin";

    /// <summary>Tokenizer file name inside <see cref="Stories260KFolder"/> (llama2.c tokenizer.bin format).</summary>
    public const string TokenizerFile = "tokenizer.bin";

    /// <summary>Demo data file name inside <see cref="Stories260KFolder"/> (JSONL, one <c>{"text": ...}</c> story a line).</summary>
    public const string DemoDataFile = "zog-stories.jsonl";

    /// <summary>Completion prompts whose answers the demo data teaches (greedy: the base model does not know them).</summary>
    public static IReadOnlyList<string> DemoPrompts { get; } = ["Zog is a little", "Zog likes to eat", "Zog's best friend is"];

    private const string ResourcePrefix = "EdgeTune.BuiltIn.";
    private static readonly string[] Resources = ["stories260K.bin", "tok512.bin", "zog-stories.jsonl", "LICENSE", "PROVENANCE.md"];
    private static readonly Lock Gate = new();
    private static string? _folder;

    /// <summary>Loads stories260K with its tokenizer (no chat template: it is a story model that continues text).</summary>
    /// <param name="options">How to load (e.g. <see cref="ModelLoadOptions.FullFineTuning"/>); default: inference (frozen, memory-mapped).</param>
    public static LoadedModel Stories260K(ModelLoadOptions? options = null)
    {
        string dir = Stories260KFolder();
        return ModelLoader.Load(Path.Combine(dir, ModelFile), Path.Combine(dir, TokenizerFile), options);
    }

    /// <summary>Path of the demo training data (written out of the assembly on first use).</summary>
    public static string DemoDataPath() => Path.Combine(Stories260KFolder(), DemoDataFile);

    /// <summary>
    /// The folder holding the built-in files (<see cref="ModelFile"/>, <see cref="TokenizerFile"/>, <see cref="DemoDataFile"/>,
    /// <c>LICENSE</c>, <c>PROVENANCE.md</c>), written out of the assembly's resources on first use.
    /// </summary>
    public static string Stories260KFolder()
    {
        lock (Gate)
        {
            if (_folder is not null && Directory.Exists(_folder)) return _folder;
            var asm = typeof(BuiltInModels).Assembly;
            var contents = Resources.Select(name => (Name: OutputName(name), Bytes: Read(asm, name))).ToList();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var (_, bytes) in contents) sha.AppendData(bytes);
            string hash = Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
            string dir = Path.Combine(Path.GetTempPath(), "edgetune", "builtin-" + hash);
            Directory.CreateDirectory(dir);
            foreach (var (name, bytes) in contents)
            {
                string target = Path.Combine(dir, name);
                if (File.Exists(target) && new FileInfo(target).Length == bytes.Length && File.ReadAllBytes(target).AsSpan().SequenceEqual(bytes)) continue;
                string tmp = Path.Combine(dir, $".{name}.{Guid.NewGuid():N}.tmp");
                File.WriteAllBytes(tmp, bytes);
                File.Move(tmp, target, overwrite: true);
            }
            return _folder = dir;
        }
    }

    private static string OutputName(string resource) => resource == "tok512.bin" ? TokenizerFile : resource;

    private static byte[] Read(Assembly asm, string name)
    {
        using var s = asm.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new InvalidOperationException($"EdgeTune assembly has no embedded resource '{ResourcePrefix + name}' (a trimmed or modified build?)");
        using var m = new MemoryStream((int)s.Length);
        s.CopyTo(m);
        return m.ToArray();
    }
}
