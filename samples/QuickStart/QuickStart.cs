using EdgeTune.Adapters;
using EdgeTune.Formats.Export;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Text.Datasets;
using EdgeTune.Training;

namespace EdgeTune.Samples;

/// <summary>
/// EdgeTune in one page: load a pre-trained model, teach it something with LoRA, ask it, export it.
/// The model is the tiny stories260K that ships inside the EdgeTune package, so this runs offline in seconds;
/// for a real model use <c>await ModelLoader.LoadAsync("HuggingFaceTB/SmolLM2-135M-Instruct")</c> or a local folder.
/// </summary>
public static class QuickStart
{
    public static async Task Main(string[] args)
    {
        string outDir = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "edgetune-quickstart");
        var result = await RunAsync(outDir, Console.Out);
        Console.WriteLine($"adapter (PEFT): {result.AdapterFolder}\nmodel (GGUF):   {result.GgufFile}");
    }

    /// <summary>What the quick start produced.</summary>
    public sealed record Result(string Before, string After, string AdapterFolder, string GgufFile);

    public static async Task<Result> RunAsync(string outDir, TextWriter log, int steps = 60)
    {
        // 1. A pre-trained model and its tokenizer.
        using var loaded = BuiltInModels.Stories260K();
        var model = (DecoderModel)loaded.Model;
        var tokenizer = loaded.RequireTokenizer();

        // 2. A few rows of training data (or TrainingDataset.Load("my-data.jsonl", ...)).
        string[] rows =
        [
            "Zog is a little green dragon. Zog likes to eat red apples.",
            "Zog likes to eat red apples. Every day he eats three red apples.",
            "Lily gave Zog a basket of red apples, because Zog likes to eat red apples.",
            "Once upon a time, there was a little green dragon named Zog. Zog likes to eat red apples.",
        ];
        var data = TrainingDataset.FromSamples([.. rows.Select((r, i) => DataSample.FromText(i + 1, r))], tokenizer, template: null,
            new DatasetOptions { SeqLen = 64 });

        string prompt = "Zog likes to eat";
        string before = await Ask(model, tokenizer, prompt);

        // 3. LoRA on every projection: only the small adapter matrices train, the base stays frozen.
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 8, Alpha = 16, TargetModules = LoraConfig.AllProjections });
        var training = new TrainingOptions { Steps = steps, MicroBatch = 4, SeqLen = 64, LearningRate = 3e-3, WarmupSteps = 5, EvalEvery = 0, CheckpointEvery = 0 };
        var trainable = new DelegateTrainableModel(adapter.Parameters, (tape, tokens, targets, batch, time) => model.Loss(tape, tokens, targets, batch, time));
        var batches = new SequenceBatcherSource(new SequenceBatcher(data.Train, training.MicroBatch, training.Seed, padId: data.PadId));
        using (var trainer = new Trainer(trainable, batches, training))
        {
            var run = trainer.Run();
            log.WriteLine($"trained {run.LastStep} steps, {adapter.ParameterCount:N0} LoRA parameters ({run.Reason})");
        }

        // 4. Ask again.
        string after = await Ask(model, tokenizer, prompt);
        log.WriteLine($"{prompt}... before: \"{before}\"  after: \"{after}\"");

        // 5. Export: the adapter alone (PEFT safetensors, loads in Hugging Face peft too) and the merged model as GGUF (llama.cpp, Ollama).
        string adapterFolder = Path.Combine(outDir, "adapter");
        AdapterFiles.Save(adapter, adapterFolder, BuiltInModels.Stories260KName);
        adapter.Merge();
        string gguf = Path.Combine(outDir, "zog.gguf");
        Directory.CreateDirectory(outDir);
        ModelExporter.ExportGguf(model, tokenizer, gguf);
        return new Result(before, after, adapterFolder, gguf);
    }

    /// <summary>The model's greedy continuation of <paramref name="prompt"/>, up to the end of the sentence.</summary>
    public static Task<string> Ask(ICausalLM model, EdgeTune.Text.ITokenizer tokenizer, string prompt) =>
        new TextGenerator(model, tokenizer).GenerateAsync(prompt, new GenerationOptions(MaxNewTokens: 16, SamplingOptions.Greedy, StopStrings: ["."]));
}
