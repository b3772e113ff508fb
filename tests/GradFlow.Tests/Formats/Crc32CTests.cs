using System.Text;
using GradFlow.Formats;
using GradFlow.Tests.Reporting;

namespace GradFlow.Tests.Formats;

public class Crc32CTests
{
    [Fact]
    public void CheckValueOf123456789() => Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));

    // RFC 3720 (iSCSI), appendix B.4, plus the empty string and "a".
    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xC1D04330u)]
    [InlineData("zeros32", 0x8A9136AAu)]
    [InlineData("ones32", 0x62A8AB43u)]
    [InlineData("ascending32", 0x46DD794Eu)]
    [InlineData("descending32", 0x113FDB5Cu)]
    public void KnownVectors(string name, uint expected)
    {
        byte[] data = name switch
        {
            "zeros32" => new byte[32],
            "ones32" => Enumerable.Repeat((byte)0xFF, 32).ToArray(),
            "ascending32" => Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(),
            "descending32" => Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray(),
            _ => Encoding.ASCII.GetBytes(name),
        };
        Assert.Equal(expected, Crc32C.Compute(data));
        Assert.Equal(expected, Crc32C.ComputeSoftware(data));
    }

    [Fact]
    public void TableInstructionAndBitwiseAgreeOnEveryLengthAndAlignment()
    {
        var rng = new Random(7);
        var data = new byte[300];
        rng.NextBytes(data);
        for (int start = 0; start < 9; start++)
            for (int length = 0; length + start <= data.Length; length += 1 + length / 16)
            {
                var span = data.AsSpan(start, length);
                uint expected = TfEventReader.Crc32CReference(span);
                Assert.Equal(expected, Crc32C.ComputeSoftware(span));
                if (Crc32C.IsHardwareAccelerated) Assert.Equal(expected, Crc32C.ComputeHardware(span));
            }
    }

    [Fact]
    public void MaskRotatesAndAddsTheTfRecordConstant()
    {
        Assert.Equal(0xA282EAD8u, Crc32C.Mask(0));
        uint crc = 0xE3069283u;
        Assert.Equal(unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u), Crc32C.Mask(crc));
    }
}
