using System.CommandLine;
using System.Diagnostics;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Text;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune generate</c>: prints only the generated text on stdout, streamed as it is produced;
/// load and speed figures go to stderr.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var adapter = ModelOptions.Adapter();
        var prompt = new Option<string>("--prompt") { Description = "Prompt text", DefaultValueFactory = _ => "" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.8f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass (1 = off)", DefaultValueFactory = _ => 0.95f };
        var topK = new Option<int>("--top-k") { Description = "Keep the K most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
        var repetition = new Option<float>("--repetition-penalty") { Description = "1 = off", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => 1234UL };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable)", AllowMultipleArgumentsPerToken = false };
        var chat = new Option<bool>("--chat") { Description = "Render the prompt as a user turn with the model's chat template" };
        var system = new Option<string?>("--system") { Description = "System message for --chat" };

        var command = new Command("generate", "Generate text from a model");
        foreach (var o in new Option[] { model, tokenizer, adapter, prompt, maxNew, temperature, topP, topK, repetition, seed, stop, chat, system })
            command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var sampling = new SamplingOptions(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP),
                RepetitionPenalty: parse.GetValue(repetition), Seed: parse.GetValue(seed));
            sampling.Validate();
            ModelOptions.ResolveAdapter(parse, adapter);
            var sw = Stopwatch.StartNew();
            using var key = encryption.BindForReading(parse, error);
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, error, ct, key: key).ConfigureAwait(false);
            ModelOptions.ApplyAdapter(parse, adapter, loaded, error, key);
            var tok = loaded.RequireTokenizer();
            string text = parse.GetValue(prompt) ?? "";
            bool? addBos = null;
            if (parse.GetValue(chat))
            {
                var template = loaded.ChatTemplate ?? new ChatTemplate(ChatTemplates.ChatML);
                var messages = new List<ChatMessage>();
                if (parse.GetValue(system) is { } sys) messages.Add(new ChatMessage("system", sys));
                messages.Add(new ChatMessage("user", text));
                text = template.Render(messages, addGenerationPrompt: true);
                addBos = false; // templates write BOS themselves where the model wants it
            }
            await error.WriteLineAsync($"loaded {loaded.Source} in {sw.Elapsed.TotalSeconds:F2} s").ConfigureAwait(false);
            var options = new GenerationOptions(parse.GetValue(maxNew), sampling, parse.GetValue(stop) ?? [], addBos, loaded.StopIds());
            var generator = new TextGenerator(loaded.Model, tok);
            var meters = EdgeTune.Energy.EnergyMeterDiscovery.Discover(new EdgeTune.Energy.EnergyDiscoveryOptions());
            var energy = new EdgeTune.Energy.EnergyAccountant(meters.Total,
                fallback: meters.Total.IsEstimate ? null : new EdgeTune.Energy.CpuTimeEstimateMeter());
            sw.Restart();
            int n = 0;
            await foreach (var piece in generator.StreamAsync(text, options, cancellationToken: ct).ConfigureAwait(false))
            {
                if (piece.TokenId >= 0) n++;
                await output.WriteAsync(piece.Text).ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
            }
            await output.WriteLineAsync().ConfigureAwait(false);
            double secs = sw.Elapsed.TotalSeconds;
            await error.WriteLineAsync($"{n} tokens in {secs:F2} s ({n / Math.Max(secs, 1e-9):F1} tokens/s), stop: {generator.LastStopReason}").ConfigureAwait(false);
            energy.RecordTokens(n);
            await error.WriteLineAsync(FinetuneCommand.EnergySummary(energy.Report())).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
