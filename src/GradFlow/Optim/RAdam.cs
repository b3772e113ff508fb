using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// RAdam (Liu et al. 2020, "On the variance of the adaptive learning rate and beyond"), as
/// torch.optim.RAdam (1.13): plain momentum SGD while the variance estimate is unreliable (ρₜ ≤ 5),
/// rectified Adam afterwards. Options: "lr", "beta1", "beta2", "eps", "weight_decay".
/// State: "exp_avg", "exp_avg_sq".
/// </summary>
public sealed class RAdam : Optimizer
{
    /// <summary>RAdam over one group of parameters.</summary>
    public RAdam(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : base(parameters, Options(lr, beta1, beta2, eps, weightDecay)) { }

    /// <summary>RAdam over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public RAdam(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : base(groups, Options(lr, beta1, beta2, eps, weightDecay)) { }

    private static Dictionary<string, double> Options(double lr, double beta1, double beta2, double eps, double weightDecay) => new()
    {
        ["lr"] = lr, ["beta1"] = beta1, ["beta2"] = beta2, ["eps"] = eps, ["weight_decay"] = weightDecay,
    };

    /// <inheritdoc />
    protected override void ValidateGroup(ParamGroup group)
    {
        CheckRange(group, "lr", 0, double.PositiveInfinity);
        CheckRange(group, "eps", 0, double.PositiveInfinity, minExclusive: true);
        CheckRange(group, "beta1", 0, 1, maxExclusive: true);
        CheckRange(group, "beta2", 0, 1, maxExclusive: true);
        CheckRange(group, "weight_decay", 0, double.PositiveInfinity);
    }

    /// <inheritdoc />
    protected override void InitState(ParamGroup group, Tensor param, ParamState state)
    {
        state.Buffers["exp_avg"] = ZerosLike(param);
        state.Buffers["exp_avg_sq"] = ZerosLike(param);
    }

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        var m = state.Buffer("exp_avg");
        var v = state.Buffer("exp_avg_sq");
        double lr = group.Lr, b1 = group["beta1"], b2 = group["beta2"], eps = group["eps"], wd = group.WeightDecay;
        var sums = param.DType == DType.Float32
            ? RAdamKernel.Step(param.Span<float>(), grad.Span<float>(), m.Span<float>(), v.Span<float>(), lr, b1, b2, eps, wd, state.Step, measure)
            : RAdamKernel.Step(param.Span<double>(), grad.Span<double>(), m.Span<double>(), v.Span<double>(), lr, b1, b2, eps, wd, state.Step, measure);
        return UpdateStats.From(sums);
    }
}
