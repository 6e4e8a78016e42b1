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

    public string PathOf(string name) => Path.Combine(_dir, name);

    public string WriteBytes(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public string WriteText(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
