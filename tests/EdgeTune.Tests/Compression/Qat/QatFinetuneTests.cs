using System.CommandLine;
using EdgeTune.Cli.Commands;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Models;
using EdgeTune.Nn;

namespace EdgeTune.Tests.Compression.Qat;

public class QatFinetuneTests
{
    [Fact]
    public void FinetuneWithQatTrainsUnderFakeQuantizationAndSavesF32Weights()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-qat-").FullName;
        try
        {
            var root = new RootCommand { FinetuneCommand.Create() };
            var output = new StringWriter();
            var error = new StringWriter();
            int code = root.Parse(["finetune", "--steps", "3", "--seq-len", "64", "--batch", "2",
                "--eval-every", "3", "--checkpoint-every", "3", "--qat", "q4_0", "--out", dir])
                .Invoke(new InvocationConfiguration { Output = output, Error = error });
            Assert.True(code == 0, error.ToString() + output);
            string log = error.ToString();
            Assert.Contains("QAT q4_0 on ", log);
            Assert.Contains("mlp.down_proj", log); // stories260K's FFN width (172) is no multiple of 32: left F32

            using var saved = ModelLoader.Load(Path.Combine(dir, "model"));
            var model = (DecoderModel)saved.Model;
            Assert.IsType<Linear>(model.Layers[0].Proj("self_attn.q_proj"));
            // the saved weights are the trained F32 values, not their rounded copies
            var w = ((Linear)model.Layers[0].Proj("self_attn.q_proj")).Weight.Value;
            var f = w.ToFloatArray();
            var rounded = new float[f.Length];
            FakeQuant.Weights(QuantFormat.Q4_0, f, rounded, w.Dim(0), w.Dim(1));
            Assert.NotEqual(rounded, f);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AnUnknownQatFormatIsRefused()
    {
        var error = new StringWriter();
        int code = EdgeTune.Cli.Program.Run(["finetune", "--qat", "q3_k", "--steps", "1"], new InvocationConfiguration { Output = new StringWriter(), Error = error });
        Assert.Equal(EdgeTune.Cli.CliErrors.Usage, code);
        Assert.Contains("q3_k", error.ToString());
    }
}
