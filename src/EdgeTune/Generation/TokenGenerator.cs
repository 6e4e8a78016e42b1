using System.Diagnostics;
using EdgeTune.Diagnostics;
using EdgeTune.Models;

namespace EdgeTune.Generation;

/// <summary>Why a generation ended.</summary>
public enum StopReason { MaxTokens, EndOfSequence, StopString, ContextFull, Cancelled }

/// <summary>
/// Token-level generation: the prompt is prefilled in one batched pass, then one token at a time
/// is sampled and fed back through the KV cache. Yields each new token id as it is chosen.
/// </summary>
public sealed class TokenGenerator
{
    private readonly ICausalLM _model;

    public TokenGenerator(ICausalLM model) => _model = model;

    /// <summary>Where prompt and generated tokens, time to first token, duration and throughput are measured; the
    /// library's shared meter unless one made from an <see cref="System.Diagnostics.Metrics.IMeterFactory"/> is given.</summary>
    public GenerationTelemetry Telemetry { get; init; } = GenerationTelemetry.Shared;

    /// <summary>Why the last <see cref="Generate"/> ended.</summary>
    public StopReason LastStopReason { get; private set; }

    /// <param name="prompt">Prompt ids, BOS included if the model wants one; at least one id.</param>
    /// <param name="maxNewTokens">Most ids to produce.</param>
    /// <param name="sampler">Chooses each id from the logits.</param>
    /// <param name="stopIds">Ids that end generation (EOS); they are yielded, then generation stops.</param>
    /// <param name="contextLength">KV cache size; defaults to prompt + maxNewTokens, capped at the model's limit.</param>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, int maxNewTokens, ITokenSampler sampler,
        IReadOnlySet<int>? stopIds = null, int? contextLength = null, CancellationToken cancellationToken = default)
    {
        if (prompt.Count == 0) throw new ArgumentException("generation needs at least one prompt token (e.g. BOS)", nameof(prompt));
        if (maxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens, "must be >= 0");
        int capacity = contextLength ?? Math.Min(_model.MaxPositions, prompt.Count + maxNewTokens);
        if (prompt.Count > capacity)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens but the context holds only {capacity} (model limit {_model.MaxPositions})", nameof(prompt));

        int v = _model.VocabSize;
        var logits = new float[v];
        var history = new List<int>(prompt);
        using var cache = _model.CreateCache(capacity);
        long started = Stopwatch.GetTimestamp();
        var span = GenerationTelemetry.StartDetached(GenerationTelemetry.GenerateSpanName);
        var phase = GenerationTelemetry.StartDetached(GenerationTelemetry.PrefillSpanName, span?.Context ?? default);
        int produced = 0;
        bool ended = false, suspended = false; // not ended in the finally block: the consumer stopped reading at a yield, or an error
        try
        {
            _model.Forward(prompt.ToArray(), cache, logits);
            Telemetry.RecordPrompt(prompt.Count);
            GenerationTelemetry.StopDetached(phase);
            phase = GenerationTelemetry.StartDetached(GenerationTelemetry.DecodeSpanName, span?.Context ?? default);
            LastStopReason = StopReason.MaxTokens;
            for (int n = 0; n < maxNewTokens; n++)
            {
                if (cancellationToken.IsCancellationRequested) { LastStopReason = StopReason.Cancelled; ended = true; yield break; }
                int next = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
                history.Add(next);
                if (++produced == 1) Telemetry.RecordFirstToken(Stopwatch.GetElapsedTime(started).TotalSeconds);
                bool stop = stopIds is not null && stopIds.Contains(next);
                if (stop) { LastStopReason = StopReason.EndOfSequence; ended = true; } // set before the yield: callers often stop reading at EOS
                suspended = true;
                yield return next;
                suspended = false;
                if (stop) yield break;
                if (n == maxNewTokens - 1) break;
                if (cache.Length >= cache.Capacity) { LastStopReason = StopReason.ContextFull; ended = true; yield break; }
                _model.Forward([next], cache, logits);
            }
            ended = true;
        }
        finally
        {
            GenerationTelemetry.StopDetached(phase);
            string reason = ended ? LastStopReason.ToString() : suspended ? GenerationTelemetry.ConsumerStopped : GenerationTelemetry.Error;
            if (reason == GenerationTelemetry.Error) span?.SetStatus(ActivityStatusCode.Error);
            Telemetry.RecordEnd(produced, Stopwatch.GetElapsedTime(started).TotalSeconds, reason);
            span?.SetTag(GenerationTelemetry.InputTokensTag, prompt.Count).SetTag(GenerationTelemetry.OutputTokensTag, produced)
                .SetTag(GenerationTelemetry.StopReasonTag, reason);
            GenerationTelemetry.StopDetached(span);
        }
    }
}
