using EdgeTune.Federated.SecureAggregation.Internal;

namespace EdgeTune.Federated.SecureAggregation;

/// <summary>The four stages of a secure-aggregation round (Bonawitz et al. 2017); the network layer tags
/// each payload with its stage, sender and recipient.</summary>
public enum SecAggStage : byte
{
    /// <summary>Clients send <see cref="SecAggAdvertisement"/>; the server answers with a <see cref="SecAggRoster"/>.</summary>
    Advertise = 1,
    /// <summary>Clients send <see cref="SecAggShareKeysMessage"/>; the server forwards <see cref="SecAggForwardedShares"/>.</summary>
    ShareKeys = 2,
    /// <summary>Clients send <see cref="SecAggMaskedInput"/>; the server answers with a <see cref="SecAggUnmaskRequest"/>.</summary>
    MaskedInput = 3,
    /// <summary>Clients send <see cref="SecAggUnmaskResponse"/>; the server finalizes.</summary>
    Unmask = 4,
    /// <summary>The round is over (or failed).</summary>
    Done = 5,
}

/// <summary>Stage 1, client → server: the client's two P-256 public keys (SubjectPublicKeyInfo bytes):
/// one for encrypting shares, one for agreeing pairwise masks.</summary>
public sealed record SecAggAdvertisement(string ClientId, byte[] EncryptionPublicKey, byte[] MaskPublicKey)
{
    public byte[] ToBytes() { var w = new WireWriter(1); Write(w); return w.ToArray(); }

    public static SecAggAdvertisement FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 1, nameof(SecAggAdvertisement));
        var m = Read(ref r);
        r.End();
        return m;
    }

    internal void Write(WireWriter w) { w.String(ClientId); w.Bytes(EncryptionPublicKey); w.Bytes(MaskPublicKey); }
    internal static SecAggAdvertisement Read(ref WireReader r) => new(r.String(), r.Bytes(), r.Bytes());
}

/// <summary>End of stage 1, server → every listed client: the advertisements of the round's clients,
/// sorted by id (ordinal). A client's Shamir x-coordinate is its position in this list plus one.</summary>
public sealed record SecAggRoster(IReadOnlyList<SecAggAdvertisement> Clients)
{
    public byte[] ToBytes()
    {
        var w = new WireWriter(2);
        w.Int(Clients.Count);
        foreach (var c in Clients) c.Write(w);
        return w.ToArray();
    }

    public static SecAggRoster FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 2, nameof(SecAggRoster));
        int n = r.Count(12);
        var list = new SecAggAdvertisement[n];
        for (int i = 0; i < n; i++) list[i] = SecAggAdvertisement.Read(ref r);
        r.End();
        return new SecAggRoster(list);
    }
}

/// <summary>One AES-GCM ciphertext (nonce ‖ ciphertext ‖ tag) holding the sender's Shamir shares for the recipient.</summary>
public sealed record SecAggEncryptedShare(string From, string To, byte[] Ciphertext);

/// <summary>Stage 2, client → server: one encrypted share for every other client in the roster.</summary>
public sealed record SecAggShareKeysMessage(string From, IReadOnlyList<SecAggEncryptedShare> Shares)
{
    public byte[] ToBytes() { var w = new WireWriter(3); w.String(From); WriteShares(w, Shares); return w.ToArray(); }

    public static SecAggShareKeysMessage FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 3, nameof(SecAggShareKeysMessage));
        var m = new SecAggShareKeysMessage(r.String(), ReadShares(ref r));
        r.End();
        return m;
    }

    internal static void WriteShares(WireWriter w, IReadOnlyList<SecAggEncryptedShare> shares)
    {
        w.Int(shares.Count);
        foreach (var s in shares) { w.String(s.From); w.String(s.To); w.Bytes(s.Ciphertext); }
    }

    internal static SecAggEncryptedShare[] ReadShares(ref WireReader r)
    {
        int n = r.Count(12);
        var list = new SecAggEncryptedShare[n];
        for (int i = 0; i < n; i++) list[i] = new SecAggEncryptedShare(r.String(), r.String(), r.Bytes());
        return list;
    }
}

