using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using GradFlow.Optim;

namespace GradFlow.Tests.Kernels;

public class GuardTests
{
    [Fact]
    public void EveryThrowerIsColdAndDoesNotReturn()
    {
        var throwers = typeof(Guard).GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Where(m => m.Name.StartsWith("Throw", StringComparison.Ordinal)).ToList();
        Assert.True(throwers.Count >= 5);
        foreach (var m in throwers)
        {
            Assert.True(m.GetCustomAttribute<DoesNotReturnAttribute>() is not null, $"{m.Name} lacks [DoesNotReturn]");
            Assert.True(m.MethodImplementationFlags.HasFlag(MethodImplAttributes.NoInlining), $"{m.Name} is not NoInlining");
        }
    }

    [Fact]
    public void NullAndEmptyArgumentsNameTheOpAndTheArgument()
    {
        var e = Assert.Throws<ArgumentNullException>(() => new SGD((IEnumerable<Tensor>)null!, lr: 0.1));
        Assert.Equal("parameters", e.ParamName);
        Assert.StartsWith("Optimizer: parameters is null.", e.Message, StringComparison.Ordinal);

        var empty = Assert.Throws<ArgumentException>(() => Guard.NotEmpty("", "RunLogWriter", "path"));
        Assert.Equal("path", empty.ParamName);
        Assert.StartsWith("RunLogWriter: path is empty.", empty.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Guard.NotBlank("  ", "TensorBoardWriter", "logDir"));
        Assert.Throws<ArgumentNullException>(() => Guard.NotBlank(null, "TensorBoardWriter", "logDir"));
    }

    [Fact]
    public void OutOfRangeKeepsItsExceptionType()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Guard.ThrowOutOfRange("Sequential", "index", "index 3 is out of range for 2 modules."));
        Assert.Equal("index", e.ParamName);
        Assert.StartsWith("Sequential: index 3 is out of range", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GemmNamesTheOperandAndTheSizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Guard.Gemm(false, false, 2, 3, 4, 7, 4, 12, 3, 6, 3));
        Assert.Equal("a", e.ParamName);
        Assert.StartsWith("Gemm: a has length 7 but a 2 x 4 matrix with lda=4 needs 8 (m=2, n=3, k=4).", e.Message, StringComparison.Ordinal);
    }
}
