using System.Text.Json;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.SecureAggregation;
using EdgeTune.Federated.Server.Internal;
using EdgeTune.Federated.Storage;
using Grpc.Core;

namespace EdgeTune.Federated.Server;

/// <summary>
/// Secure aggregation over the relay (<see cref="FlServerOptions.SecureAggregation"/>). Per round, after local
/// training: clients send their advertisement (relay stage 1, to "server"); the server closes the stage and posts
/// the roster (stage 1, from "server" to "*"); clients send encrypted shares (stage 2); the server posts each
/// recipient's forwarded shares (stage 2, to that client); clients upload the MASKED vector
/// <c>[n·delta…, n]</c> as a resumable update with encoding <see cref="MaskedEncoding"/>; the server posts the unmask
/// request (stage 3, to "*"); survivors answer (stage 4); the server finalizes the exact fixed-point sum and hands the
/// example-weighted mean delta to the strategy as one aggregate update. No individual unmasked update is ever seen.
/// The protocol state lives in memory: a server restarted mid-round FAILS that round (no new global version; the
/// next round starts), since the masks cannot be rebuilt from what clients already sent. A round also fails when
/// fewer than t clients remain at a stage; the global is then unchanged and <see cref="FlRoundResult.Failure"/>
/// says why.
/// </summary>
public sealed partial class FlServer
{
    /// <summary>Update encoding of a masked input (the bytes of a <see cref="SecAggMaskedInput"/>).</summary>
    public const string MaskedEncoding = "secagg";

    /// <summary>Relay recipient meaning "the server itself".</summary>
    public const string ServerRecipient = "server";

    private SecureAggregationServer? _sa;
    private int _saRound;
    private double _saStageStart;
    private readonly HashSet<string> _saSent = new(StringComparer.Ordinal);
    private IReadOnlyCollection<string> _saExpected = [];

    /// <summary>The secure-aggregation threshold of a round with <paramref name="target"/> sampled clients.</summary>
    public int SecAggThresholdFor(int target) => Options.SecAggThreshold ?? Math.Max(2, target / 2 + 1);

    private SecAggOptions SecAggOptionsFor(int target) => new(SecAggThresholdFor(target), checked((int)Layout.TotalLength + 1));

    /// <summary>The protocol state of the open round (created when the round is first seen).</summary>
    private SecureAggregationServer SecAggOf(StoredRound round)
    {
        if (_sa is null || _saRound != round.Round)
        {
            _sa = new SecureAggregationServer(SecAggOptionsFor(round.Target));
            _saRound = round.Round;
            _saStageStart = FlStateStore.Now();
            _saSent.Clear();
            _saExpected = [];
        }
        return _sa;
    }

    /// <summary>Whether the open round's advertise stage has closed (no new participants are taken then).</summary>
    private bool SecAggPastAdvertise(StoredRound round) =>
        _sa is not null && _saRound == round.Round && _sa.Stage != SecAggStage.Advertise;

    /// <summary>A client's stage message to the server (advertisement, shares, unmask response).</summary>
    private void ReceiveSecAggLocked(string clientId, SecAggMessage message)
    {
        var round = _store.LatestRound();
        if (round is not { Open: true } || round.Round != message.Round)
            throw new FlRejectedException(StatusCode.FailedPrecondition, $"round {message.Round} is not the open round");
        var sa = SecAggOf(round);
        try
        {
            switch ((SecAggStage)message.Stage)
            {
                case SecAggStage.Advertise:
                    var adv = SecAggAdvertisement.FromBytes(message.Payload.Span);
                    RequireSender(adv.ClientId, clientId);
                    sa.ReceiveAdvertisement(adv);
                    break;
                case SecAggStage.ShareKeys:
                    var keys = SecAggShareKeysMessage.FromBytes(message.Payload.Span);
                    RequireSender(keys.From, clientId);
                    sa.ReceiveShareKeys(keys);
                    break;
                case SecAggStage.Unmask:
                    var resp = SecAggUnmaskResponse.FromBytes(message.Payload.Span);
                    RequireSender(resp.From, clientId);
                    sa.ReceiveUnmaskResponse(resp);
                    break;
                default:
                    throw new SecureAggregationException($"secure aggregation: stage {message.Stage} is not sent to the server through the relay (masked inputs are uploaded)");
            }
        }
        catch (Exception e) when (e is SecureAggregationException or FormatException or ArgumentException)
        {
            throw new FlRejectedException(StatusCode.InvalidArgument, e.Message);
        }
        _saSent.Add(clientId);
        _store.AddSecAgg(message.Round, message.Stage, clientId, ServerRecipient, message.Payload.ToByteArray());
    }

    private static void RequireSender(string claimed, string clientId)
    {
        if (claimed != clientId) throw new SecureAggregationException($"secure aggregation: a message from '{clientId}' claims to be from '{claimed}'");
    }

    /// <summary>A completed masked upload: the reason it is refused, or null when the protocol took it.</summary>
    private string? ReceiveMaskedLocked(StoredUpload u, byte[] payload)
    {
        var round = _store.LatestRound();
        if (round is not { Open: true } || round.Round != u.Round || _sa is null || _saRound != u.Round || _sa.Stage != SecAggStage.MaskedInput)
            return $"masked input for round {u.Round} arrived outside its masking stage";
        try
        {
            var m = SecAggMaskedInput.FromBytes(payload);
            RequireSender(m.From, u.ClientId);
            _sa.ReceiveMaskedInput(m);
        }
        catch (Exception e) when (e is SecureAggregationException or FormatException or ArgumentException)
        {
            return e.Message;
        }
        _saSent.Add(u.ClientId);
        return null;
    }

