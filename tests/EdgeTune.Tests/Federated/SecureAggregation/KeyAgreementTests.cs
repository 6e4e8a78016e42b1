using System.Security.Cryptography;
using EdgeTune.Federated.SecureAggregation;
using EdgeTune.Federated.SecureAggregation.Internal;

namespace EdgeTune.Tests.Federated.SecureAggregation;

public class KeyAgreementTests
{
    [Fact]
    public void AgreementIsSymmetricAndLabelled()
    {
        using var a = KeyAgreement.NewKey();
        using var b = KeyAgreement.NewKey();
        using var aPub = KeyAgreement.ImportPublic(a.ExportSubjectPublicKeyInfo(), "a");
        using var bPub = KeyAgreement.ImportPublic(b.ExportSubjectPublicKeyInfo(), "b");
        Assert.Equal(KeyAgreement.Agree(a, bPub, KeyAgreement.MaskLabel), KeyAgreement.Agree(b, aPub, KeyAgreement.MaskLabel));
        Assert.NotEqual(KeyAgreement.Agree(a, bPub, KeyAgreement.MaskLabel), KeyAgreement.Agree(a, bPub, KeyAgreement.EncryptionLabel));
    }

    [Fact]
    public void RebuiltPrivateKeyMustMatchTheAdvertisedPublicKey()
    {
        using var a = KeyAgreement.NewKey();
        using var b = KeyAgreement.NewKey();
        using var peer = KeyAgreement.NewKey();
        using var peerPub = KeyAgreement.ImportPublic(peer.ExportSubjectPublicKeyInfo(), "p");
        using var rebuilt = KeyAgreement.ImportPrivate(KeyAgreement.PrivateScalar(a), a.ExportSubjectPublicKeyInfo(), "a");
        Assert.Equal(KeyAgreement.Agree(a, peerPub, KeyAgreement.MaskLabel), KeyAgreement.Agree(rebuilt, peerPub, KeyAgreement.MaskLabel));
        Assert.Throws<SecureAggregationException>(() => KeyAgreement.ImportPrivate(KeyAgreement.PrivateScalar(b), a.ExportSubjectPublicKeyInfo(), "a"));
    }

    [Fact]
    public void NonP256KeysAreRefused()
    {
        using var p384 = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP384);
        Assert.Throws<SecureAggregationException>(() => KeyAgreement.ImportPublic(p384.ExportSubjectPublicKeyInfo(), "x"));
        Assert.Throws<SecureAggregationException>(() => KeyAgreement.ImportPublic([1, 2, 3], "x"));
    }
}
