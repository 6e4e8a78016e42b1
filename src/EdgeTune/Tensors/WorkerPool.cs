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

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _start;
    private readonly CountdownEvent _done;
    private readonly object _runLock = new();
    private Action<int>? _body;
    private int _tasks;
    private int _next;
    private Exception? _error;
    private volatile bool _disposed;

    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "a pool needs at least one thread");
        Threads = threads;
        _start = new SemaphoreSlim(0);
        _done = new CountdownEvent(1);
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
        if (tasks == 1 || _threads.Length == 0)
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
            int helpers = Math.Min(_threads.Length, tasks - 1);
            _done.Reset(helpers);
            _start.Release(helpers);
            Work();
            _done.Wait();
            _body = null;
            if (_error is { } e) throw new AggregateException("a worker failed", e);
        }
    }

    private void Work()
    {
        var body = _body!;
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _tasks)
        {
            try { body(i); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
        }
    }

    private void WorkerLoop()
    {
        while (true)
        {
            _start.Wait();
            if (_disposed) return;
            Work();
            _done.Signal();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_threads.Length > 0) _start.Release(_threads.Length);
    }
}
