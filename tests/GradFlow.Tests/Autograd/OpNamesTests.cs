using System.Reflection;
using GradFlow.NN;

namespace GradFlow.Tests.AutogradTests;

using Autograd = GradFlow.Autograd;

/// <summary>Ops record themselves under the <see cref="OpNames"/> constants, so observers and exporters can match on them.</summary>
public class OpNamesTests
{
    private sealed class Names : IAutogradObserver
    {
        public readonly HashSet<string> Seen = [];
        public void OnForward(string op, ReadOnlySpan<Tensor> inputs, Tensor output, Node? node) => Seen.Add(op);
        public void OnBackward(Node node, ReadOnlySpan<Tensor?> gradOutputs, ReadOnlySpan<Tensor?> gradInputs) { }
    }

    [Fact]
    public void EveryRecordedOpIsNamedByAConstant()
    {
        var constants = typeof(OpNames).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetRawConstantValue()!).ToHashSet();
        Assert.Equal(typeof(OpNames).GetFields().Length, constants.Count); // no two constants share a name
        foreach (var c in constants) Assert.Equal(c, typeof(OpNames).GetField(c)?.GetRawConstantValue()); // each named as it reads

        var g = new Generator(3);
        var names = new Names();
        using (Autograd.AddObserver(names))
        {
            var conv = new Sequential(new Conv2d(1, 4, 3, generator: g), new ReLU(), new MaxPool2d((2, 2)), new Flatten(), new Linear(4 * 3 * 3, 6, generator: g), new Tanh());
            var lstm = new LSTM(6, 5, generator: g);
            var attention = new MultiheadAttention(5, 1, generator: g);
            var x = Tensor.Randn([2, 1, 8, 8], DType.Float32, g);
            var h = conv.Call(x).Reshape(2, 1, 6);
            var (seq, _) = lstm.Call(h, null);
            var (a, _) = attention.Call(seq, seq, seq);
            var logits = new Linear(5, 3, generator: g).Call(new LayerNorm([5]).Call(a.Sigmoid())).Reshape(2, 3);
            var loss = Functional.CrossEntropy(logits, Tensor.FromArray(new long[] { 0, 2 }, 2)) + logits.Softmax(1).Pow(2.0).Mean();
            loss.Backward();
        }
        var unnamed = names.Seen.Where(n => !constants.Contains(n)).ToArray();
        Assert.True(unnamed.Length == 0, $"ops recorded under names that are not OpNames constants: {string.Join(", ", unnamed)}");
        foreach (var op in new[] { OpNames.Conv2d, OpNames.Relu, OpNames.MaxPool2d, OpNames.Linear, OpNames.Tanh, OpNames.Lstm, OpNames.Sigmoid,
                     OpNames.ScaledDotProductAttention, OpNames.LayerNorm, OpNames.CrossEntropy, OpNames.Softmax })
            Assert.Contains(op, names.Seen);
    }
}
