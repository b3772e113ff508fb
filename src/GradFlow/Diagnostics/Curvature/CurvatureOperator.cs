using System.Diagnostics;
using System.Numerics;
using GradFlow.Kernels;
using GradFlow.NN;

namespace GradFlow.Diagnostics;

/// <summary>Which curvature matrix a <see cref="CurvatureOperator"/> multiplies by.</summary>
public enum CurvatureKind
{
    /// <summary>The exact Hessian of the loss, by double backward (may be indefinite).</summary>
    Hessian,

    /// <summary>
    /// The generalised Gauss-Newton matrix J^T H_L J (J the Jacobian of the model's output, H_L the Hessian of the
    /// loss with respect to that output): positive semi-definite whenever the loss is convex in the output, as
    /// cross entropy and mean squared error are.
    /// </summary>
    GaussNewton,
}

/// <summary>
/// Curvature-vector products of a loss with respect to a list of parameters: the Hessian (Pearlmutter's trick,
/// double backward through <see cref="Autograd.Grad(Tensor[], Tensor[], Tensor?[], bool, bool?, bool)"/>) or the
/// generalised Gauss-Newton matrix. The closure runs once, when the operator is made; its first-order graph is
/// kept, so each product is one further backward pass (three for Gauss-Newton). Vectors are flat float64
/// arrays over the parameters in order (<see cref="Dimension"/> entries); <see cref="ProductCount"/> counts the
/// products spent, and every spectral result reports its own share. No parameter's <see cref="Tensor.Grad"/> is
/// touched. The recorded graph and each product's intermediate tensors live in a <see cref="TensorArena"/> of the
/// operator's own (not the caller's step): a product reuses the previous product's buffers, and
/// <see cref="Dispose"/> gives the graph's buffers to the next operator made (without it they are left to the GC).
/// An operator is used from one thread at a time.
/// </summary>
public sealed class CurvatureOperator : IDisposable
{
    private const string Op = nameof(CurvatureOperator);

    private readonly Tensor[] _params;
    private readonly string[] _names;
    private readonly int[] _offsets;
    private readonly int[] _versions; // the parameters' versions when the graph was recorded
    private readonly Tensor[] _differentiable; // Hessian: the gradients that depend on the parameters; Gauss-Newton: J^T u
    private readonly int[] _differentiableIndex;
    private readonly Tensor? _output, _outputLeaf, _outputGrad, _u; // Gauss-Newton only
    private readonly double[]? _scale; // a symmetric diagonal scaling S (C + shift I) S (preconditioned sharpness)
    private readonly double _shift;
    private readonly bool _view; // a scaled view of another operator (with a null _scale: Shifted, the shift alone)
    private readonly Counter _counter;
    private readonly GraphMemory _memory;
    private double[]? _scaledInput; // a scaled view's S v, reused by every product

    private sealed class Counter { public long Products; }

    // The arena the graph was recorded in and the buffers it keeps, shared by every scaled view.
    private sealed class GraphMemory(TensorArena arena)
    {
        public readonly TensorArena Arena = arena;
        public Storage[] Kept = [];
        public bool Disposed;
        public Tensor?[] Gradients = []; // per parameter, in the graph's memory
        public double[]? Gradient; // flat, made when first read
    }

    // One idle arena, with the free buffers of the last disposed operator, waits for the next operator (of any thread).
    private static TensorArena? s_idleArena;

    /// <summary>The matrix this operator multiplies by.</summary>
    public CurvatureKind Kind { get; }

    /// <summary>The number of scalar parameters (the length of every vector).</summary>
    public int Dimension { get; }

    /// <summary>Products computed so far by this operator and every scaled view of it.</summary>
    public long ProductCount => _counter.Products;

    /// <summary>The loss at the parameters the operator was made at.</summary>
    public double Loss { get; }

    /// <summary>The loss gradient at those parameters, flat (as the vectors); flattened when first read, which must be before <see cref="Dispose"/>.</summary>
    public IReadOnlyList<double> Gradient
    {
        get
        {
            if (_memory.Gradient is { } flat) return flat;
            if (_memory.Disposed) throw new ObjectDisposedException(Op, "the gradient was not read before the operator was disposed.");
            return _memory.Gradient = Flatten(_memory.Gradients);
        }
    }

