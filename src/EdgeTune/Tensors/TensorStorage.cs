using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>A block of bytes that tensors view: aligned native memory, or a read-only file mapping.</summary>
public abstract unsafe class TensorStorage : IDisposable
{
    /// <summary>Alignment of native allocations, in bytes (one cache line, one Vector512).</summary>
    public const int Alignment = 64;

    public byte* Pointer { get; protected set; }
    public long ByteLength { get; protected init; }
    public bool IsReadOnly { get; protected init; }
    public bool IsDisposed => Pointer == null;

    public abstract void Dispose();

    /// <summary>Allocates zeroed, 64-byte aligned native memory.</summary>
    public static TensorStorage Allocate(long bytes) => new NativeStorage(bytes);

    /// <summary>Hands the freed blocks kept for reuse back to the C heap (see the block cache's remarks); call it when
    /// a phase that allocated many large tensors (a training run) is over and memory should shrink to what is live.</summary>
    public static void ReleaseCachedBlocks() => BlockCache.Shared.Trim();

    /// <summary>Maps a whole file read-only; tensors are then views at byte offsets into it.</summary>
    public static TensorStorage MapFile(string path) => new MappedFileStorage(path);

    internal void ThrowIfDisposed(string what)
    {
        if (Pointer == null) throw new ObjectDisposedException(what, $"the storage behind tensor '{what}' was disposed");
    }
}

internal sealed unsafe class NativeStorage : TensorStorage
{
    private readonly TensorMemoryScope? _scope;
    private readonly bool _zeroOnFree;
    private readonly long _blockSize;

    /// <param name="readOnly">Mark tensor views read-only (the creator fills it through <see cref="TensorStorage.Pointer"/> first).</param>
    /// <param name="zeroOnFree">Clear the bytes before freeing them (decrypted secrets).</param>
    public NativeStorage(long bytes, bool readOnly = false, bool zeroOnFree = false)
    {
        IsReadOnly = readOnly;
        _zeroOnFree = zeroOnFree;
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "negative allocation");
        ByteLength = bytes;
        Pointer = BlockCache.Shared.Rent(bytes, out _blockSize);
        NativeMemory.Clear(Pointer, (nuint)Math.Max(bytes, 1));
        if (bytes > 0) GC.AddMemoryPressure(bytes);
        _scope = TensorMemory.Allocated(bytes);
    }

    ~NativeStorage() => Free();

    public override void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (Pointer == null) return;
        if (_zeroOnFree) NativeMemory.Clear(Pointer, (nuint)Math.Max(ByteLength, 1));
        BlockCache.Shared.Return(Pointer, _blockSize);
        Pointer = null;
        if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
        TensorMemory.Freed(ByteLength, _scope);
    }
}

internal sealed unsafe class MappedFileStorage : TensorStorage
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;

    /// <remarks>
    /// The length is taken from the opened file, not from the directory entry: a symbolic link (the Hugging Face
    /// cache's <c>snapshots/{commit}/model.safetensors</c> → <c>../../blobs/{sha256}</c>) is followed to its target,
    /// so the mapping and <see cref="TensorStorage.ByteLength"/> are the target's bytes, never the link's own size.
    /// </remarks>
    public MappedFileStorage(string path)
    {
        FileStream stream = OpenTarget(path);
        try
        {
            ByteLength = stream.Length;
            IsReadOnly = true;
            if (ByteLength == 0)
            {
                stream.Dispose();
                Pointer = (byte*)NativeMemory.AlignedAlloc(1, Alignment); // an empty file maps to nothing
                return;
            }
            // The mapping takes over the stream (leaveOpen: false) and closes it on dispose.
            _file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch
        {
            if (_file is null) stream.Dispose();
            else _file.Dispose();
            throw;
        }
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Pointer = p + _view.PointerOffset;
    }

    /// <summary>Opens <paramref name="path"/> for reading (following symbolic links), with errors that say what is missing.</summary>
    private static FileStream OpenTarget(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.None);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            string? target = null;
            try { target = new FileInfo(path).LinkTarget; } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new FileNotFoundException(target is null
                ? $"cannot map '{path}': no such file"
                : $"cannot map '{path}': it is a symbolic link to '{target}', which does not exist", path, e);
        }
    }

    public override void Dispose()
    {
        if (Pointer == null) return;
        if (_view is null) NativeMemory.AlignedFree(Pointer);
        else
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file!.Dispose();
        }
        Pointer = null;
    }
}
