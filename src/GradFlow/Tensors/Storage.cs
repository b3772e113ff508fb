namespace GradFlow;

/// <summary>
/// The flat buffer behind one or more tensors. Views share a storage, and so share its version
/// counter: every in-place write bumps it, and autograd compares it with the version it saw when it
/// saved a tensor for backward.
/// </summary>
internal sealed class Storage
{
    public readonly Array Data;
    public readonly DType DType;
    public int Version;

    public Storage(Array data, DType dtype)
    {
        Data = data;
        DType = dtype;
    }

    public int Length => Data.Length;

    public static Storage Allocate(DType dtype, int length, bool zeroed = true) => dtype switch
    {
        DType.Float32 => new Storage(zeroed ? new float[length] : GC.AllocateUninitializedArray<float>(length), dtype),
        DType.Float64 => new Storage(zeroed ? new double[length] : GC.AllocateUninitializedArray<double>(length), dtype),
        _ => new Storage(zeroed ? new long[length] : GC.AllocateUninitializedArray<long>(length), dtype),
    };

    public T[] As<T>() => (T[])Data;
}
