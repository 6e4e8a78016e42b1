using System.CommandLine;
using System.Text.Json;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public sealed class FlCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-fl-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [SkippableFact]
    public void SimulateTwoClientsOverLoopbackPrintsRoundsAndFinalJson()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string text = File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"));
        string data = Path.Combine(_dir, "slice.txt");
        File.WriteAllText(data, text[..6000]);
        var (code, stdout, stderr) = Run("fl", "simulate", "--model", model, "--tokenizer", tok, "--data", data, "--clients", "2", "--rounds", "2",
            "--local-steps", "2", "--batch", "2", "--seq-len", "32", "--eval-batches", "2", "--non-iid", "--centralised", "--state", Path.Combine(_dir, "state"));
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("round 1: 2/2 updates accepted", stdout);
        Assert.Contains("round 2: 2/2 updates accepted", stdout);
        using var doc = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        var r = doc.RootElement;
        Assert.Equal(2, r.GetProperty("rounds").GetInt32());
        Assert.Equal(4, r.GetProperty("accepted").GetInt32());
        Assert.Equal(8, r.GetProperty("client_steps").GetInt32());
        Assert.Equal(8, r.GetProperty("centralised_steps").GetInt32());
        Assert.True(double.IsFinite(r.GetProperty("final_ppl").GetDouble()));
        Assert.True(File.Exists(Path.Combine(_dir, "state", "state.db")));
    }

    [SkippableFact]
    public void SimulateWithSecureAggregationMasksEveryUpdate()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string text = File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"));
        string data = Path.Combine(_dir, "slice.txt");
        File.WriteAllText(data, text[..6000]);
        var (code, stdout, stderr) = Run("fl", "simulate", "--model", model, "--tokenizer", tok, "--data", data, "--clients", "3", "--rounds", "1",
            "--local-steps", "1", "--batch", "2", "--seq-len", "32", "--eval-batches", "2", "--secure-agg", "--secagg-threshold", "2", "--state", Path.Combine(_dir, "state"));
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("round 1: 3/3 updates accepted", stdout);
        Assert.Contains("(secure-aggregation)", stdout);
        using var doc = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        Assert.True(double.IsFinite(doc.RootElement.GetProperty("final_ppl").GetDouble()));
    }

    [SkippableFact]
    public void ServeWithAnUnreachableClusterDatabaseSaysWhichOneInOneLine()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        int port = FreePort(); // nothing listens there
        var (code, _, err) = Run("fl", "serve", "--model", model, "--tokenizer", tok, "--state", Path.Combine(_dir, "state"), "--port", "0",
            "--cluster", $"Host=127.0.0.1;Port={port};Username=edgetune;Database=fl;Timeout=3");
        Assert.Equal(EdgeTune.Cli.CliErrors.Network, code);
        Assert.Contains($"cannot reach PostgreSQL at 127.0.0.1:{port} (database 'fl')", err);
        Assert.DoesNotContain("   at ", err); // no stack trace
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public void UnknownStrategyIsRefused()
    {
        var (code, _, err) = Run("fl", "simulate", "--model", "none", "--data", "none", "--strategy", "nope");
        Assert.NotEqual(0, code);
        Assert.False(string.IsNullOrEmpty(err));
    }
}
