using System.Globalization;

namespace EdgeTune.Formats;

/// <summary>
/// One GGUF metadata value: a scalar (UInt8 … Float64, Bool), a UTF-8 string, or an array of one
/// element type (nested arrays allowed). Arrays are held as typed CLR arrays: byte[], sbyte[],
/// ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[], or
/// GgufValue[] for arrays of arrays.
/// </summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of the elements; otherwise meaningless.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The boxed scalar, the string, or the typed array.</summary>
    public object Value { get; }

    public bool IsArray => Type == GgufValueType.Array;

    public int ArrayLength => Value is Array a ? a.Length : throw NotA("an array");

    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Int16(short v) => new(GgufValueType.Int16, v);
    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Int32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Float32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue String(string v) => new(GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Int64(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Float64(double v) => new(GgufValueType.Float64, v);

    /// <summary>An array value; <typeparamref name="T"/> picks the element type (GgufValue for nested arrays, which must all be arrays).</summary>
    public static GgufValue Array<T>(T[] items)
    {
        ArgumentNullException.ThrowIfNull(items);
        GgufValueType et = ElementTypeOf(typeof(T));
        if (et == GgufValueType.Array && items.Cast<GgufValue>().Any(x => x is null || !x.IsArray))
            throw new ArgumentException("GGUF: a nested array may only hold array values");
        if (et == GgufValueType.String && items.Cast<string>().Any(x => x is null))
            throw new ArgumentException("GGUF: a string array may not hold null");
        return new GgufValue(GgufValueType.Array, items, et);
    }

    internal static GgufValue FromArray(GgufValueType elementType, Array items) => new(GgufValueType.Array, items, elementType);

    internal static GgufValueType ElementTypeOf(Type t) =>
        t == typeof(byte) ? GgufValueType.UInt8 :
        t == typeof(sbyte) ? GgufValueType.Int8 :
        t == typeof(ushort) ? GgufValueType.UInt16 :
        t == typeof(short) ? GgufValueType.Int16 :
        t == typeof(uint) ? GgufValueType.UInt32 :
        t == typeof(int) ? GgufValueType.Int32 :
        t == typeof(float) ? GgufValueType.Float32 :
        t == typeof(bool) ? GgufValueType.Bool :
        t == typeof(string) ? GgufValueType.String :
        t == typeof(ulong) ? GgufValueType.UInt64 :
        t == typeof(long) ? GgufValueType.Int64 :
        t == typeof(double) ? GgufValueType.Float64 :
        t == typeof(GgufValue) ? GgufValueType.Array :
        throw new NotSupportedException($"GGUF has no value type for {t.Name}");

    public static implicit operator GgufValue(string v) => String(v);
    public static implicit operator GgufValue(uint v) => UInt32(v);
    public static implicit operator GgufValue(int v) => Int32(v);
    public static implicit operator GgufValue(ulong v) => UInt64(v);
    public static implicit operator GgufValue(long v) => Int64(v);
    public static implicit operator GgufValue(float v) => Float32(v);
    public static implicit operator GgufValue(double v) => Float64(v);
    public static implicit operator GgufValue(bool v) => Bool(v);
    public static implicit operator GgufValue(string[] v) => Array(v);
    public static implicit operator GgufValue(int[] v) => Array(v);
    public static implicit operator GgufValue(float[] v) => Array(v);

    public string AsString() => Value as string ?? throw NotA("a string");

    public bool AsBool() => Value is bool b ? b : throw NotA("a bool");

    /// <summary>Any integer type, widened (UInt64 above long.MaxValue throws).</summary>
    public long AsInt64() => Value switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, long v => v,
        ulong v => v <= long.MaxValue ? (long)v : throw new OverflowException($"GGUF value {v} does not fit a long"),
        _ => throw NotA("an integer"),
    };

    /// <summary>Any integer type that fits an int.</summary>
    public int AsInt32()
    {
        long v = AsInt64();
        return v is >= int.MinValue and <= int.MaxValue ? (int)v : throw new OverflowException($"GGUF value {v} does not fit an int");
    }

    /// <summary>
    /// A token id (<c>tokenizer.ggml.*_token_id</c>). llama.cpp writes "no such token" as -1, which its usual UInt32
    /// field holds as 0xFFFFFFFF: -1 of a signed type and the all-ones UInt32/UInt64 give null.
    /// </summary>
    /// <exception cref="InvalidCastException">Not an integer.</exception>
    /// <exception cref="OverflowException">Any other value outside [0, int.MaxValue].</exception>
    public int? AsTokenId()
    {
        bool none = Value switch
        {
            sbyte v => v == -1,
            short v => v == -1,
            int v => v == -1,
            long v => v == -1,
            uint v => v == uint.MaxValue,
            ulong v => v == ulong.MaxValue,
            _ => false,
        };
        if (none) return null;
        long id = AsInt64();
        return id is >= 0 and <= int.MaxValue ? (int)id
            : throw new OverflowException($"GGUF token id {id} is neither in [0, {int.MaxValue}] nor -1 (no token)");
    }

    /// <summary>Any numeric type, widened to double.</summary>
    public double AsDouble() => Value switch
    {
        float f => f, double d => d,
        byte or sbyte or ushort or short or uint or int or long => AsInt64(),
        ulong u => u,
        _ => throw NotA("a number"),
    };

    /// <summary>The array's elements as <typeparamref name="T"/>[] (the element type must match exactly).</summary>
    public T[] AsArray<T>() => Value is T[] a ? a : throw NotA($"an array of {ElementTypeOf(typeof(T))}");

    public string[] AsStringArray() => AsArray<string>();

    private InvalidCastException NotA(string what) =>
        new($"GGUF value of type {Describe()} is not {what}");

    public string Describe() => IsArray ? $"Array[{ElementType}] of {((Array)Value).Length}" : Type.ToString();

    public bool Equals(GgufValue? other)
    {
        if (other is null || other.Type != Type) return false;
        if (!IsArray) return Value.Equals(other.Value);
        if (other.ElementType != ElementType) return false;
        var a = (Array)Value;
        var b = (Array)other.Value;
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
            if (!Equals(a.GetValue(i), b.GetValue(i))) return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is GgufValue v && Equals(v);

    public override int GetHashCode() => IsArray ? HashCode.Combine(Type, ElementType, ((Array)Value).Length) : HashCode.Combine(Type, Value);

    public override string ToString() => IsArray
        ? Describe()
        : Value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : Value.ToString()!;
}
