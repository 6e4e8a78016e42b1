using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;
using EdgeTune.Training;

namespace EdgeTune.Privacy;

/// <summary>How <see cref="MemorizationAudit"/> measures.</summary>
public sealed record AuditOptions
{
    /// <summary>Sequence length the rows are cut to (use the training run's).</summary>
    public int SeqLen { get; init; } = 128;

    /// <summary>Rows scored from each of the training and held-out files (the first ones, in file order).</summary>
    public int MaxRows { get; init; } = 200;

    /// <summary>Candidates scored per canary. When |R| − 1 is at most this, all of R is enumerated (exact rank);
    /// otherwise this many are drawn uniformly from R without the canary (estimated rank, see <see cref="CanaryExposure"/>).</summary>
    public int Candidates { get; init; } = 2000;

    /// <summary>Seed of the candidate draw.</summary>
    public ulong Seed { get; init; } = 1;

    public AuditOptions Validate()
    {
        if (SeqLen < 2) throw new ArgumentOutOfRangeException(nameof(SeqLen), SeqLen, "audit: seq-len must be ≥ 2");
        if (MaxRows <= 0) throw new ArgumentOutOfRangeException(nameof(MaxRows), MaxRows, "audit: max rows must be > 0");
        if (Candidates <= 0) throw new ArgumentOutOfRangeException(nameof(Candidates), Candidates, "audit: candidates must be > 0");
        return this;
    }
}

/// <summary>One canary's measurement: its log-perplexity (summed negative log-likelihood of its tokens, nats), how
/// many of the scored candidates were at or below it, and its (exact or estimated) rank and exposure.</summary>
public sealed record CanaryExposureResult(string Secret, string Text, double LogPerplexity, int Candidates, long AtOrBelow,
    bool Enumerated, double Rank, double Exposure, bool Saturated);

/// <summary>The loss-based membership-inference result over training and held-out rows, with the token-weighted mean
/// losses and perplexities of each set.</summary>
public sealed record MembershipResult(int TrainRows, int HeldoutRows, double Auc, double TrainLoss, double HeldoutLoss)
{
    public double TrainPerplexity => Math.Exp(TrainLoss);
    public double HeldoutPerplexity => Math.Exp(HeldoutLoss);
}

/// <summary>What <see cref="MemorizationAudit.Run"/> found.</summary>
public sealed record AuditReport(IReadOnlyList<CanaryExposureResult> Canaries, double SpaceBits, MembershipResult? Membership)
{
    public double? MeanExposure => Canaries.Count == 0 ? null : Canaries.Average(c => c.Exposure);

