using System.Net;
using System.Security.Cryptography;

namespace EdgeTune.Formats.Hub.Internal;

/// <summary>
/// Downloads one blob into <c>{blob}.incomplete</c>, resuming with <c>Range: bytes=N-</c> when a partial
/// file is there or the connection drops (206 appends, 200 starts over), checks the size and, for LFS
/// files, the sha256, then renames it to the blob path.
/// </summary>
internal static class BlobDownloader
{
    private const int BufferSize = 1 << 16;
    private const long ReportEvery = 1 << 20;

    public static async Task DownloadAsync(HubHttp http, HubOptions options, Uri uri, string blobPath, long? expectedSize,
        string? expectedSha256, string label, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        string incomplete = blobPath + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        int failures = 0;
        bool allowRange = true;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
            if (expectedSize is long size && have > size) { Truncate(incomplete); have = 0; }
            if (expectedSize is long done && have == done && done > 0) break; // everything is there already
            if (!allowRange && have > 0) { Truncate(incomplete); have = 0; }

            try
            {
                bool restart = await FetchAsync(http, options, uri, incomplete, have, expectedSize, label, progress, ct).ConfigureAwait(false);
                if (restart) { allowRange = false; continue; }
                break;
            }
            catch (Exception e) when (e is HubException { Kind: HubErrorKind.Network, StatusCode: null or >= 500 } || HubHttp.IsTransportFailure(e)
                                      || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                if (++failures > options.MaxResumeAttempts)
                    throw e as HubException ?? new HubException(HubErrorKind.Network,
                        $"Hub: download of '{label}' from {uri} failed {failures} times; the partial file {incomplete} is kept and the next run resumes it: {e.Message}", e);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 50 << failures)), ct).ConfigureAwait(false);
            }
        }

        long length = new FileInfo(incomplete).Length;
        if (expectedSize is long expected && length != expected)
        {
            File.Delete(incomplete);
            throw new HubException(HubErrorKind.Integrity, $"Hub: '{label}' downloaded {length} bytes but the server announced {expected}; the partial file was deleted, run again");
        }
        if (expectedSha256 is not null)
        {
            string actual = await Sha256HexAsync(incomplete, ct).ConfigureAwait(false);
            if (actual != expectedSha256)
            {
                File.Delete(incomplete);
                throw new HubException(HubErrorKind.Integrity, $"Hub: '{label}' has sha256 {actual} but its etag says {expectedSha256}; the download was deleted, run again");
            }
        }
        File.Move(incomplete, blobPath, overwrite: true);
        progress?.Report(new DownloadProgress(label, length, expectedSize ?? length));
    }

    /// <summary>One GET. Returns true when the server could not honour the range and the file must be
    /// fetched from the start without one.</summary>
    private static async Task<bool> FetchAsync(HubHttp http, HubOptions options, Uri uri, string incomplete, long have,
        long? expectedSize, string label, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        using var response = await http.SendAsync(HttpMethod.Get, uri, followAbsolute: true, have, ct).ConfigureAwait(false);
        long? total = expectedSize;
        bool append;
        if (response.StatusCode == HttpStatusCode.PartialContent && have > 0)
        {
            long? start = response.Content.Headers.ContentRange?.From;
            if (start != have) return true; // a range we did not ask for: start over
            append = true;
            total ??= response.Content.Headers.ContentRange?.Length;
        }
        else if (response.StatusCode == HttpStatusCode.OK)
        {
            append = false; // the server ignored the Range header: the body is the whole file
            total ??= response.Content.Headers.ContentLength;
        }
        else if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
        {
            return true;
        }
        else
        {
            throw new HubException(HubErrorKind.Network,
                $"Hub: HTTP {(int)response.StatusCode} {response.ReasonPhrase} while downloading '{label}' from {uri}") { StatusCode = (int)response.StatusCode };
        }

        long written = append ? have : 0;
        progress?.Report(new DownloadProgress(label, written, total));
        await using var file = new FileStream(incomplete, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read,
            BufferSize, FileOptions.Asynchronous);
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        byte[] buffer = new byte[BufferSize];
        long lastReport = written;
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        while (true)
        {
            stall.CancelAfter(options.ReadTimeout);
            int n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
            if (n == 0) break;
            await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            written += n;
            if (written - lastReport >= ReportEvery)
            {
                progress?.Report(new DownloadProgress(label, written, total));
                lastReport = written;
            }
        }
        if (total is long t && written < t)
            throw new IOException($"connection closed after {written} of {t} bytes");
        return false;
    }

    private static void Truncate(string path)
    {
        using var f = new FileStream(path, FileMode.Truncate, FileAccess.Write);
    }

    internal static async Task<string> Sha256HexAsync(string path, CancellationToken ct)
    {
        await using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        byte[] hash = await SHA256.HashDataAsync(f, ct).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }
}
