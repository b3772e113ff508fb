using System.Globalization;
using System.Text;

namespace GradFlow;

/// <summary>
/// Prints tensors the way PyTorch does: nested brackets, one number format and width per tensor
/// (right-aligned), long dims summarised with "..." beyond three leading and trailing items.
/// Unlike PyTorch, lines are not wrapped at 80 characters.
/// </summary>
internal static class TensorFormatter
{
    private const int SummariseAbove = 1000;
    private const int EdgeItems = 3;
    private const int Indent = 7; // "tensor("

    /// <summary>The values; <paramref name="annotation"/> (the autograd layer's gradFn or requiresGrad) goes last.</summary>
    public static string Format(Tensor t, string? annotation = null)
    {
        var sb = new StringBuilder("tensor(");
        var values = t.ToDoubleArray();
        string fmt = ChooseFormat(t.DType, values);
        int width = 0;
        foreach (double v in values) // as PyTorch, nan and inf do not widen the column
            if (double.IsFinite(v)) width = Math.Max(width, FormatValue(v, t.DType, fmt).Length);
        if (t.Rank == 0) sb.Append(FormatValue(values[0], t.DType, fmt));
        else if (t.NumEl == 0) sb.Append("[]").Append(t.Rank > 1 ? ", size=" + Guard.Shape(t) : "");
        else AppendDim(sb, t.ShapeArray, values, 0, 0, fmt, width, t.NumEl > SummariseAbove, t.DType);
        if (t.DType == DType.Float64) sb.Append(", dtype=").Append(t.DType.Name());
        if (annotation is not null) sb.Append(", ").Append(annotation);
        return sb.Append(')').ToString();
    }

    // PyTorch's rule (torch/_tensor_str.py): integral values print as "3."; scientific notation when the
    // finite non-zero magnitudes span more than 1e3, exceed 1e8, or (non-integral) go below 1e-4.
    private static string ChooseFormat(DType dtype, double[] values)
    {
        if (dtype == DType.Int64) return "0";
        double maxAbs = 0, minAbs = double.MaxValue;
        bool allInts = true;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            double a = Math.Abs(v);
            if (a > 0) { maxAbs = Math.Max(maxAbs, a); minAbs = Math.Min(minAbs, a); }
            allInts &= v == Math.Floor(v);
        }
        if (maxAbs == 0) return allInts ? "0." : "0.0000";
        bool sci = maxAbs / minAbs > 1e3 || maxAbs > 1e8 || (!allInts && minAbs < 1e-4);
        return sci ? "0.0000e+00" : allInts ? "0." : "0.0000";
    }

    private static string FormatValue(double v, DType dtype, string fmt)
    {
        if (double.IsNaN(v)) return "nan";
        if (double.IsPositiveInfinity(v)) return "inf";
        if (double.IsNegativeInfinity(v)) return "-inf";
        if (dtype == DType.Int64) return ((long)v).ToString(CultureInfo.InvariantCulture);
        if (fmt == "0.") return v.ToString("0", CultureInfo.InvariantCulture) + ".";
        return v.ToString(fmt, CultureInfo.InvariantCulture);
    }

    private static void AppendDim(StringBuilder sb, int[] shape, double[] values, int dim, int start, string fmt, int width,
        bool summarise, DType dtype)
    {
        int size = shape[dim], rank = shape.Length;
        int stride = 1;
        for (int d = dim + 1; d < rank; d++) stride *= shape[d];
        bool last = dim == rank - 1;
        string separator = last ? ", " : "," + new string('\n', rank - 1 - dim) + new string(' ', Indent + dim + 1);
        sb.Append('[');
        for (int i = 0; i < size; i++)
        {
            if (i > 0) sb.Append(separator);
            if (summarise && size > 2 * EdgeItems && i == EdgeItems)
            {
                sb.Append(last ? " ..." : "...");
                i = size - EdgeItems - 1;
                continue;
            }
            if (last) sb.Append(FormatValue(values[start + i], dtype, fmt).PadLeft(width));
            else AppendDim(sb, shape, values, dim + 1, start + i * stride, fmt, width, summarise, dtype);
        }
        sb.Append(']');
    }
}
