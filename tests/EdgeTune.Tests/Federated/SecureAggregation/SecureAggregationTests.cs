using EdgeTune.Federated.SecureAggregation;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.SecureAggregation;

public class SecureAggregationTests
{
    private sealed class Round
    {
        public required SecureAggregationServer Server;
        public required List<SecureAggregationClient> Clients;
        public required Dictionary<string, ulong[]> Inputs;
        public Dictionary<string, SecAggMaskedInput> Masked = new();
    }

    private static Dictionary<string, ulong[]> RandomInputs(int n, int length, ulong seed)
    {
        var rng = new Rng(seed);
        var r = new Dictionary<string, ulong[]>();
        for (int c = 0; c < n; c++)
        {
            var x = new float[length];
            rng.FillGaussian(x, 0, 1);
            r[$"client{c:00}"] = FixedPoint.Encode(x, 65536, 1 << 20);
        }
        return r;
    }

    /// <summary>Runs a round through the serialised messages. Clients in <paramref name="dropBeforeMask"/> stop
    /// after sharing keys (they never send a masked input); those in <paramref name="dropBeforeUnmask"/> send a
    /// masked input but never answer the unmask request.</summary>
    private static SecAggResult Run(int n, int t, int length, string[]? dropBeforeMask = null, string[]? dropBeforeUnmask = null, Round? keep = null, string[]? dropBeforeShare = null)
    {
        var options = new SecAggOptions(t, length);
        var inputs = RandomInputs(n, length, 7);
        var server = new SecureAggregationServer(options);
        var clients = inputs.Keys.Select(id => new SecureAggregationClient(id, options)).ToList();
        foreach (var c in clients) server.ReceiveAdvertisement(SecAggAdvertisement.FromBytes(c.Advertise().ToBytes()));
        var roster = SecAggRoster.FromBytes(server.CloseAdvertise().ToBytes());
        var sharing = clients.Where(c => dropBeforeShare?.Contains(c.ClientId) != true).ToList();
        foreach (var c in sharing) server.ReceiveShareKeys(SecAggShareKeysMessage.FromBytes(c.ShareKeys(roster).ToBytes()));
        var forwarded = server.CloseShareKeys().ToDictionary(f => f.To);
        var masking = sharing.Where(c => dropBeforeMask?.Contains(c.ClientId) != true).ToList();
        foreach (var c in masking)
        {
            var m = c.MaskInput(inputs[c.ClientId], SecAggForwardedShares.FromBytes(forwarded[c.ClientId].ToBytes()));
            if (keep is not null) keep.Masked[c.ClientId] = m;
            server.ReceiveMaskedInput(SecAggMaskedInput.FromBytes(m.ToBytes()));
        }
        var request = SecAggUnmaskRequest.FromBytes(server.CloseMaskedInput().ToBytes());
        foreach (var c in masking.Where(c => dropBeforeUnmask?.Contains(c.ClientId) != true))
            server.ReceiveUnmaskResponse(SecAggUnmaskResponse.FromBytes(c.Unmask(request).ToBytes()));
        return server.Finalize();
    }

    private static ulong[] PlainSum(int n, int length, IEnumerable<string> contributors)
    {
        var inputs = RandomInputs(n, length, 7);
        var sum = new ulong[length];
        foreach (var id in contributors) FixedPoint.AddInPlace(sum, inputs[id]);
        return sum;
    }

    [Theory]
    [InlineData(3, 2, 1)]
    [InlineData(5, 3, 37)]
    [InlineData(6, 4, 600)]
    public void SumIsExactWithoutDropouts(int n, int t, int length)
    {
        var result = Run(n, t, length);
        Assert.Equal(n, result.Contributors.Count);
        Assert.Equal(PlainSum(n, length, result.Contributors), result.Sum);
    }

