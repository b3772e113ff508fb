using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// Adagrad (Duchi, Hazan and Singer 2011) with learning-rate decay, L2 weight decay and maximisation,
/// as torch.optim.Adagrad (1.13, dense gradients). Options: "lr", "lr_decay", "weight_decay",
/// "initial_accumulator_value", "eps", "maximize". State: "sum".
/// </summary>
public sealed class Adagrad : Optimizer
{
    /// <summary>Adagrad over one group of parameters.</summary>
    public Adagrad(IEnumerable<Tensor> parameters, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0,
        double initialAccumulatorValue = 0, double eps = 1e-10, bool maximize = false)
        : base(parameters, Options(lr, lrDecay, weightDecay, initialAccumulatorValue, eps, maximize)) { }

    /// <summary>Adagrad over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public Adagrad(IEnumerable<ParamGroup> groups, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0,
        double initialAccumulatorValue = 0, double eps = 1e-10, bool maximize = false)
        : base(groups, Options(lr, lrDecay, weightDecay, initialAccumulatorValue, eps, maximize)) { }

    private static Dictionary<string, double> Options(double lr, double lrDecay, double weightDecay, double initial, double eps, bool maximize) => new()
    {
        ["lr"] = lr, ["lr_decay"] = lrDecay, ["weight_decay"] = weightDecay, ["initial_accumulator_value"] = initial,
        ["eps"] = eps, ["maximize"] = maximize ? 1 : 0,
    };

    /// <inheritdoc />
    protected override void ValidateGroup(ParamGroup group)
    {
        CheckRange(group, "lr", 0, double.PositiveInfinity);
        CheckRange(group, "lr_decay", 0, double.PositiveInfinity);
        CheckRange(group, "weight_decay", 0, double.PositiveInfinity);
        CheckRange(group, "initial_accumulator_value", 0, double.PositiveInfinity);
        CheckRange(group, "eps", 0, double.PositiveInfinity, minExclusive: true);
    }

    /// <inheritdoc />
    protected override void InitState(ParamGroup group, Tensor param, ParamState state) =>
        state.Buffers["sum"] = Tensor.FullLike(param, group["initial_accumulator_value"]);

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        var s = state.Buffer("sum");
        double lr = group.Lr, lrDecay = group["lr_decay"], eps = group["eps"], wd = group.WeightDecay;
        bool maximize = group.Flag("maximize");
        var sums = param.DType == DType.Float32
            ? AdagradKernel.Step(param.Span<float>(), grad.Span<float>(), s.Span<float>(), lr, lrDecay, eps, wd, maximize, state.Step, measure)
            : AdagradKernel.Step(param.Span<double>(), grad.Span<double>(), s.Span<double>(), lr, lrDecay, eps, wd, maximize, state.Step, measure);
        return UpdateStats.From(sums);
    }
}
