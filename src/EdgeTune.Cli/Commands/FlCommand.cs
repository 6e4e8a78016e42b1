using System.CommandLine;
using System.Globalization;
using EdgeTune.Adapters;
using EdgeTune.Federated.Server;
using EdgeTune.Models;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune fl</c>: federated LoRA fine-tuning — <c>serve</c> (coordinator), <c>join</c> (a device),
/// <c>simulate</c> (N clients over loopback gRPC in one process).</summary>
public static class FlCommand
{
    public static Command Create()
    {
        var command = new Command("fl", "Federated LoRA fine-tuning: many devices train one adapter without sharing their data");
        command.Subcommands.Add(FlServeCommand.Create());
        command.Subcommands.Add(FlJoinCommand.Create());
        command.Subcommands.Add(FlSimulateCommand.Create());
        return command;
    }

    // ---- options shared by the subcommands ----

    public static Option<int> Rank() => new("--rank") { Description = "LoRA rank (server and clients must agree)", DefaultValueFactory = _ => 8 };
    public static Option<double?> Alpha() => new("--alpha") { Description = "LoRA alpha (default 2 x rank)" };
    public static Option<int> LocalSteps() => new("--local-steps") { Description = "Optimizer steps each client trains per round", DefaultValueFactory = _ => 10 };
    public static Option<double> LearningRate() => new("--lr") { Description = "Clients' learning rate", DefaultValueFactory = _ => 2e-3 };
    public static Option<int> Batch() => new("--batch") { Description = "Sequences per client micro-batch", DefaultValueFactory = _ => 4 };
    public static Option<int> SeqLen() => new("--seq-len") { Description = "Tokens per sequence", DefaultValueFactory = _ => 128 };
    public static Option<string> Strategy()
    {
        var o = new Option<string>("--strategy")
        {
            Description = "Aggregation: " + string.Join(", ", EdgeTune.Federated.Aggregation.StrategyFactory.Names), DefaultValueFactory = _ => "fedavg",
        };
        o.AcceptOnlyFromAmong([.. EdgeTune.Federated.Aggregation.StrategyFactory.Names]);
        return o;
    }
    public static Option<bool> SecureAgg() => new("--secure-agg")
    {
        Description = "Secure aggregation: clients mask their updates so the server only learns the example-weighted sum (fedavg, fedprox, fedadam, fedyogi; local DP only)",
    };
    public static Option<int?> SecAggThreshold() => new("--secagg-threshold")
    {
        Description = "Secure aggregation threshold t: clients needed at every stage (default: half the sampled clients + 1, at least 2)",
    };
    public static Option<double> Mu() => new("--mu") { Description = "FedProx proximal coefficient (with --strategy fedprox)", DefaultValueFactory = _ => 0.01 };
    public static Option<string?> Compression()
    {
        var o = new Option<string?>("--compression") { Description = "Update codec: f32, int8 or topk (lossy ones with error feedback)" };
        o.AcceptOnlyFromAmong([.. EdgeTune.Federated.UpdateCompression.UpdateCodec.Names]);
        return o;
    }

    public static LoraConfig Lora(int rank, double? alpha) =>
        new() { Rank = rank, Alpha = alpha ?? 2.0 * rank, TargetModules = LoraConfig.AllProjections };

    /// <summary>Loads a decoder model and its tokenizer.</summary>
    public static (LoadedModel Loaded, DecoderModel Llama) LoadLlama(string model, string? tokenizer)
    {
        var loaded = ModelLoader.Load(model, tokenizer);
        if (loaded.Model is not DecoderModel llama)
        {
            loaded.Dispose();
            throw new NotSupportedException($"federated LoRA needs a decoder model; '{model}' is {loaded.Config.ModelType}");
        }
        return (loaded, llama);
    }

    /// <summary><paramref name="text"/> tokenized (no BOS/EOS, special-token text kept as text).</summary>
    public static int[] Tokens(LoadedModel loaded, string text) => loaded.RequireTokenizer().Encode(text, parseSpecial: false);

    public static string Describe(FlRoundResult r)
    {
        var c = CultureInfo.InvariantCulture;
        string eval = r.Evaluation.TryGetValue("loss", out double l) ? string.Create(c, $", validation loss {l:F4} ppl {Math.Exp(l):F2}") : "";
        string eps = r.Epsilon is double e ? string.Create(c, $", ε {e:F3}") : "";
        if (r.Failure is { } why) return string.Create(c, $"round {r.Round}: FAILED ({why}); global stays at version {r.Version}, {r.Duration.TotalSeconds:F1} s");
        return string.Create(c, $"round {r.Round}: {r.Accepted}/{r.Selected} updates accepted, {r.Rejected} rejected, mean train loss {r.MeanTrainLoss:F4}{eval}, {r.Duration.TotalSeconds:F1} s ({r.ClosedBy}){eps}");
    }
}
