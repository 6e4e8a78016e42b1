using System.Security.Cryptography;
using System.Text;
using EdgeTune.Federated.SecureAggregation.Internal;

namespace EdgeTune.Federated.SecureAggregation;

/// <summary>
/// One client's side of secure aggregation (Bonawitz et al. 2017, semi-honest variant without
/// signatures), as a state machine the network layer drives stage by stage:
/// <list type="number">
/// <item><see cref="Advertise"/>: two fresh P-256 key pairs, c (share encryption) and s (pairwise masks).</item>
/// <item><see cref="ShareKeys"/>: a random self-mask seed b; t-of-n Shamir shares of b and of s's private
/// scalar, each recipient's pair encrypted with AES-256-GCM under SHA-256(ECDH(c_u, c_v)).</item>
/// <item><see cref="MaskInput(ReadOnlySpan{float}, SecAggForwardedShares)"/>: y = x + PRG(b) + Σ_v ±PRG(s_uv) mod 2^64,
/// with s_uv = SHA-256(ECDH(s_u, s_v)), + for u &lt; v (ordinal) and − otherwise, so pair masks cancel in the sum.</item>
/// <item><see cref="Unmask"/>: shares of b for survivors and of s for dropped clients, never both for one client.</item>
/// </list>
/// Each stage runs once and in order; a message that does not fit raises <see cref="SecureAggregationException"/>.
/// </summary>
public sealed class SecureAggregationClient : IDisposable
{
    private const int NonceBytes = 12, TagBytes = 16, SecretBytes = 32;
    private readonly ECDiffieHellman _encKey = KeyAgreement.NewKey();
    private readonly ECDiffieHellman _maskKey = KeyAgreement.NewKey();
    private SecAggRoster? _roster;
    private Dictionary<string, int>? _index;
    private byte[]? _seed;
    private byte[]? _ownSeedShare, _ownKeyShare;
    private Dictionary<string, (byte[] KeyShare, byte[] SeedShare)>? _received;

    public SecureAggregationClient(string clientId, SecAggOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        ArgumentNullException.ThrowIfNull(options);
        if (Encoding.UTF8.GetByteCount(clientId) > Wire.MaxIdBytes) throw new ArgumentException($"secure aggregation: client id longer than {Wire.MaxIdBytes} bytes");
        options.Validate();
        ClientId = clientId;
        Options = options;
    }

    public string ClientId { get; }
    public SecAggOptions Options { get; }

    /// <summary>The stage whose method is to be called next.</summary>
    public SecAggStage Stage { get; private set; } = SecAggStage.Advertise;

    /// <summary>Stage 1: the public keys.</summary>
    public SecAggAdvertisement Advertise()
    {
        Expect(SecAggStage.Advertise);
        Stage = SecAggStage.ShareKeys;
        return new SecAggAdvertisement(ClientId, _encKey.ExportSubjectPublicKeyInfo(), _maskKey.ExportSubjectPublicKeyInfo());
    }

    /// <summary>Stage 2: encrypted shares of b and s for every other client in <paramref name="roster"/>.</summary>
    public SecAggShareKeysMessage ShareKeys(SecAggRoster roster)
    {
        Expect(SecAggStage.ShareKeys);
        ArgumentNullException.ThrowIfNull(roster);
        _index = RosterRules.Check(roster, Options.Threshold, "client " + ClientId);
        if (!_index.TryGetValue(ClientId, out int me))
            throw new SecureAggregationException($"secure aggregation: client '{ClientId}' is not in the roster");
        var mine = roster.Clients[me];
        if (!mine.EncryptionPublicKey.AsSpan().SequenceEqual(_encKey.ExportSubjectPublicKeyInfo()) ||
            !mine.MaskPublicKey.AsSpan().SequenceEqual(_maskKey.ExportSubjectPublicKeyInfo()))
            throw new SecureAggregationException($"secure aggregation: the roster carries keys for '{ClientId}' that are not this client's");
        _roster = roster;

        _seed = RandomNumberGenerator.GetBytes(SecretBytes);
        int n = roster.Clients.Count;
        var keyShares = Shamir.Split(KeyAgreement.PrivateScalar(_maskKey), Options.Threshold, n);
        var seedShares = Shamir.Split(_seed, Options.Threshold, n);
        _ownKeyShare = keyShares[me];
        _ownSeedShare = seedShares[me];

        var outgoing = new List<SecAggEncryptedShare>(n - 1);
        for (int v = 0; v < n; v++)
        {
            if (v == me) continue;
            var peer = roster.Clients[v];
            var plain = new byte[keyShares[v].Length + seedShares[v].Length];
            keyShares[v].CopyTo(plain, 0);
            seedShares[v].CopyTo(plain, keyShares[v].Length);
            outgoing.Add(new SecAggEncryptedShare(ClientId, peer.ClientId, Seal(peer, plain)));
        }
        Stage = SecAggStage.MaskedInput;
        return new SecAggShareKeysMessage(ClientId, outgoing);
    }

