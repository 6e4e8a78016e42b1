using System.Security.Cryptography;
using EdgeTune.Security;
using EdgeTune.Tests.Formats;

namespace EdgeTune.Tests.Security;

public sealed class EncryptionKeyTests : IDisposable
{
    private const string Name = "data/train.jsonl";
    // Cheap costs so tests stay fast; the header records them, so reading needs no configuration.
    private static readonly KdfParameters FastArgon = KdfParameters.Argon2id(iterations: 1, memoryKiB: 1024, parallelism: 1);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void PassphraseKeyRoundTripsWithTheStoredSaltAndParameters()
    {
        byte[] data = RandomNumberGenerator.GetBytes(20_000);
        string a = _dir.File("a.etenc"), b = _dir.File("b.etenc");
        using (var key = EncryptionKey.FromPassphrase("correct horse battery staple", FastArgon))
        {
            Assert.True(key.IsPassphrase);
            EncryptedFile.Write(a, Name, data, key, 4096);
            EncryptedFile.Write(b, Name, data, key, 4096);
        }

        var info = EncryptedFile.ReadInfo(a);
        Assert.Equal(FastArgon, info.Kdf);
        byte[] salt = File.ReadAllBytes(a).AsSpan(24, 16).ToArray();
        Assert.Contains(salt, x => x != 0);
        Assert.NotEqual(salt, File.ReadAllBytes(b).AsSpan(24, 16).ToArray()); // a fresh salt per file

        // A new key object from the same passphrase, even with other default costs, reads both back:
        // the salt and costs come from each header.
        using (var again = EncryptionKey.FromPassphrase("correct horse battery staple", KdfParameters.Pbkdf2(1000)))
        {
            Assert.Equal(data, EncryptedFile.ReadAllBytes(a, Name, again));
            Assert.Equal(data, EncryptedFile.ReadAllBytes(b, Name, again));
        }

        using var wrong = EncryptionKey.FromPassphrase("correct horse battery stapler", FastArgon);
        Assert.Contains("wrong key or tampered file", Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(a, Name, wrong)).Message);

        using var raw = EncryptionKey.Generate();
        Assert.Contains("encrypted with a passphrase", Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(a, Name, raw)).Message);
    }

    [Fact]
    public void Pbkdf2PassphraseRoundTrips()
    {
        byte[] data = RandomNumberGenerator.GetBytes(5000);
        string path = _dir.File("p.etenc");
        using (var key = EncryptionKey.FromPassphrase("pw", KdfParameters.Pbkdf2(2000))) EncryptedFile.Write(path, Name, data, key);
        Assert.Equal(KdfParameters.Pbkdf2(2000), EncryptedFile.ReadInfo(path).Kdf);
        using var again = EncryptionKey.FromPassphrase("pw");
        Assert.Equal(data, EncryptedFile.ReadAllBytes(path, Name, again));

        using var rawFile = EncryptionKey.Generate();
        string r = _dir.File("r.etenc");
        EncryptedFile.Write(r, Name, data, rawFile);
        Assert.Contains("encrypted with a raw key", Assert.Throws<EncryptedFileException>(() => EncryptedFile.ReadAllBytes(r, Name, again)).Message);
    }

    [Fact]
    public void DefaultsFollowTheRecommendations()
    {
        Assert.Equal(KdfParameters.Argon2id(3, 64 * 1024, 4), KdfParameters.Argon2idDefault);
        Assert.Equal(600_000, KdfParameters.Pbkdf2().Iterations);
        using var key = EncryptionKey.FromPassphrase("x");
        Assert.Equal(KdfParameters.Argon2idDefault, key.Kdf);
        Assert.Throws<ArgumentException>(() => EncryptionKey.FromPassphrase("x", KdfParameters.Argon2id(1, 4, 1)));
        Assert.Throws<ArgumentException>(() => EncryptionKey.FromPassphrase(""));
    }

    [Fact]
    public void RawKeysFromBase64KeyFilesAndBytesAgree()
    {
        byte[] secret = RandomNumberGenerator.GetBytes(32);
        byte[] data = RandomNumberGenerator.GetBytes(1000);
        string path = _dir.File("d.etenc");
        using (var k = EncryptionKey.FromBytes(secret)) EncryptedFile.Write(path, Name, data, k);

        File.WriteAllBytes(_dir.File("raw.key"), secret);
        File.WriteAllText(_dir.File("b64.key"), "  " + Convert.ToBase64String(secret) + "\n");
        using (var k = EncryptionKey.FromKeyFile(_dir.File("raw.key"))) Assert.Equal(data, EncryptedFile.ReadAllBytes(path, Name, k));
        using (var k = EncryptionKey.FromKeyFile(_dir.File("b64.key"))) Assert.Equal(data, EncryptedFile.ReadAllBytes(path, Name, k));
        using (var k = KeySource.KeyFile(_dir.File("b64.key")).GetKey()) Assert.Equal(data, EncryptedFile.ReadAllBytes(path, Name, k));
        using (var k = EncryptionKey.FromBase64(Convert.ToBase64String(secret))) Assert.Equal(Convert.ToBase64String(secret), k.ExportBase64());

        Assert.Throws<ArgumentException>(() => EncryptionKey.FromBytes(new byte[16]));
        Assert.Contains("16 bytes", Assert.Throws<FormatException>(() => EncryptionKey.FromBase64(Convert.ToBase64String(new byte[16]))).Message);
        Assert.Throws<FormatException>(() => EncryptionKey.FromBase64("not base64!"));
    }

    [Fact]
    public void CreatedKeyFileReadsBackAndIsOwnerOnly()
    {
        string path = _dir.File("new.key");
        using var created = EncryptionKey.CreateKeyFile(path);
        using var loaded = EncryptionKey.FromKeyFile(path);
        Assert.Equal(created.ExportBase64(), loaded.ExportBase64());
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Throws<IOException>(() => EncryptionKey.CreateKeyFile(path)); // never overwrites a key
    }

    [Fact]
    public void MissingEnvironmentVariableIsNamed()
    {
        string name = "EDGETUNE_TEST_UNSET_" + Guid.NewGuid().ToString("N"); // never set, so nothing process-wide changes
        var e = Assert.Throws<InvalidOperationException>(() => KeySource.Environment(name).GetKey());
        Assert.Contains(name, e.Message);
        Assert.Equal(EncryptionKey.DefaultEnvironmentVariable, "EDGETUNE_ENCRYPTION_KEY");
    }

    [Fact]
    public void DisposedKeyCannotBeUsed()
    {
        var key = EncryptionKey.Generate();
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => EncryptedFile.Write(_dir.File("z"), Name, new byte[1], key));
        Assert.Throws<ObjectDisposedException>(() => key.ExportBase64());
    }

    [Fact]
    public void DpapiKeySourceWorksOnWindowsAndSaysSoElsewhere()
    {
        var source = KeySource.WindowsDpapi(_dir.File("dpapi.key"));
        if (OperatingSystem.IsWindows())
        {
            using var created = source.CreateKey();
            using var loaded = source.GetKey();
            Assert.Equal(created.ExportBase64(), loaded.ExportBase64());
            Assert.NotEqual(Convert.FromBase64String(created.ExportBase64()), File.ReadAllBytes(source.ProtectedKeyPath));
        }
        else
        {
            var e = Assert.Throws<PlatformNotSupportedException>(() => source.GetKey());
            Assert.Contains("only available on Windows", e.Message);
            Assert.Throws<PlatformNotSupportedException>(() => source.CreateKey());
            Assert.False(File.Exists(source.ProtectedKeyPath));
        }
    }
}
