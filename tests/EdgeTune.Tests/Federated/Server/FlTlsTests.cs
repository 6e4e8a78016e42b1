using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated.Server;

public sealed class FlTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-fl-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task RoundRunsOverTlsWithACertificateFile()
    {
        using var key = RSA.Create(2048);
        var req = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        string pfx = Path.Combine(_dir, "server.pfx");
        File.WriteAllBytes(pfx, cert.Export(X509ContentType.Pfx, "pw"));

        var layout = FlTestServer.Layout();
        using var server = new FlServer(FlTestServer.Options(Path.Combine(_dir, "state"), minClients: 1), layout, new float[layout.TotalLength]);
        await using var host = await FlServerHost.StartAsync(server, new FlHostOptions { CertificatePath = pfx, CertificatePassword = "pw" });
        Assert.Equal("https", host.Url.Scheme);
        using var client = new FlClient(new FlClientOptions { Server = host.Url, Token = FlTestServer.Token, AcceptAnyServerCertificate = true, RetryFor = TimeSpan.FromSeconds(10) },
            new ConstantTrainer(2f));
        var summary = await client.RunAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, summary.Accepted);
        Assert.All(server.Global, v => Assert.Equal(2f, v));
    }
}