    /// <summary>The Euclidean norm of <see cref="Gradient"/>.</summary>
    public double GradientNorm { get; }

    /// <summary>The parameters, in the order of the flat vectors.</summary>
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>The parameters' names (state-dict keys, or "param{i}" for a bare list), for messages and reports.</summary>
    public IReadOnlyList<string> ParameterNames => _names;

    /// <summary>The diagonal scaling S of a view made by <see cref="Scaled"/> (the operator is then S (C + shift I) S), or null.</summary>
    public IReadOnlyList<double>? Scale => _scale;

    /// <summary>The multiple of the identity a view made by <see cref="Scaled"/> adds before scaling (L2 weight decay), else 0.</summary>
    public double Shift => _shift;

    private CurvatureOperator(CurvatureOperator source, double[]? scale, double shift)
    {
        (_params, _names, _offsets, _versions) = (source._params, source._names, source._offsets, source._versions);
        (_differentiable, _differentiableIndex) = (source._differentiable, source._differentiableIndex);
        (_output, _outputLeaf, _outputGrad, _u, _counter, _memory) = (source._output, source._outputLeaf, source._outputGrad, source._u, source._counter, source._memory);
        (Kind, Dimension, Loss, GradientNorm) = (source.Kind, source.Dimension, source.Loss, source.GradientNorm);
        (_scale, _shift, _view) = (scale, shift, true);
    }

    private CurvatureOperator(CurvatureKind kind, (string Name, Tensor Parameter)[] parameters, Func<Tensor> forward, Func<Tensor, Tensor>? loss)
    {
        Kind = kind;
        (_names, _params, _offsets, Dimension) = Validate(parameters);
        _versions = [.. _params.Select(p => p.Version)];
        _counter = new Counter();
        _memory = new GraphMemory(Interlocked.Exchange(ref s_idleArena, null) ?? new TensorArena());
        using var step = _memory.Arena.Step();
        using var grad = Autograd.EnableGrad();
        Tensor lossValue;
        if (kind == CurvatureKind.Hessian)
        {
            lossValue = CheckLoss(forward(), "loss");
            var grads = Autograd.Grad([lossValue], _params, createGraph: true, allowUnused: true);
            _memory.Gradients = grads;
            (_differentiable, _differentiableIndex) = Differentiable(grads);
        }
        else
        {
            _output = forward();
            Guard.NotNull(_output, Op, "output");
            if (!_output.RequiresGrad || !_output.DType.IsFloatingPoint())
                Guard.ThrowArg(Op, "output", $"the model output (shape {Guard.Shape(_output)}, {_output.DType.Name()}) does not depend on the parameters.");
            _outputLeaf = _output.Detach().RequireGrad();
            lossValue = CheckLoss(loss!(_outputLeaf), "loss");
            _outputGrad = Autograd.Grad([lossValue], [_outputLeaf], createGraph: true)[0]!;
            // J^T u is linear in u; differentiating it with respect to u gives J v (the double-vjp trick).
            _u = Tensor.ZerosLike(_output).RequireGrad();
            var jtu = Autograd.Grad([_output], _params, [_u], createGraph: true, allowUnused: true);
            (_differentiable, _differentiableIndex) = Differentiable(jtu);
            _memory.Gradients = Autograd.Grad([_output], _params, [_outputGrad.Detach()], retainGraph: true, allowUnused: true);
        }
        Loss = lossValue.Item();
        GradientNorm = Norm(_memory.Gradients);
        if (!double.IsFinite(Loss) || !double.IsFinite(GradientNorm))
            Guard.ThrowInvalid(Op, $"the loss ({Loss}) or its gradient (norm {GradientNorm}) is not finite; curvature is undefined there.");
        _memory.Kept = _memory.Arena.KeepRented();
    }

