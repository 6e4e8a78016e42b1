using System.Security.Cryptography;

namespace EdgeTune.Security;

/// <summary>
/// An encrypted file could not be read: wrong key, tampered or truncated content, chunks reordered or
/// taken from another file, or a logical name that does not match the one it was written under.
/// The message names the file and, where one is to blame, the chunk.
/// </summary>
public sealed class EncryptedFileException : CryptographicException
{
    public EncryptedFileException(string path, string message, long? chunk = null, Exception? inner = null)
        : base(message.Contains(path, StringComparison.Ordinal) ? message : $"'{path}': {message}", inner)
    {
        FilePath = path;
        Chunk = chunk;
    }

    /// <summary>The encrypted file on disk.</summary>
    public string FilePath { get; }

    /// <summary>Index of the chunk that failed, or null when the header or layout is at fault.</summary>
    public long? Chunk { get; }
}
