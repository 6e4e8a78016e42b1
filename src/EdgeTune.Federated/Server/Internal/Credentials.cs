using System.Security.Cryptography;
using System.Text;

namespace EdgeTune.Federated.Server.Internal;

/// <summary>Client credentials: 32 random bytes (base64url) handed out once; only HMAC-SHA256(salt, secret) is stored.</summary>
internal static class Credentials
{
    public static string NewSecret() => Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string NewClientId() => "c-" + Base64Url(RandomNumberGenerator.GetBytes(9));

    public static byte[] NewSalt() => RandomNumberGenerator.GetBytes(16);

    public static byte[] Hash(byte[] salt, string secret) => HMACSHA256.HashData(salt, Encoding.UTF8.GetBytes(secret));

    public static bool Verify(byte[] salt, byte[] expectedHash, string secret) =>
        CryptographicOperations.FixedTimeEquals(Hash(salt, secret), expectedHash);

    /// <summary>Constant-time comparison of two strings by their SHA-256.</summary>
    public static bool SameSecret(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
