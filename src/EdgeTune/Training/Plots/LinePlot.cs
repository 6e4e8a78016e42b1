using EdgeTune.Training.Plots.Internal;

namespace EdgeTune.Training.Plots;

/// <summary>
/// A PNG line chart of one or more stacked panels, each with its own axes, round-number ticks, grid,
/// title, axis labels and a legend; drawn in pure managed code with a built-in bitmap font, so it
/// renders the same on every machine without system fonts or native libraries.
/// </summary>
/// <example>
/// <code>
/// var plot = new LinePlot { Title = "finetune" };
/// plot.AddPanel("Loss", "step", "loss").Add("train", steps, train).Add("validation", evalSteps, val, markers: true);
/// plot.AddPanel("Power", "time (s)", "W").Add("package", t, watts);
/// plot.SavePng("out/loss.png");
/// </code>
/// </example>
public sealed class LinePlot
{
    private const int Scale = 2;                                   // font pixel → image pixels
    private const int CharH = PixelFont.CapHeight * Scale;         // height of a text line's capitals
    private static readonly PlotColor Ink = new(40, 40, 40);
    private static readonly PlotColor Frame = new(90, 90, 90);
    private static readonly PlotColor Grid = new(228, 228, 228);
    private static readonly PlotColor Background = PlotColor.White;
    private readonly List<PlotPanel> _panels = [];

    /// <param name="width">Image width in pixels (320..4000).</param>
    /// <param name="panelHeight">Height of each panel in pixels (160..2000).</param>
    public LinePlot(int width = 960, int panelHeight = 340)
    {
        if (width is < 320 or > 4000) throw new ArgumentOutOfRangeException(nameof(width), width, "LinePlot: width must be 320..4000 pixels");
        if (panelHeight is < 160 or > 2000) throw new ArgumentOutOfRangeException(nameof(panelHeight), panelHeight, "LinePlot: panel height must be 160..2000 pixels");
        Width = width;
        PanelHeight = panelHeight;
    }

    public int Width { get; }
    public int PanelHeight { get; }
    /// <summary>Title above all panels (none when null or empty).</summary>
    public string? Title { get; set; }
    /// <summary>Line width of the series in pixels.</summary>
    public int LineWidth { get; set; } = 2;
    public IReadOnlyList<PlotPanel> Panels => _panels;

    /// <summary>Image height: the title band plus every panel.</summary>
    public int Height => TitleBand + _panels.Count * PanelHeight;

    private int TitleBand => string.IsNullOrEmpty(Title) ? 0 : 12 + PixelFont.GlyphHeight * 3 + 4;

    /// <summary>Adds a panel below the existing ones.</summary>
    public PlotPanel AddPanel(string title = "", string xLabel = "", string yLabel = "")
    {
        var p = new PlotPanel(title ?? "", xLabel ?? "", yLabel ?? "");
        _panels.Add(p);
        return p;
    }

    /// <summary>The chart as PNG bytes.</summary>
    /// <exception cref="InvalidOperationException">There is no panel.</exception>
    public byte[] RenderPng()
    {
        var canvas = Render();
        return PngEncoder.EncodeRgb(canvas.Width, canvas.Height, canvas.Pixels);
    }

