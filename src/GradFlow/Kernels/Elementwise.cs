using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GradFlow.Kernels;

/// <summary>
/// Elementwise loops. The span forms are the vectorised cores (Vector512, then 256, then 128, then
/// a scalar tail); the array forms walk strided, broadcast operands with <see cref="StridedLoop"/>
/// and hand every row with unit or zero steps to a span core.
/// </summary>
internal static class Elementwise
{
    // The span cores are never inlined: compiled as their own root, each gets a fresh JIT inlining budget, so
    // the op's vector Invoke is always inlined into the loop. Inlined into a large caller (ReluBackward.Backward
    // with the arena allocation inlined by PGO), the budget ran out and every vector called ReluGradOp.Invoke.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Unary<TOp, T>(ReadOnlySpan<T> x, Span<T> y)
        where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + (nuint)Vector128<T>.Count <= n; i += (nuint)Vector128<T>.Count)
                TOp.Invoke(Vector128.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        for (; i < n; i++) Unsafe.Add(ref ys, i) = TOp.Invoke(Unsafe.Add(ref xs, i));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Binary<TOp, T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        ref T ap = ref MemoryMarshal.GetReference(a);
        ref T bp = ref MemoryMarshal.GetReference(b);
        ref T yp = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)y.Length, i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref ap, i), Vector512.LoadUnsafe(ref bp, i)).StoreUnsafe(ref yp, i);
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref ap, i), Vector256.LoadUnsafe(ref bp, i)).StoreUnsafe(ref yp, i);
        if (Vector128.IsHardwareAccelerated && Vector128<T>.IsSupported)
            for (; i + (nuint)Vector128<T>.Count <= n; i += (nuint)Vector128<T>.Count)
                TOp.Invoke(Vector128.LoadUnsafe(ref ap, i), Vector128.LoadUnsafe(ref bp, i)).StoreUnsafe(ref yp, i);
        for (; i < n; i++) Unsafe.Add(ref yp, i) = TOp.Invoke(Unsafe.Add(ref ap, i), Unsafe.Add(ref bp, i));
    }

    /// <summary>y = a op b with a scalar right operand.</summary>
    public static void BinaryScalarRight<TOp, T>(ReadOnlySpan<T> a, T b, Span<T> y)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        ref T ap = ref MemoryMarshal.GetReference(a);
        ref T yp = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)y.Length, i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
        {
            var bv = Vector512.Create(b);
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                TOp.Invoke(Vector512.LoadUnsafe(ref ap, i), bv).StoreUnsafe(ref yp, i);
        }
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
        {
            var bv = Vector256.Create(b);
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
                TOp.Invoke(Vector256.LoadUnsafe(ref ap, i), bv).StoreUnsafe(ref yp, i);
        }
        for (; i < n; i++) Unsafe.Add(ref yp, i) = TOp.Invoke(Unsafe.Add(ref ap, i), b);
    }

    /// <summary>y = a op b with a scalar left operand.</summary>
    public static void BinaryScalarLeft<TOp, T>(T a, ReadOnlySpan<T> b, Span<T> y)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        ref T bp = ref MemoryMarshal.GetReference(b);
        ref T yp = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)y.Length, i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
        {
            var av = Vector512.Create(a);
            for (; i + (nuint)Vector512<T>.Count <= n; i += (nuint)Vector512<T>.Count)
                TOp.Invoke(av, Vector512.LoadUnsafe(ref bp, i)).StoreUnsafe(ref yp, i);
        }
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
        {
            var av = Vector256.Create(a);
            for (; i + (nuint)Vector256<T>.Count <= n; i += (nuint)Vector256<T>.Count)
                TOp.Invoke(av, Vector256.LoadUnsafe(ref bp, i)).StoreUnsafe(ref yp, i);
        }
        for (; i < n; i++) Unsafe.Add(ref yp, i) = TOp.Invoke(a, Unsafe.Add(ref bp, i));
    }

    /// <summary>dst = op(src) over strided operands of one shape.</summary>
    public static void Unary<TOp, T>(ReadOnlySpan<int> shape, T[] dst, ReadOnlySpan<int> dstStrides, int dstOffset,
        T[] src, ReadOnlySpan<int> srcStrides, int srcOffset)
        where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        var k = new UnaryRow<TOp, T>(dst, src);
        StridedLoop.Run(ref k, shape, dstStrides, dstOffset, srcStrides, srcOffset, default, 0);
    }

    /// <summary>dst = a op b over strided operands already broadcast to <paramref name="shape"/> (stride 0 where broadcast).</summary>
    public static void Binary<TOp, T>(ReadOnlySpan<int> shape, T[] dst, ReadOnlySpan<int> dstStrides, int dstOffset,
        T[] a, ReadOnlySpan<int> aStrides, int aOffset, T[] b, ReadOnlySpan<int> bStrides, int bOffset)
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        var k = new BinaryRow<TOp, T>(dst, a, b);
        StridedLoop.Run(ref k, shape, dstStrides, dstOffset, aStrides, aOffset, bStrides, bOffset);
    }

    private readonly struct UnaryRow<TOp, T>(T[] dst, T[] src) : IRowKernel
        where TOp : struct, IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Row(int n, int o0, int s0, int o1, int s1, int o2, int s2)
        {
            if (s0 == 1 && s1 == 1)
            {
                Unary<TOp, T>(new ReadOnlySpan<T>(src, o1, n), new Span<T>(dst, o0, n));
                return;
            }
            for (int i = 0; i < n; i++) dst[o0 + i * s0] = TOp.Invoke(src[o1 + i * s1]);
        }
    }

    private readonly struct BinaryRow<TOp, T>(T[] dst, T[] a, T[] b) : IRowKernel
        where TOp : struct, IBinaryOp where T : unmanaged, INumber<T>
    {
        public void Row(int n, int o0, int s0, int o1, int s1, int o2, int s2)
        {
            if (s0 == 1)
            {
                var y = new Span<T>(dst, o0, n);
                if (s1 == 1 && s2 == 1) { Binary<TOp, T>(new ReadOnlySpan<T>(a, o1, n), new ReadOnlySpan<T>(b, o2, n), y); return; }
                if (s1 == 1 && s2 == 0) { BinaryScalarRight<TOp, T>(new ReadOnlySpan<T>(a, o1, n), b[o2], y); return; }
                if (s1 == 0 && s2 == 1) { BinaryScalarLeft<TOp, T>(a[o1], new ReadOnlySpan<T>(b, o2, n), y); return; }
            }
            for (int i = 0; i < n; i++) dst[o0 + i * s0] = TOp.Invoke(a[o1 + i * s1], b[o2 + i * s2]);
        }
    }

    /// <summary>dst = src over strided operands (a copy, a cast-free materialisation of a view).</summary>
    public static void Copy<T>(ReadOnlySpan<int> shape, T[] dst, ReadOnlySpan<int> dstStrides, int dstOffset,
        T[] src, ReadOnlySpan<int> srcStrides, int srcOffset) where T : unmanaged
    {
        var k = new CopyRow<T>(dst, src);
        StridedLoop.Run(ref k, shape, dstStrides, dstOffset, srcStrides, srcOffset, default, 0);
    }

    private readonly struct CopyRow<T>(T[] dst, T[] src) : IRowKernel where T : unmanaged
    {
        public void Row(int n, int o0, int s0, int o1, int s1, int o2, int s2)
        {
            if (s0 == 1 && s1 == 1) { new ReadOnlySpan<T>(src, o1, n).CopyTo(new Span<T>(dst, o0, n)); return; }
            if (s0 == 1 && s1 == 0) { new Span<T>(dst, o0, n).Fill(src[o1]); return; }
            for (int i = 0; i < n; i++) dst[o0 + i * s0] = src[o1 + i * s1];
        }
    }
}
