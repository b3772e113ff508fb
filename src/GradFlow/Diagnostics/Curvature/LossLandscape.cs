using GradFlow.NN;

namespace GradFlow.Diagnostics;

/// <summary>The loss along a line through parameter space: <c>Losses[i]</c> at <c>Alphas[i]</c>.</summary>
/// <param name="Alphas">The step along the direction (0 is the current weights, or the first parameter set of an interpolation).</param>
/// <param name="Losses">The loss at each step.</param>
public sealed record LossSlice(double[] Alphas, double[] Losses);

/// <summary>The loss on a plane through parameter space: <c>Losses[i, j]</c> at <c>Alphas[i]</c> along the first direction, <c>Betas[j]</c> along the second.</summary>
/// <param name="Alphas">Steps along the first direction.</param>
/// <param name="Betas">Steps along the second direction.</param>
/// <param name="Losses">The loss at each grid point.</param>
public sealed record LossSurface(double[] Alphas, double[] Betas, double[,] Losses);

/// <summary>
/// Loss landscapes (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"): the loss along one or two
/// directions around the current weights, e.g. filter-normalised random directions (each filter of the direction
/// rescaled to the norm of the weight's filter, so scale-invariant layers compare; biases and norm parameters left
/// out) or the Hessian's top eigenvectors (<see cref="CurvatureOperator.ToTensors"/> of <see cref="EigenPairs.Vectors"/>),
/// and along the straight line between two parameter sets (two checkpoints). Directions are per trainable parameter
/// of the module, in <see cref="Module.NamedParameters"/> order. Losses are evaluated without a graph; the weights and
/// buffers are put back bit for bit afterwards.
/// </summary>
public static class LossLandscape
{
    /// <summary><paramref name="points"/> evenly spaced values from <paramref name="min"/> to <paramref name="max"/> (Li et al.: 51 from -1 to 1).</summary>
    public static double[] Range(double min = -1, double max = 1, int points = 51)
    {
        if (points < 2) Guard.ThrowArg(nameof(LossLandscape), nameof(points), $"needs at least 2 points, got {points}.");
        if (!double.IsFinite(min) || !double.IsFinite(max) || !(max > min))
            Guard.ThrowArg(nameof(LossLandscape), nameof(max), $"the range [{min}, {max}] must be finite and increasing.");
        return [.. Enumerable.Range(0, points).Select(i => min + (max - min) * i / (points - 1))];
    }

    /// <summary>
    /// A random Gaussian direction, filter-normalised: for every parameter of rank 2 or more, each slice along dim 0
    /// (an output filter or unit) is scaled to the norm of the same slice of the weight; parameters of rank 0 or 1
    /// (biases, norm scales and shifts) get a zero direction.
    /// </summary>
    public static Tensor[] FilterNormalizedDirection(Module model, Generator? generator = null)
    {
        Guard.NotNull(model, nameof(FilterNormalizedDirection), nameof(model));
        var gen = generator ?? new Generator();
        var result = new List<Tensor>();
        using var _ = Autograd.NoGrad();
        foreach (var (_, p) in Trainable(model))
        {
            if (p.Rank < 2)
            {
                result.Add(Tensor.ZerosLike(p));
                continue;
            }
            var d = Tensor.Randn(p.Shape, p.DType, gen);
            var dims = Enumerable.Range(1, p.Rank - 1).ToArray();
            var weightNorm = p.Detach().Pow(2).Sum(dims, keepDim: true).Sqrt();
            var directionNorm = d.Pow(2).Sum(dims, keepDim: true).Sqrt() + 1e-10;
            result.Add(d * (weightNorm / directionNorm));
        }
        return [.. result];
    }

    /// <summary>The loss at theta + alpha d for each alpha.</summary>
    /// <exception cref="ArgumentException">The direction does not match the module's trainable parameters in number or shape.</exception>
    public static LossSlice Slice(Func<Tensor> loss, Module model, IReadOnlyList<Tensor> direction, IReadOnlyList<double> alphas)
    {
        const string Name = nameof(LossLandscape) + "." + nameof(Slice);
        Guard.NotNull(loss, Name, nameof(loss));
        Guard.NotNull(alphas, Name, nameof(alphas));
        var ps = Trainable(model, Name);
        CheckDirection(ps, direction, Name, nameof(direction));
        var a = alphas.ToArray();
        var losses = new double[a.Length];
        Around(model, ps, theta =>
        {
            for (int i = 0; i < a.Length; i++) losses[i] = At(loss, ps, theta, (direction, a[i]), null);
        });
        return new LossSlice(a, losses);
    }

    /// <summary>The loss at theta + alpha d1 + beta d2 on the grid alphas x betas.</summary>
    public static LossSurface Surface(Func<Tensor> loss, Module model, IReadOnlyList<Tensor> direction1, IReadOnlyList<Tensor> direction2,
        IReadOnlyList<double> alphas, IReadOnlyList<double> betas)
    {
        const string Name = nameof(LossLandscape) + "." + nameof(Surface);
        Guard.NotNull(loss, Name, nameof(loss));
        Guard.NotNull(alphas, Name, nameof(alphas));
        Guard.NotNull(betas, Name, nameof(betas));
        var ps = Trainable(model, Name);
        CheckDirection(ps, direction1, Name, nameof(direction1));
        CheckDirection(ps, direction2, Name, nameof(direction2));
        var (a, b) = (alphas.ToArray(), betas.ToArray());
        var losses = new double[a.Length, b.Length];
        Around(model, ps, theta =>
        {
            for (int i = 0; i < a.Length; i++)
                for (int j = 0; j < b.Length; j++) losses[i, j] = At(loss, ps, theta, (direction1, a[i]), (direction2, b[j]));
        });
        return new LossSurface(a, b, losses);
    }

