namespace EdgeTune.Formats.Hub.Internal;

/// <summary>
/// An exclusive lock on <c>{cache}/.locks/models--org--name/{etag}.lock</c>, held while a blob is written.
/// .NET takes it with flock(LOCK_EX) on Unix and a share-none open on Windows, which is what Python's
/// filelock uses too, so EdgeTune and huggingface_hub never write the same blob at once.
/// </summary>
internal sealed class CacheFileLock : IDisposable
{
    private readonly FileStream _stream;

    private CacheFileLock(FileStream stream) => _stream = stream;

    public static async Task<CacheFileLock> AcquireAsync(string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        int delayMs = 10;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                return new CacheFileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException)
            {
                await Task.Delay(delayMs, ct).ConfigureAwait(false);
                delayMs = Math.Min(500, delayMs * 2);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
