using System.Runtime.CompilerServices;
using System.Text;
using EdgeTune.Models;
using EdgeTune.Text;

namespace EdgeTune.Generation;

/// <summary>What to generate and when to stop.</summary>
/// <param name="MaxNewTokens">Most tokens to produce.</param>
/// <param name="Sampling">How each token is chosen.</param>
/// <param name="StopStrings">Generation ends before the first occurrence of any of these (it is not emitted).</param>
/// <param name="AddBos">Put BOS in front of the prompt (null: the tokenizer's default).</param>
/// <param name="StopIds">Ids that end generation (EOS); emitted text excludes them.</param>
public sealed record GenerationOptions(
    int MaxNewTokens = 128,
    SamplingOptions? Sampling = null,
    IReadOnlyList<string>? StopStrings = null,
    bool? AddBos = null,
    IReadOnlySet<int>? StopIds = null);

/// <summary>One streamed step: the token chosen and the text it completed (possibly empty).</summary>
public readonly record struct GeneratedPiece(int TokenId, string Text);

/// <summary>Text in, text out: tokenizes the prompt, runs <see cref="TokenGenerator"/>, detokenizes as it goes.</summary>
public sealed class TextGenerator(ICausalLM model, ITokenizer tokenizer)
{
    public StopReason LastStopReason { get; private set; }

    /// <summary>Passed to the <see cref="TokenGenerator"/> of each call.</summary>
    public Diagnostics.GenerationTelemetry Telemetry { get; init; } = Diagnostics.GenerationTelemetry.Shared;

    /// <summary>Streams the generated text piece by piece.</summary>
    public async IAsyncEnumerable<GeneratedPiece> StreamAsync(string prompt, GenerationOptions options,
        ITokenSampler? sampler = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        bool addBos = options.AddBos ?? tokenizer.AddBosByDefault;
        int[] ids = tokenizer.Encode(prompt, addBos: addBos && tokenizer.BosId is not null);
        if (ids.Length == 0)
            ids = tokenizer.BosId is int bos ? [bos] : throw new ArgumentException("the prompt is empty and the tokenizer has no BOS to start from", nameof(prompt));
        sampler ??= new Sampler(options.Sampling ?? new SamplingOptions());
        var stopIds = options.StopIds ?? (tokenizer.EosId is int e ? new HashSet<int> { e } : new HashSet<int>());
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecial: true);
        var stops = new StopStringFilter(options.StopStrings ?? []);
        var gen = new TokenGenerator(model) { Telemetry = Telemetry };
        LastStopReason = StopReason.MaxTokens;
        foreach (int id in gen.Generate(ids, options.MaxNewTokens, sampler, stopIds, cancellationToken: cancellationToken))
        {
            if (stopIds.Contains(id)) { LastStopReason = StopReason.EndOfSequence; break; }
            string text = stops.Push(decoder.Push(id), out bool hit);
            yield return new GeneratedPiece(id, text);
            if (hit) { LastStopReason = StopReason.StopString; yield break; }
            await Task.Yield();
        }
        if (LastStopReason == StopReason.MaxTokens) LastStopReason = gen.LastStopReason;
        string tail = stops.Push(decoder.Flush(), out _) + stops.Flush();
        if (tail.Length > 0) yield return new GeneratedPiece(-1, tail);
    }

    /// <summary>The whole generated text.</summary>
    public async Task<string> GenerateAsync(string prompt, GenerationOptions options, ITokenSampler? sampler = null, CancellationToken cancellationToken = default)
    {
        var sb = new StringBuilder();
        await foreach (var piece in StreamAsync(prompt, options, sampler, cancellationToken).ConfigureAwait(false)) sb.Append(piece.Text);
        return sb.ToString();
    }
}

/// <summary>
/// Holds back streamed text that could be the start of a stop string, so a stop string is never
/// emitted even when it arrives split over several tokens.
/// </summary>
public sealed class StopStringFilter(IReadOnlyList<string> stops)
{
    private readonly StringBuilder _pending = new();

    /// <summary>Adds text; returns what is safe to emit. <paramref name="stopped"/>: a stop string was found
    /// (the returned text ends just before it, and nothing more should be emitted).</summary>
    public string Push(string text, out bool stopped)
    {
        stopped = false;
        if (stops.Count == 0) return text;
        _pending.Append(text);
        string s = _pending.ToString();
        int cut = -1;
        foreach (string stop in stops)
        {
            if (stop.Length == 0) continue;
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0)
        {
            _pending.Clear();
            stopped = true;
            return s[..cut];
        }
        int keep = 0; // longest suffix of s that is a proper prefix of some stop string
        foreach (string stop in stops)
            for (int len = Math.Min(stop.Length - 1, s.Length); len > keep; len--)
                if (string.CompareOrdinal(s, s.Length - len, stop, 0, len) == 0) { keep = len; break; }
        _pending.Clear().Append(s, s.Length - keep, keep);
        return s[..^keep];
    }

    /// <summary>Releases held-back text at the end of generation.</summary>
    public string Flush()
    {
        string s = _pending.ToString();
        _pending.Clear();
        return s;
    }
}
