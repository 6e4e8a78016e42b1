using EdgeTune.Adapters;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;

namespace EdgeTune.Tests.Serving;

/// <summary>A small random-weight Llama over the byte vocabulary (the demo model's shape, weights wide enough that
/// greedy picks are decisive) with a byte tokenizer; ChatML is the template (its markers are plain bytes here).</summary>
internal static class ChatTestKit
{
    public const ulong ModelSeed = 17;

    /// <summary>Hidden 128, 4 layers, 4 query heads of 32 over 2 key/value heads, FFN 344, tied, over the byte tokenizer's
    /// 259 ids (256 bytes, BOS 256, EOS 257, PAD 258).</summary>
    public static readonly EdgeTune.Formats.HfConfig Config = new()
    {
        ModelType = "llama", Architectures = ["LlamaForCausalLM"], HiddenSize = 128, IntermediateSize = 344, NumHiddenLayers = 4,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 32, VocabSize = 259, RmsNormEps = 1e-5, RopeTheta = 10000.0,
        MaxPositionEmbeddings = 256, TieWordEmbeddings = true, BosTokenId = 256, EosTokenIds = [257], PadTokenId = 258, TorchDtype = "float32",
    };

    public static DecoderModel Model() => DecoderModel.CreateRandom(Config, ModelSeed, RopeStyle.HalfSplit, std: 0.08f);

    public static ByteTokenizer Tokenizer() => new();

    public static readonly LoraConfig Lora = new() { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"] };

    /// <summary>Applies an adapter named <paramref name="name"/> with random B (seeded), so it changes the output.</summary>
    public static LoraAdapter RandomAdapter(DecoderModel model, string name, ulong seed)
    {
        var a = LoraInjector.Apply(model, Lora with { InitSeed = seed }, name);
        Adapters.AdapterTestUtil.RandomizeB(a, seed, std: 0.3);
        return a;
    }

    /// <summary>Saves a random adapter as a PEFT folder under <paramref name="dir"/>/<paramref name="name"/> and takes it off the model.</summary>
    public static string SaveRandomAdapter(DecoderModel model, string dir, string name, ulong seed)
    {
        string folder = Path.Combine(dir, name);
        var a = RandomAdapter(model, name, seed);
        AdapterFiles.Save(a, folder);
        a.Remove();
        return folder;
    }

    public static LocalChatClient Client(DecoderModel model, IEnumerable<LoraAdapter>? adapters = null, int maxOutputTokens = 24) =>
        new(new AdapterSwitchingModel(model, adapters), Tokenizer(), new LocalChatClientOptions(ModelId: "tiny", MaxOutputTokens: maxOutputTokens));
}
