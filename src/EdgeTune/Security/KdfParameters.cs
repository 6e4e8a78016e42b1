namespace EdgeTune.Security;

/// <summary>Which function turns a passphrase into a key.</summary>
public enum KdfAlgorithm : byte
{
    /// <summary>No derivation: the file was written with a raw 32-byte key.</summary>
    None = 0,
    /// <summary>Argon2id (RFC 9106), memory-hard.</summary>
    Argon2id = 1,
    /// <summary>PBKDF2 with HMAC-SHA256 (RFC 8018).</summary>
    Pbkdf2Sha256 = 2,
}

/// <summary>
/// Cost parameters of a passphrase KDF. They are stored, with a random salt, in each file's header,
/// so a file is always read back with the parameters it was written with.
/// </summary>
/// <param name="Algorithm">The KDF.</param>
/// <param name="Iterations">Argon2id passes (t) or PBKDF2 iterations.</param>
/// <param name="MemoryKiB">Argon2id memory (m) in KiB; 0 for PBKDF2.</param>
/// <param name="Parallelism">Argon2id lanes (p); 0 for PBKDF2.</param>
public readonly record struct KdfParameters(KdfAlgorithm Algorithm, int Iterations, int MemoryKiB, int Parallelism)
{
    /// <summary>Most Argon2id memory a header may ask for (4 GiB), so a hostile file cannot exhaust RAM.</summary>
    public const int MaxMemoryKiB = 4 * 1024 * 1024;
    /// <summary>Most passes/iterations a header may ask for.</summary>
    public const int MaxIterations = 100_000_000;

    /// <summary>
    /// Argon2id with t=3, m=64 MiB, p=4: the second recommended option of RFC 9106 §4 (for memory-constrained
    /// environments). The default for passphrases.
    /// </summary>
    public static KdfParameters Argon2idDefault { get; } = new(KdfAlgorithm.Argon2id, 3, 64 * 1024, 4);

    /// <summary>Argon2id with chosen costs.</summary>
    public static KdfParameters Argon2id(int iterations, int memoryKiB, int parallelism) =>
        new(KdfAlgorithm.Argon2id, iterations, memoryKiB, parallelism);

    /// <summary>PBKDF2-HMAC-SHA256; 600,000 iterations is the OWASP 2023 minimum for this hash.</summary>
    public static KdfParameters Pbkdf2(int iterations = 600_000) => new(KdfAlgorithm.Pbkdf2Sha256, iterations, 0, 0);

    /// <summary>Throws when the parameters are out of range (used for both writing and reading headers).</summary>
    internal string? Problem() => Algorithm switch
    {
        KdfAlgorithm.Argon2id when Iterations < 1 || Iterations > MaxIterations => $"Argon2id passes {Iterations} out of range [1, {MaxIterations}]",
        KdfAlgorithm.Argon2id when Parallelism < 1 || Parallelism > 64 => $"Argon2id parallelism {Parallelism} out of range [1, 64]",
        KdfAlgorithm.Argon2id when MemoryKiB < 8 * Parallelism || MemoryKiB > MaxMemoryKiB => $"Argon2id memory {MemoryKiB} KiB out of range [{8 * Parallelism}, {MaxMemoryKiB}]",
        KdfAlgorithm.Pbkdf2Sha256 when Iterations < 1 || Iterations > MaxIterations => $"PBKDF2 iterations {Iterations} out of range [1, {MaxIterations}]",
        KdfAlgorithm.Pbkdf2Sha256 when MemoryKiB != 0 || Parallelism != 0 => "PBKDF2 takes no memory or parallelism parameter",
        KdfAlgorithm.None when Iterations != 0 || MemoryKiB != 0 || Parallelism != 0 => "raw-key files carry no KDF parameters",
        KdfAlgorithm.None or KdfAlgorithm.Argon2id or KdfAlgorithm.Pbkdf2Sha256 => null,
        _ => $"unknown KDF {(byte)Algorithm}",
    };
}
