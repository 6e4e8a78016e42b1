using EdgeTune.Federated.SecureAggregation.Internal;

namespace EdgeTune.Federated.SecureAggregation;

/// <summary>
/// The server's side of secure aggregation: collects each stage's messages (<c>Receive…</c>), closes
/// the stage (<c>Close…</c>, which returns what to relay) and finally rebuilds the survivors' self-mask
/// seeds and the dropped clients' mask keys from t shares each, removes those masks and returns the
/// exact fixed-point sum. It never sees a single client's input: each masked vector carries the
/// client's self mask PRG(b_u), which is only removed in the sum.
/// A message that does not fit (wrong stage, unknown or duplicate sender, wrong length) raises
/// <see cref="SecureAggregationException"/> and leaves the state unchanged, so the caller can reject
/// that client and go on.
/// </summary>
public sealed class SecureAggregationServer
{
    private readonly Dictionary<string, SecAggAdvertisement> _adverts = new(StringComparer.Ordinal);
    private SecAggRoster? _roster;
    private Dictionary<string, int>? _index;
    private readonly Dictionary<string, SecAggShareKeysMessage> _shareKeys = new(StringComparer.Ordinal);
    // senders of masked inputs; the inputs themselves are folded into _maskedSum on arrival (sums mod 2^64 are exact in any order)
    private readonly HashSet<string> _masked = new(StringComparer.Ordinal);
    private ulong[]? _maskedSum;
    private HashSet<string>? _u2;
    private SecAggUnmaskRequest? _request;
    private readonly Dictionary<string, SecAggUnmaskResponse> _responses = new(StringComparer.Ordinal);

    public SecureAggregationServer(SecAggOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public SecAggOptions Options { get; }

    /// <summary>The stage whose messages are being collected.</summary>
    public SecAggStage Stage { get; private set; } = SecAggStage.Advertise;

    public SecAggRoster? Roster => _roster;

    /// <summary>Clients that completed stage 2 (U2); null before <see cref="CloseShareKeys"/>.</summary>
    public IReadOnlyCollection<string>? SharedKeys => _u2;

    public void ReceiveAdvertisement(SecAggAdvertisement message)
    {
        Expect(SecAggStage.Advertise);
        ArgumentNullException.ThrowIfNull(message);
        if (string.IsNullOrEmpty(message.ClientId)) throw new SecureAggregationException("secure aggregation: an advertisement has no client id");
        if (System.Text.Encoding.UTF8.GetByteCount(message.ClientId) > Wire.MaxIdBytes)
            throw new SecureAggregationException($"secure aggregation: client id longer than {Wire.MaxIdBytes} bytes");
        if (_adverts.ContainsKey(message.ClientId)) throw new SecureAggregationException($"secure aggregation: '{message.ClientId}' advertised twice");
        KeyAgreement.ImportPublic(message.EncryptionPublicKey, message.ClientId).Dispose();
        KeyAgreement.ImportPublic(message.MaskPublicKey, message.ClientId).Dispose();
        _adverts.Add(message.ClientId, message);
    }

    /// <summary>Ends stage 1: the roster to send to every advertised client (fails below t clients).</summary>
    public SecAggRoster CloseAdvertise()
    {
        Expect(SecAggStage.Advertise);
        var roster = new SecAggRoster(_adverts.Values.OrderBy(a => a.ClientId, StringComparer.Ordinal).ToList());
        _index = Fail(() => RosterRules.Check(roster, Options.Threshold, "server"));
        _roster = roster;
        Stage = SecAggStage.ShareKeys;
        return roster;
    }

    public void ReceiveShareKeys(SecAggShareKeysMessage message)
    {
        Expect(SecAggStage.ShareKeys);
        ArgumentNullException.ThrowIfNull(message);
        RequireRosterClient(message.From);
        if (_shareKeys.ContainsKey(message.From)) throw new SecureAggregationException($"secure aggregation: '{message.From}' shared keys twice");
        var to = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in message.Shares)
        {
            if (s.From != message.From) throw new SecureAggregationException($"secure aggregation: '{message.From}' sent a share marked as from '{s.From}'");
            if (s.To == s.From || !_index!.ContainsKey(s.To) || !to.Add(s.To))
                throw new SecureAggregationException($"secure aggregation: '{message.From}' sent a share to '{s.To}', who is not another roster client or got two");
        }
        if (to.Count != _roster!.Clients.Count - 1)
            throw new SecureAggregationException($"secure aggregation: '{message.From}' sent {to.Count} shares; {_roster.Clients.Count - 1} expected (one per other client)");
        _shareKeys.Add(message.From, message);
    }

    /// <summary>Ends stage 2: for every client that shared keys, the shares addressed to it by the others.</summary>
    public IReadOnlyList<SecAggForwardedShares> CloseShareKeys()
    {
        Expect(SecAggStage.ShareKeys);
        if (_shareKeys.Count < Options.Threshold)
            throw Failed($"{_shareKeys.Count} clients shared keys; threshold is {Options.Threshold}");
        _u2 = new HashSet<string>(_shareKeys.Keys, StringComparer.Ordinal);
        var forward = _u2.OrderBy(x => x, StringComparer.Ordinal).Select(v => new SecAggForwardedShares(v,
            _shareKeys.Values.Where(m => m.From != v).OrderBy(m => m.From, StringComparer.Ordinal)
                .Select(m => m.Shares.First(s => s.To == v)).ToList())).ToList();
        Stage = SecAggStage.MaskedInput;
        return forward;
    }

