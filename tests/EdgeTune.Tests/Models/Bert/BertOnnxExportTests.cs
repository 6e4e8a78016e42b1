using EdgeTune.Adapters;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using EdgeTune.Tensors;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>The real all-MiniLM-L6-v2, given a LoRA adapter (a fine-tuned MiniLM), exported to ONNX and run by ONNX Runtime:
/// its sentence embeddings and last hidden state equal ours on padded batches; the int8 QDQ export's error is measured.</summary>
public sealed class BertOnnxExportTests(ITestOutputHelper output)
{
    private static readonly string[] Texts =
    [
        "Book a table for two at an Italian place tonight.", "What's the weather tomorrow?", "Remind me to call mum.",
        "Translate 'good morning' into French.", "Play something relaxing.", "How many steps did I walk today?",
        "Summarise my notes from the meeting about the budget and the hiring plan.", "Turn off the lights.",
        "Find emails from Sam about the trip.", "Set a timer for ten minutes.", "a", "Order more coffee beans.",
        "When is the next train to Leeds?", "Write a haiku about autumn leaves.", "Convert 30 euros to pounds.",
        "Who won the match last night?", "Add milk to the shopping list.", "Open the garage door.",
        "Schedule a dentist appointment next week.", "Read me the latest headlines.",
    ];

    [Fact]
    public void FineTunedMiniLmExportMatchesOurEmbeddings()
    {
        using var encoder = BertOnnx.Load(MiniLmAssets.Graph, BertConfig.AllMiniLmL6V2); // its own copy: the adapter changes it
        using var adapter = LoraInjector.Apply(encoder, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["query", "value", "dense"], InitSeed = 5 });
        EdgeTune.Tests.Adapters.AdapterTestUtil.RandomizeB(adapter, 77, std: 0.05);
        var batch = MiniLmAssets.Tokenizer.EncodeBatch(Texts);
        float[][] ours = encoder.SentenceEmbeddings(batch);
        float[] hidden = encoder.LastHiddenState(batch);
        using var dir = new EdgeTune.Tests.Formats.TempDir();
        var f32 = OnnxEncoderExporter.Export(encoder, dir.File("f32"));
        var (theirs, theirHidden) = Run(f32.ModelPath, batch);
        double maxAbs = 0, minCos = 1;
        for (int b = 0; b < Texts.Length; b++)
        {
            minCos = Math.Min(minCos, Dot(ours[b], theirs[b]));
            for (int i = 0; i < ours[b].Length; i++) maxAbs = Math.Max(maxAbs, Math.Abs(ours[b][i] - theirs[b][i]));
        }
        double hiddenMax = 0;
        for (int i = 0; i < hidden.Length; i++)
            if (batch.AttentionMask[i / encoder.Config.HiddenSize] != 0) hiddenMax = Math.Max(hiddenMax, Math.Abs(hidden[i] - theirHidden[i]));
        output.WriteLine($"F32: {f32.Nodes} nodes; sentence embeddings max |Δ| {maxAbs:E2}, min cosine {minCos:F9}; attended hidden max |Δ| {hiddenMax:E2}");
        Assert.True(maxAbs <= 1e-4 && minCos >= 0.99999, $"max |Δ| {maxAbs}, min cosine {minCos}");
        Assert.True(hiddenMax <= 1e-4, $"hidden max |Δ| {hiddenMax}");
        // the adapter changed the model, so this is the fine-tuned one, not the package's
        Assert.True(MiniLmAssets.Encoder.SentenceEmbeddings(batch).Zip(ours).Min(p => Dot(p.First, p.Second)) < 0.9999);

