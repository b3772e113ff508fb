using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// Adam (Kingma and Ba 2015) with optional AMSGrad (Reddi et al. 2018), L2 weight decay added to the
/// gradient, and maximisation, as torch.optim.Adam (1.13). Options: "lr", "beta1", "beta2", "eps",
/// "weight_decay", "amsgrad", "maximize". State: "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (AMSGrad).
/// </summary>
public class Adam : Optimizer
{
    /// <summary>Adam over one group of parameters.</summary>
    public Adam(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, Options(lr, beta1, beta2, eps, weightDecay, amsgrad, maximize)) { }

    /// <summary>Adam over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public Adam(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base(groups, Options(lr, beta1, beta2, eps, weightDecay, amsgrad, maximize)) { }

    internal static Dictionary<string, double> Options(double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad, bool maximize) => new()
    {
        ["lr"] = lr, ["beta1"] = beta1, ["beta2"] = beta2, ["eps"] = eps, ["weight_decay"] = weightDecay,
        ["amsgrad"] = amsgrad ? 1 : 0, ["maximize"] = maximize ? 1 : 0,
    };

    /// <summary>True for AdamW: weight decay shrinks the weights directly instead of joining the gradient.</summary>
    private protected virtual bool Decoupled => false;

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
        if (group.Flag("amsgrad")) state.Buffers["max_exp_avg_sq"] = ZerosLike(param);
    }

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        var m = state.Buffer("exp_avg");
        var v = state.Buffer("exp_avg_sq");
        bool amsgrad = group.Flag("amsgrad");
        if (amsgrad && !state.Buffers.ContainsKey("max_exp_avg_sq")) state.Buffers["max_exp_avg_sq"] = ZerosLike(param);
        var vmax = amsgrad ? state.Buffers["max_exp_avg_sq"] : null;
        double lr = group.Lr, b1 = group["beta1"], b2 = group["beta2"], eps = group["eps"], wd = group.WeightDecay;
        bool maximize = group.Flag("maximize");
        var blocks = new Blocks(param, grad, m, v, vmax, lr, b1, b2, eps, wd, Decoupled, amsgrad, maximize, state.Step);
        return UpdateStats.From(ParallelUpdate.Run(param.NumEl, measure, ref blocks));
    }

    private readonly struct Blocks(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? vmax, double lr, double b1, double b2,
        double eps, double wd, bool decoupled, bool amsgrad, bool maximize, long step) : IBlockUpdate
    {
        public UpdateSums Run(int start, int length, bool measure) => param.DType == DType.Float32
            ? AdamKernel.Step(param.Span<float>().Slice(start, length), grad.Span<float>().Slice(start, length), m.Span<float>().Slice(start, length),
                v.Span<float>().Slice(start, length), vmax is null ? default : vmax.Span<float>().Slice(start, length),
                lr, b1, b2, eps, wd, decoupled, amsgrad, maximize, step, measure)
            : AdamKernel.Step(param.Span<double>().Slice(start, length), grad.Span<double>().Slice(start, length), m.Span<double>().Slice(start, length),
                v.Span<double>().Slice(start, length), vmax is null ? default : vmax.Span<double>().Slice(start, length),
                lr, b1, b2, eps, wd, decoupled, amsgrad, maximize, step, measure);
    }
}

/// <summary>
/// AdamW (Loshchilov and Hutter 2019): Adam with decoupled weight decay, p ← p·(1 − lr·wd) before the
/// Adam step, as torch.optim.AdamW (1.13; default weight decay 0.01). Options and state as <see cref="Adam"/>.
/// </summary>
public sealed class AdamW : Adam
{
    /// <summary>AdamW over one group of parameters.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <summary>AdamW over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : base(groups, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    private protected override bool Decoupled => true;
}
