namespace EdgeTune.Tests.Text.Datasets;

/// <summary>Temporary data files for the dataset tests, deleted on dispose.</summary>
internal sealed class DatasetTestFiles : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-data-" + Guid.NewGuid().ToString("N"));

    public DatasetTestFiles() => Directory.CreateDirectory(_dir);

    public string Write(string name, params string[] lines)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
