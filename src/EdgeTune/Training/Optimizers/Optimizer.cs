using System.Text;
using EdgeTune.Autograd;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Training;

/// <summary>
/// Base of the optimizers: the parameter list, per-parameter state tensors ("slots": AdamW's m and v,
/// SGD's momentum buffer) of the parameter's dtype and shape, the step count, and the saved-state
/// format. A subclass says how many slots it keeps and updates one parameter in <see cref="Update"/>.
/// </summary>
/// <remarks>
/// <para><b>State format</b> (version 1, little-endian; strings are BinaryWriter strings: 7-bit
/// encoded byte length, then UTF-8):</para>
/// <code>
/// u32    magic 0x534F5445 ("ETOS")
/// u32    version = 1
/// string kind                      ("AdamW", "Sgd")
/// i64    step count
/// i32    slots per parameter       (AdamW 2: m, v; Sgd 1 with momentum, else 0)
/// i32    parameter count P
/// P ×    { string name; u8 dtype (DType); i32 rank; i32 × rank dims }
/// P ×    slots × raw element bytes of the slot (dtype, row-major)
/// u32    end magic 0x444E4545 ("EEND")
/// </code>
/// <para>Loading checks magic, version, kind, slot count, and that the stream holds exactly this
/// optimizer's parameter names with the same dtypes and shapes (order free), before any state is
/// overwritten; only a stream cut short inside the data block can leave the state half-loaded (an
/// exception says so). Hyperparameters are not part of the state: build the optimizer with the same
/// options (the learning rate is set by the schedule).</para>
/// </remarks>
public abstract class Optimizer : IOptimizer
{
    public const uint Magic = 0x534F5445;
    public const uint EndMagic = 0x444E4545;
    public const int FormatVersion = 1;

    private readonly Parameter[] _parameters;
    private readonly Tensor[][] _slots;

