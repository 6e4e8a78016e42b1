namespace EdgeTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "optimizer") return OptimizerBench.Run(args[1..]);
        Console.Error.WriteLine("usage: EdgeTune.Bench <suite>");
        return 2;
    }
}
