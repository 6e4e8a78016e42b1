using System.CommandLine;
using EdgeTune.Adapters;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Serving;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune serve</c>: an OpenAI-compatible HTTP server over one model and any number of LoRA adapters,
/// each selectable per request by its name in the request's "model" field. Runs until Ctrl+C.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var adapters = new Option<string[]>("--adapter")
        {
            Description = "NAME=PATH: a LoRA adapter folder (PEFT layout, or a fine-tuning run folder) served under NAME (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var name = new Option<string?>("--served-model-name") { Description = "Id of the base model in the API (default: the model's file or folder name)" };
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0: every interface)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0: any free port)", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every request" };
        var concurrency = new Option<int>("--max-concurrency") { Description = "Requests generating at once (they share the model token by token)", DefaultValueFactory = _ => 1 };
        var queue = new Option<int>("--max-queue") { Description = "Requests that may wait for a slot; more get HTTP 429", DefaultValueFactory = _ => 16 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body (HTTP 413 beyond)", DefaultValueFactory = _ => 1L << 20 };
        var maxTokens = new Option<int>("--default-max-tokens") { Description = "Tokens per response when a request sets no max_tokens", DefaultValueFactory = _ => 256 };

        var command = new Command("serve", "Serve a model (and LoRA adapters) over an OpenAI-compatible HTTP API");
        foreach (var o in new Option[] { model, tokenizer, adapters, name, host, port, apiKey, concurrency, queue, maxBody, maxTokens })
            command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var serverOptions = new OpenAiServerOptions
            {
                Host = parse.GetValue(host)!, Port = parse.GetValue(port), ApiKey = parse.GetValue(apiKey),
                MaxConcurrency = parse.GetValue(concurrency), MaxQueue = parse.GetValue(queue), MaxRequestBodyBytes = parse.GetValue(maxBody),
            };
            serverOptions.Validate();
            var specs = (parse.GetValue(adapters) ?? []).Select(ParseAdapter).ToList();

            using var key = encryption.BindForReading(parse, error);
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, error, ct, key: key).ConfigureAwait(false);
            var tok = loaded.RequireTokenizer();
            var applied = new List<LoraAdapter>();
            try
            {
                if (specs.Count > 0 && loaded.Model is not DecoderModel)
                    throw new NotSupportedException($"--adapter needs a decoder model; '{loaded.Source}' is {loaded.Config.ModelType}");
                foreach (var (adapterName, path) in specs)
                {
                    var a = AdapterFiles.Load(path, (DecoderModel)loaded.Model, adapterName, EdgeTune.Security.RunFiles.ForReading(path, key));
                    applied.Add(a);
                    await error.WriteLineAsync($"adapter {adapterName} ({path}): {ModelOptions.Describe(a)}").ConfigureAwait(false);
                }
                string baseId = parse.GetValue(name) ?? DefaultModelId(parse.GetValue(model)!);
                var client = new LocalChatClient(new AdapterSwitchingModel(loaded.Model, applied), tok, new LocalChatClientOptions(
                    ModelId: baseId, Template: loaded.ChatTemplate, StopIds: loaded.StopIds(), MaxOutputTokens: parse.GetValue(maxTokens)));
                await using var server = await OpenAiServer.StartAsync(client, serverOptions, ct).ConfigureAwait(false);
                await output.WriteLineAsync($"serving {string.Join(", ", client.ModelIds)} on {server.Url} (OpenAI API under /v1; Ctrl+C stops)").ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                foreach (var a in applied) a.Remove();
            }
            return 0;
        });
        return command;
    }

    /// <summary>"name=path" → (name, path); the name must be non-empty and the path given.</summary>
    public static (string Name, string Path) ParseAdapter(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || eq == spec.Length - 1)
            throw new ArgumentException($"--adapter '{spec}': expected NAME=PATH (e.g. --adapter support=runs/support/adapter)");
        return (spec[..eq].Trim(), spec[(eq + 1)..].Trim());
    }

    /// <summary>The last path segment of a model reference (a file without its extension), or a hub id as given.</summary>
    public static string DefaultModelId(string reference)
    {
        string trimmed = reference.TrimEnd('/', '\\');
        if (File.Exists(trimmed)) return Path.GetFileNameWithoutExtension(trimmed);
        if (Directory.Exists(trimmed)) return Path.GetFileName(trimmed);
        return trimmed;
    }
}
