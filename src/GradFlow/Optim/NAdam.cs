using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// NAdam (Dozat 2016, "Incorporating Nesterov momentum into Adam") with momentum decay ψ, as
/// torch.optim.NAdam (1.13). Options: "lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay".
/// State: "exp_avg", "exp_avg_sq" and the scalar "mu_product".
/// </summary>
public sealed class NAdam : Optimizer
{
    /// <summary>NAdam over one group of parameters.</summary>
    public NAdam(IEnumerable<Tensor> parameters, double lr = 2e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, double momentumDecay = 4e-3)
        : base(parameters, Options(lr, beta1, beta2, eps, weightDecay, momentumDecay)) { }

    /// <summary>NAdam over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public NAdam(IEnumerable<ParamGroup> groups, double lr = 2e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, double momentumDecay = 4e-3)
        : base(groups, Options(lr, beta1, beta2, eps, weightDecay, momentumDecay)) { }

    private static Dictionary<string, double> Options(double lr, double beta1, double beta2, double eps, double weightDecay, double momentumDecay) => new()
    {
        ["lr"] = lr, ["beta1"] = beta1, ["beta2"] = beta2, ["eps"] = eps, ["weight_decay"] = weightDecay, ["momentum_decay"] = momentumDecay,
    };

    /// <inheritdoc />
    protected override void ValidateGroup(ParamGroup group)
    {
        CheckRange(group, "lr", 0, double.PositiveInfinity);
        CheckRange(group, "eps", 0, double.PositiveInfinity, minExclusive: true);
        CheckRange(group, "beta1", 0, 1, maxExclusive: true);
        CheckRange(group, "beta2", 0, 1, maxExclusive: true);
        CheckRange(group, "weight_decay", 0, double.PositiveInfinity);
        CheckRange(group, "momentum_decay", 0, double.PositiveInfinity);
    }

    /// <inheritdoc />
    protected override void InitState(ParamGroup group, Tensor param, ParamState state)
    {
        state.Buffers["exp_avg"] = ZerosLike(param);
        state.Buffers["exp_avg_sq"] = ZerosLike(param);
        state.Scalars["mu_product"] = 1;
    }

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        double lr = group.Lr, b1 = group["beta1"], b2 = group["beta2"], eps = group["eps"], wd = group.WeightDecay, psi = group["momentum_decay"];
        long t = state.Step;
        // Momentum schedule μₜ = β1·(1 − ½·0.96^(t·ψ)). PyTorch 1.13 forms the next product as Πₜ·μₜ·μₜ₊₁
        // (μₜ counted twice); we follow it so trajectories match.
        double mu = b1 * (1.0 - 0.5 * Math.Pow(0.96, t * psi));
        double muNext = b1 * (1.0 - 0.5 * Math.Pow(0.96, (t + 1) * psi));
        double muProduct = state.Scalars["mu_product"] * mu;
        state.Scalars["mu_product"] = muProduct;
        double muProductNext = muProduct * mu * muNext;
        double gradCoeff = -lr * (1.0 - mu) / (1.0 - muProduct);
        double avgCoeff = -lr * muNext / (1.0 - muProductNext);
        var m = state.Buffer("exp_avg");
        var v = state.Buffer("exp_avg_sq");
        var sums = param.DType == DType.Float32
            ? NAdamKernel.Step(param.Span<float>(), grad.Span<float>(), m.Span<float>(), v.Span<float>(), b1, b2, eps, wd, gradCoeff, avgCoeff, t, measure)
            : NAdamKernel.Step(param.Span<double>(), grad.Span<double>(), m.Span<double>(), v.Span<double>(), b1, b2, eps, wd, gradCoeff, avgCoeff, t, measure);
        return UpdateStats.From(sums);
    }
}
