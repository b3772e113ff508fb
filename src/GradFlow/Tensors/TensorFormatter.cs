using System.Globalization;
using System.Text;

namespace GradFlow;

/// <summary>
/// Prints tensors the way PyTorch does: nested brackets, a common number format per tensor, long
/// dims summarised with "..." beyond three leading and trailing items.
/// </summary>
internal static class TensorFormatter
{
    private const int SummariseAbove = 1000;
    private const int EdgeItems = 3;

    public static string Format(Tensor t)
    {
        var sb = new StringBuilder("tensor(");
        bool summarise = t.NumEl > SummariseAbove;
        var values = t.ToDoubleArray();
        string fmt = ChooseFormat(t, values);
        if (t.Rank == 0) sb.Append(FormatValue(values[0], t.DType, fmt));
        else AppendDim(sb, t, values, 0, 0, fmt, summarise, indent: 8);
        if (t.DType != DType.Float32) sb.Append(", dtype: ").Append(t.DType.Name());
        if (t.GradFn is not null) sb.Append(", gradFn: ").Append(t.GradFn.Name);
        else if (t.RequiresGrad) sb.Append(", requiresGrad: true");
        return sb.Append(')').ToString();
    }

    private static string ChooseFormat(Tensor t, double[] values)
    {
        if (t.DType == DType.Int64) return "0";
        double maxAbs = 0, minAbs = double.MaxValue;
        bool allInts = true;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            double a = Math.Abs(v);
            maxAbs = Math.Max(maxAbs, a);
            if (a > 0) minAbs = Math.Min(minAbs, a);
            allInts &= v == Math.Floor(v);
        }
        if (allInts && maxAbs < 1e8) return "0.";
        if (maxAbs >= 1e8 || (minAbs < 1e-4 && minAbs != double.MaxValue) || (maxAbs / minAbs > 1e3 && minAbs < 1e-2)) return "0.0000e+00";
        return "0.0000";
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

    private static void AppendDim(StringBuilder sb, Tensor t, double[] values, int dim, int start, string fmt, bool summarise, int indent)
    {
        int size = t.Shape[dim];
        int stride = 1;
        for (int d = dim + 1; d < t.Rank; d++) stride *= t.Shape[d];
        sb.Append('[');
        for (int i = 0; i < size; i++)
        {
            if (summarise && size > 2 * EdgeItems && i == EdgeItems)
            {
                sb.Append(dim == t.Rank - 1 ? "..., " : "...,\n" + new string(' ', indent + 1));
                i = size - EdgeItems - 1;
                continue;
            }
            if (dim == t.Rank - 1)
            {
                string s = FormatValue(values[start + i], t.DType, fmt);
                if (values[start + i] >= 0 || double.IsNaN(values[start + i])) s = " " + s;
                sb.Append(s.TrimStart(i == 0 && values[start + i] < 0 ? ' ' : '\0'));
            }
            else AppendDim(sb, t, values, dim + 1, start + i * stride, fmt, summarise, indent + 1);
            if (i < size - 1)
                sb.Append(dim == t.Rank - 1 ? ", " : "," + new string('\n', t.Rank - 1 - dim) + new string(' ', indent + 1));
        }
        sb.Append(']');
    }
}