    /// <summary>Refuses relay fetches for a round that is no longer open, saying why (so clients stop waiting).</summary>
    private void RequireSecAggRoundOpen(int roundNo)
    {
        var round = _store.GetRound(roundNo);
        if (round is null) throw new FlRejectedException(StatusCode.NotFound, $"round {roundNo} does not exist");
        if (!round.Open)
        {
            string why = round.MetricsJson is { } j && JsonSerializer.Deserialize<FlRoundResult>(j, Json)?.Failure is { } f ? "failed: " + f : "closed";
            throw new FlRejectedException(StatusCode.FailedPrecondition, $"round {roundNo} {why}");
        }
    }

    /// <summary>Advances the open round's protocol when its stage is due; returns the round's result when it
    /// completed or failed.</summary>
    private FlRoundResult? TryAdvanceSecAggLocked(StoredRound round)
    {
        var sa = SecAggOf(round);
        double now = FlStateStore.Now();
        var assigned = _store.Assignments(round.Round);
        bool expired = now - _saStageStart >= Options.SecAggStageTimeout.TotalSeconds;
        bool due = sa.Stage switch
        {
            SecAggStage.Advertise => _saSent.Count >= round.Target
                || now >= round.Deadline
                || (_saSent.Count >= SecAggThresholdFor(round.Target) && now - round.StartedAt >= Options.LivenessTimeout.TotalSeconds
                    && !assigned.Any(a => !_saSent.Contains(a.ClientId) && Alive(a.ClientId, now))),
            _ => _saExpected.All(_saSent.Contains) || expired || !_saExpected.Any(c => !_saSent.Contains(c) && Alive(c, now)),
        };
        if (!due) return null;
        try
        {
            switch (sa.Stage)
            {
                case SecAggStage.Advertise:
                    var roster = sa.CloseAdvertise();
                    _store.AddSecAgg(round.Round, (int)SecAggStage.Advertise, ServerRecipient, "*", roster.ToBytes());
                    NextStage(roster.Clients.Select(c => c.ClientId).ToList(), now);
                    return null;
                case SecAggStage.ShareKeys:
                    var forward = sa.CloseShareKeys();
                    foreach (var f in forward) _store.AddSecAgg(round.Round, (int)SecAggStage.ShareKeys, ServerRecipient, f.To, f.ToBytes());
                    NextStage(forward.Select(f => f.To).ToList(), now);
                    return null;
                case SecAggStage.MaskedInput:
                    var request = sa.CloseMaskedInput();
                    _store.AddSecAgg(round.Round, (int)SecAggStage.MaskedInput, ServerRecipient, "*", request.ToBytes());
                    NextStage(request.Survivors, now);
                    return null;
                case SecAggStage.Unmask:
                    return CompleteSecAggLocked(round, sa.Finalize(), assigned.Count, now);
                default:
                    return FailSecAggLocked(round, "the protocol is in an unexpected state", now);
            }
        }
        catch (SecureAggregationException e)
        {
            return FailSecAggLocked(round, e.Message, now);
        }
    }

    private void NextStage(IReadOnlyCollection<string> expected, double now)
    {
        _saExpected = expected;
        _saSent.Clear();
        _saStageStart = now;
    }

    private FlRoundResult CompleteSecAggLocked(StoredRound round, SecAggResult sum, int selected, double now)
    {
        var (mean, total) = SecAggWeighting.MeanOf(sum.ToDouble());
        var aggregate = new ClientUpdate("secure-aggregate", mean, Math.Max(1, (long)Math.Round(total)));
        var next = _strategy.Aggregate(round.Round, _global, [aggregate]);
        if (next.Length != _global.Length || next.Any(x => !float.IsFinite(x)))
            throw new InvalidOperationException($"FlServer: strategy '{_strategy.Name}' produced a non-finite or mis-sized global vector in round {round.Round}");
        // clients' reported training losses travel in the upload headers (as without secure aggregation)
        double lossSum = 0, lossWeight = 0;
        foreach (string id in _store.UpdateIds(round.Round))
        {
            var s = _store.GetUpdate(id)!;
            var metrics = JsonSerializer.Deserialize<Dictionary<string, double>>(s.MetricsJson, Json) ?? [];
            if (metrics.TryGetValue("train_loss", out double l)) { lossSum += l * Math.Max(1, s.NumExamples); lossWeight += Math.Max(1, s.NumExamples); }
        }
        var result = new FlRoundResult
        {
            Round = round.Round, Version = _version + 1, Selected = selected, Accepted = sum.Contributors.Count,
            MeanTrainLoss = lossWeight > 0 ? lossSum / lossWeight : double.NaN,
            Rejected = _store.Rejections(round.Round).Count, Duration = TimeSpan.FromSeconds(now - round.StartedAt),
            ClosedBy = "secure-aggregation", Epsilon = _strategy is Privacy.DifferentialPrivacyStrategy dp ? dp.CurrentEpsilon : null,
        };
        CommitRound(round, next, result);
        _sa = null;
        return result;
    }

    /// <summary>Closes the round without a new global version, recording why.</summary>
    private FlRoundResult FailSecAggLocked(StoredRound round, string reason, double now)
    {
        var result = new FlRoundResult
        {
            Round = round.Round, Version = _version, Selected = _store.Assignments(round.Round).Count, Accepted = 0,
            Rejected = _store.Rejections(round.Round).Count, Duration = TimeSpan.FromSeconds(now - round.StartedAt),
            ClosedBy = "secagg-failed", Failure = reason,
        };
        _store.CompleteRound(round.Round, _version, vector: null, JsonSerializer.Serialize(result, Json), strategyState: null);
        _sa = null;
        return result;
    }
}
