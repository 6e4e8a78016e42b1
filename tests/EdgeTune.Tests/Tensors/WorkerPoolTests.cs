using EdgeTune.Tensors;

namespace EdgeTune.Tests.Tensors;

public class WorkerPoolTests
{
    [Fact]
    public void BackToBackRunsCoverEveryItemExactlyOnce()
    {
        using var pool = new WorkerPool(3);
        for (int round = 0; round < 2000; round++)
        {
            int tasks = 1 + round % 7;
            var hits = new int[tasks];
            pool.Run(tasks, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
            if (round % 500 == 0) Thread.Sleep(2);   // let workers fall asleep past their spin
        }
    }

    [Fact]
    public void ACallerThatSleepsUntilASlowWorkerFinishesAllocatesNothing()
    {
        // The caller takes one item and waits until a worker has started the other; the worker then sleeps past the
        // caller's spin, so the caller really blocks. The first such block used to allocate (a lazily made lock object).
        using var pool = new WorkerPool(2);
        int caller = Environment.CurrentManagedThreadId, started = 0, workerItems = 0;
        Action<int> body = _ =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                while (Volatile.Read(ref started) == 0 && System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds < 5)
                    Thread.SpinWait(20);
            }
            else
            {
                Interlocked.Increment(ref workerItems);
                Volatile.Write(ref started, 1);
                Thread.Sleep(3);
            }
        };
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int r = 0; r < 3; r++)
        {
            Volatile.Write(ref started, 0);
            pool.Run(2, body);
        }
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(3, workerItems);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void NestedRunExecutesInline()
    {
        using var pool = new WorkerPool(2);
        var sums = new int[4];
        pool.Run(4, i => pool.Run(3, j => Interlocked.Add(ref sums[i], j + 1)));
        Assert.All(sums, s => Assert.Equal(6, s));
    }

    [Fact]
    public void DisposeWakesSleepingWorkers()
    {
        var pool = new WorkerPool(3);
        int count = 0;
        pool.Run(3, _ => Interlocked.Increment(ref count));
        Thread.Sleep(5);
        pool.Dispose();
        Assert.Equal(3, count);
        Assert.Throws<ObjectDisposedException>(() => pool.Run(2, _ => { }));
    }
}
