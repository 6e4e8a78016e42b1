using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>Reads files under the Linux pseudo-filesystems (/sys) relative to one root folder, so that
/// the readers work in containers (where the host's /sys is mounted elsewhere) and in tests (a fake
/// tree in a temp folder). The root is <c>/</c> unless the environment variable
/// <see cref="EnvironmentVariable"/> says otherwise. File access goes through an injectable
/// <see cref="ISysfsFileReader"/> so that tests can simulate "permission denied" even when run as root.</summary>
public sealed class SysfsRoot
{
    /// <summary>The environment variable that overrides the root folder.</summary>
    public const string EnvironmentVariable = "EDGETUNE_SYSFS_ROOT";

    public SysfsRoot(string root, ISysfsFileReader? reader = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = root;
        Reader = reader ?? PhysicalSysfsFileReader.Instance;
    }

    /// <summary>The root folder ("/" on a normal Linux machine).</summary>
    public string Root { get; }

    /// <summary>How files are read.</summary>
    public ISysfsFileReader Reader { get; }

    /// <summary>The root from <see cref="EnvironmentVariable"/> when set and not empty, else "/".</summary>
    public static SysfsRoot FromEnvironment(ISysfsFileReader? reader = null)
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return new SysfsRoot(string.IsNullOrWhiteSpace(env) ? "/" : env, reader);
    }

    /// <summary>The absolute path of a path given relative to the root, e.g. "sys/class/powercap".</summary>
    public string Resolve(string relative) => Path.Combine(Root, relative.TrimStart('/'));

    /// <summary>The subfolders of a folder (full paths, sorted by name); empty when it does not exist.</summary>
    public IReadOnlyList<string> Subdirectories(string absoluteFolder, string pattern = "*")
    {
        if (!Directory.Exists(absoluteFolder)) return [];
        try
        {
            // Entries under /sys/class are symbolic links to folders; Directory.GetDirectories follows them.
            var dirs = Directory.GetDirectories(absoluteFolder, pattern);
            Array.Sort(dirs, NaturalComparer.Instance);
            return dirs;
        }
        catch (UnauthorizedAccessException) { return []; }
        catch (IOException) { return []; }
    }

    /// <summary>True when the file exists (whether or not it can be read).</summary>
    public bool Exists(string absolutePath) => Reader.Exists(absolutePath);

    /// <summary>The trimmed text of a file, or null when it does not exist or cannot be read.</summary>
    public string? TryReadText(string absolutePath)
    {
        try { return Reader.Exists(absolutePath) ? Reader.ReadAllText(absolutePath).Trim() : null; }
        catch (UnauthorizedAccessException) { return null; }
        catch (IOException) { return null; }
    }

    /// <summary>A file holding one integer (sysfs style), or null when missing, unreadable or not a number.</summary>
    public long? TryReadLong(string absolutePath)
    {
        var text = TryReadText(absolutePath);
        return text is not null && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>Reads an integer file, throwing <see cref="EnergyMeterException"/> with the path and reason.</summary>
    public long ReadLong(string absolutePath, string? permissionFix = null)
    {
        string text;
        try { text = Reader.ReadAllText(absolutePath).Trim(); }
        catch (UnauthorizedAccessException e)
        {
            throw new EnergyMeterException($"{absolutePath}: permission denied" + (permissionFix is null ? "" : $"; {permissionFix}"), e);
        }
        catch (IOException e) { throw new EnergyMeterException($"{absolutePath}: cannot be read ({e.Message})", e); }
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new EnergyMeterException($"{absolutePath}: expected an integer, found '{text}'");
        return v;
    }

    /// <summary>Checks that a file can be read now; returns null when it can, else the reason.</summary>
    public string? ProbeReadable(string absolutePath)
    {
        try
        {
            if (!Reader.Exists(absolutePath)) return $"{absolutePath} does not exist";
            Reader.ReadAllText(absolutePath);
            return null;
        }
        catch (UnauthorizedAccessException) { return $"{absolutePath}: permission denied"; }
        catch (IOException e) { return $"{absolutePath}: cannot be read ({e.Message})"; }
    }

    public override string ToString() => Root;

    /// <summary>Orders "intel-rapl:10" after "intel-rapl:2" and "BAT10" after "BAT2".</summary>
    private sealed class NaturalComparer : IComparer<string>
    {
        public static readonly NaturalComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x is null || y is null) return string.CompareOrdinal(x, y);
            int i = 0, j = 0;
            while (i < x.Length && j < y.Length)
            {
                if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
                {
                    int si = i, sj = j;
                    while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                    while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                    var a = x[si..i].TrimStart('0');
                    var b = y[sj..j].TrimStart('0');
                    if (a.Length != b.Length) return a.Length.CompareTo(b.Length);
                    int c = string.CompareOrdinal(a, b);
                    if (c != 0) return c;
                }
                else
                {
                    if (x[i] != y[j]) return x[i].CompareTo(y[j]);
                    i++; j++;
                }
            }
            return (x.Length - i).CompareTo(y.Length - j);
        }
    }
}
