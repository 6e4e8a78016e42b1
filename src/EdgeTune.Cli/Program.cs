using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Cli;

public static class Program
{
    /// <summary>The command's name in help and messages (the tool command, not the assembly name).</summary>
    public const string Name = "edgetune";

    public static int Main(string[] args) =>
        // Ctrl+C cancels the running command's token; give it time to finish a step and write a checkpoint.
        Run(args, new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) });

    /// <summary>Runs the CLI in-process with <paramref name="configuration"/>'s writers (tests pass string writers);
    /// <paramref name="input"/> replaces stdin for the commands that read it.</summary>
    public static int Run(IReadOnlyList<string> args, InvocationConfiguration configuration, TextReader? input = null)
    {
        var (root, verbose, config) = CreateRoot(input);
        return CliErrors.Invoke(root, verbose, args, configuration, config);
    }

    /// <summary>The <c>edgetune</c> command with every verb, and its global <c>--verbose</c> and <c>--config</c> options.</summary>
    public static (Command Root, Option<bool> Verbose, Option<string?> Config) CreateRoot(TextReader? input = null)
    {
        // A plain Command, not RootCommand: RootCommand takes its name from the executable (EdgeTune.Cli), and the
        // usage line should read "edgetune".
        var root = new Command(Name, "EdgeTune: energy-efficient local training of small LLMs");
        var help = new HelpOption();
        help.Action = new HelpWithExitCodes(help.Action!, root);
        root.Options.Add(help);
        root.Options.Add(new VersionOption());
        var verbose = new Option<bool>("--verbose") { Description = "Print the stack trace of an error as well as its message", Recursive = true };
        root.Options.Add(verbose);
        var config = RunConfigFile.CreateOption();
        root.Options.Add(config);
        root.Subcommands.Add(FinetuneCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(EnergyCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(PruneCommand.Create());
        root.Subcommands.Add(DistillCommand.Create());
        root.Subcommands.Add(QuantizeCommand.Create());
        root.Subcommands.Add(FlCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create(input));
        root.Subcommands.Add(EmbedCommand.Create(input));
        root.Subcommands.Add(ClassifyCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        return (root, verbose, config);
    }

    /// <summary>The standard help, then the exit-code table under the top-level command's help.</summary>
    private sealed class HelpWithExitCodes(CommandLineAction help, Command root) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int code = help is SynchronousCommandLineAction sync ? sync.Invoke(parseResult) : 0;
            if (ReferenceEquals(parseResult.CommandResult.Command, root))
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine(CliErrors.HelpText);
            }
            return code;
        }
    }
}
