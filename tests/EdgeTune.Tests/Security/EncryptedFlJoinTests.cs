using EdgeTune.Adapters;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Models;
using EdgeTune.Security;
using EdgeTune.Tests.Cli;
using EdgeTune.Tests.Federated;

namespace EdgeTune.Tests.Security;

/// <summary>A federated client's state under --encrypt: <c>fl join --encrypt</c> against a loopback server keeps the
/// client's identity (id and credential) encrypted, and the folder is refused (exit 7) without the key.</summary>
public sealed class EncryptedFlJoinTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-enc-fl-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task FlJoinKeepsItsIdentityEncrypted()
    {
        string folder = BuiltInModels.Stories260KFolder();
        string model = Path.Combine(folder, BuiltInModels.ModelFile), tok = Path.Combine(folder, BuiltInModels.TokenizerFile);
        UpdateLayout layout;
        using (var loaded = ModelLoader.Load(model, tok))
        using (var adapter = LoraInjector.Apply((DecoderModel)loaded.Model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllProjections }))
            layout = AdapterVector.LayoutOf(adapter);
        await using var server = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 1, rounds: 1));
        string identity = Path.Combine(_dir, "client", "identity.json"), key = Path.Combine(_dir, "client.key");
        var join = await Task.Run(() => CliRunner.Run("fl", "join", "--server", server.Url.ToString(), "--token", FlTestServer.Token, "--identity", identity,
            "--data", BuiltInModels.DemoDataPath(), "--model", model, "--tokenizer", tok, "--rank", "2", "--name", "enc-client", "--encrypt", "--key-file", key))
            .WaitAsync(TimeSpan.FromMinutes(4));
        Assert.True(join.Code == 0, join.Err + join.Out);
        Assert.Contains("joined as", join.Out);
        Assert.True(File.Exists(Path.Combine(_dir, "client", RunFiles.ManifestFile)));
        Assert.True(EncryptedFile.IsEncrypted(identity));
        byte[] onDisk = File.ReadAllBytes(identity);
        Assert.True(onDisk.AsSpan().IndexOf("credential"u8) < 0, "the identity is readable on disk");
        using (var k = EncryptionKey.FromKeyFile(key))
            Assert.Contains("client_id", RunFiles.ForReading(identity, k).ReadAllText(identity));

        // without the key the client state is refused before anything is sent or written
        var noKey = CliRunner.Run("fl", "join", "--server", server.Url.ToString(), "--identity", identity, "--data", BuiltInModels.DemoDataPath(),
            "--model", model, "--tokenizer", tok, "--rank", "2");
        Assert.Equal(7, noKey.Code);
        Assert.Equal(onDisk, File.ReadAllBytes(identity));
    }
}
