using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Tests.Models;

namespace EdgeTune.Tests.Formats;

/// <summary>
/// Every checkpoint format goes through one file mapping; a relative symlink to the real file (as in a
/// Hugging Face cache) must map the target's bytes, whatever the format.
/// </summary>
public sealed class SymlinkedCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Link(string name, string target)
    {
        string link = _dir.File(name);
        try { File.CreateSymbolicLink(link, Path.GetRelativePath(_dir.Path, target)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            Skip.If(true, $"symbolic links cannot be made here: {e.Message}");
        }
        return link;
    }

    [SkippableTheory]
    [InlineData("llama2c")]
    [InlineData("gguf")]
    [InlineData("safetensors")]
    public void ModelBehindARelativeSymlink_LoadsAndGeneratesRunCText(string format)
    {
        string bin = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        Directory.CreateDirectory(_dir.File("blobs"));
        string path;
        switch (format)
        {
            case "llama2c":
                path = Link("model.bin", bin);
                break;
            case "gguf":
                using (var source = ModelLoader.Load(bin, tok))
                    ModelExporter.ExportGguf((DecoderModel)source.Model, source.RequireTokenizer(), _dir.File("blobs/0123abcd"));
                path = Link("model.gguf", _dir.File("blobs/0123abcd"));
                break;
            default:
                using (var source = ModelLoader.Load(bin, tok))
                    ModelExporter.ExportSafetensors((DecoderModel)source.Model, _dir.File("export"));
                File.Move(_dir.File("export/model.safetensors"), _dir.File("blobs/4567cdef"));
                Directory.CreateDirectory(_dir.File("snapshot"));
                File.Copy(_dir.File("export/config.json"), _dir.File("snapshot/config.json"));
                File.CreateSymbolicLink(_dir.File("snapshot/model.safetensors"), Path.Combine("..", "blobs", "4567cdef"));
                path = _dir.File("snapshot");
                break;
        }
        using var loaded = ModelLoader.Load(path, tok);
        Stories260KReference.AssertGreedyMatchesRunC(loaded);
    }

    [SkippableFact]
    public void DanglingSymlink_SaysWhereItPoints()
    {
        string link = _dir.File("model.safetensors");
        try { File.CreateSymbolicLink(link, "../blobs/missing"); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            Skip.If(true, $"symbolic links cannot be made here: {ex.Message}");
        }
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(link));
        Assert.Contains(link, e.Message);
        Assert.Contains("symbolic link to '../blobs/missing'", e.Message);
    }
}
