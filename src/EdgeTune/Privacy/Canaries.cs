using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Privacy;

/// <summary>
/// Canaries in the sense of Carlini et al. 2019 ("The Secret Sharer", USENIX Security): random secrets of a fixed
/// format, <c>Prefix + d₁ + Separator + d₂ … dₙ</c> with n random decimal digits (e.g. "my code is 4 8 1 5 9 2"),
/// inserted <see cref="Repeats"/> times each into the training data. The randomness space R is all 10ⁿ digit strings.
/// <see cref="MemorizationAudit"/> measures how far each inserted secret ranks above the rest of R under a model.
/// Saved as canaries.json in a run folder (it holds the secrets themselves: treat it like the data).
/// </summary>
public sealed record CanarySet(string Prefix, string Separator, int Digits, int Repeats, IReadOnlyList<string> Secrets)
{
    /// <summary>The default format's prefix.</summary>
    public const string DefaultPrefix = "my code is ";

    /// <summary>File name of a run folder's canaries.</summary>
    public const string FileName = "canaries.json";

    /// <summary>|R| = 10^digits.</summary>
    public double SpaceSize => Math.Pow(10, Digits);

    /// <summary><paramref name="count"/> distinct secrets of <paramref name="digits"/> uniform random digits drawn with
    /// <paramref name="seed"/>, each to be inserted <paramref name="repeats"/> times.</summary>
    public static CanarySet Generate(int count, ulong seed, int repeats = 5, int digits = 6, string prefix = DefaultPrefix, string separator = " ")
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "canaries: count must be > 0");
        if (repeats <= 0) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "canaries: repeats must be > 0");
        if (digits is < 1 or > 18) throw new ArgumentOutOfRangeException(nameof(digits), digits, "canaries: digits must be in 1..18");
        if (count > Math.Pow(10, digits) / 2) throw new ArgumentOutOfRangeException(nameof(count), count, $"canaries: {count} secrets are too many for {digits} digits");
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(separator);
        var rng = new Rng(seed);
        var secrets = new List<string>(count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (secrets.Count < count)
        {
            string s = RandomSecret(rng, digits);
            if (seen.Add(s)) secrets.Add(s);
        }
        return new CanarySet(prefix, separator, digits, repeats, secrets);
    }

    /// <summary>n uniform random digits.</summary>
    public static string RandomSecret(Rng rng, int digits)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var chars = new char[digits];
        for (int i = 0; i < digits; i++) chars[i] = (char)('0' + rng.NextInt(10));
        return new string(chars);
    }

    /// <summary>The text of a secret in this format: the prefix, then its digits joined by the separator.</summary>
    public string Render(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        if (secret.Length != Digits || secret.Any(c => c is < '0' or > '9'))
            throw new ArgumentException($"canaries: '{secret}' is not {Digits} decimal digits", nameof(secret));
        var sb = new StringBuilder(Prefix);
        for (int i = 0; i < secret.Length; i++)
        {
            if (i > 0) sb.Append(Separator);
            sb.Append(secret[i]);
        }
        return sb.ToString();
    }

    /// <summary>A text as it is trained on and scored: [BOS] + text + [EOS], every token trained (the plain-text
    /// encoding of <see cref="ExampleEncoder.EncodeText"/>).</summary>
    public static int[] Encode(ITokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new ExampleEncoder(tokenizer, null).EncodeText(0, text).Tokens;
    }

    /// <summary>The training sequences to add: each secret's text, alone in a padded sequence of
    /// <paramref name="seqLen"/>, <see cref="Repeats"/> times.</summary>
    public IReadOnlyList<TrainingSequence> ToSequences(ITokenizer tokenizer, int seqLen, int padId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var encoder = new ExampleEncoder(tokenizer, null);
        var one = Secrets.Select(s => encoder.EncodeText(0, Render(s))).ToList();
        if (one.Any(e => e.Length > seqLen))
            throw new ArgumentException($"canaries: a canary is {one.Max(e => e.Length)} tokens, longer than the sequence length {seqLen}");
        var packed = SequencePacker.Pack(one, seqLen, pack: false, tokenizer.EosId, padId).Sequences;
        var result = new List<TrainingSequence>(packed.Count * Repeats);
        for (int r = 0; r < Repeats; r++) result.AddRange(packed);
        return result;
    }

    public string ToJson()
    {
        var node = new JsonObject
        {
            ["prefix"] = Prefix, ["separator"] = Separator, ["digits"] = Digits, ["repeats"] = Repeats,
            ["secrets"] = new JsonArray([.. Secrets.Select(s => (JsonNode)JsonValue.Create(s)!)]),
        };
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static CanarySet FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var node = JsonNode.Parse(json)?.AsObject() ?? throw new InvalidDataException("canaries: the file is not a JSON object");
            var secrets = node["secrets"]?.AsArray().Select(n => n!.GetValue<string>()).ToList()
                ?? throw new InvalidDataException("canaries: no \"secrets\" array");
            var set = new CanarySet(node["prefix"]?.GetValue<string>() ?? DefaultPrefix, node["separator"]?.GetValue<string>() ?? " ",
                node["digits"]?.GetValue<int>() ?? throw new InvalidDataException("canaries: no \"digits\""),
                node["repeats"]?.GetValue<int>() ?? 1, secrets);
            foreach (string s in secrets) set.Render(s); // validates each secret's format
            return set;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataException("canaries: " + e.Message, e);
        }
    }

    public void Save(string path) => File.WriteAllText(path, ToJson());

    public static CanarySet Load(string path) => FromJson(File.ReadAllText(path));
}
