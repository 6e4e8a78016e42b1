using System.CommandLine;
using EdgeTune.Security;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// Encryption at rest on the command line: <c>--encrypt</c> (commands that create a run folder) and one key source,
/// <c>--key-file PATH</c> (32 raw bytes or base64; created, owner-only, when <c>--encrypt</c> names a file that does
/// not exist), <c>--key-env VAR</c> (base64 of a 32-byte key), <c>--passphrase-env VAR</c> (a passphrase stretched with
/// Argon2id and the run folder's salt) or <c>--key-store NAME</c> (the OS key store: a Windows DPAPI-protected key file,
/// the Linux kernel keyring, the macOS Keychain; <see cref="StoredKeySource.ForPlatform"/>). Every command that reads or writes run folders takes the key options; encrypted folders
/// are found by their encryption.json (<see cref="RunFiles"/>).
/// </summary>
public sealed class EncryptionCliOptions(bool writes)
{
    public Option<bool> Encrypt { get; } = new("--encrypt")
    {
        Description = "Encrypt every file of the new run folder (AES-256-GCM, ETENC1); needs --key-file, --key-env, --passphrase-env or --key-store",
    };
    public Option<string?> KeyFile { get; } = new("--key-file")
    {
        Description = "Encryption key file (32 bytes, raw or base64); with --encrypt a missing file is created with a new random key (keep it: without it the run cannot be read)",
    };
    public Option<string?> KeyEnv { get; } = new("--key-env") { Description = "Environment variable holding the base64 of a 32-byte encryption key" };
    public Option<string?> PassphraseEnv { get; } = new("--passphrase-env") { Description = "Environment variable holding an encryption passphrase (stretched with Argon2id, one salt per run folder)" };
    public Option<string?> KeyStore { get; } = new("--key-store")
    {
        Description = "Key kept by the OS key store under this name: Windows: a DPAPI-protected key file at this path; Linux: the kernel keyring user key edgetune:NAME; macOS: the Keychain item (service EdgeTune, account NAME). With --encrypt a missing one is created",
    };

    public void AddTo(Command command)
    {
        if (writes) command.Options.Add(Encrypt);
        foreach (var o in new Option[] { KeyFile, KeyEnv, PassphraseEnv, KeyStore }) command.Options.Add(o);
    }

    /// <summary>The key for a command that writes the run folder <paramref name="runFolder"/>: required with --encrypt or
    /// when the folder is already encrypted (resuming); a key given for a new plain folder without --encrypt is refused
    /// so that nothing is encrypted by surprise. Null: plain. The caller disposes the key.</summary>
    public EncryptionKey? BindForWriting(ParseResult parse, string runFolder, TextWriter error)
    {
        bool encrypt = writes && parse.GetValue(Encrypt);
        bool existing = File.Exists(Path.Combine(runFolder, RunFiles.ManifestFile));
        var key = Load(parse, create: encrypt, error);
        if (key is null && encrypt)
            throw new CliException(CliErrors.Usage, "--encrypt needs a key: --key-file PATH, --key-env VAR, --passphrase-env VAR or --key-store NAME");
        if (key is not null && !encrypt && !existing)
        {
            key.Dispose();
            throw new CliException(CliErrors.Usage, $"a key was given but '{runFolder}' is not an encrypted run folder: pass --encrypt to encrypt a new run");
        }
        if (key is null) return null; // an encrypted folder without a key is refused by RunFiles, naming the folder
        try
        {
            // Checks the key against the folder (or starts the encrypted folder), then records the run's options in it.
            RunConfigFile.WriteResolved(parse, RunFiles.ForWriting(runFolder, key));
        }
        catch
        {
            key.Dispose();
            throw;
        }
        return key;
    }

    /// <summary>The key for reading (null when no key option is given: plain folders only).</summary>
    public EncryptionKey? BindForReading(ParseResult parse, TextWriter error) => Load(parse, create: false, error);

    /// <summary>Refuses an output of a command that writes plain files (export, quantize) inside an encrypted run folder.</summary>
    public static void RefusePlainOutput(string outPath, string flag)
    {
        if (RunFiles.FindEncryptedRoot(outPath) is { } root)
            throw new CliException(CliErrors.Usage, $"{flag} '{outPath}' is inside the encrypted run folder '{root}'; this command writes plain files, which would sit unencrypted there: choose an output outside it");
    }

    private EncryptionKey? Load(ParseResult parse, bool create, TextWriter error)
    {
        string? file = parse.GetValue(KeyFile), env = parse.GetValue(KeyEnv), pass = parse.GetValue(PassphraseEnv), store = parse.GetValue(KeyStore);
        int given = new[] { file, env, pass, store }.Count(v => v is not null);
        if (given == 0) return null;
        if (given > 1) throw new CliException(CliErrors.Usage, "give one key source: --key-file, --key-env, --passphrase-env or --key-store");
        if (file is not null)
        {
            if (!File.Exists(file))
            {
                if (!create) throw new CliException(CliErrors.Input, $"--key-file '{file}' does not exist");
                var created = EncryptionKey.CreateKeyFile(file);
                error.WriteLine($"created key file {file} (a new random key; keep it safe: without it the run cannot be read)");
                return created;
            }
            try { return EncryptionKey.FromKeyFile(file); }
            catch (FormatException e) { throw new CliException(CliErrors.Usage, $"--key-file: {e.Message}"); }
        }
        if (env is not null)
        {
            try { return EncryptionKey.FromEnvironment(env); }
            catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new CliException(CliErrors.Usage, $"--key-env: {e.Message}"); }
        }
        if (pass is not null)
        {
            string? value = Environment.GetEnvironmentVariable(pass);
            if (string.IsNullOrEmpty(value)) throw new CliException(CliErrors.Usage, $"--passphrase-env: environment variable {pass} is not set or empty");
            return EncryptionKey.FromPassphrase(value);
        }
        StoredKeySource source;
        try { source = KeySource.OsKeyStore(store!); }
        catch (PlatformNotSupportedException e) { throw new CliException(CliErrors.Usage, $"--key-store: {e.Message}"); }
        try
        {
            if (create && !source.Exists)
            {
                var key = source.CreateKey();
                error.WriteLine($"created a new random key in the {source.Description}" + (OperatingSystem.IsLinux()
                    ? " (the kernel keyring forgets it at reboot or when your last session ends: keep a copy, or the run cannot be read afterwards)"
                    : ""));
                return key;
            }
            return source.GetKey();
        }
        catch (PlatformNotSupportedException e) { throw new CliException(CliErrors.Usage, $"--key-store: {e.Message}"); }
        catch (Exception e) when (e is KeyNotFoundException or IOException or System.Security.Cryptography.CryptographicException)
        {
            throw new CliException(CliErrors.Encryption, $"--key-store: {e.Message}");
        }
    }
}