    /// <summary>
    /// Gives the recorded graph's buffers back for the next operator; this operator and its scaled views then
    /// refuse products. Tensors the loss closure left behind from its forward (if any were kept) become unreadable.
    /// </summary>
    public void Dispose()
    {
        var memory = _memory;
        if (memory.Disposed) return;
        memory.Disposed = true;
        memory.Arena.Recycle(memory.Kept);
        memory.Kept = [];
        if (Interlocked.CompareExchange(ref s_idleArena, memory.Arena, null) is not null) memory.Arena.Trim();
    }

    /// <summary>The Hessian of <paramref name="loss"/> (a closure returning a scalar) with respect to <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException">A parameter does not require grad or is not floating point, or the loss is not a scalar that depends on the parameters.</exception>
    /// <exception cref="NotSupportedException">An op in the loss's graph has no double backward (the message names it).</exception>
    /// <exception cref="InvalidOperationException">The loss or its gradient is not finite.</exception>
    public static CurvatureOperator Hessian(Func<Tensor> loss, IEnumerable<Tensor> parameters)
    {
        Guard.NotNull(parameters, Op, nameof(parameters));
        return Hessian(loss, parameters.Select((p, i) => ($"param{i}", p)));
    }

    /// <summary>The Hessian with respect to named parameters (names appear in errors and reports).</summary>
    public static CurvatureOperator Hessian(Func<Tensor> loss, IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        Guard.NotNull(loss, Op, nameof(loss));
        Guard.NotNull(parameters, Op, nameof(parameters));
        return new CurvatureOperator(CurvatureKind.Hessian, [.. parameters], loss, null);
    }

    /// <summary>The Hessian with respect to a module's parameters that require grad (frozen ones are left out).</summary>
    public static CurvatureOperator Hessian(Func<Tensor> loss, Module model)
    {
        Guard.NotNull(model, Op, nameof(model));
        return Hessian(loss, Trainable(model));
    }

    /// <summary>
    /// The generalised Gauss-Newton matrix of <c>loss(output())</c>: <paramref name="output"/> runs the model,
    /// <paramref name="loss"/> maps its output to a scalar (e.g. <c>z =&gt; Functional.CrossEntropy(z, y)</c> or
    /// <c>z =&gt; Functional.MseLoss(z, t)</c>). The loss's own Hessian is taken exactly, by double backward.
    /// </summary>
    public static CurvatureOperator GaussNewton(Func<Tensor> output, Func<Tensor, Tensor> loss, IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        Guard.NotNull(output, Op, nameof(output));
        Guard.NotNull(loss, Op, nameof(loss));
        Guard.NotNull(parameters, Op, nameof(parameters));
        return new CurvatureOperator(CurvatureKind.GaussNewton, [.. parameters], output, loss);
    }

    /// <summary>The Gauss-Newton matrix with respect to a bare parameter list.</summary>
    public static CurvatureOperator GaussNewton(Func<Tensor> output, Func<Tensor, Tensor> loss, IEnumerable<Tensor> parameters)
    {
        Guard.NotNull(parameters, Op, nameof(parameters));
        return GaussNewton(output, loss, parameters.Select((p, i) => ($"param{i}", p)));
    }

    /// <summary>The Gauss-Newton matrix with respect to a module's parameters that require grad.</summary>
    public static CurvatureOperator GaussNewton(Func<Tensor> output, Func<Tensor, Tensor> loss, Module model)
    {
        Guard.NotNull(model, Op, nameof(model));
        return GaussNewton(output, loss, Trainable(model));
    }

    private static IEnumerable<(string, Tensor)> Trainable(Module model) => model.NamedParameters().Where(p => p.Parameter.RequiresGrad);

    /// <summary>
    /// A view of this operator scaled on both sides by the diagonal <paramref name="scale"/>, after adding
    /// <paramref name="shift"/> times the identity: products with S (C + shift I) S, which has the eigenvalues of
    /// S^2 (C + shift I) (a preconditioned curvature; shift is an L2 weight decay). The view shares the graph and
    /// the product count.
    /// </summary>
    public CurvatureOperator Scaled(IReadOnlyList<double> scale, double shift = 0)
    {
        Guard.NotNull(scale, Op, nameof(scale));
        if (_view) Guard.ThrowInvalid(Op, "this operator is already a scaled view; scale the original.");
        if (scale.Count != Dimension)
            Guard.ThrowArg(Op, nameof(scale), $"has {scale.Count} entries for {Dimension} parameters.");
        return ScaledView(scale.ToArray(), shift, null);
    }

