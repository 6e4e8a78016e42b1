using System.CommandLine;

namespace EdgeTune.Tests.Cli;

/// <summary>Runs <c>edgetune</c> in-process, as <c>Main</c> does (errors through CliErrors), with captured stdout/stderr.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = EdgeTune.Cli.Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }
}
