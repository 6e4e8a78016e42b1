using System.Text.Json;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>One text's prediction: the most probable label and every label's probability (softmax of the head's logits).</summary>
public sealed record ClassPrediction(string Text, string Label, IReadOnlyList<(string Label, float Probability)> Probabilities);

/// <summary>
/// Sequence classification with an encoder fine-tuned by <c>edgetune finetune --task classify</c>: the folder it wrote holds
/// the encoder (<see cref="BertFolder.Load(string)"/>), classifier.safetensors (the head "classifier" [classes, hidden] with bias, on
/// the encoder's pooled, not normalised, output, as <see cref="EncoderLosses.ClassifierLogits"/> trains it) and labels.json
/// (the label names in class order). The same forward as training, on non-recording tapes.
/// </summary>
public sealed class BertClassifier : IDisposable
{
    private readonly Linear _head;

    private BertClassifier(BertEncoder encoder, BertWordPiece tokenizer, Linear head, IReadOnlyList<string> labels)
    {
        (Encoder, Tokenizer, _head, Labels) = (encoder, tokenizer, head, labels);
    }

    public BertEncoder Encoder { get; }
    public BertWordPiece Tokenizer { get; }

    /// <summary>Label names by class index.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Loads a classifier folder (see the type remarks).</summary>
    /// <exception cref="FileNotFoundException">The folder lacks classifier.safetensors or labels.json (or the encoder's files).</exception>
    /// <exception cref="CheckpointFormatException">The head or the labels do not fit the encoder or each other.</exception>
    public static BertClassifier Load(string dir) => Load(dir, key: null);

    /// <summary>As <see cref="Load(string)"/>; a classifier in an encrypted run folder (<see cref="Security.RunFiles"/>, from
    /// <c>edgetune finetune --task classify --encrypt</c>) is read with <paramref name="key"/>, every file decrypted and
    /// authenticated. A key is ignored for a plain folder.</summary>
    /// <exception cref="Security.EncryptionKeyRequiredException">The folder is encrypted and <paramref name="key"/> is null.</exception>
    /// <exception cref="Security.EncryptedFileException">A wrong key, or a file that was altered, truncated or swapped.</exception>
    public static BertClassifier Load(string dir, Security.EncryptionKey? key)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir)) throw new FileNotFoundException($"classifier '{dir}' is not a folder (give the --out folder of `edgetune finetune --task classify`)", dir);
        var files = Security.RunFiles.ForReading(dir, key);
        string headPath = Path.Combine(dir, "classifier.safetensors"), labelsPath = Path.Combine(dir, "labels.json");
        foreach (string f in (string[])[headPath, labelsPath])
            if (!File.Exists(f)) throw new FileNotFoundException($"no {Path.GetFileName(f)} in '{dir}': not a classifier written by `edgetune finetune --task classify`", f);
        List<string> labels;
        try
        {
            using var doc = JsonDocument.Parse(files.ReadAllBytes(labelsPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new CheckpointFormatException(labelsPath, "labels.json must be a list of label names");
            labels = doc.RootElement.EnumerateArray().Select(e => e.GetString()!).ToList();
        }
        catch (JsonException e) { throw new CheckpointFormatException(labelsPath, $"not valid JSON: {e.Message}"); }
        var (encoder, tokenizer) = BertFolder.Load(dir, files);
        try
        {
            int h = encoder.Config.HiddenSize;
            float[] w, b;
            using (var file = files.OpenSafeTensors(headPath))
            {
                if (!file.Tensors.Any(t => t.Name == "classifier.weight") || !file.Tensors.Any(t => t.Name == "classifier.bias"))
                    throw new CheckpointFormatException(headPath, "classifier.weight and classifier.bias are needed");
                using (var t = file.GetTensor("classifier.weight")) w = t.ToFloatArray();
                using (var t = file.GetTensor("classifier.bias")) b = t.ToFloatArray();
            }
            int classes = b.Length;
            if (classes < 2 || w.Length != classes * h)
                throw new CheckpointFormatException(headPath, $"the head is {w.Length} weights and {b.Length} biases; the encoder's hidden size {h} needs [classes, {h}] and [classes], classes ≥ 2");
            if (labels.Count != classes)
                throw new CheckpointFormatException(labelsPath, $"{labels.Count} labels for a head of {classes} classes");
            var head = new Linear("classifier", new Parameter("classifier.weight", Tensor.From<float>(w, [classes, h], "classifier.weight"), trainable: false),
                new Parameter("classifier.bias", Tensor.From<float>(b, [classes], "classifier.bias"), trainable: false));
            return new BertClassifier(encoder, tokenizer, head, labels);
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    /// <summary>Class probabilities of each text, <paramref name="batchSize"/> texts per forward pass.</summary>
    public IReadOnlyList<ClassPrediction> Predict(IReadOnlyList<string> texts, int batchSize = 32, int maxLength = 256)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be positive");
        maxLength = Math.Min(maxLength, Encoder.Config.MaxPositions);
        var result = new List<ClassPrediction>(texts.Count);
        int classes = Labels.Count;
        for (int i = 0; i < texts.Count; i += batchSize)
        {
            var chunk = texts.Skip(i).Take(batchSize).ToList();
            using var tape = new Tape { IsRecording = false };
            float[] logits = EncoderLosses.ClassifierLogits(tape, Encoder, _head, Tokenizer.EncodeBatch(chunk, maxLength)).Value.ToFloatArray();
            for (int r = 0; r < chunk.Count; r++)
            {
                var p = new float[classes];
                System.Numerics.Tensors.TensorPrimitives.SoftMax(logits.AsSpan(r * classes, classes), p);
                int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(p);
                result.Add(new ClassPrediction(chunk[r], Labels[best], Labels.Select((l, k) => (l, p[k])).ToList()));
            }
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var p in _head.Parameters) p.Dispose();
        Encoder.Dispose();
    }
}