    /// <summary>
    /// <see cref="Scaled"/> on an array the caller made for it and leaves alone while the view lives (no copy), with
    /// <paramref name="scratch"/> (or, when null, an array of the view's own) for S v.
    /// </summary>
    internal CurvatureOperator ScaledView(double[] scale, double shift, double[]? scratch)
    {
        if (_view) Guard.ThrowInvalid(Op, "this operator is already a scaled view; scale the original.");
        if (scale.Length != Dimension)
            Guard.ThrowArg(Op, nameof(scale), $"has {scale.Length} entries for {Dimension} parameters.");
        Debug.Assert(scratch is null || scratch.Length == Dimension);
        if (!double.IsFinite(shift)) Guard.ThrowArg(Op, nameof(shift), $"must be finite, got {shift}.");
        if (!PrecisionConversion.AllFinite(scale)) Guard.ThrowArg(Op, nameof(scale), "has a non-finite entry.");
        return new CurvatureOperator(this, scale, shift) { _scaledInput = scratch };
    }

    /// <summary>A view with products (C + shift I) v: <see cref="Scaled"/> with a scale of ones, without the array.</summary>
    internal CurvatureOperator Shifted(double shift)
    {
        if (_view) Guard.ThrowInvalid(Op, "this operator is already a scaled view; shift the original.");
        if (!double.IsFinite(shift)) Guard.ThrowArg(Op, nameof(shift), $"must be finite, got {shift}.");
        return new CurvatureOperator(this, null, shift);
    }

    /// <summary>Writes the product of the curvature matrix with <paramref name="v"/> into <paramref name="result"/>.</summary>
    /// <exception cref="ArgumentException">A length differs from <see cref="Dimension"/>, or <paramref name="v"/> is not finite.</exception>
    /// <exception cref="InvalidOperationException">The product is not finite (the message names the parameter).</exception>
    public void Apply(ReadOnlySpan<double> v, Span<double> result)
    {
        if (v.Length != Dimension || result.Length != Dimension)
            Guard.ThrowArg(Op, nameof(v), $"vectors must have {Dimension} entries (one per parameter element); got {v.Length} in, {result.Length} out.");
        if (_memory.Disposed) throw new ObjectDisposedException(Op, "this operator (or the one it is a scaled view of) was disposed; make a new one.");
        for (int p = 0; p < _params.Length; p++)
            if (_params[p].Version != _versions[p])
                Guard.ThrowInvalid(Op, $"parameter '{_names[p]}' was changed in place (an optimiser step?) after the operator was made; " +
                    "its recorded graph is for the old weights, so make a new operator.");
        // v's finiteness is checked by the pass that converts it to the model's dtype (GradOutputs), or by the scaling.
        bool scaledFinite = true;
        ReadOnlySpan<double> input = v;
        if (_scale is not null)
        {
            var scaled = _scaledInput ??= new double[Dimension];
            scaledFinite = ScaleChecked(_scale, v, scaled);
            input = scaled;
        }
        if (!scaledFinite || (_differentiable.Length == 0 && !PrecisionConversion.AllFinite(input))) ThrowNonFiniteVector();
        // The vector's blocks, the backward's intermediates and the products are rented from the operator's arena
        // and go back to it when the step ends, after the products are copied out: a product allocates no tensors.
        bool finite = true;
        using (_memory.Arena.Step())
        using (Autograd.EnableGrad())
        {
            var products = Kind == CurvatureKind.Hessian ? HessianProduct(input) : GaussNewtonProduct(input);
            for (int p = 0; p < _params.Length; p++)
            {
                var dst = result.Slice(_offsets[p], _params[p].NumEl);
                if (products[p] is { } block) finite &= block.CopyToDoubles(dst);
                else dst.Clear();
            }
        }
        _counter.Products++;
        if (_view) finite = ShiftAndScale(result, input, _shift, _scale);
        if (!finite) ThrowNonFiniteProduct(result);
    }