    /// <summary>Writes the PNG to <paramref name="path"/> (folders created; the file appears whole or not at all).</summary>
    public void SavePng(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] png = RenderPng();
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + $".tmp-{Guid.NewGuid():N}";
        try
        {
            File.WriteAllBytes(tmp, png);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    internal RasterCanvas Render()
    {
        if (_panels.Count == 0) throw new InvalidOperationException("LinePlot: add a panel before rendering");
        var canvas = new RasterCanvas(Width, Height, Background);
        if (!string.IsNullOrEmpty(Title))
        {
            int w = RasterCanvas.TextWidth(Title, 3);
            canvas.Text(Math.Max(4, (Width - w) / 2), 12, Title, Ink, 3);
        }
        var axes = _panels.Select(Axes).ToList();
        // One left margin for all panels so their plot areas line up.
        int left = 12 + CharH + 12 + axes.Max(a => a.YLabels.Max(l => RasterCanvas.TextWidth(l.Text, Scale))) + 10;
        for (int i = 0; i < _panels.Count; i++)
            DrawPanel(canvas, _panels[i], axes[i], left, TitleBand + i * PanelHeight);
        return canvas;
    }

    private sealed record Tick(double Value, string Text);

    private sealed record PanelAxes(double XMin, double XMax, double YMin, double YMax, List<Tick> XLabels, List<Tick> YLabels);

    private static PanelAxes Axes(PlotPanel p)
    {
        double xmin = double.PositiveInfinity, xmax = double.NegativeInfinity, ymin = double.PositiveInfinity, ymax = double.NegativeInfinity;
        foreach (var s in p.Series)
            for (int i = 0; i < s.X.Count; i++)
            {
                double x = s.X[i], y = s.Y[i];
                if (!double.IsFinite(x) || !double.IsFinite(y)) continue;
                xmin = Math.Min(xmin, x); xmax = Math.Max(xmax, x);
                ymin = Math.Min(ymin, y); ymax = Math.Max(ymax, y);
            }
        (xmin, xmax) = AxisTicks.Usable(p.XMin ?? xmin, p.XMax ?? xmax);
        (ymin, ymax) = AxisTicks.Usable(ymin, ymax);
        double margin = (ymax - ymin) * 0.05;
        (ymin, ymax) = AxisTicks.Usable(p.YMin ?? ymin - margin, p.YMax ?? ymax + margin);
        return new PanelAxes(xmin, xmax, ymin, ymax, Labels(xmin, xmax, 6), Labels(ymin, ymax, 5));
    }

    private static List<Tick> Labels(double min, double max, int target)
    {
        double step = AxisTicks.Step(min, max, target);
        return AxisTicks.Ticks(min, max, step).Select(v => new Tick(v, AxisTicks.Label(v, step))).ToList();
    }

    private void DrawPanel(RasterCanvas c, PlotPanel p, PanelAxes a, int left, int top)
    {
        int plotTop = top + 14 + CharH + 12;
        int right = Width - 28;
        int bottom = top + PanelHeight - (14 + CharH + 10 + CharH + 22);
        int w = right - left, h = bottom - plotTop;
        if (!string.IsNullOrEmpty(p.Title)) c.Text(left, top + 14, p.Title, Ink, Scale);

        double X(double x) => left + (x - a.XMin) / (a.XMax - a.XMin) * (w - 1);
        double Y(double y) => plotTop + (1 - (y - a.YMin) / (a.YMax - a.YMin)) * (h - 1);

        foreach (var t in a.YLabels)
        {
            int y = (int)Math.Round(Y(t.Value));
            c.FillRect(left, y, w, 1, Grid);
            c.FillRect(left - 5, y, 5, 1, Frame);
            c.Text(left - 9 - RasterCanvas.TextWidth(t.Text, Scale), y - CharH / 2, t.Text, Ink, Scale);
        }
        foreach (var t in a.XLabels)
        {
            int x = (int)Math.Round(X(t.Value));
            c.FillRect(x, plotTop, 1, h, Grid);
            c.FillRect(x, bottom, 1, 5, Frame);
            c.Text(x - RasterCanvas.TextWidth(t.Text, Scale) / 2, bottom + 10, t.Text, Ink, Scale);
        }
        c.StrokeRect(left - 1, plotTop - 1, w + 2, h + 2, Frame);
        if (!string.IsNullOrEmpty(p.XLabel))
            c.Text(left + (w - RasterCanvas.TextWidth(p.XLabel, Scale)) / 2, bottom + 10 + CharH + 10, p.XLabel, Ink, Scale);
        if (!string.IsNullOrEmpty(p.YLabel))
            c.TextUp(12, plotTop + (h + RasterCanvas.TextWidth(p.YLabel, Scale)) / 2, p.YLabel, Ink, Scale);

        c.SetClip(left, plotTop, w, h);
        bool any = false;
        foreach (var s in p.Series)
        {
            double px = double.NaN, py = double.NaN;
            for (int i = 0; i < s.X.Count; i++)
            {
                double x = s.X[i], y = s.Y[i];
                if (!double.IsFinite(x) || !double.IsFinite(y)) { px = py = double.NaN; continue; }
                double qx = X(x), qy = Y(y);
                any = true;
                if (double.IsFinite(px)) c.Line(px, py, qx, qy, s.Color, LineWidth);
                else if (s.X.Count == 1 || !s.Markers) c.Dot(qx, qy, LineWidth + 1, s.Color); // isolated points stay visible
                if (s.Markers) c.Dot(qx, qy, LineWidth * 2 + 3, s.Color);
                (px, py) = (qx, qy);
            }
        }
        c.ResetClip();
        if (!any)
        {
            const string none = "no data";
            c.Text(left + (w - RasterCanvas.TextWidth(none, Scale)) / 2, plotTop + (h - CharH) / 2, none, Frame, Scale);
        }
        if (p.ShowLegend && p.Series.Any(s => s.Name.Length > 0)) DrawLegend(c, p, left, plotTop, w, h);
    }

    private static void DrawLegend(RasterCanvas c, PlotPanel p, int left, int top, int w, int h)
    {
        var named = p.Series.Where(s => s.Name.Length > 0).ToList();
        const int pad = 8, sample = 26, gap = 8, row = CharH + 10;
        int bw = pad * 2 + sample + gap + named.Max(s => RasterCanvas.TextWidth(s.Name, Scale));
        int bh = pad * 2 + named.Count * row - 10;
        // Put the legend in the corner that hides the fewest series pixels.
        var corners = new[] { (left + w - bw - 8, top + 8), (left + 8, top + 8), (left + w - bw - 8, top + h - bh - 8), (left + 8, top + h - bh - 8) };
        var colours = p.Series.Select(s => s.Color).ToHashSet();
        var (bx, by) = corners.MinBy(k => Covered(c, k.Item1, k.Item2, bw, bh, colours));
        c.FillRect(bx, by, bw, bh, Background);
        c.StrokeRect(bx, by, bw, bh, Frame);
        for (int i = 0; i < named.Count; i++)
        {
            int y = by + pad + i * row;
            c.FillRect(bx + pad, y + CharH / 2 - 1, sample, 3, named[i].Color);
            if (named[i].Markers) c.Dot(bx + pad + sample / 2.0, y + CharH / 2.0, 7, named[i].Color);
            c.Text(bx + pad + sample + gap, y, named[i].Name, Ink, Scale);
        }
    }

    private static int Covered(RasterCanvas c, int x, int y, int w, int h, HashSet<PlotColor> colours)
    {
        int n = 0;
        for (int yy = Math.Max(0, y); yy < Math.Min(c.Height, y + h); yy++)
            for (int xx = Math.Max(0, x); xx < Math.Min(c.Width, x + w); xx++)
                if (colours.Contains(c.Get(xx, yy))) n++;
        return n;
    }
}