    [Fact]
    public void SumIsExactWhenClientsDropAfterSharingKeysOrDuringUnmasking()
    {
        var result = Run(7, 4, 50, dropBeforeMask: ["client02", "client05"], dropBeforeUnmask: ["client06"]);
        Assert.Equal(["client00", "client01", "client03", "client04", "client06"], result.Contributors);
        Assert.Equal(PlainSum(7, 50, result.Contributors), result.Sum);
        var decoded = result.ToDouble();
        var plain = FixedPoint.Decode(PlainSum(7, 50, result.Contributors), 65536);
        Assert.Equal(plain, decoded);
    }

    [Fact]
    public void SumIsExactWhenClientsDropAfterAdvertising()
    {
        var result = Run(6, 3, 20, dropBeforeShare: ["client01"], dropBeforeMask: ["client04"]);
        Assert.Equal(["client00", "client02", "client03", "client05"], result.Contributors);
        Assert.Equal(PlainSum(6, 20, result.Contributors), result.Sum);
    }

    [Fact]
    public void TooFewSurvivorsFailsClearly()
    {
        var e = Assert.Throws<SecureAggregationException>(() => Run(5, 3, 10, dropBeforeMask: ["client00", "client01", "client02"]));
        Assert.Contains("threshold is 3", e.Message);
        var e2 = Assert.Throws<SecureAggregationException>(() => Run(5, 3, 10, dropBeforeMask: ["client00", "client01"], dropBeforeUnmask: ["client02"]));
        Assert.Contains("answered the unmask request", e2.Message);
    }

    [Fact]
    public void MaskedVectorDoesNotRevealTheInput()
    {
        var keep = new Round { Server = null!, Clients = null!, Inputs = null! };
        Run(4, 3, 256, keep: keep);
        var inputs = RandomInputs(4, 256, 7);
        foreach (var (id, m) in keep.Masked)
        {
            int equal = 0, highBits = 0;
            for (int i = 0; i < 256; i++)
            {
                if (m.Masked[i] == inputs[id][i]) equal++;
                highBits += (int)(m.Masked[i] >> 63);
            }
            Assert.Equal(0, equal);
            Assert.InRange(highBits, 80, 176); // the top bit looks like a fair coin, unlike small fixed-point values
        }
    }

    [Fact]
    public void TamperedCiphertextIsRejected()
    {
        var options = new SecAggOptions(2, 4);
        var server = new SecureAggregationServer(options);
        var clients = new[] { "a", "b", "c" }.Select(id => new SecureAggregationClient(id, options)).ToList();
        foreach (var c in clients) server.ReceiveAdvertisement(c.Advertise());
        var roster = server.CloseAdvertise();
        foreach (var c in clients) server.ReceiveShareKeys(c.ShareKeys(roster));
        var f = server.CloseShareKeys().First(x => x.To == "b");
        var bad = f.Shares.ToList();
        var ct = (byte[])bad[0].Ciphertext.Clone();
        ct[20] ^= 0x01;
        bad[0] = bad[0] with { Ciphertext = ct };
        var e = Assert.Throws<SecureAggregationException>(() => clients[1].MaskInput(new ulong[4], f with { Shares = bad }));
        Assert.Contains("failed authentication", e.Message);

        // A share relabelled as coming from another client fails too (the sender is bound in the AAD and key).
        var relabelled = f.Shares.Select(s => s with { From = s.From == "a" ? "c" : "a" }).ToList();
        Assert.Throws<SecureAggregationException>(() => clients[1].MaskInput(new ulong[4], f with { Shares = relabelled }));
    }

