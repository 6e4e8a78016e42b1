using System.Runtime.InteropServices;

namespace EdgeTune.Bench.Common;

/// <summary>CPU time of the calling thread or the whole process (Linux clock_gettime), for figures
/// that stay meaningful when other processes share the cores; NaN elsewhere.</summary>
public static partial class CpuTime
{
    private const int ProcessClock = 2, ThreadClock = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Sec; public long NSec; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    public static double Thread() => Read(ThreadClock);
    public static double Process() => Read(ProcessClock);

    private static double Read(int clock)
    {
        if (!OperatingSystem.IsLinux()) return double.NaN;
        return ClockGetTime(clock, out var ts) == 0 ? ts.Sec + ts.NSec * 1e-9 : double.NaN;
    }
}
