using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated.Server;

public sealed class FlSamplingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-fl-sampling-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_fraction_admits_the_seeded_draw_not_the_first_to_ask()
    {
        var layout = FlTestServer.Layout();
        var options = FlTestServer.Options(Path.Combine(_dir, "state"), minClients: 2) with { FractionFit = 0.3 };
        using var server = new FlServer(options, layout, new float[layout.TotalLength]);
        var enrolled = Enumerable.Range(0, 40).Select(i => server.Enrol(FlTestServer.Token, $"c{i}", 10, $"peer{i}")).ToList();
        var ids = enrolled.Select(e => e.ClientId).ToList();

        // As the gRPC service does: authenticate (which marks the client alive), then ask for a task.
        var admitted = enrolled.Where(e => server.GetTask(server.Authenticate(e.ClientId, e.Credential)).Kind == TaskKind.Train)
            .Select(e => e.ClientId).ToList();

        var drawn = ids.Where(id => server.IsDrawn(1, id)).ToList();
        int target = (int)Math.Ceiling(0.3 * ids.Count);
        Assert.Equal(drawn.Take(target), admitted);                  // the draw, in arrival order, up to the round's target
        Assert.NotEqual(ids.Take(admitted.Count), admitted);         // not simply the first clients to ask
        Assert.Contains(ids, id => !server.IsDrawn(1, id));          // someone was left out ...
        Assert.All(ids.Except(admitted), id => Assert.Equal(TaskKind.Wait, server.GetTask(id).Kind)); // ... and told to wait
    }

    [Fact]
    public void Clients_with_nothing_to_do_poll_less_often_as_the_fleet_grows()
    {
        var layout = FlTestServer.Layout();
        var options = FlTestServer.Options(Path.Combine(_dir, "state"), minClients: 2) with { FractionFit = 0.3 };
        using var server = new FlServer(options, layout, new float[layout.TotalLength]);
        var first = server.Enrol(FlTestServer.Token, "c0", 10, "peer0");
        var beforeRound = server.GetTask(server.Authenticate(first.ClientId, first.Credential));
        Assert.Equal(TaskKind.Wait, beforeRound.Kind);           // waiting for a second client: asked again soon
        Assert.Equal(0.5, beforeRound.RetryAfterSeconds);

        const int Fleet = 500;
        var enrolled = new[] { first }.Concat(Enumerable.Range(1, Fleet - 1).Select(i => server.Enrol(FlTestServer.Token, $"c{i}", 10, $"peer{i}"))).ToList();
        var replies = enrolled.Select(e => server.GetTask(server.Authenticate(e.ClientId, e.Credential))).ToList();
        var idle = replies.Where(r => r.Kind == TaskKind.Wait).ToList();
        Assert.NotEmpty(idle);                                    // not drawn, or no place left
        Assert.Contains(replies, r => r.Kind == TaskKind.Train);
        Assert.All(idle, r => Assert.Equal(Fleet / FlServer.IdlePollsPerSecond, r.RetryAfterSeconds, 9)); // 2.5 s, not 0.5 s
    }

    [Fact]
    public void The_draw_is_a_seeded_Bernoulli_trial_per_client()
    {
        var clients = Enumerable.Range(0, 20_000).Select(i => $"client-{i}").ToList();
        int drawn = clients.Count(c => FlServer.Draws(1234, c, 0.25));
        Assert.InRange(drawn, 4_700, 5_300);                           // 5,000 ± ~7σ
        Assert.Equal(clients.Select(c => FlServer.Draws(1234, c, 0.25)), clients.Select(c => FlServer.Draws(1234, c, 0.25)));
        Assert.NotEqual(clients.Select(c => FlServer.Draws(1234, c, 0.25)), clients.Select(c => FlServer.Draws(99, c, 0.25)));
    }
}