    /// <summary>Stage 3 for a float vector: clipped, encoded with <see cref="FixedPoint.Encode"/>, then masked.</summary>
    public SecAggMaskedInput MaskInput(ReadOnlySpan<float> vector, SecAggForwardedShares shares) =>
        MaskInput(FixedPoint.Encode(vector, Options.Scale, Options.ClipValue), shares);

    /// <summary>Stage 3 for an already fixed-point vector: decrypts the shares sent to this client (they fix
    /// U2, the clients whose pairwise masks are added) and returns the masked vector.</summary>
    public SecAggMaskedInput MaskInput(ReadOnlySpan<ulong> fixedPoint, SecAggForwardedShares shares)
    {
        Expect(SecAggStage.MaskedInput);
        ArgumentNullException.ThrowIfNull(shares);
        if (fixedPoint.Length != Options.VectorLength)
            throw new SecureAggregationException($"secure aggregation: client '{ClientId}' input has {fixedPoint.Length} values; {Options.VectorLength} expected");
        if (shares.To != ClientId)
            throw new SecureAggregationException($"secure aggregation: shares addressed to '{shares.To}' were delivered to '{ClientId}'");
        var received = new Dictionary<string, (byte[], byte[])>(StringComparer.Ordinal);
        int shareLen = Shamir.ShareLength(SecretBytes);
        foreach (var s in shares.Shares)
        {
            if (s.To != ClientId) throw new SecureAggregationException($"secure aggregation: a share from '{s.From}' is addressed to '{s.To}', not '{ClientId}'");
            if (s.From == ClientId || !_index!.TryGetValue(s.From, out int from))
                throw new SecureAggregationException($"secure aggregation: a share comes from '{s.From}', who is not another roster client");
            if (received.ContainsKey(s.From)) throw new SecureAggregationException($"secure aggregation: two shares from '{s.From}'");
            var plain = Open(_roster!.Clients[from], s.Ciphertext);
            if (plain.Length != 2 * shareLen) throw new SecureAggregationException($"secure aggregation: the share from '{s.From}' has {plain.Length} bytes; {2 * shareLen} expected");
            received[s.From] = (plain[..shareLen], plain[shareLen..]);
        }
        if (received.Count + 1 < Options.Threshold)
            throw new SecureAggregationException($"secure aggregation: only {received.Count + 1} clients shared keys; threshold is {Options.Threshold}");
        _received = received;

        var y = fixedPoint.ToArray();
        MaskPrg.AddTo(y, _seed!, subtract: false);
        foreach (var peer in received.Keys)
        {
            using var peerKey = KeyAgreement.ImportPublic(_roster!.Clients[_index![peer]].MaskPublicKey, peer);
            var pairSeed = KeyAgreement.Agree(_maskKey, peerKey, KeyAgreement.MaskLabel);
            MaskPrg.AddTo(y, pairSeed, subtract: string.CompareOrdinal(ClientId, peer) > 0);
        }
        Stage = SecAggStage.Unmask;
        return new SecAggMaskedInput(ClientId, y);
    }

