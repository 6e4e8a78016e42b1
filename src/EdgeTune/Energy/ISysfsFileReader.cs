namespace EdgeTune.Energy;

/// <summary>How sysfs files are read. The physical reader is the default; tests inject one that throws
/// <see cref="UnauthorizedAccessException"/> for chosen files, since chmod 000 does not stop root.</summary>
public interface ISysfsFileReader
{
    bool Exists(string path);

    /// <exception cref="UnauthorizedAccessException">Permission denied.</exception>
    /// <exception cref="IOException">Missing or unreadable.</exception>
    string ReadAllText(string path);
}

/// <summary>Reads the real file system.</summary>
public sealed class PhysicalSysfsFileReader : ISysfsFileReader
{
    public static PhysicalSysfsFileReader Instance { get; } = new();

    public bool Exists(string path) => File.Exists(path);

    public string ReadAllText(string path) => File.ReadAllText(path);
}
