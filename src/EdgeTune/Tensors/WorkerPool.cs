namespace EdgeTune.Tensors;

/// <summary>
/// A persistent pool of worker threads for data-parallel kernels. <see cref="Run"/> splits work
/// into <c>tasks</c> items; the calling thread takes part, so a pool of 1 runs everything inline.
/// Items are handed out by an atomic counter; kernels must make each item's result independent of
/// which thread runs it, so results are bit-identical for a given thread count.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    private static WorkerPool? s_shared;
    private static readonly object s_lock = new();

    /// <summary>How long an idle worker spins for the next job before it sleeps (back-to-back kernels
    /// then start in about a microsecond instead of a futex wake-up of tens of microseconds).</summary>
    private static readonly TimeSpan s_spin = TimeSpan.FromMicroseconds(50);

    /// <summary>Set while this thread runs a pool item: a nested <see cref="Run"/> runs inline
    /// (waiting for the pool from inside it would deadlock).</summary>
    [ThreadStatic] private static int t_inside;

    private readonly Thread[] _threads;
    /// <summary>Workers still to check in for the current job; the caller waits on <see cref="_doneLock"/> for it to reach 0.
    /// (Not a CountdownEvent: its event creates a lock object the first time a wait really blocks, so a warm kernel call
    /// that happened to wait longer than the spin allocated 24 bytes.)</summary>
    private int _pending;
    private readonly object _doneLock = new();
    private readonly object _runLock = new();
    private readonly object _wake = new();
    private Action<int>? _body;
    private int _tasks;
    private int _next;
    private long _generation;
    private int _sleepers;
    private Exception? _error;
    private volatile bool _disposed;

    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "a pool needs at least one thread");
        Threads = threads;
        _threads = new Thread[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"edgetune-worker-{i + 1}" };
            _threads[i].Start();
        }
    }

    /// <summary>Number of threads that run work, the caller included.</summary>
    public int Threads { get; }

    /// <summary>The pool kernels use; sized by <c>EDGETUNE_THREADS</c> or the processor count.</summary>
    public static WorkerPool Shared
    {
        get
        {
            if (s_shared is { } p) return p;
            lock (s_lock) return s_shared ??= new WorkerPool(DefaultThreads());
        }
    }

    /// <summary>Replaces the shared pool with one of <paramref name="threads"/> threads.</summary>
    public static void Configure(int threads)
    {
        lock (s_lock)
        {
            if (s_shared?.Threads == threads) return;
            var old = s_shared;
            s_shared = new WorkerPool(threads);
            old?.Dispose();
        }
    }

    public static int DefaultThreads()
    {
        string? env = Environment.GetEnvironmentVariable("EDGETUNE_THREADS");
        if (int.TryParse(env, out int n) && n > 0) return n;
        return Math.Max(1, Environment.ProcessorCount);
    }

    /// <summary>Runs <paramref name="body"/>(i) for i in [0, tasks) across the pool and waits for all.</summary>
    public void Run(int tasks, Action<int> body)
    {
        if (tasks <= 0) return;
        if (tasks == 1 || _threads.Length == 0 || t_inside > 0)
        {
            for (int i = 0; i < tasks; i++) body(i);
            return;
        }
        lock (_runLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _body = body;
            _tasks = tasks;
            _next = 0;
            _error = null;
            // Every worker takes part in every job (those that find no item left just check in).
            Volatile.Write(ref _pending, _threads.Length);
            lock (_wake)
            {
                _generation++;
                if (_sleepers > 0) Monitor.PulseAll(_wake);
            }
            Work();
            WaitForWorkers();
            _body = null;
            if (_error is { } e) throw new AggregateException("a worker failed", e);
        }
    }

    /// <summary>Spins as long as an idle worker would, then sleeps until the last worker checks in.</summary>
    private void WaitForWorkers()
    {
        if (Volatile.Read(ref _pending) == 0) return;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _pending) > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(start) < s_spin)
            Thread.SpinWait(20);
        if (Volatile.Read(ref _pending) == 0) return;
        lock (_doneLock)
            while (Volatile.Read(ref _pending) > 0) Monitor.Wait(_doneLock);
    }

    private void Work()
    {
        var body = _body!;
        int i;
        t_inside++;
        try
        {
            while ((i = Interlocked.Increment(ref _next) - 1) < _tasks)
            {
                try { body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            }
        }
        finally { t_inside--; }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            long g = Volatile.Read(ref _generation);
            if (g == seen)
            {
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                while ((g = Volatile.Read(ref _generation)) == seen && !_disposed
                       && System.Diagnostics.Stopwatch.GetElapsedTime(start) < s_spin)
                    Thread.SpinWait(20);
                if (g == seen)
                {
                    lock (_wake)
                    {
                        _sleepers++;
                        while ((g = _generation) == seen && !_disposed) Monitor.Wait(_wake);
                        _sleepers--;
                    }
                }
            }
            if (_disposed) return;
            seen = g;
            Work();
            if (Interlocked.Decrement(ref _pending) == 0)
                lock (_doneLock) Monitor.PulseAll(_doneLock);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_wake) Monitor.PulseAll(_wake);
    }
}