    // scaled = scale * v, vectorised; false if v has a NaN or infinity (x - x is then NaN).
    private static bool ScaleChecked(ReadOnlySpan<double> scale, ReadOnlySpan<double> v, Span<double> scaled)
    {
        int n = v.Length, w = Vector<double>.Count, i = 0;
        var nonFinite = Vector<double>.Zero;
        for (; i <= n - w; i += w)
        {
            var x = new Vector<double>(v.Slice(i));
            (new Vector<double>(scale.Slice(i)) * x).CopyTo(scaled.Slice(i));
            nonFinite += x - x;
        }
        double sum = Vector.Sum(nonFinite);
        for (; i < n; i++) (scaled[i], sum) = (scale[i] * v[i], sum + (v[i] - v[i]));
        return sum == 0;
    }

    // result = (result + shift v) * scale (scale null: the shift alone, the probe's plain sharpness), vectorised, the
    // same operations per element as one at a time; false if an entry is not finite.
    private static bool ShiftAndScale(Span<double> result, ReadOnlySpan<double> v, double shift, double[]? scale)
    {
        int n = result.Length, w = Vector<double>.Count, i = 0;
        var vs = new Vector<double>(shift);
        var nonFinite = Vector<double>.Zero;
        for (; i <= n - w; i += w)
        {
            var r = new Vector<double>(result.Slice(i)) + (vs * new Vector<double>(v.Slice(i)));
            if (scale is not null) r *= new Vector<double>(scale, i);
            r.CopyTo(result.Slice(i));
            nonFinite += r - r;
        }
        double sum = Vector.Sum(nonFinite);
        for (; i < n; i++)
        {
            double r = result[i] + (shift * v[i]);
            if (scale is not null) r *= scale[i];
            (result[i], sum) = (r, sum + (r - r));
        }
        return sum == 0;
    }

    /// <summary>The product with a flat vector, as a new array.</summary>
    public double[] Apply(ReadOnlySpan<double> v)
    {
        var result = GC.AllocateUninitializedArray<double>(Dimension); // every entry is written
        Apply(v, result);
        return result;
    }

    /// <summary>
    /// The product with a vector given per parameter (tensors of the parameters' shapes, any floating dtype), per parameter
    /// in the parameter's own dtype, as <c>torch.autograd.functional.hvp</c> returns it: a float32 model's product is
    /// computed in float32, so float64 results would only carry digits it never had. For the float64 result use the flat
    /// <see cref="Apply(ReadOnlySpan{double})"/>.
    /// </summary>
    public Tensor[] Apply(IReadOnlyList<Tensor> v) => Reshape(Apply(Flatten(v)), inParameterDType: true);

    /// <summary>
    /// A flat vector as one float64 tensor per parameter, shaped like it (an eigenvector, a direction: they are computed in
    /// float64 whatever the model's dtype).
    /// </summary>
    public Tensor[] ToTensors(ReadOnlySpan<double> flat) => Reshape(flat, inParameterDType: false);

    private Tensor[] Reshape(ReadOnlySpan<double> flat, bool inParameterDType)
    {
        if (flat.Length != Dimension)
            Guard.ThrowArg(Op, nameof(flat), $"has {flat.Length} entries for {Dimension} parameters.");
        var result = new Tensor[_params.Length];
        for (int p = 0; p < _params.Length; p++)
        {
            var dtype = inParameterDType ? _params[p].DType : DType.Float64;
            result[p] = Tensor.FromDoubles(flat.Slice(_offsets[p], _params[p].NumEl), (int[])_params[p].ShapeArray.Clone(), dtype, out _);
        }
        return result;
    }