    /// <summary>
    /// The loss along the straight line (1 - alpha) from + alpha to between two parameter sets (state dicts, e.g. two
    /// checkpoints' model states; keys are the module's parameter names, other keys are ignored).
    /// </summary>
    /// <exception cref="ArgumentException">A trainable parameter is missing from a set, or its shape differs.</exception>
    public static LossSlice Interpolate(Func<Tensor> loss, Module model, IEnumerable<KeyValuePair<string, Tensor>> from,
        IEnumerable<KeyValuePair<string, Tensor>> to, IReadOnlyList<double> alphas)
    {
        const string Name = nameof(LossLandscape) + "." + nameof(Interpolate);
        Guard.NotNull(loss, Name, nameof(loss));
        Guard.NotNull(from, Name, nameof(from));
        Guard.NotNull(to, Name, nameof(to));
        Guard.NotNull(alphas, Name, nameof(alphas));
        var ps = Trainable(model, Name);
        var start = Pick(ps, from, Name, nameof(from));
        var end = Pick(ps, to, Name, nameof(to));
        var direction = start.Zip(end, (s, e) => e - s).ToArray();
        var a = alphas.ToArray();
        var losses = new double[a.Length];
        Around(model, ps, _ =>
        {
            for (int i = 0; i < a.Length; i++) losses[i] = At(loss, ps, start, (direction, a[i]), null);
        });
        return new LossSlice(a, losses);
    }

    private static double At(Func<Tensor> loss, (string Name, Tensor P)[] ps, Tensor[] origin, (IReadOnlyList<Tensor> D, double Step) first, (IReadOnlyList<Tensor> D, double Step)? second)
    {
        using var _ = Autograd.NoGrad();
        for (int k = 0; k < ps.Length; k++)
        {
            var value = origin[k] + first.D[k].To(origin[k].DType) * first.Step;
            if (second is { } s) value += s.D[k].To(origin[k].DType) * s.Step;
            ps[k].P.CopyFrom(value);
        }
        var l = loss();
        if (l.NumEl != 1) Guard.ThrowArg(nameof(LossLandscape), nameof(loss), $"the loss must be a scalar, got shape {Guard.Shape(l)}.");
        return l.Item();
    }

    // Runs body with the original weights, then puts weights and buffers back exactly.
    private static void Around(Module model, (string Name, Tensor P)[] ps, Action<Tensor[]> body)
    {
        Tensor[] theta, buffers;
        var bufferList = model.NamedBuffers().Select(b => b.Buffer).ToArray();
        using (Autograd.NoGrad())
        {
            theta = [.. ps.Select(p => p.P.Detach().Clone())];
            buffers = [.. bufferList.Select(b => b.Detach().Clone())];
        }
        try { body(theta); }
        finally
        {
            using (Autograd.NoGrad())
            {
                for (int k = 0; k < ps.Length; k++) ps[k].P.CopyFrom(theta[k]);
                for (int k = 0; k < bufferList.Length; k++) bufferList[k].CopyFrom(buffers[k]);
            }
        }
    }

    private static (string, Tensor)[] Trainable(Module model, string name = nameof(LossLandscape))
    {
        Guard.NotNull(model, name, nameof(model));
        var ps = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToArray();
        if (ps.Length == 0) Guard.ThrowArg(name, nameof(model), "the module has no trainable parameters.");
        return ps;
    }

    private static void CheckDirection((string Name, Tensor P)[] ps, IReadOnlyList<Tensor> direction, string name, string argument)
    {
        Guard.NotNull(direction, name, argument);
        if (direction.Count != ps.Length)
            Guard.ThrowArg(name, argument, $"has {direction.Count} tensors for {ps.Length} trainable parameters.");
        for (int k = 0; k < ps.Length; k++)
        {
            Guard.NotNull(direction[k], name, argument);
            if (!Shapes.Equal(direction[k].ShapeArray, ps[k].P.ShapeArray))
                Guard.ThrowArg(name, argument, $"tensor {k} has shape {Guard.Shape(direction[k])}; parameter '{ps[k].Name}' has {Guard.Shape(ps[k].P)}.");
        }
    }

    private static Tensor[] Pick((string Name, Tensor P)[] ps, IEnumerable<KeyValuePair<string, Tensor>> set, string name, string argument)
    {
        var map = new Dictionary<string, Tensor>();
        foreach (var (k, v) in set) map[k] = v;
        var result = new Tensor[ps.Length];
        for (int i = 0; i < ps.Length; i++)
        {
            if (!map.TryGetValue(ps[i].Name, out var t))
                Guard.ThrowArg(name, argument, $"has no tensor for parameter '{ps[i].Name}'.");
            if (!Shapes.Equal(t.ShapeArray, ps[i].P.ShapeArray))
                Guard.ThrowArg(name, argument, $"'{ps[i].Name}' has shape {Guard.Shape(t)}; the module's is {Guard.Shape(ps[i].P)}.");
            result[i] = t.Detach().To(ps[i].P.DType);
        }
        return result;
    }
}
