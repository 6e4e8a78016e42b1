using System.Numerics;
using System.Runtime.InteropServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>
/// Keeps large freed tensor blocks for reuse by size class, so training steps that free and re-allocate the same
/// activation shapes every step get the same memory back instead of asking the C heap again.
/// </summary>
/// <remarks>
/// Why this exists: glibc's malloc raises its mmap threshold to the size of the first large block freed (up to
/// 32 MiB), after which every later activation of a few MiB is carved out of the heap arenas; blocks freed in the
/// middle of an arena are not returned to the kernel, so resident memory grows well past the live tensor bytes
/// (Phi-3-shaped LoRA, 2 layers: 3.16 GB RSS for 2.73 GB planned). Forcing a low mmap threshold instead
/// (<c>MALLOC_MMAP_THRESHOLD_</c>) fixes the resident size but pays a page fault per page of every activation on
/// every step (SmolLM2 LoRA: 31.5 → 103 CPU-seconds). Reusing blocks avoids both.
/// <para>Policy: a block of at least <see cref="MinBytes"/> is rounded up to its size class (eight classes per
/// power of two, so at most 12.5% is rounded away and the tail is never touched). The bytes held — live cached
/// blocks plus idle ones — never exceed the most live cached bytes there have ever been: a miss first frees the
/// least recently returned idle blocks until the new block fits under that high-water mark. So the cache never
/// makes the process hold more than its own peak demand, which is what the memory planner predicts;
/// <see cref="Trim"/> hands every idle block back (called when a training run ends).</para>
/// <para>This is process-wide like the C heap under it: it holds no configuration, only freed memory, and every
/// path through it is behind one lock (allocations are per tensor, not per element).</para>
/// </remarks>
internal sealed unsafe class BlockCache
{
    /// <summary>The cache every tensor allocation goes through.</summary>
    public static BlockCache Shared { get; } = new();

    /// <summary>Smaller blocks go straight to the C heap (its small-size bins do not fragment this way).</summary>
    public const long MinBytes = 64 * 1024;

    private sealed class Idle(nint pointer, long size, long stamp)
    {
        public readonly nint Pointer = pointer;
        public readonly long Size = size;
        public readonly long Stamp = stamp;
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Stack<Idle>> _idle = new();
    private long _idleBytes, _liveBytes, _highWater, _clock;

    /// <summary>Bytes held idle for reuse now.</summary>
    public long IdleBytes { get { lock (_lock) return _idleBytes; } }

    /// <summary>Bytes of cached-size blocks handed out and not yet returned.</summary>
    public long LiveBytes { get { lock (_lock) return _liveBytes; } }

    /// <summary>The most <see cref="LiveBytes"/> has been since start or the last <see cref="Trim"/>: live plus idle
    /// bytes never exceed it.</summary>
    public long HighWaterBytes { get { lock (_lock) return _highWater; } }

    /// <summary>The size class that a request of <paramref name="bytes"/> is rounded up to.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes < MinBytes) return bytes;
        int log = 63 - BitOperations.LeadingZeroCount((ulong)bytes);
        long step = 1L << (log - 3);
        return (bytes + step - 1) / step * step;
    }

    /// <summary>A 64-byte aligned block of at least <paramref name="bytes"/> (its contents are not cleared);
    /// <paramref name="size"/> is what to hand back to <see cref="Return"/>.</summary>
    public byte* Rent(long bytes, out long size)
    {
        size = SizeClass(Math.Max(bytes, 1));
        if (size < MinBytes) return (byte*)NativeMemory.AlignedAlloc((nuint)size, TensorStorage.Alignment);
        List<nint>? evicted = null;
        lock (_lock)
        {
            _liveBytes += size;
            if (_liveBytes > _highWater) _highWater = _liveBytes;
            if (_idle.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                _idleBytes -= size;
                return (byte*)stack.Pop().Pointer;
            }
            // A miss: keep live + idle under the high-water mark by dropping the oldest idle blocks.
            while (_liveBytes + _idleBytes > _highWater && _idleBytes > 0)
                (evicted ??= []).Add(TakeOldest());
        }
        if (evicted is not null)
            foreach (nint p in evicted) NativeMemory.AlignedFree((void*)p);
        return (byte*)NativeMemory.AlignedAlloc((nuint)size, TensorStorage.Alignment);
    }

    /// <summary>Gives a block from <see cref="Rent"/> back (kept for reuse when it is large enough).</summary>
    public void Return(byte* pointer, long size)
    {
        if (size < MinBytes)
        {
            NativeMemory.AlignedFree(pointer);
            return;
        }
        lock (_lock)
        {
            _liveBytes -= size;
            if (!_idle.TryGetValue(size, out var stack)) _idle[size] = stack = new Stack<Idle>();
            stack.Push(new Idle((nint)pointer, size, ++_clock));
            _idleBytes += size;
        }
    }

    /// <summary>Frees every idle block and lowers the high-water mark to the live bytes now.</summary>
    public void Trim()
    {
        List<nint> freed = [];
        lock (_lock)
        {
            foreach (var stack in _idle.Values)
                while (stack.Count > 0) freed.Add(stack.Pop().Pointer);
            _idle.Clear();
            _idleBytes = 0;
            _highWater = _liveBytes;
        }
        foreach (nint p in freed) NativeMemory.AlignedFree((void*)p);
    }

    /// <summary>Removes the least recently returned idle block (caller holds the lock; idle is not empty).</summary>
    private nint TakeOldest()
    {
        // Stacks hold newest on top, so each class's oldest is at the bottom; classes are few (tens), blocks per
        // class a handful, so a scan is cheaper than keeping a second ordered structure on every return.
        Stack<Idle>? from = null;
        Idle? oldest = null;
        foreach (var stack in _idle.Values)
        {
            if (stack.Count == 0) continue;
            Idle bottom = Bottom(stack);
            if (oldest is null || bottom.Stamp < oldest.Stamp) { oldest = bottom; from = stack; }
        }
        if (from is null || oldest is null) throw new InvalidOperationException("block cache: no idle block to evict");
        var keep = from.Where(b => b != oldest).Reverse().ToArray(); // a stack enumerates top first: keep is bottom first
        from.Clear();
        foreach (var b in keep) from.Push(b);
        _idleBytes -= oldest.Size;
        return oldest.Pointer;
    }

    private static Idle Bottom(Stack<Idle> stack)
    {
        Idle last = null!;
        foreach (var b in stack) last = b; // enumerates top to bottom
        return last;
    }
}
