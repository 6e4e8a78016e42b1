using System.Text.RegularExpressions;

namespace EdgeTune.Tests.Cli;

/// <summary>Output writer for tests that start `edgetune serve`: captures the lines and completes <see cref="Url"/> when the
/// server announces its address.</summary>
internal sealed class ServeUrlWriter : StringWriter
{
    public TaskCompletionSource<Uri> Url { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override Task WriteLineAsync(string? value)
    {
        lock (this) base.WriteLine(value);
        if (value is not null && Regex.Match(value, @" on (http://\S+) ") is { Success: true } m) Url.TrySetResult(new Uri(m.Groups[1].Value));
        return Task.CompletedTask;
    }
}
