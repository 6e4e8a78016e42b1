using EdgeTune.Federated.Server.Internal;

namespace EdgeTune.Tests.Federated.Server;

public class RateLimiterTests
{
    [Fact]
    public void BurstIsAllowedThenRefusedPerKey()
    {
        var limiter = new RateLimiter(rate: 0.001, burst: 3); // effectively no refill during the test
        Assert.True(limiter.TryTake("a"));
        Assert.True(limiter.TryTake("a"));
        Assert.True(limiter.TryTake("a"));
        Assert.False(limiter.TryTake("a"));
        Assert.True(limiter.TryTake("b")); // other clients keep their own bucket
    }
}
