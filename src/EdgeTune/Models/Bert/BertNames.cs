namespace EdgeTune.Models.Bert;

/// <summary>
/// Maps checkpoint tensor names of the BERT-style families onto the names <see cref="BertEncoder"/> uses (transformers'
/// BertModel names without <c>bert.</c>). BERT, MiniLM and arctic-embed already use them; DistilBERT names the same
/// post-norm block differently and has no token-type embeddings.
/// </summary>
public static class BertNames
{
    /// <summary>DistilBERT's block names → BERT's (the part after <c>transformer.layer.{i}.</c>).</summary>
    private static readonly (string From, string To)[] DistilBertBlock =
    [
        ("attention.q_lin.", "attention.self.query."),
        ("attention.k_lin.", "attention.self.key."),
        ("attention.v_lin.", "attention.self.value."),
        ("attention.out_lin.", "attention.output.dense."),
        ("sa_layer_norm.", "attention.output.LayerNorm."),
        ("ffn.lin1.", "intermediate.dense."),
        ("ffn.lin2.", "output.dense."),
        ("output_layer_norm.", "output.LayerNorm."),
    ];

    /// <summary>
    /// The <see cref="BertEncoder"/> name of a checkpoint tensor: the <c>bert.</c> / <c>distilbert.</c> model prefix removed,
    /// and DistilBERT's <c>transformer.layer.{i}.attention.q_lin|k_lin|v_lin|out_lin</c>, <c>sa_layer_norm</c>,
    /// <c>ffn.lin1|lin2</c>, <c>output_layer_norm</c> renamed to BERT's <c>encoder.layer.{i}.attention.self.query</c> …
    /// <c>output.LayerNorm</c>. Other names are returned without the prefix (heads the encoder does not use stay unmatched).
    /// </summary>
    public static string Canonical(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (string prefix in (ReadOnlySpan<string>)["bert.", "distilbert."])
            if (name.StartsWith(prefix, StringComparison.Ordinal)) { name = name[prefix.Length..]; break; }
        const string Layer = "transformer.layer.";
        if (!name.StartsWith(Layer, StringComparison.Ordinal)) return name;
        int dot = name.IndexOf('.', Layer.Length);
        if (dot < 0) return name;
        string index = name[Layer.Length..dot], rest = name[(dot + 1)..];
        foreach (var (from, to) in DistilBertBlock)
            if (rest.StartsWith(from, StringComparison.Ordinal)) return $"encoder.layer.{index}.{to}{rest[from.Length..]}";
        return name;
    }

    /// <summary>Adds the zero token-type table [1, hidden] that an encoder without token types (DistilBERT) implies, so that
    /// it runs as a BERT encoder with a single token type: adding a zero row changes nothing.</summary>
    public static void AddMissingTokenTypes(IDictionary<string, float[]> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ContainsKey(BertEncoder.Names.TokenType) || !parameters.TryGetValue(BertEncoder.Names.LayerNormWeight, out var ln)) return;
        parameters[BertEncoder.Names.TokenType] = new float[ln.Length];
    }
}
