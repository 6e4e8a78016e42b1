namespace EdgeTune.Adapters.Internal;

/// <summary>Writes a folder's files into a temporary sibling, then moves it into place (an existing folder is
/// moved aside first and deleted after), so a failed write leaves no half-written folder.</summary>
internal static class FolderWriter
{
    public static void Write(string dir, Action<string> fill)
    {
        string full = Path.GetFullPath(dir);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{dir}' has no parent folder", nameof(dir));
        if (File.Exists(full)) throw new IOException($"'{full}' is a file, not a folder");
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            string? old = null;
            if (Directory.Exists(full))
            {
                old = full + $".old-{Guid.NewGuid():N}";
                Directory.Move(full, old);
            }
            try { Directory.Move(tmp, full); }
            catch
            {
                if (old is not null) Directory.Move(old, full);
                throw;
            }
            if (old is not null) TryDelete(old);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
