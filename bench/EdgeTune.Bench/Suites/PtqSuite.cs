using System.Globalization;
using System.Text;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Calibration;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Models;
using EdgeTune.Text;
using EdgeTune.Training.Evaluation;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Perplexity of a model after post-training quantization (the `ptq` suite): F32, then per format plain rounding and
/// calibration-aware (importance-weighted) rounding. The weights are replaced in memory by their dequantized
/// values (what a quantized model computes); projections whose rows do not fit the format's block stay F32.
/// <code>EdgeTune.Bench ptq --model DIR [--tokenizer T] --data VAL.txt [--calib TRAIN.txt] [--formats q4_0,nf4]
///   [--calib-seqs 32] [--seq-len 256] [--no-f32] [--no-plain] [--exponents 1,0.5]</code>
/// Ends with one JSON line.
/// </summary>
public static class PtqSuite
{
    public static int Run(string[] args)
    {
        string? model = null, tok = null, data = null, calib = null;
        string formats = "q4_0,q8_0";
        int calibSeqs = 32, seqLen = 256;
        bool f32 = true, plain = true;
        double[] exponents = [1.0];
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model": model = Next(); break;
                case "--tokenizer": tok = Next(); break;
                case "--data": data = Next(); break;
                case "--calib": calib = Next(); break;
                case "--formats": formats = Next(); break;
                case "--calib-seqs": calibSeqs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--seq-len": seqLen = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--no-f32": f32 = false; break;
                case "--no-plain": plain = false; break;
                case "--exponents": exponents = Next().Split(',').Select(e => double.Parse(e, CultureInfo.InvariantCulture)).ToArray(); break;
                default: Console.Error.WriteLine($"ptq: unknown option {args[i]}"); return 2;
            }
        }
        if (model is null || data is null)
        {
            Console.Error.WriteLine("usage: ptq --model DIR [--tokenizer T] --data VAL.txt [--calib TRAIN.txt] [--formats q4_0,nf4] [--calib-seqs N] [--seq-len L] [--no-f32]");
            return 2;
        }
        var c = CultureInfo.InvariantCulture;
        LoadedModel Load() => ModelLoader.Load(model, tok, ModelLoadOptions.FullFineTuning);
        using var first = Load();
        var tokenizer = first.RequireTokenizer();
        var windows = Windows(File.ReadAllText(data, Encoding.UTF8), tokenizer, seqLen);
        var results = new List<(string Name, double Ppl, string Detail)>();
        var llama0 = (DecoderModel)first.Model;
        if (f32) results.Add(("f32", LossEvaluator.Evaluate(llama0, windows).Perplexity, ""));
        ActivationStats? stats = null;
        if (calib is not null)
        {
            var ids = Encode(File.ReadAllText(calib, Encoding.UTF8), tokenizer);
            var seqs = new List<int[]>();
            int len = Math.Min(seqLen, llama0.MaxPositions);
            long stride = Math.Max(len, (ids.Length - len) / Math.Max(1, calibSeqs));
            for (long s = 0; s + len <= ids.Length && seqs.Count < calibSeqs; s += stride) seqs.Add(ids.AsSpan((int)s, len).ToArray());
            stats = ActivationStats.Collect(llama0, seqs);
            Console.WriteLine($"calibration: {stats.Tokens} tokens in {seqs.Count} sequences from {calib}");
        }
        foreach (string name in formats.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var format = QuantFormats.Parse(name);
            if (plain)
            {
                using var m = Load();
                var done = QatInjector.RoundWeights((DecoderModel)m.Model, format);
                results.Add(($"{name} plain", LossEvaluator.Evaluate((DecoderModel)m.Model, windows).Perplexity, $"{done.Count} projections rounded"));
            }
            if (stats is not null)
                foreach (double e in exponents)
                {
                    using var m = Load();
                    var done = stats.RoundWeights((DecoderModel)m.Model, format, weighted: true, exponent: e);
                    string label = e == 1 ? $"{name} weighted" : string.Create(c, $"{name} weighted^{e}");
                    results.Add((label, LossEvaluator.Evaluate((DecoderModel)m.Model, windows).Perplexity, $"{done.Count} projections rounded"));
                }
        }
        Console.WriteLine($"model {model}, data {data}: {windows.Count} windows of {seqLen}");
        foreach (var (n, p, d) in results) Console.WriteLine(string.Create(c, $"  {n,-16} ppl {p,9:F3}  {d}"));
        Console.WriteLine("{" + string.Join(", ", results.Select(r => string.Create(c, $"\"{r.Name}\": {r.Ppl:F4}"))) + "}");
        return 0;
    }

    private static int[] Encode(string text, ITokenizer tokenizer) =>
        tokenizer.Encode(text, addBos: tokenizer.AddBosByDefault && tokenizer.BosId is not null, parseSpecial: false);

    // The same windows as `edgetune eval --data` on a plain-text file.
    private static IReadOnlyList<EvalWindow> Windows(string text, ITokenizer tokenizer, int seqLen) =>
        TextWindows.Create(Encode(text, tokenizer), seqLen, tokenizer.PadId ?? tokenizer.EosId ?? 0);
}
