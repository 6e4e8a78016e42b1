using System.Buffers.Binary;
using System.Text;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

/// <summary>
/// Writes the malformed checkpoints of tests/EdgeTune.Tests/Corpus (each under 4 KB). The files are committed;
/// <see cref="BadInputCorpusTests.CommittedCorpusMatchesTheGenerator"/> keeps them equal to this generator's output,
/// and EDGETUNE_REGEN_CORPUS=1 rewrites them in the source tree.
/// </summary>
internal static class BadInputCorpusGenerator
{
    /// <summary>A valid tiny Llama config (hidden 8, one layer, 2 heads over 1 kv head, FFN 16, vocab 16).</summary>
    public const string TinyConfig = """
        {
          "model_type": "llama",
          "architectures": ["LlamaForCausalLM"],
          "hidden_size": 8,
          "intermediate_size": 16,
          "num_hidden_layers": 1,
          "num_attention_heads": 2,
          "num_key_value_heads": 1,
          "vocab_size": 16,
          "rms_norm_eps": 1e-5,
          "tie_word_embeddings": true
        }
        """;

    /// <summary>Writes every corpus entry under <paramref name="root"/> (files and one folder per model case).</summary>
    public static void Generate(string root)
    {
        Directory.CreateDirectory(root);
        string P(string name) => Path.Combine(root, name);

        // --- safetensors ---
        byte[] good = SafeTensors("""{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}""", 32);
        File.WriteAllBytes(P("st-truncated.safetensors"), good[..(good.Length - 12)]);
        var lying = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(lying, 1_000_000);
        File.WriteAllBytes(P("st-header-beyond-file.safetensors"), lying);
        File.WriteAllBytes(P("st-offsets-out-of-range.safetensors"),
            SafeTensors("""{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,4000000000]}}""", 32));
        File.WriteAllBytes(P("st-offsets-overlap.safetensors"),
            SafeTensors("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24));
        File.WriteAllBytes(P("st-absurd-shape.safetensors"),
            SafeTensors("""{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,32]}}""", 32)); // 2^40 elements
        File.WriteAllBytes(P("st-absurd-shape-overflow.safetensors"),
            SafeTensors("""{"w":{"dtype":"F64","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,32]}}""", 32));
        File.WriteAllBytes(P("st-unknown-dtype.safetensors"),
            SafeTensors("""{"w":{"dtype":"F7","shape":[2,4],"data_offsets":[0,32]}}""", 32));
        File.WriteAllBytes(P("st-header-not-json.safetensors"), SafeTensors("{\"w\":{\"dtype\":\"F32\",", 32));

        // --- GGUF ---
        byte[] gguf = ValidGguf(root);
        File.WriteAllBytes(P("gguf-bad-magic.gguf"), Patch(gguf, 0, "GGUX"u8));
        File.WriteAllBytes(P("gguf-absurd-tensor-count.gguf"), PatchU64(gguf, 8, 1UL << 40));
        File.WriteAllBytes(P("gguf-absurd-metadata-count.gguf"), PatchU64(gguf, 16, ulong.MaxValue));
        File.WriteAllBytes(P("gguf-absurd-string-length.gguf"), PatchU64(gguf, 24, 1UL << 60)); // the first key's length
        File.WriteAllBytes(P("gguf-truncated-data.gguf"), gguf[..(gguf.Length - 40)]);
        File.WriteAllBytes(P("gguf-truncated-header.gguf"), gguf[..30]);

        // --- llama2.c (legacy header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) ---
        File.WriteAllBytes(P("llama2c-truncated.bin"), Llama2c([8, 16, 1, 2, 2, 16, 8], 100));
        File.WriteAllBytes(P("llama2c-absurd-header.bin"), Llama2c([1 << 30, 1 << 30, 1 << 20, 2, 2, 1 << 30, 8], 64));
        File.WriteAllBytes(P("llama2c-negative-field.bin"), Llama2c([8, -16, 1, 2, 2, 16, 8], 64));

        // --- model folders: config.json + model.safetensors ---
        Folder(root, "model-config-gpt2", """
            {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 8, "n_layer": 1, "n_head": 2,
             "n_positions": 32, "vocab_size": 16, "activation_function": "gelu_new"}
            """, TinyTensors(all: true));
        Folder(root, "model-config-mamba", """
            {"model_type": "mamba", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2, "vocab_size": 16}
            """, TinyTensors(all: true));
        Folder(root, "model-config-missing-fields", """{"model_type": "llama", "hidden_size": 8, "vocab_size": 16}""", TinyTensors(all: true));
        Folder(root, "model-config-not-json", "{\"model_type\": \"llama\", \"hidden_size\": ", TinyTensors(all: true));
        Folder(root, "model-config-zero-heads", TinyConfig.Replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 0"), TinyTensors(all: true));
        Folder(root, "model-missing-tensors", TinyConfig, TinyTensors(all: false));
        Folder(root, "model-wrong-shape", TinyConfig, TinyTensors(all: true, embedColumns: 4));
        Directory.CreateDirectory(Path.Combine(root, "model-no-config"));
        WriteTensors(Path.Combine(root, "model-no-config", "model.safetensors"), TinyTensors(all: true));
    }

    private static byte[] SafeTensors(string header, int dataBytes)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        for (int i = 0; i < dataBytes; i++) b[8 + h.Length + i] = (byte)i;
        return b;
    }

    private static byte[] ValidGguf(string root)
    {
        string tmp = Path.Combine(root, ".valid.gguf.tmp");
        using (var w = Tensor.From<float>(Enumerable.Range(0, 32).Select(i => i / 8f).ToArray(), [4, 8], "w"))
            GgufWriter.Write(tmp, [new("general.architecture", (GgufValue)"llama"), new("general.name", (GgufValue)"corpus")], [w]);
        byte[] b = File.ReadAllBytes(tmp);
        File.Delete(tmp);
        return b;
    }

    private static byte[] Patch(byte[] src, int at, ReadOnlySpan<byte> bytes)
    {
        var b = (byte[])src.Clone();
        bytes.CopyTo(b.AsSpan(at));
        return b;
    }

    private static byte[] PatchU64(byte[] src, int at, ulong v)
    {
        var b = (byte[])src.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
        return b;
    }

    private static byte[] Llama2c(int[] header, int payloadBytes)
    {
        var b = new byte[header.Length * 4 + payloadBytes];
        for (int i = 0; i < header.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(i * 4), header[i]);
        return b;
    }

    /// <summary>The tiny config's tensors (HF names), or only the embedding and final norm.</summary>
    private static List<(string Name, int[] Shape)> TinyTensors(bool all, int embedColumns = 8)
    {
        var t = new List<(string, int[])> { ("model.embed_tokens.weight", [16, embedColumns]), ("model.norm.weight", [8]) };
        if (!all) return t;
        const string L = "model.layers.0.";
        t.Add((L + "input_layernorm.weight", [8]));
        t.Add((L + "post_attention_layernorm.weight", [8]));
        t.Add((L + "self_attn.q_proj.weight", [8, 8]));
        t.Add((L + "self_attn.k_proj.weight", [4, 8]));
        t.Add((L + "self_attn.v_proj.weight", [4, 8]));
        t.Add((L + "self_attn.o_proj.weight", [8, 8]));
        t.Add((L + "mlp.gate_proj.weight", [16, 8]));
        t.Add((L + "mlp.up_proj.weight", [16, 8]));
        t.Add((L + "mlp.down_proj.weight", [8, 16]));
        return t;
    }

    private static void Folder(string root, string name, string configJson, List<(string Name, int[] Shape)> tensors)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), configJson.ReplaceLineEndings("\n") + "\n");
        WriteTensors(Path.Combine(dir, "model.safetensors"), tensors);
    }

    /// <summary>BF16 tensors (keeps every file under 4 KB) with small deterministic values.</summary>
    private static void WriteTensors(string path, List<(string Name, int[] Shape)> tensors)
    {
        var owned = tensors.Select(t =>
        {
            int n = t.Shape.Aggregate(1, (a, d) => a * d);
            using var f = Tensor.From<float>(Enumerable.Range(0, n).Select(i => ((i * 7) % 13 - 6) / 64f).ToArray(), t.Shape, t.Name);
            return f.To(DType.BF16);
        }).ToList();
        try
        {
            SafeTensorsWriter.Write(path, owned.Select(t => new KeyValuePair<string, Tensor>(t.Name, t)));
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }
}