        var int8 = OnnxEncoderExporter.Export(encoder, dir.File("int8"), new OnnxExportOptions(OnnxWeightFormat.Int8));
        var (q, _) = Run(int8.ModelPath, batch);
        double minCos8 = Enumerable.Range(0, Texts.Length).Min(b => Dot(ours[b], q[b]));
        output.WriteLine($"int8 QDQ: max weight error {int8.MaxWeightError:E2}; min cosine to F32 embeddings {minCos8:F5}; " +
            $"data {new FileInfo(int8.ModelPath + ".data").Length / 1e6:F1} MB vs {new FileInfo(f32.ModelPath + ".data").Length / 1e6:F1} MB");
        Assert.True(minCos8 > 0.98 && minCos8 < 0.999999, $"int8 min cosine {minCos8}");
    }

    /// <summary>The exported head follows the encoder's pooling: [CLS] with and without Normalize (arctic-embed's is [CLS] +
    /// Normalize), on a random encoder with padding in the batch.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ClsPoolingIsExportedAsTheEncoderPools(bool normalize)
    {
        using var encoder = BertEncoder.CreateRandom(new BertConfig(MiniLmAssets.Encoder.Config.VocabSize, 24, 2, 3, 40, 64, 2), 13, std: 0.1f);
        encoder.Pooling = new SentencePooling(PoolingMode.Cls, normalize);
        var batch = MiniLmAssets.Tokenizer.EncodeBatch(Texts);
        Assert.Contains(0, batch.AttentionMask);
        float[][] ours = encoder.SentenceEmbeddings(batch);
        using var dir = new EdgeTune.Tests.Formats.TempDir();
        var (theirs, _) = Run(OnnxEncoderExporter.Export(encoder, dir.File("cls")).ModelPath, batch);
        for (int i = 0; i < ours.Length; i++)
            for (int d = 0; d < 24; d++) Assert.Equal(ours[i][d], theirs[i][d], 1e-5f);
        Assert.Equal(normalize, Math.Abs(Dot(ours[0], ours[0]) - 1) < 1e-5);
    }

    private static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    private static (float[][] Sentence, float[] Hidden) Run(string model, BertBatch batch)
    {
        using var session = new InferenceSession(model);
        int[] dims = [batch.Batch, batch.Length];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(batch.InputIds.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(batch.AttentionMask.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(batch.TokenTypeIds.Select(x => (long)x).ToArray(), dims)),
        };
        using var results = session.Run(inputs);
        var s = results.Single(r => r.Name == "sentence_embedding").AsTensor<float>();
        var h = results.Single(r => r.Name == "last_hidden_state").AsTensor<float>().ToArray();
        int c = (int)s.Dimensions[1];
        var flat = s.ToArray();
        return (Enumerable.Range(0, batch.Batch).Select(b => flat.AsSpan(b * c, c).ToArray()).ToArray(), h);
    }
}

/// <summary><c>edgetune export --format onnx</c> on a sentence-transformers folder writes the encoder graph and its vocabulary.</summary>
public sealed class BertOnnxExportCommandTests
{
    [Fact]
    public void EncoderFolderExportsFromTheCommandLine()
    {
        using var dir = new EdgeTune.Tests.Formats.TempDir();
        using var encoder = BertOnnx.Load(MiniLmAssets.Graph, BertConfig.AllMiniLmL6V2);
        BertFolder.Save(encoder, MiniLmAssets.Tokenizer, dir.File("minilm"));
        var (code, stdout, stderr) = EdgeTune.Tests.Cli.CliRunner.Run("export", "--model", dir.File("minilm"), "--format", "onnx", "--out", dir.File("onnx"));
        Assert.True(code == 0, stderr);
        Assert.Contains("ONNX encoder graph", stderr);
        Assert.Contains(Path.GetFullPath(dir.File("onnx")), stdout);
        Assert.True(File.Exists(dir.File("onnx/vocab.txt")));
        var batch = MiniLmAssets.Tokenizer.EncodeBatch(["Turn off the lights.", "What's the weather tomorrow in the mountains?"]);
        using var session = new InferenceSession(dir.File("onnx/model.onnx"));
        int[] dims = [batch.Batch, batch.Length];
        using var results = session.Run(new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(batch.InputIds.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(batch.AttentionMask.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(batch.TokenTypeIds.Select(x => (long)x).ToArray(), dims)),
        });
        var theirs = results.Single(r => r.Name == "sentence_embedding").AsTensor<float>().ToArray();
        var ours = encoder.SentenceEmbeddings(batch).SelectMany(e => e).ToArray();
        Assert.Equal(ours.Length, theirs.Length);
        Assert.True(ours.Zip(theirs).Max(p => Math.Abs(p.First - p.Second)) <= 1e-4);
    }
}
