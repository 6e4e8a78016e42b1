using System.Runtime.InteropServices;
using System.Text;

namespace EdgeTune.Energy.Internal;

/// <summary>The few NVML entry points EdgeTune needs, bound at run time with <see cref="NativeLibrary"/>
/// so that machines without an NVIDIA driver load nothing and fail nothing. Function pointers keep it
/// trimming- and AOT-safe. Loaded once per process; NVML is never shut down (the driver keeps one
/// reference per process and releases it at exit).</summary>
internal sealed unsafe class NvmlLibrary
{
    private const int Success = 0;
    private const int TemperatureGpu = 0;

    private readonly delegate* unmanaged[Cdecl]<uint*, int> _getCount;
    private readonly delegate* unmanaged[Cdecl]<uint, nint*, int> _getHandle;
    private readonly delegate* unmanaged[Cdecl]<nint, ulong*, int> _getEnergy;
    private readonly delegate* unmanaged[Cdecl]<nint, uint*, int> _getPower;
    private readonly delegate* unmanaged[Cdecl]<nint, int, uint*, int> _getTemperature;
    private readonly delegate* unmanaged[Cdecl]<nint, byte*, uint, int> _getName;

    private static readonly Lazy<(NvmlLibrary? Library, string? Reason)> Shared = new(Load);

    private NvmlLibrary(nint lib)
    {
        _getCount = (delegate* unmanaged[Cdecl]<uint*, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetCount_v2");
        _getHandle = (delegate* unmanaged[Cdecl]<uint, nint*, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetHandleByIndex_v2");
        _getEnergy = (delegate* unmanaged[Cdecl]<nint, ulong*, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetTotalEnergyConsumption");
        _getPower = (delegate* unmanaged[Cdecl]<nint, uint*, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetPowerUsage");
        _getTemperature = (delegate* unmanaged[Cdecl]<nint, int, uint*, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetTemperature");
        _getName = (delegate* unmanaged[Cdecl]<nint, byte*, uint, int>)NativeLibrary.GetExport(lib, "nvmlDeviceGetName");
    }

    /// <summary>The loaded library, or null with the reason it is not there.</summary>
    public static (NvmlLibrary? Library, string? Reason) TryGet() => Shared.Value;

    private static (NvmlLibrary?, string?) Load()
    {
        string[] names = OperatingSystem.IsWindows() ? ["nvml.dll"]
            : OperatingSystem.IsLinux() ? ["libnvidia-ml.so.1", "libnvidia-ml.so"]
            : [];
        if (names.Length == 0) return (null, "NVML exists only on Linux and Windows");
        nint lib = 0;
        foreach (var n in names)
            if (NativeLibrary.TryLoad(n, out lib)) break;
        if (lib == 0) return (null, $"the NVIDIA management library ({string.Join(" or ", names)}) is not installed");
        try
        {
            var init = (delegate* unmanaged[Cdecl]<int>)NativeLibrary.GetExport(lib, "nvmlInit_v2");
            int rc = init();
            if (rc != Success) return (null, $"nvmlInit_v2 failed with NVML error {rc} (is the NVIDIA driver loaded?)");
            return (new NvmlLibrary(lib), null);
        }
        catch (EntryPointNotFoundException e)
        {
            return (null, $"the NVML library is too old: {e.Message}");
        }
    }

    public int DeviceCount()
    {
        uint n;
        return _getCount(&n) == Success ? (int)n : 0;
    }

    public nint? Handle(int index)
    {
        nint h;
        return _getHandle((uint)index, &h) == Success ? h : null;
    }

    /// <summary>Energy since the driver was loaded, in millijoules (Volta and newer), or null.</summary>
    public ulong? TotalEnergyMillijoules(nint device)
    {
        ulong e;
        return _getEnergy(device, &e) == Success ? e : null;
    }

    /// <summary>Board power in milliwatts, or null.</summary>
    public uint? PowerMilliwatts(nint device)
    {
        uint p;
        return _getPower(device, &p) == Success ? p : null;
    }

    /// <summary>GPU die temperature in °C, or null.</summary>
    public uint? TemperatureCelsius(nint device)
    {
        uint t;
        return _getTemperature(device, TemperatureGpu, &t) == Success ? t : null;
    }

    public string Name(nint device)
    {
        byte* buf = stackalloc byte[96];
        if (_getName(device, buf, 96) != Success) return "NVIDIA GPU";
        int len = 0;
        while (len < 96 && buf[len] != 0) len++;
        return Encoding.UTF8.GetString(buf, len);
    }
}