    public void ReceiveMaskedInput(SecAggMaskedInput message)
    {
        Expect(SecAggStage.MaskedInput);
        ArgumentNullException.ThrowIfNull(message);
        if (!_u2!.Contains(message.From)) throw new SecureAggregationException($"secure aggregation: '{message.From}' did not share keys this round");
        if (_masked.Contains(message.From)) throw new SecureAggregationException($"secure aggregation: '{message.From}' sent two masked inputs");
        if (message.Masked.Length != Options.VectorLength)
            throw new SecureAggregationException($"secure aggregation: '{message.From}' masked input has {message.Masked.Length} values; {Options.VectorLength} expected");
        _maskedSum ??= new ulong[Options.VectorLength];
        FixedPoint.AddInPlace(_maskedSum, message.Masked);
        _masked.Add(message.From);
    }

    /// <summary>Ends stage 3: the request to send to every survivor (fails below t survivors).</summary>
    public SecAggUnmaskRequest CloseMaskedInput()
    {
        Expect(SecAggStage.MaskedInput);
        if (_masked.Count < Options.Threshold)
            throw Failed($"{_masked.Count} masked inputs; threshold is {Options.Threshold}");
        var survivors = _masked.OrderBy(x => x, StringComparer.Ordinal).ToList();
        var dropped = _u2!.Where(v => !_masked.Contains(v)).OrderBy(x => x, StringComparer.Ordinal).ToList();
        _request = new SecAggUnmaskRequest(survivors, dropped);
        Stage = SecAggStage.Unmask;
        return _request;
    }

    public void ReceiveUnmaskResponse(SecAggUnmaskResponse message)
    {
        Expect(SecAggStage.Unmask);
        ArgumentNullException.ThrowIfNull(message);
        if (!_masked.Contains(message.From)) throw new SecureAggregationException($"secure aggregation: '{message.From}' is not a survivor");
        if (_responses.ContainsKey(message.From)) throw new SecureAggregationException($"secure aggregation: '{message.From}' answered the unmask request twice");
        int len = Shamir.ShareLength(32);
        var expected = new HashSet<(string, SecAggSecretKind)>(
            _request!.Survivors.Select(v => (v, SecAggSecretKind.MaskSeed)).Concat(_request.Dropped.Select(v => (v, SecAggSecretKind.MaskKey))));
        foreach (var s in message.Shares)
        {
            if (!expected.Remove((s.Owner, s.Kind)))
                throw new SecureAggregationException($"secure aggregation: '{message.From}' revealed an unrequested or repeated {s.Kind} share of '{s.Owner}'");
            if (s.Share.Length != len) throw new SecureAggregationException($"secure aggregation: '{message.From}' sent a {s.Share.Length}-byte share; {len} expected");
        }
        if (expected.Count != 0) throw new SecureAggregationException($"secure aggregation: '{message.From}' left {expected.Count} requested shares out");
        _responses.Add(message.From, message);
    }

    /// <summary>Removes every mask and returns the exact sum of the survivors' fixed-point inputs.
    /// Fails when fewer than t survivors answered the unmask request.</summary>
    public SecAggResult Finalize()
    {
        Expect(SecAggStage.Unmask);
        if (_responses.Count < Options.Threshold)
            throw Failed($"{_responses.Count} survivors answered the unmask request; threshold is {Options.Threshold}");
        var sum = _maskedSum ?? new ulong[Options.VectorLength];
        _maskedSum = null;

        foreach (var u in _request!.Survivors)
            MaskPrg.AddTo(sum, Rebuild(u, SecAggSecretKind.MaskSeed), subtract: true);

        foreach (var v in _request.Dropped)
        {
            var adv = _roster!.Clients[_index![v]];
            using var key = KeyAgreement.ImportPrivate(Rebuild(v, SecAggSecretKind.MaskKey), adv.MaskPublicKey, v);
            foreach (var u in _request.Survivors)
            {
                using var pub = KeyAgreement.ImportPublic(_roster.Clients[_index[u]].MaskPublicKey, u);
                var pairSeed = KeyAgreement.Agree(key, pub, KeyAgreement.MaskLabel);
                // u added +PRG when u < v, −PRG otherwise; undo that.
                MaskPrg.AddTo(sum, pairSeed, subtract: string.CompareOrdinal(u, v) < 0);
            }
        }
        Stage = SecAggStage.Done;
        return new SecAggResult(sum, _request.Survivors, Options.Scale);
    }

    private byte[] Rebuild(string owner, SecAggSecretKind kind)
    {
        var shares = _responses.Values
            .Select(r => (X: _index![r.From] + 1, Share: r.Shares.First(s => s.Owner == owner && s.Kind == kind).Share))
            .OrderBy(s => s.X).ToList();
        try { return Shamir.Combine(shares, Options.Threshold, 32); }
        catch (ArgumentException e) { throw Failed($"cannot rebuild the {kind} of '{owner}': {e.Message}"); }
    }

    private void RequireRosterClient(string id)
    {
        if (id is null || !_index!.ContainsKey(id)) throw new SecureAggregationException($"secure aggregation: '{id}' is not in this round's roster");
    }

    private void Expect(SecAggStage stage)
    {
        if (Stage != stage) throw new SecureAggregationException($"secure aggregation: the server is at stage {Stage}, not {stage}");
    }

    private SecureAggregationException Failed(string why)
    {
        Stage = SecAggStage.Done;
        return new SecureAggregationException("secure aggregation failed: " + why);
    }

    private T Fail<T>(Func<T> f)
    {
        try { return f(); }
        catch (SecureAggregationException e) { Stage = SecAggStage.Done; throw new SecureAggregationException("secure aggregation failed: " + e.Message, e); }
    }
}
