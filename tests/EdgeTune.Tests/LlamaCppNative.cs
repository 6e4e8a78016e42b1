using LLama.Native;

namespace EdgeTune.Tests;

/// <summary>Loads llama.cpp's native library once for every test class that uses it (classes of the "llama.cpp"
/// collection): the log callback can only be set before the library loads, so the probe must be shared.</summary>
internal static class LlamaCppNative
{
    private static readonly Lazy<string?> Probe = new(() =>
    {
        try
        {
            NativeLibraryConfig.All.WithLogCallback((level, message) => { }); // keep llama.cpp's log off the test output
            NativeApi.llama_max_devices(); // forces the native library to load
            return null;
        }
        catch (Exception e)
        {
            return $"llama.cpp native library did not load: {e.GetType().Name}: {e.Message}";
        }
    });

    /// <summary>Why the native library cannot be used, or null when it loaded.</summary>
    public static string? Error => Probe.Value;
}
