namespace GradFlow.Distributed;

/// <summary>
/// Groups parameters into buckets as PyTorch's DDP does: in reverse registration order (backward produces the last
/// layer's gradients first, so the first bucket fills first), closing a bucket when the next parameter would take it
/// past the size cap or has another dtype. A gradient of at least <c>inPlaceBytes</c> is reduced in its own storage, the
/// others are packed into the bucket's buffer. The layout depends only on the model and the options, so it is the same on
/// every rank.
/// </summary>
internal static class BucketLayout
{
    /// <summary>Bytes of the largest bucket when every gradient is packed (the shared-memory reduction's segment).</summary>
    public static long LargestPackedBucket(Tensor[] parameters, long capBytes)
    {
        long largest = 0, bytes = 0;
        DType? dtype = null;
        for (int i = parameters.Length - 1; i >= 0; i--)
        {
            var p = parameters[i];
            long size = (long)p.NumEl * (p.DType == DType.Float32 ? 4 : 8);
            if (dtype is not null && (p.DType != dtype || bytes + size > capBytes)) bytes = 0; // the same closing rule as Build
            dtype = p.DType;
            bytes += size;
            largest = Math.Max(largest, bytes);
        }
        return largest;
    }

    public static (GradientBucket[] Buckets, int[] BucketOf, int[] SlotOf) Build(Tensor[] parameters, long capBytes, long inPlaceBytes, SharedMemoryAllreduce? shared = null)
    {
        if (shared is not null) inPlaceBytes = long.MaxValue; // every gradient goes through the shared segment
        var buckets = new List<GradientBucket>();
        var bucketOf = new int[parameters.Length];
        var slotOf = new int[parameters.Length];
        var members = new List<int>();
        var offsets = new List<int>();
        var inPlace = new List<bool>();
        long bytes = 0;
        int count = 0;
        DType dtype = DType.Float32;

        void Close()
        {
            if (members.Count == 0) return;
            for (int s = 0; s < members.Count; s++)
            {
                bucketOf[members[s]] = buckets.Count;
                slotOf[members[s]] = s;
            }
            buckets.Add(new GradientBucket(buckets.Count, dtype, [.. members], [.. offsets], [.. inPlace], count, shared));
            members.Clear();
            offsets.Clear();
            inPlace.Clear();
            bytes = 0;
            count = 0;
        }

        for (int i = parameters.Length - 1; i >= 0; i--)
        {
            var p = parameters[i];
            long size = (long)p.NumEl * (p.DType == DType.Float32 ? 4 : 8);
            if (members.Count > 0 && (p.DType != dtype || bytes + size > capBytes)) Close();
            if ((long)count + p.NumEl > Array.MaxLength)
                throw new ArgumentException($"DistributedDataParallel: a bucket would hold more than {Array.MaxLength} elements; lower BucketBytes.");
            dtype = p.DType;
            members.Add(i);
            bytes += size;
            inPlace.Add(size >= inPlaceBytes);
            offsets.Add(size >= inPlaceBytes ? -1 : count);
            if (size < inPlaceBytes) count += p.NumEl;
        }
        Close();
        return ([.. buckets], bucketOf, slotOf);
    }
}
