using System.CommandLine;

namespace EdgeTune.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("EdgeTune: energy-efficient local training of small LLMs");
        return root.Parse(args).Invoke();
    }
}