/// <summary>End of stage 2, server → one client: the shares addressed to it by every client that
/// completed stage 2 (their set, plus the recipient, is the round's U2).</summary>
public sealed record SecAggForwardedShares(string To, IReadOnlyList<SecAggEncryptedShare> Shares)
{
    public byte[] ToBytes() { var w = new WireWriter(4); w.String(To); SecAggShareKeysMessage.WriteShares(w, Shares); return w.ToArray(); }

    public static SecAggForwardedShares FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 4, nameof(SecAggForwardedShares));
        var m = new SecAggForwardedShares(r.String(), SecAggShareKeysMessage.ReadShares(ref r));
        r.End();
        return m;
    }
}

/// <summary>Stage 3, client → server: the masked fixed-point input (mod 2^64).</summary>
public sealed record SecAggMaskedInput(string From, ulong[] Masked)
{
    public byte[] ToBytes() { var w = new WireWriter(5); w.String(From); w.ULongs(Masked); return w.ToArray(); }

    public static SecAggMaskedInput FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 5, nameof(SecAggMaskedInput));
        var m = new SecAggMaskedInput(r.String(), r.ULongs());
        r.End();
        return m;
    }
}

/// <summary>End of stage 3, server → every survivor: who sent a masked input (U3) and who, among the
/// clients that shared keys, did not (dropped).</summary>
public sealed record SecAggUnmaskRequest(IReadOnlyList<string> Survivors, IReadOnlyList<string> Dropped)
{
    public byte[] ToBytes() { var w = new WireWriter(6); w.Strings(Survivors); w.Strings(Dropped); return w.ToArray(); }

    public static SecAggUnmaskRequest FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 6, nameof(SecAggUnmaskRequest));
        var m = new SecAggUnmaskRequest(r.Strings(), r.Strings());
        r.End();
        return m;
    }
}

/// <summary>Which secret a revealed share belongs to.</summary>
public enum SecAggSecretKind : byte
{
    /// <summary>The self-mask seed b_u of a survivor.</summary>
    MaskSeed = 1,
    /// <summary>The mask secret key s_u of a dropped client.</summary>
    MaskKey = 2,
}

/// <summary>A plain Shamir share of <see cref="Owner"/>'s secret, held by the responding client.</summary>
public sealed record SecAggRevealedShare(string Owner, SecAggSecretKind Kind, byte[] Share);

/// <summary>Stage 4, client → server: b-shares of every survivor and s-shares of every dropped client.</summary>
public sealed record SecAggUnmaskResponse(string From, IReadOnlyList<SecAggRevealedShare> Shares)
{
    public byte[] ToBytes()
    {
        var w = new WireWriter(7);
        w.String(From);
        w.Int(Shares.Count);
        foreach (var s in Shares) { w.String(s.Owner); w.Int((int)s.Kind); w.Bytes(s.Share); }
        return w.ToArray();
    }

    public static SecAggUnmaskResponse FromBytes(ReadOnlySpan<byte> bytes)
    {
        var r = new WireReader(bytes, 7, nameof(SecAggUnmaskResponse));
        string from = r.String();
        int n = r.Count(12);
        var list = new SecAggRevealedShare[n];
        for (int i = 0; i < n; i++)
        {
            string owner = r.String();
            int kind = r.Int();
            if (kind is not (1 or 2)) throw new FormatException($"{nameof(SecAggUnmaskResponse)}: secret kind {kind}; 1 or 2 expected");
            list[i] = new SecAggRevealedShare(owner, (SecAggSecretKind)kind, r.Bytes());
        }
        r.End();
        return new SecAggUnmaskResponse(from, list);
    }
}

/// <summary>The outcome: the exact fixed-point sum (mod 2^64) of the survivors' inputs.</summary>
public sealed record SecAggResult(ulong[] Sum, IReadOnlyList<string> Contributors, double Scale)
{
    /// <summary>The sum decoded: each value is the signed 64-bit sum divided by the scale.</summary>
    public double[] ToDouble() => FixedPoint.Decode(Sum, Scale);

    public float[] ToFloat() => Array.ConvertAll(ToDouble(), d => (float)d);
}
