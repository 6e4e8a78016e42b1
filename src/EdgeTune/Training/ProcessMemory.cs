using System.Diagnostics;
using System.Globalization;

namespace EdgeTune.Training;

/// <summary>The process's resident memory now and at its peak.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size: <c>VmHWM</c> from /proc/self/status on Linux, else
    /// <see cref="Process.PeakWorkingSet64"/>.</summary>
    public static long PeakRssBytes()
    {
        if (OperatingSystem.IsLinux() && ReadStatusKb("VmHWM:") is long kb) return kb * 1024;
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }

    /// <summary>Resident set size now (<see cref="Environment.WorkingSet"/>).</summary>
    public static long RssBytes() => Environment.WorkingSet;

    private static long? ReadStatusKb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
                var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb)) return kb;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