    /// <summary>Stage 4: reveals b-shares of the survivors and s-shares of the dropped clients. Refuses when
    /// the request is inconsistent with U2, names fewer than t survivors, or omits this client.</summary>
    public SecAggUnmaskResponse Unmask(SecAggUnmaskRequest request)
    {
        Expect(SecAggStage.Unmask);
        ArgumentNullException.ThrowIfNull(request);
        var u2 = new HashSet<string>(_received!.Keys, StringComparer.Ordinal) { ClientId };
        var survivors = new HashSet<string>(request.Survivors, StringComparer.Ordinal);
        var dropped = new HashSet<string>(request.Dropped, StringComparer.Ordinal);
        if (survivors.Count != request.Survivors.Count || dropped.Count != request.Dropped.Count)
            throw new SecureAggregationException("secure aggregation: the unmask request lists a client twice");
        if (!survivors.Contains(ClientId))
            throw new SecureAggregationException($"secure aggregation: the unmask request does not list '{ClientId}' as a survivor");
        if (survivors.Overlaps(dropped) || !survivors.IsSubsetOf(u2) || !u2.SetEquals(survivors.Union(dropped)))
            throw new SecureAggregationException("secure aggregation: the unmask request's survivors and dropped clients do not partition the clients that shared keys");
        if (survivors.Count < Options.Threshold)
            throw new SecureAggregationException($"secure aggregation: {survivors.Count} survivors; threshold is {Options.Threshold}");

        var reveal = new List<SecAggRevealedShare>();
        foreach (var v in request.Survivors)
            reveal.Add(new SecAggRevealedShare(v, SecAggSecretKind.MaskSeed, v == ClientId ? _ownSeedShare! : _received[v].SeedShare));
        foreach (var v in request.Dropped)
            reveal.Add(new SecAggRevealedShare(v, SecAggSecretKind.MaskKey, _received[v].KeyShare));
        Stage = SecAggStage.Done;
        return new SecAggUnmaskResponse(ClientId, reveal);
    }

    public void Dispose()
    {
        _encKey.Dispose();
        _maskKey.Dispose();
    }

    private void Expect(SecAggStage stage)
    {
        if (Stage != stage) throw new SecureAggregationException($"secure aggregation: client '{ClientId}' is at stage {Stage}, not {stage}");
    }

    private byte[] PairKey(SecAggAdvertisement peer)
    {
        using var peerKey = KeyAgreement.ImportPublic(peer.EncryptionPublicKey, peer.ClientId);
        return KeyAgreement.Agree(_encKey, peerKey, KeyAgreement.EncryptionLabel);
    }

    private static byte[] Aad(string from, string to) => Encoding.UTF8.GetBytes(from + "\0" + to);

    private byte[] Seal(SecAggAdvertisement peer, byte[] plain)
    {
        var box = new byte[NonceBytes + plain.Length + TagBytes];
        RandomNumberGenerator.Fill(box.AsSpan(0, NonceBytes));
        using var gcm = new AesGcm(PairKey(peer), TagBytes);
        gcm.Encrypt(box.AsSpan(0, NonceBytes), plain, box.AsSpan(NonceBytes, plain.Length), box.AsSpan(NonceBytes + plain.Length), Aad(ClientId, peer.ClientId));
        return box;
    }

    private byte[] Open(SecAggAdvertisement sender, byte[] box)
    {
        if (box.Length < NonceBytes + TagBytes)
            throw new SecureAggregationException($"secure aggregation: the share from '{sender.ClientId}' is {box.Length} bytes, too short");
        var plain = new byte[box.Length - NonceBytes - TagBytes];
        try
        {
            using var gcm = new AesGcm(PairKey(sender), TagBytes);
            gcm.Decrypt(box.AsSpan(0, NonceBytes), box.AsSpan(NonceBytes, plain.Length), box.AsSpan(NonceBytes + plain.Length), plain, Aad(sender.ClientId, ClientId));
        }
        catch (CryptographicException e)
        {
            throw new SecureAggregationException($"secure aggregation: the share from '{sender.ClientId}' to '{ClientId}' failed authentication (tampered or misaddressed)", e);
        }
        return plain;
    }
}