    [Fact]
    public void StagesMustRunInOrderAndInconsistentRequestsAreRefused()
    {
        var options = new SecAggOptions(2, 3);
        var server = new SecureAggregationServer(options);
        var clients = new[] { "a", "b", "c" }.Select(id => new SecureAggregationClient(id, options)).ToList();
        Assert.Throws<SecureAggregationException>(() => clients[0].Unmask(new SecAggUnmaskRequest(["a"], [])));
        foreach (var c in clients) server.ReceiveAdvertisement(c.Advertise());
        Assert.Throws<SecureAggregationException>(() => server.ReceiveAdvertisement(clients[0].Advertise()));
        var roster = server.CloseAdvertise();
        foreach (var c in clients) server.ReceiveShareKeys(c.ShareKeys(roster));
        var fwd = server.CloseShareKeys().ToDictionary(f => f.To);
        foreach (var c in clients) server.ReceiveMaskedInput(c.MaskInput(new ulong[3], fwd[c.ClientId]));
        // asking for both b (as survivor) and s (as dropped) of "c" is refused
        Assert.Throws<SecureAggregationException>(() => clients[0].Unmask(new SecAggUnmaskRequest(["a", "b", "c"], ["c"])));
        Assert.Throws<SecureAggregationException>(() => clients[0].Unmask(new SecAggUnmaskRequest(["a"], ["b", "c"])));
        Assert.Throws<SecureAggregationException>(() => server.ReceiveMaskedInput(new SecAggMaskedInput("zz", new ulong[3])));
    }

    [Fact]
    public void HostileBytesRaiseFormatException()
    {
        var options = new SecAggOptions(2, 3);
        using var c = new SecureAggregationClient("a", options);
        var bytes = c.Advertise().ToBytes();
        for (int cut = 0; cut < bytes.Length; cut++)
            Assert.Throws<FormatException>(() => SecAggAdvertisement.FromBytes(bytes.AsSpan(0, cut)));
        var huge = (byte[])bytes.Clone();
        huge[6] = 0xFF; huge[7] = 0xFF; huge[8] = 0xFF; huge[9] = 0x7F;
        Assert.Throws<FormatException>(() => SecAggAdvertisement.FromBytes(huge));
        Assert.Throws<FormatException>(() => SecAggMaskedInput.FromBytes(bytes));
        var masked = new SecAggMaskedInput("a", [1, 2, 3]).ToBytes();
        Assert.Equal(new ulong[] { 1, 2, 3 }, SecAggMaskedInput.FromBytes(masked).Masked);
        Assert.Throws<FormatException>(() => SecAggMaskedInput.FromBytes(masked[..^1]));
    }

    [Fact]
    public void WeightedSecureSumGivesTheFedAvgMean()
    {
        const int length = 30;
        var options = new SecAggOptions(3, length + 1);
        var rng = new Rng(21);
        var deltas = Enumerable.Range(0, 4).Select(_ => { var d = new float[length]; rng.FillGaussian(d, 0, 0.05f); return d; }).ToList();
        long[] examples = [10, 250, 3, 77];
        var server = new SecureAggregationServer(options);
        var clients = Enumerable.Range(0, 4).Select(i => new SecureAggregationClient($"c{i}", options)).ToList();
        foreach (var c in clients) server.ReceiveAdvertisement(c.Advertise());
        var roster = server.CloseAdvertise();
        foreach (var c in clients) server.ReceiveShareKeys(c.ShareKeys(roster));
        var fwd = server.CloseShareKeys().ToDictionary(f => f.To);
        for (int i = 0; i < 4; i++)
            server.ReceiveMaskedInput(clients[i].MaskInput(SecAggWeighting.Weighted(deltas[i], examples[i]), fwd[clients[i].ClientId]));
        var request = server.CloseMaskedInput();
        foreach (var c in clients) server.ReceiveUnmaskResponse(c.Unmask(request));
        var (mean, total) = SecAggWeighting.MeanOf(server.Finalize().ToDouble());
        Assert.Equal(340, total);
        var plain = new EdgeTune.Federated.Aggregation.FedAvgStrategy().Aggregate(1, new float[length],
            Enumerable.Range(0, 4).Select(i => new EdgeTune.Federated.Aggregation.ClientUpdate($"c{i}", deltas[i], examples[i])).ToList());
        for (int i = 0; i < length; i++) Assert.Equal(plain[i], mean[i], 1e-5f);
    }
}
