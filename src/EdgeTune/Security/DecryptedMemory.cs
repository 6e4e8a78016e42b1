using System.Runtime.InteropServices;
using EdgeTune.Tensors;

namespace EdgeTune.Security;

/// <summary>
/// Where <see cref="EncryptedFile.DecryptToMemory"/> puts plaintext: read-only tensor storage that is zeroed before it
/// is freed. On Linux it is an anonymous mapping made with MAP_POPULATE, so the kernel supplies every page in one call
/// instead of one fault per 4 KiB page as the decryption first writes it: on the virtual machine of the README's figures
/// a fault costs about 30 µs (1.26 s for 170 MiB, 0.15 s populated), which made faulting, not AES-GCM, most of the
/// decrypting load. Elsewhere (or if the mapping fails) it is ordinary aligned native memory.
/// </summary>
internal static unsafe partial class DecryptedMemory
{
    public static TensorStorage Allocate(long bytes)
    {
        if (OperatingSystem.IsLinux() && bytes >= 1 << 20 && PopulatedStorage.TryCreate(bytes) is { } populated) return populated;
        return new NativeStorage(bytes, readOnly: true, zeroOnFree: true);
    }

    private sealed class PopulatedStorage : TensorStorage
    {
        private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MapPopulate = 0x8000;
        private readonly TensorMemoryScope? _scope;

        private PopulatedStorage(byte* pointer, long bytes)
        {
            Pointer = pointer; // page-aligned, so the 64-byte alignment tensors expect holds
            ByteLength = bytes;
            IsReadOnly = true;
            GC.AddMemoryPressure(bytes);
            _scope = TensorMemory.Allocated(bytes);
        }

        public static PopulatedStorage? TryCreate(long bytes)
        {
            nint p = Mmap(0, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapPopulate, -1, 0);
            return p == -1 || p == 0 ? null : new PopulatedStorage((byte*)p, bytes);
        }

        ~PopulatedStorage() => Free();

        public override void Dispose()
        {
            Free();
            GC.SuppressFinalize(this);
        }

        private void Free()
        {
            if (Pointer == null) return;
            NativeMemory.Clear(Pointer, (nuint)ByteLength); // decrypted secrets do not outlive the storage
            _ = Munmap((nint)Pointer, (nuint)ByteLength);
            Pointer = null;
            GC.RemoveMemoryPressure(ByteLength);
            TensorMemory.Freed(ByteLength, _scope);
        }
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);
}
