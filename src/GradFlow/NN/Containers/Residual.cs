namespace GradFlow.NN;

/// <summary>A skip connection: x + inner(x). The inner module's parameters are named "inner.*".</summary>
public sealed class Residual : Module
{
    /// <summary>Wraps a module whose output has its input's shape.</summary>
    public Residual(Module inner) => Inner = RegisterModule("inner", inner);

    /// <summary>The wrapped module.</summary>
    public Module Inner { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var y = Inner.Call(input);
        if (!Shapes.Equal(y.Shape, input.Shape))
            Guard.ThrowArg(TypeName, nameof(input), $"the inner {Inner.TypeName} maps {Guard.Shape(input)} to {Guard.Shape(y)}; a residual needs the same shape.");
        return input + y;
    }
}
