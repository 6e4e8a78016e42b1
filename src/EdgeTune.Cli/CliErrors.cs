using System.CommandLine;
using System.CommandLine.Parsing;
using System.Reflection;
using EdgeTune.Formats;
using EdgeTune.Formats.Hub;

namespace EdgeTune.Cli;

/// <summary>
/// The one place where a failed command becomes an exit code and a message. A user error (bad flags, a missing or
/// malformed file, an unsupported model, the Hub out of reach, too little memory or disk) prints a single line on
/// stderr, <c>edgetune VERB: message</c>, and exits with its class's code; anything else is treated as a bug in
/// EdgeTune and prints the full exception with <see cref="Internal"/>. <c>--verbose</c> adds the stack trace to user
/// errors too.
/// </summary>
public static class CliErrors
{
    /// <summary>An unexpected failure (a bug): the exception and its stack trace are printed.</summary>
    public const int Internal = 1;
    /// <summary>The command line is wrong: unknown or missing flags, bad values, flags that do not go together.</summary>
    public const int Usage = 2;
    /// <summary>An input path or its contents: a missing or unreadable file or folder, data with no usable rows.</summary>
    public const int Input = 3;
    /// <summary>A model, checkpoint, adapter or tokenizer that is malformed or not supported.</summary>
    public const int Model = 4;
    /// <summary>The network: the Hugging Face Hub (offline, unreachable, not found, unauthorized), a federated server, or the
    /// PostgreSQL server of a federated cluster.</summary>
    public const int Network = 5;
    /// <summary>Resources: the memory budget cannot be met, or the disk is full.</summary>
    public const int Resources = 6;
    /// <summary>Encryption at rest: an encrypted run folder without its key, a wrong key, or an encrypted file that is
    /// tampered with, truncated, reordered or moved (nothing was read or written).</summary>
    public const int Encryption = 7;
    /// <summary>Interrupted (Ctrl+C) before the command could finish cleanly.</summary>
    public const int Cancelled = 130;

    /// <summary>The exit-code table shown at the end of <c>edgetune --help</c>.</summary>
    public const string HelpText = """
        Exit codes:
          0    success
          1    internal error (a bug: the stack trace is printed), or training stopped on non-finite losses
          2    usage: unknown, missing or conflicting flags, bad values
          3    input: a missing or unreadable path, data with no usable rows
          4    model or format: a malformed or unsupported model, checkpoint, adapter or tokenizer
          5    network: the Hugging Face Hub (offline, unreachable, unknown or gated repository), a federated server or its database
          6    resources: the memory budget cannot be met, disk full
          7    encryption: an encrypted run folder without its key, a wrong key, a tampered or truncated encrypted file
          130  interrupted (Ctrl+C)
        A user error prints one line on stderr; --verbose adds its stack trace.
        """;

    /// <summary>Parses and runs <paramref name="args"/> against <paramref name="root"/>: parse errors and exceptions
    /// are reported here instead of by System.CommandLine's default handler.</summary>
    public static int Invoke(Command root, Option<bool> verbose, IReadOnlyList<string> args, InvocationConfiguration configuration,
        Option<string?>? config = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(configuration);
        configuration.EnableDefaultExceptionHandler = false;
        var parse = root.Parse(args);
        if (config is not null && parse.GetValue(config) is not null)
        {
            try { parse = root.Parse(RunConfigFile.Expand(parse, config, [.. args])); }
            catch (Exception e) { return Report(e, Verb(parse), parse.GetValue(verbose), configuration.Error); }
        }
        if (parse.Errors.Count > 0 && parse.Action is not { ClearsParseErrors: true }) // --help, --version: let them answer
        {
            string verb = Verb(parse);
            configuration.Error.WriteLine($"{verb}: {OneLine(string.Join("; ", parse.Errors.Select(e => e.Message.TrimEnd('.')).Distinct()))}; see '{verb} --help'");
            return Usage;
        }
        try
        {
            if (parse.Action is not { ClearsParseErrors: true }) RunConfigFile.WriteResolved(parse);
            return parse.Invoke(configuration);
        }
        catch (Exception e)
        {
            return Report(e, Verb(parse), parse.GetValue(verbose), configuration.Error);
        }
    }

