using GradFlow.Diagnostics;

namespace GradFlow.Bench.Cases;

/// <summary>
/// One Hessian-vector product on a kept graph, as Lanczos spends them: the operator (forward and the gradient with
/// createGraph) is made once in <see cref="Setup"/>, and a step is the double backward alone. PyTorch's twin keeps
/// its create_graph gradients and calls autograd.grad(grads, params, v, retain_graph=True); torch twins
/// "hvp_kept_mlp", "hvp_kept_cnn". A probe of K products costs one <see cref="HvpCase"/> plus K - 1 of these.
/// </summary>
internal sealed class HvpKeptCase(TrainingCase inner) : IBenchCase
{
    private CurvatureOperator _op = null!;
    private double[] _v = [], _result = [];

    public string Name => "hvp_kept_" + inner.Name;

    public double FlopsPerStep => 0;

    public void Setup()
    {
        inner.Setup();
        _op = CurvatureOperator.Hessian(inner.BatchLoss, inner.BuiltModel);
        var gen = new Generator(1);
        (_v, _result) = (new double[_op.Dimension], new double[_op.Dimension]);
        for (int i = 0; i < _v.Length; i++) _v[i] = gen.NextNormal();
    }

    public void Step() => _op.Apply(_v, _result);
}
