using System.Buffers.Binary;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace GradFlow.Formats;

/// <summary>
/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF), the
/// checksum of TFRecord framing. Uses the SSE4.2 or ARMv8 CRC32C instruction when the CPU has one, and
/// a slicing-by-8 table otherwise (eight bytes per step through eight 256-entry tables, 8 KiB in L1).
/// </summary>
internal static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private static readonly uint[] s_table = BuildTable();

    /// <summary>True if a CRC32C instruction is used.</summary>
    public static bool IsHardwareAccelerated => Sse42.IsSupported || Crc32.Arm64.IsSupported;

    /// <summary>The CRC-32C of the bytes.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~(IsHardwareAccelerated ? UpdateHardware(~0u, data) : UpdateSoftware(~0u, data));

    /// <summary>Continues <paramref name="crc"/> (a result of <see cref="Compute"/>, or 0 for none yet) over more bytes.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data) => ~(IsHardwareAccelerated ? UpdateHardware(~crc, data) : UpdateSoftware(~crc, data));

    /// <summary>Continues <paramref name="crc"/> over values as their little-endian bytes (as files hold them).</summary>
    public static uint AppendLittleEndian<T>(uint crc, ReadOnlySpan<T> values) where T : unmanaged
    {
        if (BitConverter.IsLittleEndian) return Append(crc, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        var copy = values.ToArray();
        Endian.Reverse(copy);
        return Append(crc, System.Runtime.InteropServices.MemoryMarshal.AsBytes(copy.AsSpan()));
    }

    /// <summary>TFRecord's masked CRC: rotate right by 15 and add a constant, so a CRC of data that holds CRCs stays well mixed.</summary>
    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;

    /// <summary>The masked CRC-32C of the bytes.</summary>
    public static uint MaskedCompute(ReadOnlySpan<byte> data) => Mask(Compute(data));

    /// <summary>The table-driven CRC-32C (tests compare it with the instruction).</summary>
    internal static uint ComputeSoftware(ReadOnlySpan<byte> data) => ~UpdateSoftware(~0u, data);

    /// <summary>The CRC-32C by the CPU instruction; only when <see cref="IsHardwareAccelerated"/>.</summary>
    internal static uint ComputeHardware(ReadOnlySpan<byte> data) => ~UpdateHardware(~0u, data);

    private static uint[] BuildTable()
    {
        var table = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            table[i] = c;
        }
        // table[k][i]: the CRC of byte i followed by k zero bytes.
        for (int k = 1; k < 8; k++)
            for (int i = 0; i < 256; i++)
            {
                uint prev = table[(k - 1) * 256 + i];
                table[k * 256 + i] = (prev >> 8) ^ table[prev & 0xFF];
            }
        return table;
    }

    private static uint UpdateSoftware(uint crc, ReadOnlySpan<byte> data)
    {
        var t = s_table;
        while (data.Length >= 8)
        {
            uint one = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ crc;
            uint two = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            crc = t[7 * 256 + (one & 0xFF)] ^ t[6 * 256 + ((one >> 8) & 0xFF)] ^ t[5 * 256 + ((one >> 16) & 0xFF)] ^ t[4 * 256 + (one >> 24)]
                ^ t[3 * 256 + (two & 0xFF)] ^ t[2 * 256 + ((two >> 8) & 0xFF)] ^ t[256 + ((two >> 16) & 0xFF)] ^ t[two >> 24];
            data = data[8..];
        }
        foreach (byte b in data) crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF];
        return crc;
    }

    private static uint UpdateHardware(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ulong c = crc;
            for (; data.Length >= 8; data = data[8..]) c = Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
            crc = (uint)c;
        }
        else if (Sse42.IsSupported)
        {
            for (; data.Length >= 4; data = data[4..]) crc = Sse42.Crc32(crc, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
        else if (Crc32.Arm64.IsSupported)
        {
            for (; data.Length >= 8; data = data[8..]) crc = Crc32.Arm64.ComputeCrc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
        }
        else
        {
            return UpdateSoftware(crc, data);
        }
        foreach (byte b in data) crc = Sse42.IsSupported ? Sse42.Crc32(crc, b) : Crc32.ComputeCrc32C(crc, b);
        return crc;
    }
}
