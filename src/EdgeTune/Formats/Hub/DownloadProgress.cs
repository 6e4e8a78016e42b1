namespace EdgeTune.Formats.Hub;

/// <summary>
/// Progress of one file download, reported through <see cref="IProgress{T}"/>.
/// <paramref name="BytesDownloaded"/> counts bytes on disk for this file, including a resumed prefix;
/// <paramref name="TotalBytes"/> is null when the server did not say. <paramref name="FromCache"/> is true
/// for a report that says the file was already in the cache (then bytes == total).
/// </summary>
public readonly record struct DownloadProgress(string File, long BytesDownloaded, long? TotalBytes, bool FromCache = false)
{
    /// <summary>True once all bytes are there.</summary>
    public bool IsComplete => TotalBytes is long t && BytesDownloaded >= t;
}