    /// <summary>Tensors shaped like the parameters (any floating dtype), as one flat vector.</summary>
    public double[] Flatten(IReadOnlyList<Tensor> perParameter)
    {
        Guard.NotNull(perParameter, Op, nameof(perParameter));
        if (perParameter.Count != _params.Length)
            Guard.ThrowArg(Op, nameof(perParameter), $"has {perParameter.Count} tensors for {_params.Length} parameters.");
        var flat = new double[Dimension];
        for (int p = 0; p < _params.Length; p++)
        {
            var t = perParameter[p];
            Guard.NotNull(t, Op, nameof(perParameter));
            if (!Shapes.Equal(t.ShapeArray, _params[p].ShapeArray))
                Guard.ThrowArg(Op, nameof(perParameter), $"tensor {p} has shape {Guard.Shape(t)}; parameter '{_names[p]}' has {Guard.Shape(_params[p])}.");
            t.ToDoubleArray().CopyTo(flat, _offsets[p]);
        }
        return flat;
    }

    private Tensor?[] HessianProduct(ReadOnlySpan<double> v)
    {
        if (_differentiable.Length == 0) return new Tensor?[_params.Length];
        return Autograd.Grad(_differentiable, _params, GradOutputs(v), retainGraph: true, allowUnused: true);
    }

    // The blocks of v the differentiable gradients are multiplied by, each in its parameter's shape and dtype.
    private Tensor?[] GradOutputs(ReadOnlySpan<double> v)
    {
        var gradOutputs = new Tensor?[_differentiable.Length];
        bool finite = true;
        for (int i = 0; i < gradOutputs.Length; i++)
        {
            var p = _params[_differentiableIndex[i]];
            gradOutputs[i] = Tensor.FromDoubles(v.Slice(_offsets[_differentiableIndex[i]], p.NumEl), (int[])p.ShapeArray.Clone(), p.DType, out bool blockFinite);
            finite &= blockFinite;
        }
        // A block of a parameter whose gradient is constant is not read, and its entries must be finite too.
        if (!finite || (gradOutputs.Length < _params.Length && !PrecisionConversion.AllFinite(v))) ThrowNonFiniteVector();
        return gradOutputs;
    }

    private static void ThrowNonFiniteVector() => Guard.ThrowArg(Op, "v", "the vector has a non-finite entry.");

    // G v = J^T (H_L (J v)): J v by differentiating J^T u with respect to u, H_L by double backward of the loss alone.
    private Tensor?[] GaussNewtonProduct(ReadOnlySpan<double> v)
    {
        if (_differentiable.Length == 0) return new Tensor?[_params.Length];
        var jv = Autograd.Grad(_differentiable, [_u!], GradOutputs(v), retainGraph: true, allowUnused: true)[0];
        if (jv is null) return new Tensor?[_params.Length];
        Tensor hjv = _outputGrad!.RequiresGrad
            ? Autograd.Grad([_outputGrad], [_outputLeaf!], [jv], retainGraph: true, allowUnused: true)[0] ?? Tensor.ZerosLike(jv)
            : Tensor.ZerosLike(jv);
        return Autograd.Grad([_output!], _params, [hjv], retainGraph: true, allowUnused: true);
    }

    private static (string[], Tensor[], int[], int) Validate((string Name, Tensor Parameter)[] parameters)
    {
        if (parameters.Length == 0) Guard.ThrowArg(Op, nameof(parameters), "no parameters were given.");
        var names = new string[parameters.Length];
        var tensors = new Tensor[parameters.Length];
        var offsets = new int[parameters.Length];
        long total = 0;
        for (int i = 0; i < parameters.Length; i++)
        {
            var (name, p) = parameters[i];
            Guard.NotNull(p, Op, nameof(parameters));
            if (!p.DType.IsFloatingPoint())
                Guard.ThrowArg(Op, nameof(parameters), $"parameter '{name}' (shape {Guard.Shape(p)}) is {p.DType.Name()}, not floating point.");
            if (!p.RequiresGrad)
                Guard.ThrowArg(Op, nameof(parameters), $"parameter '{name}' (shape {Guard.Shape(p)}) does not require grad.");
            for (int j = 0; j < i; j++)
                if (ReferenceEquals(tensors[j], p))
                    Guard.ThrowArg(Op, nameof(parameters), $"parameter '{name}' is the same tensor as '{names[j]}'.");
            (names[i], tensors[i], offsets[i]) = (name, p, (int)total);
            total += p.NumEl;
            if (total > Array.MaxLength)
                Guard.ThrowArg(Op, nameof(parameters), $"{total} parameter elements exceed one array.");
        }
        return (names, tensors, offsets, (int)total);
    }

