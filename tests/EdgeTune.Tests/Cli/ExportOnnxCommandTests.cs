using EdgeTune.Cli;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tests.Formats.Export;
using Microsoft.ML.OnnxRuntime;

namespace EdgeTune.Tests.Cli;

/// <summary><c>edgetune export --format onnx</c>: the folder ONNX Runtime runs gives the model's logits (F32), int8 QDQ
/// weights are written when asked, and formats/dtypes that do not go together are refused before anything is loaded.</summary>
public sealed class ExportOnnxCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-export-onnx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>The model as an HF folder with the byte tokenizer (259 ids) beside it.</summary>
    private string WriteBase(DecoderModel model)
    {
        string dir = P("base");
        ModelExporter.ExportSafetensors(model, dir);
        EdgeTune.Text.ByteTokenizer.WriteMarker(dir);
        return dir;
    }

    [Fact]
    public void OnnxFolderRunsInOnnxRuntimeWithTheModelsLogits()
    {
        var cfg = ExportTestUtil.Config("qwen2", bias: true) with { VocabSize = 259 };
        using var model = ExportTestUtil.Random(cfg, 61);
        string baseDir = WriteBase(model);
        var (code, stdout, stderr) = CliRunner.Run("export", "--model", baseDir, "--format", "onnx", "--out", P("onnx"));
        Assert.True(code == 0, stderr);
        Assert.Contains(Path.GetFullPath(P("onnx")), stdout);
        Assert.Contains("ONNX graph:", stderr);
        Assert.True(File.Exists(P("onnx/model.onnx")) && File.Exists(P("onnx/model.onnx.data")) && File.Exists(P("onnx/config.json")));
        using var session = new InferenceSession(P("onnx/model.onnx"));
        float[] ours = ExportTestUtil.Logits(model, ExportTestUtil.Prompt);
        float[] theirs = OnnxDecoderExportTests.RunOnnx(session, model, ExportTestUtil.Prompt, OnnxDecoderExportTests.Past(model, 0), out _);
        Assert.True(ExportTestUtil.MaxAbsDiff(ours, theirs) <= 1e-4, $"max |Δlogit| {ExportTestUtil.MaxAbsDiff(ours, theirs)}");

        var int8 = CliRunner.Run("export", "--model", baseDir, "--format", "onnx", "--dtype", "int8", "--out", P("onnx8"));
        Assert.True(int8.Code == 0, int8.Err);
        Assert.Contains("int8 weights, largest weight error", int8.Err);
        using var s8 = new InferenceSession(P("onnx8/model.onnx"));
        float[] q = OnnxDecoderExportTests.RunOnnx(s8, model, ExportTestUtil.Prompt, OnnxDecoderExportTests.Past(model, 0), out _);
        double err = ExportTestUtil.MaxAbsDiff(ours, q);
        Assert.True(err > 0 && err < 0.1 * ours.Max(Math.Abs), $"int8 logits moved {err}");
    }

    [Theory]
    [InlineData("onnx", "q8_0", "--format onnx writes f32, int8 or int4")]
    [InlineData("onnx", "bf16", "--format onnx writes f32, int8 or int4")]
    [InlineData("gguf", "int4", "--dtype int4 is for --format onnx")]
    [InlineData("gguf", "int8", "--dtype int8 is for --format onnx")]
    [InlineData("safetensors", "int8", "--dtype int8 is for --format onnx")]
    public void MismatchedFormatAndDtypeAreRefused(string format, string dtype, string message)
    {
        var (code, _, stderr) = CliRunner.Run("export", "--model", P("nothing-here"), "--format", format, "--dtype", dtype, "--out", P("x"));
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains(message, stderr);
        Assert.False(Directory.Exists(P("x")) || File.Exists(P("x")));
    }

    [Fact]
    public void AnExistingFileIsNotReplacedByAnOnnxFolder()
    {
        using var model = ExportTestUtil.Random(ExportTestUtil.Config() with { VocabSize = 259 }, 62);
        string baseDir = WriteBase(model);
        File.WriteAllText(P("keep.onnx"), "precious");
        var (code, _, stderr) = CliRunner.Run("export", "--model", baseDir, "--format", "onnx", "--out", P("keep.onnx"));
        Assert.Equal(CliErrors.Input, code);
        Assert.Contains("is a file", stderr);
        Assert.Equal("precious", File.ReadAllText(P("keep.onnx")));
    }
}
