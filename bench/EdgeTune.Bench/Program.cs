namespace EdgeTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["pointwise"]) return PointwiseSuite.Run();
        Console.Error.WriteLine("usage: EdgeTune.Bench <suite>");
        return 2;
    }
}