    /// <param name="kind">Name written into saved state.</param>
    /// <param name="parameters">Candidates; only those trainable now are kept.</param>
    /// <param name="slotCount">State tensors per parameter, each zeroed, of the parameter's dtype and shape.</param>
    protected Optimizer(string kind, IEnumerable<Parameter> parameters, int slotCount)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Kind = kind;
        _parameters = parameters.Where(p => p.Trainable).ToArray();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in _parameters)
            if (!names.Add(p.Name)) throw new ArgumentException($"{kind}: two parameters are named '{p.Name}'; names must be unique", nameof(parameters));
        SlotCount = slotCount;
        _slots = new Tensor[_parameters.Length][];
        for (int i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            _slots[i] = new Tensor[slotCount];
            for (int s = 0; s < slotCount; s++)
                _slots[i][s] = Tensor.Zeros(p.Value.DType, p.Value.Shape.ToArray(), $"{p.Name}.{SlotName(s)}");
        }
    }

    public string Kind { get; }

    public IReadOnlyList<Parameter> Parameters => _parameters;

    public abstract double LearningRate { get; set; }

    public long StepCount { get; private set; }

    /// <summary>State tensors per parameter.</summary>
    public int SlotCount { get; }

    /// <summary>The state tensors of parameter <paramref name="index"/> (read them; do not dispose).</summary>
    public IReadOnlyList<Tensor> State(int index) => _slots[index];

    /// <summary>Name of a slot in tensor names ("m", "v", "momentum").</summary>
    protected virtual string SlotName(int slot) => $"slot{slot}";

    /// <summary>Elements per work item when a step is spread over the <see cref="WorkerPool"/>.</summary>
    public const int ChunkElements = 1 << 16;

    /// <summary>The pool a step runs on (null: <see cref="WorkerPool.Shared"/>). Updates are elementwise,
    /// so the result is bit-identical for any thread count.</summary>
    public WorkerPool? Pool { get; set; }

    public void Step()
    {
        StepCount++;
        BeginStep(StepCount);
        var items = new List<(int Index, int Start, int Count)>();
        long total = 0;
        for (int i = 0; i < _parameters.Length; i++)
        {
            if (_parameters[i].Grad is null) continue; // frozen since the optimizer was made
            int n = checked((int)_parameters[i].ElementCount);
            total += n;
            for (int start = 0; start < n; start += ChunkElements) items.Add((i, start, Math.Min(ChunkElements, n - start)));
        }
        var pool = Pool ?? WorkerPool.Shared;
        if (items.Count <= 1 || total < 2 * ChunkElements || pool.Threads == 1)
        {
            foreach (var (i, start, count) in items) Run(i, start, count);
        }
        else
        {
            pool.Run(items.Count, k => Run(items[k].Index, items[k].Start, items[k].Count));
        }

        void Run(int i, int start, int count)
        {
            var p = _parameters[i];
            Update(i, p, p.Grad!, _slots[i], start, count);
        }
    }

    /// <summary>Computes per-step scalars (bias corrections ...) before the parameters are updated.</summary>
    /// <param name="step">1 for the first step.</param>
    protected virtual void BeginStep(long step) { }

    /// <summary>Updates elements [start, start + count) of parameter <paramref name="index"/> (F32 or F64)
    /// from its gradient and its slots. Called concurrently for disjoint ranges.</summary>
    protected abstract void Update(int index, Parameter parameter, Tensor grad, Tensor[] slots, int start, int count);

    public void ZeroGrad()
    {
        foreach (var p in _parameters) p.ZeroGrad();
    }

    public void SaveState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(FormatVersion);
        w.Write(Kind);
        w.Write(StepCount);
        w.Write(SlotCount);
        w.Write(_parameters.Length);
        foreach (var p in _parameters)
        {
            w.Write(p.Name);
            w.Write((byte)p.Value.DType);
            w.Write(p.Value.Rank);
            foreach (int d in p.Value.Shape) w.Write(d);
        }
        w.Flush();
        foreach (var slots in _slots)
            foreach (var t in slots) WriteAll(stream, t);
        w.Write(EndMagic);
    }

    public void LoadState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("optimizer state is little-endian");
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        string where = $"{Kind} state";
        try
        {
            uint magic = r.ReadUInt32();
            if (magic != Magic) throw new InvalidDataException($"{where}: magic is 0x{magic:X8}, expected 0x{Magic:X8} (\"ETOS\"); not an EdgeTune optimizer state");
            int version = r.ReadInt32();
            if (version != FormatVersion) throw new InvalidDataException($"{where}: format version {version}, this build reads {FormatVersion}");
            string kind = r.ReadString();
            if (kind != Kind) throw new InvalidDataException($"{where}: the stream holds {kind} state, expected {Kind}");
            long step = r.ReadInt64();
            if (step < 0) throw new InvalidDataException($"{where}: step count {step} is negative");
            int slots = r.ReadInt32();
            if (slots != SlotCount) throw new InvalidDataException($"{where}: {slots} state tensors per parameter in the stream, expected {SlotCount} (different momentum setting?)");
            int count = r.ReadInt32();
            if (count != _parameters.Length)
                throw new InvalidDataException($"{where}: the stream holds {count} parameters, this optimizer has {_parameters.Length}");

            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < _parameters.Length; i++) index[_parameters[i].Name] = i;
            var order = new int[count];
            var seen = new bool[count];
            for (int k = 0; k < count; k++)
            {
                string name = r.ReadString();
                if (!index.TryGetValue(name, out int i))
                    throw new InvalidDataException($"{where}: parameter '{name}' in the stream is not one this optimizer updates");
                if (seen[i]) throw new InvalidDataException($"{where}: parameter '{name}' appears twice");
                seen[i] = true;
                order[k] = i;
                var p = _parameters[i].Value;
                var dtype = (DType)r.ReadByte();
                int rank = r.ReadInt32();
                if (rank < 0 || rank > 16) throw new InvalidDataException($"{where}: parameter '{name}' has rank {rank}");
                var shape = new int[rank];
                for (int d = 0; d < rank; d++) shape[d] = r.ReadInt32();
                if (dtype != p.DType || !shape.AsSpan().SequenceEqual(p.Shape))
                    throw new InvalidDataException($"{where}: parameter '{name}' is {dtype}{ShapeException.Format(shape)} in the stream but {p.DType}{p.ShapeString} here");
            }
            try
            {
                foreach (int i in order)
                    foreach (var t in _slots[i]) ReadExactly(r, t);
                uint end = r.ReadUInt32();
                if (end != EndMagic) throw new InvalidDataException($"{where}: end marker is 0x{end:X8}, expected 0x{EndMagic:X8}; the state is now invalid");
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidDataException($"{where}: the stream ends inside the state data; the optimizer state is now invalid", e);
            }
            StepCount = step;
            AfterLoad();
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{where}: the stream ends inside the header", e);
        }
    }

    /// <summary>Called after state was loaded (recompute cached per-step values).</summary>
    protected virtual void AfterLoad() { }

    private static unsafe void WriteAll(Stream s, Tensor t)
    {
        long remaining = t.ByteLength;
        byte* p = (byte*)t.Pointer;
        while (remaining > 0)
        {
            int chunk = (int)Math.Min(remaining, 1 << 20);
            s.Write(new ReadOnlySpan<byte>(p, chunk));
            p += chunk;
            remaining -= chunk;
        }
    }

    private static unsafe void ReadExactly(BinaryReader r, Tensor t)
    {
        long remaining = t.ByteLength;
        byte* p = (byte*)t.Pointer;
        while (remaining > 0)
        {
            int chunk = (int)Math.Min(remaining, 1 << 20);
            r.BaseStream.ReadExactly(new Span<byte>(p, chunk));
            p += chunk;
            remaining -= chunk;
        }
    }

    /// <summary>Sets every state tensor to zero and the step count to 0.</summary>
    public void ResetState()
    {
        foreach (var slots in _slots)
            foreach (var t in slots) TensorMath.Clear(t);
        StepCount = 0;
    }

    public void Dispose()
    {
        foreach (var slots in _slots)
            foreach (var t in slots) t.Dispose();
        GC.SuppressFinalize(this);
    }
}
