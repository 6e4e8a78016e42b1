using System.Security.Cryptography;

namespace EdgeTune.Security;

/// <summary>
/// A run folder is encrypted (it holds <see cref="RunFiles.ManifestFile"/>) and no key was given, or a key was given
/// for a folder that already holds plain files. Nothing was read or written.
/// </summary>
public sealed class EncryptionKeyRequiredException(string folder, string message) : CryptographicException(message)
{
    /// <summary>The run folder concerned.</summary>
    public string Folder { get; } = folder;
}
