using System.Security.Cryptography;
using EdgeTune.Federated.SecureAggregation.Internal;

namespace EdgeTune.Tests.Federated.SecureAggregation;

public class ShamirTests
{
    [Theory]
    [InlineData(2, 3, 32)]
    [InlineData(3, 5, 1)]
    [InlineData(5, 9, 47)]
    public void AnyTSharesRebuildTheSecret(int t, int n, int length)
    {
        var secret = RandomNumberGenerator.GetBytes(length);
        var shares = Shamir.Split(secret, t, n);
        for (int start = 0; start + t <= n; start++)
        {
            var subset = Enumerable.Range(start, t).Select(i => (i + 1, shares[i])).Reverse().ToList();
            Assert.Equal(secret, Shamir.Combine(subset, t, length));
        }
    }

    [Fact]
    public void FewerThanTSharesDoNotGiveTheSecret()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = Shamir.Split(secret, 3, 5);
        Assert.Throws<ArgumentException>(() => Shamir.Combine([(1, shares[0]), (2, shares[1])], 3, 32));
        // Interpolating t − 1 shares as if t were smaller yields something else (or an inconsistency).
        try { Assert.NotEqual(secret, Shamir.Combine([(1, shares[0]), (2, shares[1])], 2, 32)); }
        catch (ArgumentException) { }
    }
}
