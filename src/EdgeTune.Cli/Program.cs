using System.CommandLine;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("EdgeTune: energy-efficient local training of small LLMs");
        root.Subcommands.Add(FinetuneCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(EnergyCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(PruneCommand.Create());
        root.Subcommands.Add(DistillCommand.Create());
        root.Subcommands.Add(QuantizeCommand.Create());
        root.Subcommands.Add(FlCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        // Ctrl+C cancels the running command's token; give it time to finish a step and write a checkpoint.
        return root.Parse(args).Invoke(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) });
    }
}
