using System.Diagnostics.CodeAnalysis;

namespace GradFlow;

/// <summary>
/// The flat buffer behind one or more tensors. Views share a storage, and so share its version
/// counter: every in-place write bumps it, and autograd compares it with the version it saw when it
/// saved a tensor for backward. A storage rented from a <see cref="TensorArena"/> is released when
/// the arena's step ends; any later access throws instead of reading recycled memory.
/// </summary>
internal sealed class Storage
{
    private readonly Array _data;
    public readonly DType DType;
    public int Version;
    internal bool Released;
    internal bool Kept;

    /// <summary>Allocated by a node's backward (not recording a graph): a fresh gradient no user code holds yet.</summary>
    internal bool FromBackward;

    /// <summary>Seen by code outside the engine (a hook, RetainGrad, a caller's gradient) or already adopted as a leaf's Grad.</summary>
    internal bool Exposed;

    /// <summary>The arena this buffer was rented from, if any.</summary>
    internal TensorArena? Arena;

    /// <summary>Adopted by the engine as a leaf's Grad (not kept by the user): ZeroGrad may give it back to <see cref="Arena"/>.</summary>
    internal bool AdoptedGrad;

    public Storage(Array data, DType dtype)
    {
        _data = data;
        DType = dtype;
    }

    public Array Data
    {
        get
        {
            if (Released) ThrowReleased();
            return _data;
        }
    }

    /// <summary>The array without the release check, for the arena that owns it.</summary>
    internal Array RawData => _data;

    public int Length => _data.Length;

    public static Storage Allocate(DType dtype, int length, bool zeroed = true)
    {
        var storage = TensorArena.Current is { } arena && arena.ShouldPool
            ? arena.Allocate(dtype, length, zeroed)
            : new Storage(NewArray(dtype, length, zeroed), dtype);
        storage.FromBackward = AllocationContext.FreshGradient;
        return storage;
    }

    internal static Array NewArray(DType dtype, int length, bool zeroed) => dtype switch
    {
        DType.Float32 => zeroed ? new float[length] : GC.AllocateUninitializedArray<float>(length),
        DType.Float64 => zeroed ? new double[length] : GC.AllocateUninitializedArray<double>(length),
        _ => zeroed ? new long[length] : GC.AllocateUninitializedArray<long>(length),
    };

    public T[] As<T>() => (T[])Data;

    [DoesNotReturn]
    private static void ThrowReleased() => throw new ObjectDisposedException(nameof(Tensor),
        "This tensor's memory was recycled when its TensorArena step ended. Keep a result beyond the step with TensorArena.Keep(tensor) " +
        "(or copy it with Clone() inside TensorArena.Suspend()).");
}
