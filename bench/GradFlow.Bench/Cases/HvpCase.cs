using GradFlow.Diagnostics;

namespace GradFlow.Bench.Cases;

/// <summary>
/// One exact Hessian-vector product of a training case's loss, counted as PyTorch's twin does it: forward, the
/// gradient with createGraph, and the double backward with a fixed random vector (a CurvatureOperator made and
/// applied once into a reused array, and disposed so the next step's operator reuses its buffers). torch twins "hvp_mlp", "hvp_cnn".
/// </summary>
internal sealed class HvpCase(TrainingCase inner) : IBenchCase
{
    private double[] _v = [], _result = [];

    public string Name => "hvp_" + inner.Name;

    public double FlopsPerStep => 0;

    public void Setup()
    {
        inner.Setup();
        int n = (int)inner.BuiltModel.Parameters().Sum(p => (long)p.NumEl);
        var gen = new Generator(1);
        (_v, _result) = (new double[n], new double[n]);
        for (int i = 0; i < n; i++) _v[i] = gen.NextNormal();
    }

    public void Step()
    {
        using var op = CurvatureOperator.Hessian(inner.BatchLoss, inner.BuiltModel);
        op.Apply(_v, _result);
    }
}
