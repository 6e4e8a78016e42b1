using System.CommandLine;
using System.Security.Cryptography;
using EdgeTune.Adapters;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Cluster;
using EdgeTune.Federated.Server;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune fl serve</c>: the coordinator. One Orleans silo (localhost clustering; with --cluster, membership and state in PostgreSQL) hosting the task's
/// coordinator and aggregator grains behind the gRPC endpoint; runs the rounds, keeps all state in SQLite under --state
/// (a restarted server continues), saves the global adapter (PEFT folder) after every round.</summary>
public static class FlServeCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var rank = FlCommand.Rank();
        var alpha = FlCommand.Alpha();
        var rounds = new Option<int>("--rounds") { Description = "Rounds to run", DefaultValueFactory = _ => 10 };
        var minClients = new Option<int>("--min-clients") { Description = "Clients enrolled before round 1, and the least a round asks for", DefaultValueFactory = _ => 2 };
        var quorum = new Option<int?>("--quorum") { Description = "Accepted updates a round needs (default --min-clients)" };
        var fraction = new Option<double>("--fraction") { Description = "Fraction of enrolled clients asked per round", DefaultValueFactory = _ => 1.0 };
        var deadline = new Option<double>("--deadline") { Description = "Round deadline in seconds", DefaultValueFactory = _ => 600 };
        var strategy = FlCommand.Strategy();
        var mu = FlCommand.Mu();
        var localSteps = FlCommand.LocalSteps();
        var lr = FlCommand.LearningRate();
        var batch = FlCommand.Batch();
        var seqLen = FlCommand.SeqLen();
        var state = new Option<string>("--state") { Description = "State folder (SQLite database, global adapters)", DefaultValueFactory = _ => Path.Combine("runs", "fl-server") };
        var token = new Option<string?>("--token") { Description = "Enrolment token clients must present (default: a random one, printed)" };
        var address = new Option<string>("--address") { Description = "Address to listen on (0.0.0.0: all interfaces)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port", DefaultValueFactory = _ => 50051 };
        var cert = new Option<string?>("--tls-cert") { Description = "PKCS#12 (.pfx) certificate: serve TLS" };
        var certPassword = new Option<string?>("--tls-password") { Description = "Password of --tls-cert" };
        var maxNorm = new Option<double>("--max-update-norm") { Description = "Reject updates with a larger L2 norm (0: no bound)", DefaultValueFactory = _ => 0 };
        var validation = new Option<string?>("--validation") { Description = "Text the server evaluates each new global adapter on" };
        var compression = FlCommand.Compression();
        var dpNoise = new Option<double>("--dp-noise") { Description = "Differential privacy noise multiplier z (0: off)", DefaultValueFactory = _ => 0 };
        var dpClip = new Option<double>("--dp-clip") { Description = "Differential privacy clipping norm C", DefaultValueFactory = _ => 1.0 };
        var dpLocal = new Option<bool>("--dp-local") { Description = "Clients add the noise themselves (local DP) instead of the server" };
        var secureAgg = FlCommand.SecureAgg();
        var secAggThreshold = FlCommand.SecAggThreshold();
        var liveness = new Option<double>("--liveness") { Description = "Seconds without a call after which a selected client counts as a straggler", DefaultValueFactory = _ => 30 };
        var siloPort = new Option<int>("--silo-port") { Description = "Orleans silo-to-silo port (0: a free one)", DefaultValueFactory = _ => 0 };
        var primarySilo = new Option<int?>("--primary-silo-port") { Description = "Join the loopback cluster whose primary silo listens on this port (the primary gives its own --silo-port); every silo must share --state" };
        var cluster = new Option<string?>("--cluster") { Description = "Npgsql connection string of the PostgreSQL database the cluster shares (membership and state; every silo gives the same one, on any machine; no primary). --state is then only a local folder for uploads in progress" };
        var siloAddress = new Option<string>("--silo-address") { Description = "With --cluster: the IP address other silos reach this one at", DefaultValueFactory = _ => "127.0.0.1" };
        var linger = new Option<double>("--linger") { Description = "Seconds to keep serving after the last round so clients hear it is done", DefaultValueFactory = _ => 30 };
        var command = new Command("serve", "Coordinate federated LoRA rounds over gRPC");
        foreach (var o in new Option[] { model, tokenizer, rank, alpha, rounds, minClients, quorum, fraction, deadline, strategy, mu, localSteps, lr, batch, seqLen, state, token, address, port, cert, certPassword, maxNorm, validation, compression, dpNoise, dpClip, dpLocal, secureAgg, secAggThreshold, liveness, siloPort, primarySilo, cluster, siloAddress, linger })
            command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var outp = parse.InvocationConfiguration.Output;
            var (loaded, llama) = FlCommand.LoadLlama(parse.GetValue(model)!, parse.GetValue(tokenizer));
            using var _ = loaded;
            var adapter = LoraInjector.Apply(llama, FlCommand.Lora(parse.GetValue(rank), parse.GetValue(alpha)));
            var layout = AdapterVector.LayoutOf(adapter);
            int[]? valTokens = parse.GetValue(validation) is { } vpath ? FlCommand.Tokens(loaded, File.ReadAllText(vpath)) : null;
            int seq = parse.GetValue(seqLen);
            var evalLock = new Lock();
            Func<float[], IReadOnlyDictionary<string, double>>? evaluate = valTokens is null ? null : g =>
            {
                lock (evalLock)
                {
                    AdapterVector.Write(adapter, g);
                    double loss = LoraLocalTrainer.MeanLoss(llama, valTokens, seq, 16);
                    return new Dictionary<string, double> { ["loss"] = loss, ["ppl"] = Math.Exp(loss) };
                }
            };
            string enrol = parse.GetValue(token) ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
            string stateDir = parse.GetValue(state)!;
            var options = new FlServerOptions
            {
                StateFolder = stateDir, EnrolmentToken = enrol, Rounds = parse.GetValue(rounds), MinClients = parse.GetValue(minClients),
                MinQuorum = parse.GetValue(quorum), FractionFit = parse.GetValue(fraction), RoundDeadline = TimeSpan.FromSeconds(parse.GetValue(deadline)),
                Strategy = parse.GetValue(strategy)!, StrategyOptions = new StrategyOptions { ProximalMu = parse.GetValue(mu) },
                MaxUpdateNorm = parse.GetValue(maxNorm), LivenessTimeout = TimeSpan.FromSeconds(parse.GetValue(liveness)),
                DpNoiseMultiplier = parse.GetValue(dpNoise), DpClipNorm = parse.GetValue(dpNoise) > 0 ? parse.GetValue(dpClip) : 0, DpLocal = parse.GetValue(dpLocal),
                SecureAggregation = parse.GetValue(secureAgg), SecAggThreshold = parse.GetValue(secAggThreshold), UpdateEncoding = parse.GetValue(compression) ?? "f32",
                Fit = new FitInstructions { LocalSteps = parse.GetValue(localSteps), LearningRate = parse.GetValue(lr), BatchSize = parse.GetValue(batch), SequenceLength = seq },
            };
            // one Orleans silo (localhost clustering) whose coordinator grain runs the rounds on the SQLite state under --state
            var silo = new FlSiloOptions
            {
                Server = options, Layout = layout, InitialGlobal = AdapterVector.Read(adapter), Evaluate = evaluate,
                SiloPort = parse.GetValue(siloPort), PrimarySiloPort = parse.GetValue(primarySilo),
                ClusterConnectionString = parse.GetValue(cluster), SiloAddress = parse.GetValue(siloAddress)!,
                ServerStarted = server =>
                {
                    string? lastFailure = null; // the store failure last reported (the close is retried every 100 ms while it lasts)
                    server.RoundCompleted += r =>
                    {
                        Volatile.Write(ref lastFailure, null);
                        lock (evalLock)
                        {
                            AdapterVector.Write(adapter, server.Global);
                            AdapterFiles.Save(adapter, Path.Combine(server.StateFolder, "global"), parse.GetValue(model));
                        }
                        err.WriteLine(FlCommand.Describe(r));
                    };
                    server.CloseFailed += e =>
                    {
                        string what = e.GetType().Name + ": " + e.Message;
                        if (Interlocked.Exchange(ref lastFailure, what) != what) err.WriteLine($"fl serve: closing the round failed in the state store ({what}); retrying");
                    };
                },
            };
            await using var host = await FlServerHost.StartSiloAsync(silo, new FlHostOptions
            {
                Address = parse.GetValue(address)!, Port = parse.GetValue(port), CertificatePath = parse.GetValue(cert), CertificatePassword = parse.GetValue(certPassword),
            }, ct).ConfigureAwait(false);
            if (parse.GetValue(primarySilo) is not null || parse.GetValue(cluster) is not null)
            {
                // one silo of several: the coordinator runs on whichever silo first served a call, and moves when that one dies
                string where = parse.GetValue(primarySilo) is int primary ? $"the cluster whose primary is at silo port {primary}, serving at {host.Url} (shared state: {options.StateFolder})"
                    : $"the PostgreSQL cluster, serving at {host.Url} (state in the database; uploads in progress under {options.StateFolder})";
                await outp.WriteLineAsync($"silo of {where}; Ctrl+C stops it").ConfigureAwait(false);
                if (parse.GetValue(token) is null) await outp.WriteLineAsync($"enrolment token: {enrol} (give every silo the same --token)").ConfigureAwait(false);
                try { await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { }
                return 0;
            }
            var server = host.Server;
            await outp.WriteLineAsync($"serving {layout.TotalLength:N0} adapter values at {host.Url} (state: {server.StateFolder}, global version {server.GlobalVersion})").ConfigureAwait(false);
            if (parse.GetValue(token) is null) await outp.WriteLineAsync($"enrolment token: {enrol}").ConfigureAwait(false);
            await server.Completion.WaitAsync(ct).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(parse.GetValue(linger)), ct).ConfigureAwait(false); // let clients hear "done"
            await outp.WriteLineAsync($"done: {server.Results().Count} rounds, global version {server.GlobalVersion} saved to {Path.Combine(server.StateFolder, "global")}").ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
