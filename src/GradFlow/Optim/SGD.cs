using GradFlow.Kernels.Optim;

namespace GradFlow.Optim;

/// <summary>
/// Stochastic gradient descent with momentum, dampening, Nesterov momentum, L2 weight decay and
/// maximisation, as torch.optim.SGD (1.13). Options: "lr", "momentum", "dampening", "weight_decay",
/// "nesterov", "maximize". State: "momentum_buffer" (created from the first gradient, as PyTorch does).
/// </summary>
public sealed class SGD : Optimizer
{
    /// <summary>SGD over one group of parameters.</summary>
    public SGD(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : base(parameters, Options(lr, momentum, dampening, weightDecay, nesterov, maximize)) { }

    /// <summary>SGD over parameter groups; the arguments are the defaults for options a group does not set.</summary>
    public SGD(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : base(groups, Options(lr, momentum, dampening, weightDecay, nesterov, maximize)) { }

    private static Dictionary<string, double> Options(double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool maximize) => new()
    {
        ["lr"] = lr, ["momentum"] = momentum, ["dampening"] = dampening, ["weight_decay"] = weightDecay,
        ["nesterov"] = nesterov ? 1 : 0, ["maximize"] = maximize ? 1 : 0,
    };

    /// <inheritdoc />
    protected override void ValidateGroup(ParamGroup group)
    {
        CheckRange(group, "lr", 0, double.PositiveInfinity);
        CheckRange(group, "momentum", 0, double.PositiveInfinity);
        CheckRange(group, "weight_decay", 0, double.PositiveInfinity);
        CheckRange(group, "dampening", double.NegativeInfinity, double.PositiveInfinity);
        if (group.Flag("nesterov") && (group["momentum"] <= 0 || group["dampening"] != 0))
            Guard.ThrowArg(nameof(SGD), "nesterov", $"Nesterov momentum requires a momentum and zero dampening (momentum {group["momentum"]}, dampening {group["dampening"]}).");
    }

    /// <inheritdoc />
    protected override void InitState(ParamGroup group, Tensor param, ParamState state) { }

    /// <inheritdoc />
    protected override (IEnumerable<string> Buffers, IEnumerable<string> Scalars) StateNames(ParamGroup group, DType dtype) =>
        (group["momentum"] != 0 ? ["momentum_buffer"] : [], []);

    /// <inheritdoc />
    protected override UpdateStats Update(ParamGroup group, Tensor param, Tensor grad, ParamState state, bool measure)
    {
        double momentum = group["momentum"];
        bool first = false;
        Tensor? buf = null;
        if (momentum != 0 && !state.Buffers.TryGetValue("momentum_buffer", out buf))
        {
            buf = Tensor.ZerosLike(param);
            state.Buffers["momentum_buffer"] = buf;
            first = true;
        }
        double lr = group.Lr, dampening = group["dampening"], wd = group.WeightDecay;
        bool nesterov = group.Flag("nesterov"), maximize = group.Flag("maximize");
        var blocks = new Blocks(param, grad, buf, lr, momentum, dampening, wd, nesterov, maximize, first);
        return UpdateStats.From(ParallelUpdate.Run(param.NumEl, measure, ref blocks));
    }

    private readonly struct Blocks(Tensor param, Tensor grad, Tensor? buf, double lr, double momentum, double dampening, double wd,
        bool nesterov, bool maximize, bool first) : IBlockUpdate
    {
        public UpdateSums Run(int start, int length, bool measure) => param.DType == DType.Float32
            ? SgdKernel.Step(param.Span<float>().Slice(start, length), grad.Span<float>().Slice(start, length),
                buf is null ? default : buf.Span<float>().Slice(start, length), lr, momentum, dampening, wd, nesterov, maximize, first, measure)
            : SgdKernel.Step(param.Span<double>().Slice(start, length), grad.Span<double>().Slice(start, length),
                buf is null ? default : buf.Span<double>().Slice(start, length), lr, momentum, dampening, wd, nesterov, maximize, first, measure);
    }
}
