using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using EdgeTune.Training.Plots;

namespace EdgeTune.Tests.Training;

public class LinePlotTests
{
    /// <summary>A minimal PNG reader for what LinePlot writes (8-bit RGB, filter 0): checks chunk CRCs, returns the pixels.</summary>
    private static (int W, int H, byte[] Rgb) Decode(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        int pos = 8, w = 0, h = 0;
        var idat = new MemoryStream();
        var types = new List<string>();
        while (pos < png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
            Assert.Equal(Crc32.HashToUInt32(png.AsSpan(pos + 4, 4 + len)), crc);
            types.Add(type);
            if (type == "IHDR")
            {
                w = BinaryPrimitives.ReadInt32BigEndian(data);
                h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                Assert.Equal(2, data[9]);
            }
            if (type == "IDAT") idat.Write(data);
            pos += 12 + len;
        }
        Assert.Equal("IHDR", types[0]);
        Assert.Equal("IEND", types[^1]);
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var bytes = raw.ToArray();
        Assert.Equal(h * (1 + w * 3), bytes.Length);
        var rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            Assert.Equal(0, bytes[y * (1 + w * 3)]);
            Array.Copy(bytes, y * (1 + w * 3) + 1, rgb, y * w * 3, w * 3);
        }
        return (w, h, rgb);
    }

    private static int Count(byte[] rgb, PlotColor c)
    {
        int n = 0;
        for (int i = 0; i < rgb.Length; i += 3)
            if (rgb[i] == c.R && rgb[i + 1] == c.G && rgb[i + 2] == c.B) n++;
        return n;
    }

    private static double[] Smooth(double[] v, int n) =>
        v.Select((_, i) => v[Math.Max(0, i - n + 1)..(i + 1)].Average()).ToArray();

    internal static LinePlot Sample()
    {
        var steps = Enumerable.Range(0, 201).Select(i => (double)i).ToArray();
        var train = steps.Select(s => 5.5 * Math.Exp(-s / 50) + 1.2 + 0.08 * Math.Sin(s * 1.7)).ToArray();
        var evalSteps = new double[] { 0, 50, 100, 150, 200 };
        var val = evalSteps.Select(s => 5.6 * Math.Exp(-s / 55) + 1.45).ToArray();
        var t = Enumerable.Range(0, 121).Select(i => i * 0.5).ToArray();
        var watts = t.Select(x => 11 + 3 * Math.Sin(x / 4) + (x > 30 ? -2 : 0)).ToArray();
        var joules = new double[t.Length];
        for (int i = 1; i < t.Length; i++) joules[i] = joules[i - 1] + watts[i] * 0.5;
        var plot = new LinePlot { Title = "edgetune finetune: demo" };
        plot.AddPanel("Loss", "step", "loss").Add("train", steps, train).Add("validation", evalSteps, val, markers: true);
        plot.AddPanel("Power", "time (s)", "W").Add("package", t, watts).Add("package, 5 s mean", t, Smooth(watts, 10));
        plot.AddPanel("Energy", "time (s)", "J").Add("cumulative", t, joules, PlotColor.Palette[2]);
        return plot;
    }

    [Fact]
    public void PngHasTheRightSizeAndTheSeriesColours()
    {
        var plot = Sample();
        var (w, h, rgb) = Decode(plot.RenderPng());
        Assert.Equal(960, w);
        Assert.Equal(plot.Height, h);
        Assert.Equal(3, plot.Panels.Count);
        // Series colours are the palette's, in order, per panel; each draws a real line.
        Assert.True(Count(rgb, PlotColor.Palette[0]) > 500, "blue (train, power) is drawn");
        Assert.True(Count(rgb, PlotColor.Palette[1]) > 300, "orange (validation, energy) is drawn");
        Assert.True(Count(rgb, PlotColor.Palette[2]) > 300, "green (energy) is drawn");
        Assert.Equal(0, Count(rgb, PlotColor.Palette[3]));
        // Mostly white background, with text and frame ink.
        Assert.True(Count(rgb, PlotColor.White) > w * h / 2);
        Assert.True(Count(rgb, new PlotColor(40, 40, 40)) > 1000);
        // The corners are background.
        Assert.Equal((255, 255, 255), (rgb[0], rgb[1], rgb[2]));
        int last = rgb.Length - 3;
        Assert.Equal((255, 255, 255), (rgb[last], rgb[last + 1], rgb[last + 2]));

        if (Environment.GetEnvironmentVariable("EDGETUNE_PLOT_SAMPLE") is { Length: > 0 } path) plot.SavePng(path);
    }

    [Fact]
    public void RenderingIsDeterministicAndSaveIsAtomic()
    {
        byte[] a = Sample().RenderPng(), b = Sample().RenderPng();
        Assert.Equal(a, b);
        string dir = Directory.CreateTempSubdirectory("edgetune-plot-").FullName;
        try
        {
            string file = Path.Combine(dir, "sub", "loss.png");
            Sample().SavePng(file);
            Assert.Equal(a, File.ReadAllBytes(file));
            Assert.Single(Directory.GetFiles(Path.Combine(dir, "sub")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NonFiniteValuesBreakTheLineAndEmptyPanelsRender()
    {
        var plot = new LinePlot(400, 200);
        var red = new PlotColor(200, 0, 0);
        plot.AddPanel("gaps").Add("s", [0, 1, 2, 3, 4], [1, double.NaN, 3, double.PositiveInfinity, 5], red);
        plot.AddPanel("empty", "x", "y");
        plot.AddPanel("single").Add("one", [3], [7], red);
        var (w, h, rgb) = Decode(plot.RenderPng());
        Assert.Equal((400, 600), (w, h));
        Assert.True(Count(rgb, red) > 0);
    }

    [Fact]
    public void BadInputIsRefused()
    {
        var plot = new LinePlot();
        Assert.Throws<InvalidOperationException>(() => plot.RenderPng());
        Assert.Throws<ArgumentException>(() => plot.AddPanel().Add("bad", [1, 2], [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinePlot(width: 10));
        Assert.Throws<FormatException>(() => PlotColor.FromHex("#12345"));
        Assert.Equal(new PlotColor(0x1f, 0x77, 0xb4), PlotColor.FromHex("#1f77b4"));
    }

    [Fact]
    public void TicksAreRoundNumbers()
    {
        Assert.Equal(0.2, EdgeTune.Training.Plots.Internal.AxisTicks.Step(0, 1, 5), 12);
        Assert.Equal(50, EdgeTune.Training.Plots.Internal.AxisTicks.Step(0, 230, 5), 12);
        Assert.Equal([0.0, 0.5, 1.0, 1.5], EdgeTune.Training.Plots.Internal.AxisTicks.Ticks(-0.1, 1.6, 0.5));
        Assert.Equal("1.50", EdgeTune.Training.Plots.Internal.AxisTicks.Label(1.5, 0.05));
        Assert.Equal("200", EdgeTune.Training.Plots.Internal.AxisTicks.Label(200, 50));
    }
}
