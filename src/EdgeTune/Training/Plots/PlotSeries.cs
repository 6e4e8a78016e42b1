namespace EdgeTune.Training.Plots;

/// <summary>
/// One named line of a <see cref="PlotPanel"/>: points (X[i], Y[i]) joined in order. A non-finite
/// coordinate breaks the line there (e.g. a step with no validation loss).
/// </summary>
/// <param name="Name">Legend text.</param>
/// <param name="X">X coordinates.</param>
/// <param name="Y">Y coordinates, as many as <paramref name="X"/>.</param>
/// <param name="Color">Line colour.</param>
/// <param name="Markers">Draw a dot at every point as well (useful for sparse series such as evaluations).</param>
public sealed record PlotSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, PlotColor Color, bool Markers = false);
