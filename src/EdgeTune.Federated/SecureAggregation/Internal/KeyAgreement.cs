using System.Security.Cryptography;
using System.Text;

namespace EdgeTune.Federated.SecureAggregation.Internal;

/// <summary>ECDH P-256 helpers: public keys travel as SubjectPublicKeyInfo bytes; an agreed secret is
/// SHA-256(label ‖ shared x-coordinate), so both sides of a pair derive the same 32 bytes.</summary>
internal static class KeyAgreement
{
    public static readonly byte[] EncryptionLabel = Encoding.ASCII.GetBytes("EdgeTune/SecAgg/v1/encrypt");
    public static readonly byte[] MaskLabel = Encoding.ASCII.GetBytes("EdgeTune/SecAgg/v1/mask");

    public static ECDiffieHellman NewKey() => ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>Imports a peer's public key, insisting on P-256.</summary>
    public static ECDiffieHellman ImportPublic(byte[] spki, string owner)
    {
        var key = ECDiffieHellman.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(spki, out int read);
            if (read != spki.Length) throw new CryptographicException("trailing bytes");
            var p = key.ExportParameters(false);
            if (p.Curve.Oid?.Value != "1.2.840.10045.3.1.7") throw new CryptographicException("not a P-256 key");
            return key;
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new SecureAggregationException($"secure aggregation: public key of '{owner}' is not a valid P-256 key ({e.Message})");
        }
    }

    /// <summary>A private key rebuilt from its scalar D and the advertised public key.</summary>
    public static ECDiffieHellman ImportPrivate(byte[] d, byte[] publicSpki, string owner)
    {
        using var pub = ImportPublic(publicSpki, owner);
        var q = pub.ExportParameters(false).Q;
        try
        {
            var key = ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d, Q = q });
            return key;
        }
        catch (CryptographicException e)
        {
            throw new SecureAggregationException($"secure aggregation: the rebuilt secret key of '{owner}' does not match its public key ({e.Message})");
        }
    }

    public static byte[] Agree(ECDiffieHellman mine, ECDiffieHellman peerPublic, byte[] label) =>
        mine.DeriveKeyFromHash(peerPublic.PublicKey, HashAlgorithmName.SHA256, label, null);

    /// <summary>The private scalar D, left-padded to 32 bytes.</summary>
    public static byte[] PrivateScalar(ECDiffieHellman key)
    {
        var d = key.ExportParameters(true).D!;
        if (d.Length == 32) return d;
        var padded = new byte[32];
        d.CopyTo(padded, 32 - d.Length);
        return padded;
    }
}
