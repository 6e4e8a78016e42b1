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
        return root.Parse(args).Invoke();
    }
}