    /// <summary>Writes <paramref name="e"/> to <paramref name="error"/> as its class asks and returns the exit code.</summary>
    public static int Report(Exception e, string verb, bool verbose, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(error);
        e = Unwrap(e);
        int code = Classify(e);
        if (code == Internal)
        {
            error.WriteLine($"{verb}: internal error (please report it): {e}");
            return code;
        }
        error.WriteLine($"{verb}: {OneLine(e.Message)}");
        if (verbose) error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>
    /// The exit code of an exception: its type decides, most specific first. Argument, format, not-supported and
    /// key-not-found exceptions count as user errors only when EdgeTune itself threw them (rejecting a value the user
    /// gave, or a file it cannot read); from the runtime they mean a bug.
    /// </summary>
    public static int Classify(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        e = Unwrap(e);
        return e switch
        {
            OperationCanceledException => Cancelled,
            CliException c => c.ExitCode,
            EdgeTune.Security.EncryptedFileException or EdgeTune.Security.EncryptionKeyRequiredException => Encryption,
            HubException or HttpRequestException or System.Net.Sockets.SocketException or Grpc.Core.RpcException
                or EdgeTune.Federated.Server.FlRejectedException or EdgeTune.Federated.Storage.FlDatabaseUnreachableException => Network,
            InsufficientMemoryException or OutOfMemoryException => Resources,
            IOException io when IsDiskFull(io) => Resources,
            CheckpointFormatException or EdgeTune.Text.ChatTemplateException => Model,
            NotSupportedException or KeyNotFoundException when ThrownByEdgeTune(e) => Model,
            FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or InvalidDataException
                or PathTooLongException or IOException => Input,
            EdgeTune.Energy.EnergyMeterException => Input,
            ArgumentNullException or EdgeTune.Tensors.ShapeException => Internal,
            ArgumentException or FormatException when ThrownByEdgeTune(e) => Usage,
            _ => Internal,
        };
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case TypeInitializationException { InnerException: { } inner2 }: e = inner2; continue;
                default: return e;
            }
        }
    }

    // Windows: ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL as HRESULTs. Unix: .NET puts the raw errno in HResult,
    // ENOSPC (28 on Linux and macOS) or EDQUOT (122 on Linux, 69 on macOS).
    private static bool IsDiskFull(IOException e) =>
        OperatingSystem.IsWindows() ? e.HResult is unchecked((int)0x80070070) or unchecked((int)0x80070027)
        : e.HResult == 28 || (OperatingSystem.IsLinux() && e.HResult == 122) || (OperatingSystem.IsMacOS() && e.HResult == 69);

    private static readonly Assembly[] EdgeTuneAssemblies =
        [typeof(CheckpointFormatException).Assembly, typeof(EdgeTune.Federated.Server.FlRejectedException).Assembly, typeof(CliErrors).Assembly];

    private static bool ThrownByEdgeTune(Exception e) =>
        e.TargetSite?.DeclaringType?.Assembly is { } a && Array.IndexOf(EdgeTuneAssemblies, a) >= 0;

    /// <summary>"edgetune finetune" for the command that was parsed (as far as parsing got).</summary>
    private static string Verb(ParseResult parse)
    {
        var names = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Add(c.Command.Name);
        names.Reverse();
        if (names.Count > 0) names[0] = Program.Name;
        return names.Count > 0 ? string.Join(' ', names) : Program.Name;
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>A user error a command detects itself (flags that do not go together, a value out of range, an output path
/// of the wrong kind): <see cref="CliErrors"/> prints its message and exits with <see cref="ExitCode"/>.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    /// <summary>One of the <see cref="CliErrors"/> codes.</summary>
    public int ExitCode { get; } = exitCode;
}
