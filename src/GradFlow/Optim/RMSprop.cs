using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// RMSprop (Hinton, lecture 6e) with the centered variant (Graves 2013), momentum, L2 weight decay and
/// maximisation, as torch.optim.RMSprop (1.13). Options: "lr", "alpha", "eps", "weight_decay",
/// "momentum", "centered", "maximize". State: "square_avg", "momentum_buffer", "grad_avg" (centered).
/// </summary>
public sealed class RMSprop : Optimizer
{
    /// <summary>RMSprop over one group of parameters.</summary>
    public RMSprop(IEnumerable<Tensor> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8,
        double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : base(parameters, Options(lr, alpha, eps, weightDecay, momentum, centered, maximize)) { }

    /// <summary>RMSprop over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public RMSprop(IEnumerable<ParamGroup> groups, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8,
        double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : base(groups, Options(lr, alpha, eps, weightDecay, momentum, centered, maximize)) { }

    private static Dictionary<string, double> Options(double lr, double alpha, double eps, double weightDecay, double momentum, bool centered, bool maximize) => new()
    {
        ["lr"] = lr, ["alpha"] = alpha, ["eps"] = eps, ["weight_decay"] = weightDecay, ["momentum"] = momentum,
        ["centered"] = centered ? 1 : 0, ["maximize"] = maximize ? 1 : 0,
    };

    /// <inheritdoc />
    protected override void ValidateGroup(ParamGroup group)
    {
        CheckRange(group, "lr", 0, double.PositiveInfinity);
        CheckRange(group, "eps", 0, double.PositiveInfinity, minExclusive: true);
        CheckRange(group, "alpha", 0, double.PositiveInfinity);
        CheckRange(group, "momentum", 0, double.PositiveInfinity);
        CheckRange(group, "weight_decay", 0, double.PositiveInfinity);
    }

    /// <inheritdoc />
    protected override void InitState(ParamGroup group, Tensor param, ParamState state)
    {
        state.Buffers["square_avg"] = ZerosLike(param);
        if (group["momentum"] > 0) state.Buffers["momentum_buffer"] = ZerosLike(param);
        if (group.Flag("centered")) state.Buffers["grad_avg"] = ZerosLike(param);
    }

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        double momentum = group["momentum"];
        bool centered = group.Flag("centered"), maximize = group.Flag("maximize");
        var s = state.Buffer("square_avg");
        var a = centered ? Ensure(state, "grad_avg", param) : null;
        var b = momentum > 0 ? Ensure(state, "momentum_buffer", param) : null;
        double lr = group.Lr, alpha = group["alpha"], eps = group["eps"], wd = group.WeightDecay;
        var sums = param.DType == DType.Float32
            ? RmspropKernel.Step(param.Span<float>(), grad.Span<float>(), s.Span<float>(), a is null ? default : a.Span<float>(), b is null ? default : b.Span<float>(),
                lr, alpha, eps, wd, momentum, centered, maximize, measure)
            : RmspropKernel.Step(param.Span<double>(), grad.Span<double>(), s.Span<double>(), a is null ? default : a.Span<double>(), b is null ? default : b.Span<double>(),
                lr, alpha, eps, wd, momentum, centered, maximize, measure);
        return UpdateStats.From(sums);
    }

    // An option switched on after the first step gets its buffer then, starting from zero.
    private static Tensor Ensure(ParamState state, string name, Tensor param)
    {
        if (!state.Buffers.TryGetValue(name, out var t)) state.Buffers[name] = t = ZerosLike(param);
        return t;
    }
}
