using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Simulation;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune fl simulate</c>: N clients and a server over real gRPC on 127.0.0.1 in this process, the text
/// split among the clients (contiguous shards with --non-iid), optional dropouts; prints each round and a final
/// JSON line. With --centralised it also trains one LoRA on all the data at the same budget (steps × batch).</summary>
public static class FlSimulateCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var data = new Option<string>("--data") { Description = "Text; the first --train-fraction of its lines train, the rest validate", Required = true };
        var trainFraction = new Option<double>("--train-fraction") { Description = "Fraction of lines used for training", DefaultValueFactory = _ => 0.9 };
        var clients = new Option<int>("--clients") { Description = "Simulated clients", DefaultValueFactory = _ => 10 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds", DefaultValueFactory = _ => 5 };
        var nonIid = new Option<bool>("--non-iid") { Description = "Give each client a contiguous shard of the text (default: windows dealt round-robin)" };
        var dropout = new Option<double>("--dropout") { Description = "Probability a client drops out of a round", DefaultValueFactory = _ => 0 };
        var strategy = FlCommand.Strategy();
        var mu = FlCommand.Mu();
        var rank = FlCommand.Rank();
        var alpha = FlCommand.Alpha();
        var localSteps = FlCommand.LocalSteps();
        var lr = FlCommand.LearningRate();
        var batch = FlCommand.Batch();
        var seqLen = FlCommand.SeqLen();
        var compression = FlCommand.Compression();
        var quorum = new Option<int?>("--quorum") { Description = "Accepted updates a round needs (default half the clients)" };
        var evalBatches = new Option<int>("--eval-batches") { Description = "Validation windows per evaluation", DefaultValueFactory = _ => 16 };
        var seed = new Option<ulong>("--seed") { Description = "Seed", DefaultValueFactory = _ => 1234 };
        var centralised = new Option<bool>("--centralised") { Description = "Also train a centralised LoRA with the same total steps x batch and report both" };
        var state = new Option<string?>("--state") { Description = "Server state folder (default: temporary)" };
        var dpNoise = new Option<double>("--dp-noise") { Description = "Differential privacy noise multiplier z (0: off)", DefaultValueFactory = _ => 0 };
        var dpClip = new Option<double>("--dp-clip") { Description = "Differential privacy clipping norm C", DefaultValueFactory = _ => 1.0 };
        var dpLocal = new Option<bool>("--dp-local") { Description = "Clients add the noise themselves (local DP) instead of the server" };
        var secureAgg = FlCommand.SecureAgg();
        var secAggThreshold = FlCommand.SecAggThreshold();
        var command = new Command("simulate", "Simulate federated LoRA with N clients over loopback gRPC");
        foreach (var o in new Option[] { model, tokenizer, data, trainFraction, clients, rounds, nonIid, dropout, strategy, mu, rank, alpha, localSteps, lr, batch, seqLen, compression, quorum, evalBatches, seed, centralised, state, dpNoise, dpClip, dpLocal, secureAgg, secAggThreshold })
            command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var outp = parse.InvocationConfiguration.Output;
            var c = CultureInfo.InvariantCulture;
            var (loaded, llama) = FlCommand.LoadLlama(parse.GetValue(model)!, parse.GetValue(tokenizer));
            using var _ = loaded;
            var (trainText, valText) = TextSplit.SplitLines(File.ReadAllText(parse.GetValue(data)!), parse.GetValue(trainFraction));
            int[] train = FlCommand.Tokens(loaded, trainText), val = FlCommand.Tokens(loaded, valText);
            var options = new FlSimulationOptions
            {
                Clients = parse.GetValue(clients), Rounds = parse.GetValue(rounds), Dropout = parse.GetValue(dropout), NonIid = parse.GetValue(nonIid),
                Strategy = parse.GetValue(strategy)!, StrategyOptions = new StrategyOptions { ProximalMu = parse.GetValue(mu) },
                Lora = FlCommand.Lora(parse.GetValue(rank), parse.GetValue(alpha)), Compression = parse.GetValue(compression),
                DpNoiseMultiplier = parse.GetValue(dpNoise), DpClipNorm = parse.GetValue(dpNoise) > 0 ? parse.GetValue(dpClip) : 0, DpLocal = parse.GetValue(dpLocal),
                SecureAggregation = parse.GetValue(secureAgg), SecAggThreshold = parse.GetValue(secAggThreshold),
                MinQuorum = parse.GetValue(quorum), EvalBatches = parse.GetValue(evalBatches), Seed = parse.GetValue(seed), StateFolder = parse.GetValue(state),
                Fit = new FitInstructions { LocalSteps = parse.GetValue(localSteps), LearningRate = parse.GetValue(lr), BatchSize = parse.GetValue(batch), SequenceLength = parse.GetValue(seqLen) },
            };
            await outp.WriteLineAsync(string.Create(c, $"{options.Clients} clients ({(options.NonIid ? "non-IID shards" : "IID")}), {train.Length:N0} training and {val.Length:N0} validation tokens, strategy {options.Strategy}, dropout {options.Dropout}")).ConfigureAwait(false);
            var progress = new SyncProgress(r => outp.WriteLine(FlCommand.Describe(r)));
            var result = await FlSimulation.RunAsync(llama, train, val, options, progress, ct).ConfigureAwait(false);
            await outp.WriteLineAsync(string.Create(c, $"federated: validation loss {result.InitialLoss:F4} -> {result.FinalLoss:F4}, ppl {result.InitialPerplexity:F2} -> {result.FinalPerplexity:F2} in {result.Elapsed.TotalSeconds:F1} s ({result.TotalClientSteps} client steps of batch {options.Fit.BatchSize})")).ConfigureAwait(false);
            var json = new JsonObject
            {
                ["clients"] = options.Clients, ["rounds"] = result.Rounds.Count, ["strategy"] = options.Strategy, ["non_iid"] = options.NonIid, ["dropout"] = options.Dropout,
                ["initial_loss"] = result.InitialLoss, ["final_loss"] = result.FinalLoss, ["initial_ppl"] = result.InitialPerplexity, ["final_ppl"] = result.FinalPerplexity,
                ["epsilon"] = result.Rounds.Count > 0 ? result.Rounds[^1].Epsilon : null,
                ["client_steps"] = result.TotalClientSteps, ["seconds"] = Math.Round(result.Elapsed.TotalSeconds, 2),
                ["accepted"] = result.Rounds.Sum(r => r.Accepted), ["rejected"] = result.Rounds.Sum(r => r.Rejected),
                ["round_seconds"] = new JsonArray(result.Rounds.Select(r => (JsonNode?)Math.Round(r.Duration.TotalSeconds, 2)).ToArray()),
            };
            if (parse.GetValue(centralised))
            {
                int steps = (int)Math.Max(1, result.TotalClientSteps);
                var (before, after) = FlSimulation.RunCentralised(llama, train, val, options, steps, ct);
                await outp.WriteLineAsync(string.Create(c, $"centralised ({steps} steps of batch {options.Fit.BatchSize}): validation loss {before:F4} -> {after:F4}, ppl {Math.Exp(before):F2} -> {Math.Exp(after):F2}")).ConfigureAwait(false);
                json["centralised_steps"] = steps;
                json["centralised_loss"] = after;
                json["centralised_ppl"] = Math.Exp(after);
            }
            await outp.WriteLineAsync(json.ToJsonString()).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private sealed class SyncProgress(Action<EdgeTune.Federated.Server.FlRoundResult> report) : IProgress<EdgeTune.Federated.Server.FlRoundResult>
    {
        public void Report(EdgeTune.Federated.Server.FlRoundResult value) => report(value);
    }
}
