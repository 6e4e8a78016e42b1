namespace EdgeTune.Formats.Internal;

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see half a file.</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> on a stream to a temporary file in the target's folder, flushes
    /// it to disk, then renames it over <paramref name="path"/>. On failure the temporary file is removed
    /// and <paramref name="path"/> is left as it was.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes <paramref name="byteCount"/> bytes starting at <paramref name="pointer"/> in chunks (works past 2 GiB).</summary>
    public static unsafe void WriteBytes(Stream s, byte* pointer, long byteCount)
    {
        const int Chunk = 1 << 26;
        for (long done = 0; done < byteCount;)
        {
            int n = (int)Math.Min(Chunk, byteCount - done);
            s.Write(new ReadOnlySpan<byte>(pointer + done, n));
            done += n;
        }
    }

    /// <summary>Writes <paramref name="count"/> copies of <paramref name="value"/>.</summary>
    public static void WritePadding(Stream s, long count, byte value = 0)
    {
        if (count <= 0) return;
        Span<byte> pad = stackalloc byte[256];
        pad.Fill(value);
        while (count > 0)
        {
            int n = (int)Math.Min(count, pad.Length);
            s.Write(pad[..n]);
            count -= n;
        }
    }
}