    public string ToJson()
    {
        var root = new JsonObject();
        if (Canaries.Count > 0)
        {
            root["canary_space_bits"] = SpaceBits;
            root["mean_exposure"] = MeanExposure;
            root["canaries"] = new JsonArray([.. Canaries.Select(c => (JsonNode)new JsonObject
            {
                ["secret"] = c.Secret, ["text"] = c.Text, ["log_perplexity_nats"] = c.LogPerplexity, ["candidates"] = c.Candidates,
                ["at_or_below"] = c.AtOrBelow, ["enumerated"] = c.Enumerated, ["rank"] = c.Rank, ["exposure"] = c.Exposure,
                ["saturated"] = c.Saturated,
            })]);
        }
        if (Membership is { } m)
            root["membership"] = new JsonObject
            {
                ["auc"] = m.Auc, ["train_rows"] = m.TrainRows, ["heldout_rows"] = m.HeldoutRows,
                ["train_loss"] = m.TrainLoss, ["heldout_loss"] = m.HeldoutLoss,
                ["train_perplexity"] = m.TrainPerplexity, ["heldout_perplexity"] = m.HeldoutPerplexity,
            };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}

/// <summary>
/// Memorization audit of a trained model: (a) exposure of inserted canaries (<see cref="CanarySet"/>,
/// <see cref="CanaryExposure"/>; Carlini et al. 2019) and (b) the loss-threshold membership-inference AUC on training
/// against held-out rows (<see cref="MembershipInference"/>). Every score is a forward pass without recording.
/// </summary>
public static class MemorizationAudit
{
    /// <summary>Summed negative log-likelihood (nats) of <paramref name="ids"/>[1..] each given the ids before it.</summary>
    public static double SequenceNll(ITrainableModel model, int[] ids)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Length < 2) throw new ArgumentException("audit: a sequence needs at least two tokens to score", nameof(ids));
        int t = ids.Length - 1;
        using var tape = new Tape { IsRecording = false };
        return model.Loss(tape, ids[..t], ids[1..], 1, t).Item() * t;
    }

    /// <summary>Mean loss per trained token of each sequence (scored alone) and its trained-token count.</summary>
    public static IReadOnlyList<(double Loss, int Tokens)> SequenceLosses(ITrainableModel model, IReadOnlyList<TrainingSequence> sequences)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        var result = new List<(double, int)>(sequences.Count);
        foreach (var s in sequences)
        {
            int n = s.TrainedTokens;
            if (n == 0) continue;
            using var tape = new Tape { IsRecording = false };
            result.Add((model.Loss(tape, s.Tokens, s.Targets, 1, s.Length).Item(), n));
        }
        return result;
    }

    /// <summary>Membership AUC and mean losses of <paramref name="train"/> (members) against <paramref name="heldout"/>.</summary>
    public static MembershipResult Membership(ITrainableModel model, IReadOnlyList<TrainingSequence> train, IReadOnlyList<TrainingSequence> heldout)
    {
        var a = SequenceLosses(model, train);
        var b = SequenceLosses(model, heldout);
        static double Mean(IReadOnlyList<(double Loss, int Tokens)> x) => x.Sum(v => v.Loss * v.Tokens) / x.Sum(v => (double)v.Tokens);
        double auc = MembershipInference.AucFromLosses(a.Select(v => v.Loss).ToList(), b.Select(v => v.Loss).ToList());
        return new MembershipResult(a.Count, b.Count, auc, Mean(a), Mean(b));
    }

    /// <summary>Exposure of one inserted secret: its canary's log-perplexity against every other secret of R when
    /// |R| − 1 ≤ <paramref name="candidates"/>, else against that many drawn from R with <paramref name="rng"/>.</summary>
    public static CanaryExposureResult MeasureCanary(ITrainableModel model, ITokenizer tokenizer, CanarySet set, string secret, int candidates, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(rng);
        string text = set.Render(secret);
        double own = SequenceNll(model, CanarySet.Encode(tokenizer, text));
        double space = set.SpaceSize;
        bool enumerate = space - 1 <= candidates;
        var losses = new List<double>();
        if (enumerate)
        {
            for (long v = 0; v < (long)space; v++)
            {
                string other = v.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(set.Digits, '0');
                if (other != secret) losses.Add(SequenceNll(model, CanarySet.Encode(tokenizer, set.Render(other))));
            }
        }
        else
        {
            while (losses.Count < candidates)
            {
                string other = CanarySet.RandomSecret(rng, set.Digits);
                if (other != secret) losses.Add(SequenceNll(model, CanarySet.Encode(tokenizer, set.Render(other))));
            }
        }
        long atOrBelow = CanaryExposure.Rank(own, losses) - 1;
        double rank = CanaryExposure.EstimateRank(space, own, losses);
        return new CanaryExposureResult(secret, text, own, losses.Count, atOrBelow, enumerate, rank,
            CanaryExposure.FromRank(space, rank), !enumerate && atOrBelow == 0);
    }

    /// <summary>The full audit: each canary of <paramref name="canaries"/> (if any), and the membership AUC when both
    /// <paramref name="trainPath"/> and <paramref name="heldoutPath"/> are given (rows encoded as for training, one row
    /// per sequence, unpacked; the first <see cref="AuditOptions.MaxRows"/> of each).</summary>
    public static AuditReport Run(ITrainableModel model, ITokenizer tokenizer, ChatTemplate? template, string? trainPath, string? heldoutPath,
        CanarySet? canaries, AuditOptions? options = null, IProgress<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options = (options ?? new AuditOptions()).Validate();
        var results = new List<CanaryExposureResult>();
        if (canaries is not null)
        {
            var rng = new Rng(options.Seed);
            foreach (string secret in canaries.Secrets)
            {
                var r = MeasureCanary(model, tokenizer, canaries, secret, options.Candidates, rng);
                log?.Report(System.FormattableString.Invariant($"canary '{r.Text}': exposure {r.Exposure:F2} of {Math.Log2(canaries.SpaceSize):F2} bits ({r.AtOrBelow} of {r.Candidates} candidates at or below){(r.Saturated ? " (saturated)" : "")}"));
                results.Add(r);
            }
        }
        MembershipResult? membership = null;
        if (trainPath is not null && heldoutPath is not null)
        {
            var ds = new DatasetOptions { SeqLen = options.SeqLen, ValidationFraction = 0, Pack = false };
            var train = TrainingDataset.Load(trainPath, tokenizer, template, ds).Train.Take(options.MaxRows).ToList();
            var held = TrainingDataset.Load(heldoutPath, tokenizer, template, ds).Train.Take(options.MaxRows).ToList();
            if (train.Count == 0 || held.Count == 0)
                throw new InvalidDataException($"audit: no usable row in '{(train.Count == 0 ? trainPath : heldoutPath)}'");
            membership = Membership(model, train, held);
        }
        return new AuditReport(results, canaries is null ? 0 : Math.Log2(canaries.SpaceSize), membership);
    }
}
