using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace GradFlow.Formats;

/// <summary>
/// The element types of the safetensors format that GradFlow reads and writes. GradFlow computes in float32,
/// float64, int64 and bool, so the narrower types widen on read (F16 and BF16 to float32, I32/I16/I8/U8 to int64,
/// all exactly) and narrow on write when asked (<see cref="SafeTensors.Write(Stream, IReadOnlyDictionary{string, Tensor}, IReadOnlyDictionary{string, string}?, IReadOnlyDictionary{string, SafeTensorsDType}?)"/>).
/// </summary>
public enum SafeTensorsDType
{
    /// <summary>64-bit float.</summary>
    F64,
    /// <summary>32-bit float.</summary>
    F32,
    /// <summary>IEEE half precision; read as float32.</summary>
    F16,
    /// <summary>bfloat16 (the top half of a float32); read as float32.</summary>
    BF16,
    /// <summary>64-bit signed integer.</summary>
    I64,
    /// <summary>32-bit signed integer; read as int64.</summary>
    I32,
    /// <summary>16-bit signed integer; read as int64.</summary>
    I16,
    /// <summary>8-bit signed integer; read as int64.</summary>
    I8,
    /// <summary>8-bit unsigned integer; read as int64.</summary>
    U8,
    /// <summary>One byte, 0 or 1; read as bool.</summary>
    BOOL,
}

