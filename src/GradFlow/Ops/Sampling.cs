namespace GradFlow;

public sealed partial class Tensor
{
    /// <summary>
    /// Draws <paramref name="numSamples"/> category indices from each row of non-negative weights, a [n] or
    /// [rows, n] tensor that need not sum to 1 (torch.multinomial). Without replacement a drawn category's weight
    /// is set to zero for the following draws of its row. Returns int64 [numSamples] or [rows, numSamples];
    /// not differentiable.
    /// </summary>
    public Tensor Multinomial(int numSamples, bool replacement = false, Generator? generator = null)
    {
        const string op = nameof(Multinomial);
        Guard.Floating(this, op);
        if (Rank is not (1 or 2)) Guard.ThrowArg(op, "input", $"expects [n] or [rows, n] weights, got shape {Guard.Shape(this)}.");
        int rows = Rank == 1 ? 1 : Size(0), n = Size(-1);
        if (n == 0) Guard.ThrowArg(op, "input", $"has no categories, shape {Guard.Shape(this)}.");
        if (numSamples <= 0) Guard.ThrowArg(op, nameof(numSamples), $"must be positive, got {numSamples}.");
        if (!replacement && numSamples > n)
            Guard.ThrowArg(op, nameof(numSamples), $"{numSamples} samples without replacement from {n} categories (shape {Guard.Shape(this)}).");
        var g = generator ?? Generator.Default;
        double[] weights = ToDoubleArray();
        var samples = new long[rows * numSamples];
        for (int r = 0; r < rows; r++)
        {
            var row = weights.AsSpan(r * n, n);
            double total = 0;
            int positive = 0;
            foreach (double w in row)
            {
                if (!(w >= 0) || double.IsInfinity(w)) Guard.ThrowArg(op, "input", $"weights must be finite and non-negative; row {r} holds {w}.");
                total += w;
                if (w > 0) positive++;
            }
            if (positive == 0) Guard.ThrowArg(op, "input", $"row {r} of shape {Guard.Shape(this)} has no positive weight.");
            if (!replacement && numSamples > positive)
                Guard.ThrowArg(op, nameof(numSamples), $"{numSamples} samples without replacement, but row {r} has only {positive} positive weights.");
            for (int s = 0; s < numSamples; s++)
            {
                int k = Draw(row, total, g);
                samples[r * numSamples + s] = k;
                if (!replacement)
                {
                    total -= row[k];
                    row[k] = 0;
                }
            }
        }
        return Rank == 1 ? FromArray(samples) : FromArray(samples, rows, numSamples);
    }

    // Inverse-CDF draw: the first category whose running sum exceeds u * total; rounding at the top end falls
    // back to the last positive weight, so a zero-weight category is never returned.
    private static int Draw(ReadOnlySpan<double> row, double total, Generator g)
    {
        double u = g.NextDouble() * total, cumulative = 0;
        int last = 0;
        for (int k = 0; k < row.Length; k++)
        {
            if (row[k] <= 0) continue;
            last = k;
            cumulative += row[k];
            if (u < cumulative) return k;
        }
        return last;
    }
}
