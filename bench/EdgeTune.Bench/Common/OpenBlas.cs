using System.Runtime.InteropServices;

namespace EdgeTune.Bench.Common;

/// <summary>OpenBLAS loaded at run time (benchmark reference only); <see cref="TryLoad"/> gives null
/// where libopenblas is absent.</summary>
public sealed unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    private readonly delegate* unmanaged<int, void> _setThreads;
    private readonly delegate* unmanaged<byte*> _coreName;
    private readonly delegate* unmanaged<byte*> _config;

    private OpenBlas(nint lib)
    {
        _sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(lib, "cblas_sgemm");
        _setThreads = NativeLibrary.TryGetExport(lib, "openblas_set_num_threads", out nint st) ? (delegate* unmanaged<int, void>)st : null;
        _coreName = NativeLibrary.TryGetExport(lib, "openblas_get_corename", out nint cn) ? (delegate* unmanaged<byte*>)cn : null;
        _config = NativeLibrary.TryGetExport(lib, "openblas_get_config", out nint cf) ? (delegate* unmanaged<byte*>)cf : null;
    }

    public static OpenBlas? TryLoad()
    {
        foreach (var name in new[] { "libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll" })
            if (NativeLibrary.TryLoad(name, out nint lib) && NativeLibrary.TryGetExport(lib, "cblas_sgemm", out _))
                return new OpenBlas(lib);
        return null;
    }

    /// <summary>The kernel family OpenBLAS picked and its build configuration.</summary>
    public string Describe()
    {
        string core = _coreName != null ? Marshal.PtrToStringAnsi((nint)_coreName()) ?? "?" : "?";
        string config = _config != null ? Marshal.PtrToStringAnsi((nint)_config()) ?? "?" : "?";
        return $"core={core}; config={config.Trim()}";
    }

    public void SetThreads(int threads)
    {
        if (_setThreads != null) _setThreads(threads);
    }

    /// <summary>The same products as EdgeTune's Gemm layouts, row-major, beta = 0.</summary>
    public void Sgemm(string layout, float[] a, float[] b, float[] c, int m, int k, int n)
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            switch (layout)
            {
                case "A*B^T": _sgemm(RowMajor, NoTrans, Trans, m, n, k, 1f, pa, k, pb, k, 0f, pc, n); break;
                case "A*B": _sgemm(RowMajor, NoTrans, NoTrans, m, n, k, 1f, pa, k, pb, n, 0f, pc, n); break;
                case "A^T*B": _sgemm(RowMajor, Trans, NoTrans, m, n, k, 1f, pa, m, pb, n, 0f, pc, n); break;
                default: throw new ArgumentException($"unknown layout {layout}");
            }
        }
    }
}
