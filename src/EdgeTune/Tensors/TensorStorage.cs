using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

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

    public NativeStorage(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "negative allocation");
        ByteLength = bytes;
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), Alignment);
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
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
        if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
        TensorMemory.Freed(ByteLength, _scope);
    }
}

internal sealed unsafe class MappedFileStorage : TensorStorage
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;

    public MappedFileStorage(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"cannot map '{path}': no such file", path);
        ByteLength = info.Length;
        IsReadOnly = true;
        if (ByteLength == 0)
        {
            Pointer = (byte*)NativeMemory.AlignedAlloc(1, Alignment); // an empty file maps to nothing
            return;
        }
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Pointer = p + _view.PointerOffset;
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
