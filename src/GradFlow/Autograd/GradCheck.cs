namespace GradFlow;

/// <summary>
/// Compares analytic gradients with central finite differences, as torch.autograd.gradcheck:
/// for every input element j and output element k, |J_analytic[k, j] - J_numeric[k, j]| must be
/// within atol + rtol * |J_numeric[k, j]|. Use float64 inputs: float32 differences are too noisy.
/// </summary>
public static class GradCheck
{
    /// <summary>Checks first derivatives of <paramref name="f"/> at <paramref name="inputs"/> (those with RequiresGrad).</summary>
    /// <returns>True when all entries agree; otherwise throws <see cref="GradCheckException"/> (or returns false when <paramref name="raiseException"/> is false).</returns>
    public static bool Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool raiseException = true)
    {
        Guard.NotNull(f, nameof(GradCheck), nameof(f));
        Guard.NotNull(inputs, nameof(GradCheck), nameof(inputs));
        foreach (var x in inputs)
            if (x.RequiresGrad && x.DType != DType.Float64)
                Guard.ThrowArg(nameof(GradCheck), nameof(inputs), $"inputs that require grad should be float64 for finite differences, got {x.DType.Name()} {Guard.Shape(x)}.");

        var output = f(inputs);
        var outValues = output.ToDoubleArray();
        var diffInputs = inputs.Where(x => x.RequiresGrad).ToArray();
        if (diffInputs.Length == 0) Guard.ThrowArg(nameof(GradCheck), nameof(inputs), "no input requires grad.");

        for (int i = 0; i < diffInputs.Length; i++)
        {
            var numeric = NumericJacobian(f, inputs, diffInputs[i], outValues.Length, eps);
            var analytic = AnalyticJacobian(f, inputs, diffInputs, i, outValues.Length);
            for (int k = 0; k < outValues.Length; k++)
            {
                for (int j = 0; j < diffInputs[i].NumEl; j++)
                {
                    double a = analytic[k, j], n = numeric[k, j];
                    if (Math.Abs(a - n) <= atol + rtol * Math.Abs(n) || (double.IsNaN(a) && double.IsNaN(n))) continue;
                    string message = $"Jacobian mismatch for output element {k} with respect to input {Array.IndexOf(inputs, diffInputs[i])} element {j} " +
                        $"(input shape {Guard.Shape(diffInputs[i])}): analytic {a:R}, numerical {n:R}, tolerance atol={atol} rtol={rtol}.";
                    if (raiseException) throw new GradCheckException(message);
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>
    /// Checks second derivatives: the vector-Jacobian product of <paramref name="f"/>, computed with
    /// createGraph, is itself gradchecked as a function of the inputs and of random output gradients.
    /// </summary>
    public static bool CheckSecondOrder(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3,
        bool raiseException = true, ulong seed = 7)
    {
        var probe = f(inputs);
        var gen = new Generator(seed);
        var gradOut = Tensor.Randn(probe.Shape, DType.Float64, gen, requiresGrad: true);
        var diffIdx = Enumerable.Range(0, inputs.Length).Where(i => inputs[i].RequiresGrad).ToArray();
        Tensor Vjp(Tensor[] all)
        {
            var xs = all.Take(inputs.Length).ToArray();
            var y = f(xs);
            var grads = Autograd.Grad([y], diffIdx.Select(i => xs[i]).ToArray(), [all[^1]], createGraph: true, allowUnused: true);
            var flat = new List<Tensor>();
            for (int i = 0; i < grads.Length; i++)
                flat.Add((grads[i] ?? Tensor.ZerosLike(xs[diffIdx[i]])).Reshape(-1));
            return Tensor.Cat(flat);
        }
        return Check(Vjp, [.. inputs, gradOut], eps, atol, rtol, raiseException);
    }

    private static double[,] NumericJacobian(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor x, int outCount, double eps)
    {
        var jac = new double[outCount, x.NumEl];
        var data = x.Data<double>();
        for (int j = 0; j < x.NumEl; j++)
        {
            int pos = Shapes.StorageIndex(j, x.ShapeArray, x.StridesArray, x.Offset);
            double orig = data[pos];
            data[pos] = orig + eps;
            var plus = f(inputs).ToDoubleArray();
            data[pos] = orig - eps;
            var minus = f(inputs).ToDoubleArray();
            data[pos] = orig;
            for (int k = 0; k < outCount; k++) jac[k, j] = (plus[k] - minus[k]) / (2 * eps);
        }
        return jac;
    }

    private static double[,] AnalyticJacobian(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor[] diffInputs, int which, int outCount)
    {
        var x = diffInputs[which];
        var jac = new double[outCount, x.NumEl];
        var y = f(inputs);
        if (!y.RequiresGrad) return jac; // the output does not depend on any input: an all-zero Jacobian
        for (int k = 0; k < outCount; k++)
        {
            var onehot = Tensor.Zeros(y.Shape, y.DType);
            onehot.Data<double>()[k] = 1;
            var g = Autograd.Grad([y], [x], [onehot], retainGraph: true, allowUnused: true)[0];
            if (g is null) continue;
            var gv = g.ToDoubleArray();
            for (int j = 0; j < gv.Length; j++) jac[k, j] = gv[j];
        }
        return jac;
    }
}

/// <summary>Thrown by <see cref="GradCheck"/> when analytic and numerical gradients disagree.</summary>
public sealed class GradCheckException(string message) : Exception(message);
