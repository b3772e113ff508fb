using GradFlow.Optim;

namespace GradFlow.Tests.Optim;

/// <summary>Every optimiser refuses a hyper-parameter that would break its first step, naming itself, the argument and the value.</summary>
public class HyperParameterValidationTests
{
    private static Tensor P() => Tensor.Zeros([2]).RequireGrad();

    public static IEnumerable<object[]> BadValues()
    {
        foreach (double v in new[] { double.PositiveInfinity, double.NaN, -0.1 })
        {
            yield return ["SGD", "lr", v, (Func<Optimizer>)(() => new SGD([P()], lr: v))];
            yield return ["Adam", "lr", v, (Func<Optimizer>)(() => new Adam([P()], lr: v))];
            yield return ["AdamW", "lr", v, (Func<Optimizer>)(() => new AdamW([P()], lr: v))];
            yield return ["RMSprop", "lr", v, (Func<Optimizer>)(() => new RMSprop([P()], lr: v))];
            yield return ["Adagrad", "lr", v, (Func<Optimizer>)(() => new Adagrad([P()], lr: v))];
            yield return ["NAdam", "lr", v, (Func<Optimizer>)(() => new NAdam([P()], lr: v))];
            yield return ["RAdam", "lr", v, (Func<Optimizer>)(() => new RAdam([P()], lr: v))];
            yield return ["SGD", "momentum", v, (Func<Optimizer>)(() => new SGD([P()], lr: 0.1, momentum: v))];
            yield return ["SGD", "weight_decay", v, (Func<Optimizer>)(() => new SGD([P()], lr: 0.1, weightDecay: v))];
            yield return ["Adam", "weight_decay", v, (Func<Optimizer>)(() => new Adam([P()], weightDecay: v))];
            yield return ["RMSprop", "momentum", v, (Func<Optimizer>)(() => new RMSprop([P()], momentum: v))];
        }
        foreach (double v in new[] { 1.0, 1.5, -0.1, double.NaN })
        {
            yield return ["Adam", "beta1", v, (Func<Optimizer>)(() => new Adam([P()], beta1: v))];
            yield return ["Adam", "beta2", v, (Func<Optimizer>)(() => new Adam([P()], beta2: v))];
            yield return ["NAdam", "beta1", v, (Func<Optimizer>)(() => new NAdam([P()], beta1: v))];
            yield return ["RAdam", "beta2", v, (Func<Optimizer>)(() => new RAdam([P()], beta2: v))];
        }
        foreach (double v in new[] { 0.0, -1e-8, double.PositiveInfinity })
        {
            yield return ["Adam", "eps", v, (Func<Optimizer>)(() => new Adam([P()], eps: v))];
            yield return ["RMSprop", "eps", v, (Func<Optimizer>)(() => new RMSprop([P()], eps: v))];
            yield return ["Adagrad", "eps", v, (Func<Optimizer>)(() => new Adagrad([P()], eps: v))];
        }
        yield return ["SGD", "dampening", double.NaN, (Func<Optimizer>)(() => new SGD([P()], lr: 0.1, momentum: 0.9, dampening: double.NaN))];
    }

    [Theory]
    [MemberData(nameof(BadValues))]
    public void BadValueIsRefusedNamingOptimiserArgumentAndValue(string optimiser, string argument, double value, Func<Optimizer> make)
    {
        var e = Assert.Throws<ArgumentException>(make);
        Assert.StartsWith(optimiser + ":", e.Message);
        Assert.Contains(argument, e.Message);
        Assert.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Fact]
    public void EdgesThatPyTorchAcceptsStillWork()
    {
        _ = new SGD([P()], lr: 0);
        _ = new Adam([P()], beta1: 0, beta2: 0, weightDecay: 0);
        _ = new SGD([P()], lr: 0.1, momentum: 0.9, dampening: 0.5);
    }
}
