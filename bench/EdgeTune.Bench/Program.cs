namespace EdgeTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        switch (args.Length > 0 ? args[0] : "")
        {
            case "attention": return Suites.AttentionSuite.Run(args[1..]);
            case "optimizer": return OptimizerBench.Run(args[1..]);
            case "pointwise": return PointwiseSuite.Run();
        }
        Console.Error.WriteLine("usage: EdgeTune.Bench <suite>   (suites: attention, optimizer, pointwise)");
        return 2;
    }
}
