using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;
using EdgeTune.Cli.Commands;
using EdgeTune.Formats.Export;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Serving;
using EdgeTune.Text;

namespace EdgeTune.Tests.Cli;

public class ServeCommandTests
{
    [Fact]
    public async Task ServesAModelFolderWithNamedAdaptersUntilCancelled()
    {
        using var dir = new TempDir();
        string modelDir = dir.File("tiny-model");
        string adapter;
        using (var model = ChatTestKit.Model())
        {
            ModelExporter.ExportSafetensors(model, modelDir);
            ByteTokenizer.WriteMarker(modelDir);
            adapter = ChatTestKit.SaveRandomAdapter(model, dir.Path, "a", 101);
        }
        var output = new ServeUrlWriter();
        var error = new StringWriter();
        var root = new RootCommand { ServeCommand.Create() };
        using var cts = new CancellationTokenSource();
        var run = root.Parse(["serve", "--model", modelDir, "--adapter", $"helper={adapter}", "--port", "0", "--api-key", "k", "--max-queue", "2"])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cts.Token);
        var first = await Task.WhenAny(output.Url.Task, run).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(first == output.Url.Task, $"serve ended early: {error}");
        Uri url = await output.Url.Task;
        Assert.Equal(IPAddress.Loopback.ToString(), url.Host);
        Assert.Contains("adapter helper", error.ToString());

        using var http = new HttpClient { BaseAddress = url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", "k");
        var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        Assert.Equal(["tiny-model", "helper"], models.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        using var resp = await http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"helper","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(5, JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        cts.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData("name=path/to/a", "name", "path/to/a")]
    [InlineData("x=/abs/p=q", "x", "/abs/p=q")]
    public void AdapterSpecsSplitAtTheFirstEquals(string spec, string name, string path) =>
        Assert.Equal((name, path), ServeCommand.ParseAdapter(spec));

    [Theory]
    [InlineData("noequals")]
    [InlineData("=path")]
    [InlineData("name=")]
    public void MalformedAdapterSpecsAreRefused(string spec) =>
        Assert.Contains("NAME=PATH", Assert.Throws<ArgumentException>(() => ServeCommand.ParseAdapter(spec)).Message);
}
