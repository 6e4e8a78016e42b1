using EdgeTune.Cli;
using System.CommandLine;
using EdgeTune.Cli.Commands;
using EdgeTune.Models;

namespace EdgeTune.Tests.Cli;

/// <summary><c>edgetune distill</c> end to end on the stories260K teacher: a loadable student folder with the tokenizer,
/// perplexities reported, a top-k teacher cache built then reused; bad input exits 2 with a clear message.</summary>
public sealed class DistillCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-distill-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string Data()
    {
        string path = Path.Combine(_dir, "data.txt");
        File.WriteAllText(path, File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"))[..4000]);
        return path;
    }

    [SkippableFact]
    public void TrainsAndSavesALoadableStudentAndReusesATeacherCache()
    {
        string teacher = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string data = Data(), cache = Path.Combine(_dir, "teacher.ettc"), outDir = Path.Combine(_dir, "run");
        string[] common = ["distill", "--teacher", teacher, "--tokenizer", tok, "--data", data, "--student-hidden", "32", "--student-layers", "2",
            "--steps", "3", "--seq-len", "32", "--batch", "2", "--top-k", "16", "--teacher-cache", cache, "--kl", "reverse", "--out", outDir];
        var (code, stdout, stderr) = Run(common);
        Assert.True(code == 0, stderr);
        Assert.Contains("teacher validation:", stdout);
        Assert.Contains("student validation after:", stdout);
        Assert.Contains("building teacher cache", stderr);
        Assert.True(File.Exists(cache));
        string model = Path.Combine(outDir, "model");
        Assert.True(File.Exists(Path.Combine(model, "tok512.bin")));
        using (var loaded = ModelLoader.Load(model))
        {
            Assert.Equal(32, loaded.Config.HiddenSize);
            Assert.Equal(2, loaded.Config.NumHiddenLayers);
            Assert.Equal(512, loaded.Config.VocabSize);
            Assert.NotNull(loaded.Tokenizer);
        }

        // the second run reads the cache instead of building it
        var again = Run(common);
        Assert.True(again.Code == 0, again.Err);
        Assert.DoesNotContain("building teacher cache", again.Err);

        // a corrupt cache is a clear input error
        var bytes = File.ReadAllBytes(cache);
        bytes[100] ^= 1;
        File.WriteAllBytes(cache, bytes);
        var bad = Run(common);
        Assert.Equal(CliErrors.Input, bad.Code);
        Assert.Contains("checksum", bad.Err);
    }

    [SkippableFact]
    public void BadInputExitsWithItsCodeAndAClearMessage()
    {
        string teacher = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string data = Data();

        var missing = Run("distill", "--teacher", teacher, "--tokenizer", tok, "--data", Path.Combine(_dir, "absent.txt"), "--out", _dir);
        Assert.Equal(CliErrors.Input, missing.Code);
        Assert.Contains("absent.txt", missing.Err);

        var noTeacher = Run("distill", "--teacher", Path.Combine(_dir, "none.bin"), "--data", data, "--out", _dir);
        Assert.Equal(CliErrors.Input, noTeacher.Code);
        Assert.Contains("none.bin", noTeacher.Err);

        // a student with another vocabulary
        string studentDir = Path.Combine(_dir, "student");
        using (var s = EdgeTune.Models.DecoderModel.CreateRandom(EdgeTune.Tests.Compression.Distillation.DistillationFixtures.Config(vocab: 300), 1))
            EdgeTune.Formats.Export.ModelExporter.ExportSafetensors(s, studentDir);
        var vocab = Run("distill", "--teacher", teacher, "--tokenizer", tok, "--student", studentDir, "--data", data, "--steps", "1", "--seq-len", "16", "--out", Path.Combine(_dir, "v"));
        Assert.Equal(CliErrors.Input, vocab.Code); // the files given do not fit together
        Assert.Contains("vocabulary", vocab.Err);

        var badAlpha = Run("distill", "--teacher", teacher, "--tokenizer", tok, "--data", data, "--alpha", "2", "--out", Path.Combine(_dir, "a"));
        Assert.Equal(CliErrors.Usage, badAlpha.Code);
        Assert.Contains("alpha", badAlpha.Err);
    }
}
