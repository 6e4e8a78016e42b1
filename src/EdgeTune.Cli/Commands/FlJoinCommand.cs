using System.CommandLine;
using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Energy;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Simulation;
using EdgeTune.Tensors;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune fl join</c>: this device joins a federated run: it trains the shared LoRA adapter on its own
/// data (which never leaves it) and uploads only the change. Power policies pause or stop local training.</summary>
public static class FlJoinCommand
{
    public static Command Create()
    {
        var server = new Option<string>("--server") { Description = "Server address, e.g. http://10.0.0.2:50051 (https:// with TLS)", Required = true };
        var token = new Option<string?>("--token") { Description = "Enrolment token (first time; the identity is then kept in --identity)" };
        var identity = new Option<string>("--identity") { Description = "File keeping this device's client id and credential", DefaultValueFactory = _ => Path.Combine("runs", "fl-client", "identity.json") };
        var data = new Option<string>("--data") { Description = "Local training text (the last 10% of lines are used for local evaluation)", Required = true };
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var rank = FlCommand.Rank();
        var alpha = FlCommand.Alpha();
        var compression = FlCommand.Compression();
        var insecure = new Option<bool>("--insecure") { Description = "Accept a self-signed server certificate (testing)" };
        var name = new Option<string>("--name") { Description = "Display name", DefaultValueFactory = _ => Environment.MachineName };
        var command = new Command("join", "Join a federated run as a client device");
        foreach (var o in new Option[] { server, token, identity, data, model, tokenizer, rank, alpha, compression, insecure, name })
            command.Options.Add(o);
        var power = new PowerPolicyCliOptions();
        power.AddTo(command);
        var encryption = new EncryptionCliOptions(writes: true);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var outp = parse.InvocationConfiguration.Output;
            // The client's state folder (the identity's folder) is a run folder: encrypted with --encrypt, refused without its key.
            string idPath = parse.GetValue(identity)!;
            using var key = encryption.BindForWriting(parse, Path.GetDirectoryName(Path.GetFullPath(idPath))!, parse.InvocationConfiguration.Error);
            var files = EdgeTune.Security.RunFiles.ForWriting(Path.GetDirectoryName(Path.GetFullPath(idPath))!, key);
            var (loaded, llama) = FlCommand.LoadLlama(parse.GetValue(model)!, parse.GetValue(tokenizer));
            using var _ = loaded;
            var adapter = LoraInjector.Apply(llama, FlCommand.Lora(parse.GetValue(rank), parse.GetValue(alpha)));
            var (trainText, valText) = TextSplit.SplitLines(File.ReadAllText(parse.GetValue(data)!));
            var (policies, _, profile) = power.Bind(parse);
            PolicyEngine? engine = null;
            if (!policies.IsEmpty)
            {
                var meters = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(Profile: profile));
                engine = PolicyEngine.Create(policies, meters, maxThreads: WorkerPool.Shared.Threads);
            }
            var trainer = new LoraLocalTrainer(llama, adapter, FlCommand.Tokens(loaded, trainText), FlCommand.Tokens(loaded, valText)) { PowerPolicies = engine };
            var saved = File.Exists(idPath) ? JsonSerializer.Deserialize<Dictionary<string, string>>(files.ReadAllText(idPath)) : null;
            using var client = new FlClient(new FlClientOptions
            {
                Server = new Uri(parse.GetValue(server)!), Token = parse.GetValue(token), ClientId = saved?.GetValueOrDefault("client_id"),
                Credential = saved?.GetValueOrDefault("credential"), DisplayName = parse.GetValue(name)!, Compression = parse.GetValue(compression),
                AcceptAnyServerCertificate = parse.GetValue(insecure),
            }, trainer);
            await client.EnrolAsync(ct).ConfigureAwait(false);
            if (saved is null)
            {
                files.WriteAllText(idPath, JsonSerializer.Serialize(new Dictionary<string, string> { ["client_id"] = client.ClientId!, ["credential"] = client.Credential! }));
            }
            await outp.WriteLineAsync($"joined as {client.ClientId}").ConfigureAwait(false);
            FlClientSummary summary;
            try { summary = await client.RunAsync(ct).ConfigureAwait(false); }
            catch (Grpc.Core.RpcException e)
            {
                throw new CliException(CliErrors.Network, $"server {parse.GetValue(server)} failed or stayed unreachable: {e.Status.StatusCode} {e.Status.Detail}");
            }
            await outp.WriteLineAsync($"done: trained {summary.RoundsTrained} rounds, {summary.Accepted} updates accepted, final global version {summary.LastGlobalVersion}").ConfigureAwait(false);
            foreach (var r in summary.Rejections) await outp.WriteLineAsync("rejected: " + r).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
