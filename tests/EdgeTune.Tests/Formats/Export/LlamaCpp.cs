using LLama;
using LLama.Common;
using LLama.Native;

namespace EdgeTune.Tests.Formats.Export;

/// <summary>Tests that drive llama.cpp's native state run one after another in this collection.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LlamaCppCollection
{
    public const string Name = "llama.cpp";
}

/// <summary>llama.cpp (LLamaSharp) helpers for the parity tests: logits of a prompt and greedy generation.</summary>
internal static class LlamaCpp
{
    private static readonly Lazy<string?> NativeError = new(Probe);

    /// <summary>llama.cpp's log since the last <see cref="TakeLog"/> (kept off the test output unless a test prints it).</summary>
    private static readonly System.Text.StringBuilder Log = new();

    public static string TakeLog()
    {
        lock (Log)
        {
            string s = Log.ToString();
            Log.Clear();
            return s;
        }
    }

    private static string? Probe()
    {
        try
        {
            NativeLibraryConfig.All.WithLogCallback((level, message) => { lock (Log) Log.Append(message); });
            NativeApi.llama_max_devices();
            return null;
        }
        catch (Exception e)
        {
            return $"llama.cpp native library did not load: {e.GetType().Name}: {e.Message}";
        }
    }

    public static void RequireNative() => Skip.If(NativeError.Value is not null, NativeError.Value);

    /// <summary>F32 KV cache, no flash attention, CPU only, one thread (deterministic, full precision).</summary>
    public static ModelParams Params(string gguf, int context) => new(gguf)
    {
        ContextSize = (uint)context, BatchSize = (uint)context, UBatchSize = (uint)context, Threads = 1, BatchThreads = 1,
        GpuLayerCount = 0, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
    };

    /// <summary>Logits [T, V] for every prompt position, evaluated in one batch; with <paramref name="lora"/>, that LoRA
    /// GGUF applied at scale 1 on top of <paramref name="gguf"/>.</summary>
    public static float[] Logits(string gguf, int[] ids, int vocab, string? lora = null)
    {
        var p = Params(gguf, Math.Max(64, ids.Length));
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        if (lora is not null) ctx.NativeHandle.SetLoraAdapters([(weights.NativeHandle.LoadLoraFromFile(lora), 1f)]);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, true);
        Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        var all = new float[ids.Length * vocab];
        for (int i = 0; i < ids.Length; i++)
        {
            var row = ctx.NativeHandle.GetLogitsIth(i);
            Assert.Equal(vocab, row.Length);
            row.CopyTo(all.AsSpan(i * vocab, vocab));
        }
        return all;
    }

    /// <summary>Greedy continuation: the prompt in one batch, then one token per decode, argmax of llama.cpp's logits.</summary>
    public static int[] Greedy(string gguf, int[] prompt, int n, int vocab)
    {
        var p = Params(gguf, Math.Max(64, prompt.Length + n));
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        var result = new int[n];
        for (int i = 0; i < n; i++)
        {
            var row = ctx.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            Assert.Equal(vocab, row.Length);
            result[i] = ArgMax(row);
            if (i + 1 == n) break;
            batch.Clear();
            batch.Add(result[i], prompt.Length + i, LLamaSeqId.Zero, true);
            Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        }
        return result;
    }

    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