    private static Tensor CheckLoss(Tensor loss, string argument)
    {
        Guard.NotNull(loss, Op, argument);
        if (loss.NumEl != 1)
            Guard.ThrowArg(Op, argument, $"the loss must be a scalar, got shape {Guard.Shape(loss)}.");
        if (!loss.DType.IsFloatingPoint())
            Guard.ThrowArg(Op, argument, $"the loss must be floating point, got {loss.DType.Name()}.");
        if (!loss.RequiresGrad)
            Guard.ThrowArg(Op, argument, "the loss does not depend on any tensor that requires grad (was it computed under NoGrad, or from detached tensors?).");
        CurvatureGraph.CheckTwiceDifferentiable(loss);
        return loss;
    }

    private static (Tensor[], int[]) Differentiable(Tensor?[] grads)
    {
        var tensors = new List<Tensor>();
        var index = new List<int>();
        for (int i = 0; i < grads.Length; i++)
            if (grads[i] is { RequiresGrad: true } g) { tensors.Add(g); index.Add(i); }
        return ([.. tensors], [.. index]);
    }

    // One vectorised pass of squares (float32 lanes summed per block into a double); only when that overflows, or an
    // entry is not finite, the scan scaled by the largest entry, so a large but finite gradient still has a finite
    // norm and NaN stays NaN. (The scaled scan alone, two scalar passes with divisions, cost as much as a third of
    // the mlp bench's forward and createGraph backward.)
    private static double Norm(Tensor?[] grads)
    {
        double squares = 0;
        foreach (var g in grads)
            if (g is not null) squares += SumOfSquares(g.IsContiguous ? g : g.ContiguousRaw());
        if (double.IsFinite(squares)) return Math.Sqrt(squares);
        double max = 0, sq = 0;
        foreach (var g in grads)
            if (g is not null) max = Math.Max(max, Scan(g, 0));
        if (max == 0 || !double.IsFinite(max)) return max;
        foreach (var g in grads)
            if (g is not null) sq += Scan(g, max);
        return max * Math.Sqrt(sq);
    }

    private static double SumOfSquares(Tensor c) => c.DType == DType.Float32
        ? ActivationKernels.SumSquares(c.Span<float>())
        : Kernels.Optim.ClipKernel.SumOfSquares<double>(c.Span<double>());

    // With scale 0 the largest |x| (NaN if any is NaN), else the sum of (x / scale)^2.
    private static double Scan(Tensor g, double scale)
    {
        var c = g.IsContiguous ? g : g.ContiguousRaw();
        double r = 0;
        if (c.DType == DType.Float32)
            foreach (var x in c.Span<float>()) r = scale == 0 ? Math.Max(r, Math.Abs(x)) : r + (x / scale * (x / scale));
        else
            foreach (var x in c.Span<double>()) r = scale == 0 ? Math.Max(r, Math.Abs(x)) : r + (x / scale * (x / scale));
        return r;
    }

    private double[] Flatten(Tensor?[] grads)
    {
        var flat = new double[Dimension];
        for (int p = 0; p < _params.Length; p++)
            _ = grads[p]?.CopyToDoubles(flat.AsSpan(_offsets[p], _params[p].NumEl));
        return flat;
    }

    private void ThrowNonFiniteProduct(ReadOnlySpan<double> result)
    {
        for (int p = 0; p < _params.Length; p++)
        {
            var block = result.Slice(_offsets[p], _params[p].NumEl);
            int bad = 0;
            foreach (var x in block) if (!double.IsFinite(x)) bad++;
            if (bad > 0)
                Guard.ThrowInvalid(Op, $"the {Kind} product is not finite for parameter '{_names[p]}' (shape {Guard.Shape(_params[p])}): " +
                    $"{bad} of {block.Length} entries are NaN or infinite (loss {Loss:G6}, gradient norm {GradientNorm:G6}); " +
                    "an op's second derivative overflows at these weights.");
        }
    }
}
