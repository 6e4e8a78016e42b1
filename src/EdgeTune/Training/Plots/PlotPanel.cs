namespace EdgeTune.Training.Plots;

/// <summary>One chart of a <see cref="LinePlot"/>: its own axes, title, labels and series.</summary>
public sealed class PlotPanel
{
    private readonly List<PlotSeries> _series = [];

    internal PlotPanel(string title, string xLabel, string yLabel)
    {
        Title = title;
        XLabel = xLabel;
        YLabel = yLabel;
    }

    public string Title { get; set; }
    public string XLabel { get; set; }
    public string YLabel { get; set; }

    /// <summary>Fixed axis limits; null: fitted to the data (Y with a small margin).</summary>
    public double? XMin { get; set; }
    public double? XMax { get; set; }
    public double? YMin { get; set; }
    public double? YMax { get; set; }

    /// <summary>Draw the legend (on by default; shown only when a series has a name).</summary>
    public bool ShowLegend { get; set; } = true;

    public IReadOnlyList<PlotSeries> Series => _series;

    /// <summary>Adds a series; its colour defaults to the next <see cref="PlotColor.Palette"/> entry.</summary>
    /// <exception cref="ArgumentException">X and Y differ in length.</exception>
    public PlotPanel Add(string name, IReadOnlyList<double> x, IReadOnlyList<double> y, PlotColor? color = null, bool markers = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
            throw new ArgumentException($"PlotPanel.Add: series '{name}' has {x.Count} x values but {y.Count} y values", nameof(y));
        _series.Add(new PlotSeries(name, x, y, color ?? PlotColor.Palette[_series.Count % PlotColor.Palette.Count], markers));
        return this;
    }

    /// <summary>Adds a series whose x values are 0, 1, 2, ...</summary>
    public PlotPanel Add(string name, IReadOnlyList<double> y, PlotColor? color = null, bool markers = false)
    {
        ArgumentNullException.ThrowIfNull(y);
        var x = new double[y.Count];
        for (int i = 0; i < x.Length; i++) x[i] = i;
        return Add(name, x, y, color, markers);
    }
}
