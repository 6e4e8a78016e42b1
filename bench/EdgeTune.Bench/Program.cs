namespace EdgeTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("usage: EdgeTune.Bench <suite>");
        return 2;
    }
}