/// <summary>Sizes, names and the element conversions between file types and GradFlow dtypes.</summary>
internal static class SafeTensorsTypes
{
    public static int Size(this SafeTensorsDType t) => t switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.I16 => 2,
        _ => 1,
    };

    /// <summary>The GradFlow dtype a file type is read as.</summary>
    public static DType ReadAs(this SafeTensorsDType t) => t switch
    {
        SafeTensorsDType.F64 => DType.Float64,
        SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => DType.Float32,
        SafeTensorsDType.BOOL => DType.Bool,
        _ => DType.Int64,
    };

    /// <summary>The file type a GradFlow dtype is written as by default (exactly).</summary>
    public static SafeTensorsDType Natural(DType d) => d switch
    {
        DType.Float32 => SafeTensorsDType.F32,
        DType.Float64 => SafeTensorsDType.F64,
        DType.Bool => SafeTensorsDType.BOOL,
        _ => SafeTensorsDType.I64,
    };

    public static bool TryParse(string? code, out SafeTensorsDType t) =>
        Enum.TryParse(code, ignoreCase: false, out t) && Enum.IsDefined(t) && code == t.ToString();

    /// <summary>Whether a tensor of <paramref name="d"/> may be stored as <paramref name="t"/> (float to float, integer to integer, bool to bool).</summary>
    public static bool Compatible(DType d, SafeTensorsDType t) => t.ReadAs() == d || (d == DType.Float64 && t.ReadAs() == DType.Float32) || (d == DType.Float32 && t == SafeTensorsDType.F64);

    /// <summary>Decodes the little-endian elements of <paramref name="t"/> from <paramref name="src"/> into <paramref name="dst"/> from <paramref name="at"/>.</summary>
    /// <returns>False when a BOOL byte is neither 0 nor 1.</returns>
    public static bool Decode(SafeTensorsDType t, ReadOnlySpan<byte> src, Array dst, int at)
    {
        int n = src.Length / t.Size();
        switch (t)
        {
            case SafeTensorsDType.F32:
                src.CopyTo(MemoryMarshal.AsBytes(((float[])dst).AsSpan(at, n)));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(((float[])dst).AsSpan(at, n));
                return true;
            case SafeTensorsDType.F64:
                src.CopyTo(MemoryMarshal.AsBytes(((double[])dst).AsSpan(at, n)));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(((double[])dst).AsSpan(at, n));
                return true;
            case SafeTensorsDType.I64:
                src.CopyTo(MemoryMarshal.AsBytes(((long[])dst).AsSpan(at, n)));
                if (!BitConverter.IsLittleEndian) Endian.Reverse(((long[])dst).AsSpan(at, n));
                return true;
            case SafeTensorsDType.F16:
                {
                    var f = (float[])dst;
                    for (int i = 0; i < n; i++) f[at + i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                    return true;
                }
            case SafeTensorsDType.BF16:
                {
                    var f = (float[])dst;
                    for (int i = 0; i < n; i++) f[at + i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                    return true;
                }
            default:
                {
                    var l = (long[])dst;
                    for (int i = 0; i < n; i++)
                    {
                        l[at + i] = t switch
                        {
                            SafeTensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]),
                            SafeTensorsDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(src[(2 * i)..]),
                            SafeTensorsDType.I8 => (sbyte)src[i],
                            _ => src[i],
                        };
                        if (t == SafeTensorsDType.BOOL && src[i] > 1) return false;
                    }
                    return true;
                }
        }
    }

    /// <summary>
    /// Encodes elements <paramref name="from"/>..+<paramref name="n"/> of a contiguous array as <paramref name="t"/>;
    /// an integer out of the type's range is an error naming <paramref name="name"/>. Narrowing floats rounds to nearest even.
    /// </summary>
    public static void Encode(SafeTensorsDType t, Array data, int from, int n, Span<byte> dst, string name)
    {
        switch (data)
        {
            case float[] f:
                for (int i = 0; i < n; i++) EncodeFloat(t, f[from + i], dst[(i * t.Size())..]);
                return;
            case double[] d:
                for (int i = 0; i < n; i++)
                {
                    if (t == SafeTensorsDType.F64) BinaryPrimitives.WriteDoubleLittleEndian(dst[(8 * i)..], d[from + i]);
                    else EncodeFloat(t, (float)d[from + i], dst[(i * t.Size())..]);
                }
                return;
            case long[] l:
                var (min, max) = t switch
                {
                    SafeTensorsDType.I32 => (int.MinValue, int.MaxValue),
                    SafeTensorsDType.I16 => (short.MinValue, short.MaxValue),
                    SafeTensorsDType.I8 => (sbyte.MinValue, sbyte.MaxValue),
                    SafeTensorsDType.U8 => (0, byte.MaxValue),
                    SafeTensorsDType.BOOL => (0, 1),
                    _ => (long.MinValue, long.MaxValue),
                };
                for (int i = 0; i < n; i++)
                {
                    long v = l[from + i];
                    if (v < min || v > max) Guard.ThrowArg("SafeTensors.Write", "storeAs", $"tensor '{name}' holds {v}, outside the range of {t}.");
                    switch (t.Size())
                    {
                        case 8: BinaryPrimitives.WriteInt64LittleEndian(dst[(8 * i)..], v); break;
                        case 4: BinaryPrimitives.WriteInt32LittleEndian(dst[(4 * i)..], (int)v); break;
                        case 2: BinaryPrimitives.WriteInt16LittleEndian(dst[(2 * i)..], (short)v); break;
                        default: dst[i] = (byte)v; break;
                    }
                }
                return;
        }
    }

    private static void EncodeFloat(SafeTensorsDType t, float v, Span<byte> dst)
    {
        switch (t)
        {
            case SafeTensorsDType.F32: BinaryPrimitives.WriteSingleLittleEndian(dst, v); break;
            case SafeTensorsDType.F64: BinaryPrimitives.WriteDoubleLittleEndian(dst, v); break;
            case SafeTensorsDType.F16: BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)v); break;
            default:
                uint bits = BitConverter.SingleToUInt32Bits(v);
                // Round to nearest even on the 16 bits dropped; NaN stays a quiet NaN.
                ushort b = float.IsNaN(v) ? (ushort)0x7FC0 : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
                BinaryPrimitives.WriteUInt16LittleEndian(dst, b);
                break;
        }
    }
}
