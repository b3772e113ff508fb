using GradFlow.NN;

namespace GradFlow.Tests.Diagnostics.Curvature;

/// <summary>
/// Every layer and loss as a small curvature problem: parameters (the layer's and, for layers, its input) and a
/// scalar loss closure. A layer's output y enters the loss as sum(r * y^2), so even a linear layer has a non-zero
/// Hessian; a loss is applied to a linear layer's output. Built in either float dtype from the same seeds.
/// </summary>
internal static class CurvatureCases
{
    public sealed record Problem(Tensor[] Parameters, Func<Tensor> Loss);

    private static Tensor Data(DType dt, ulong seed, params int[] shape) =>
        Tensor.Randn(shape, DType.Float64, new Generator(seed)).To(dt);

    private static Problem Layer(Module m, DType dt, Func<Tensor, Tensor> call, params int[] inputShape)
    {
        var x = Data(dt, 11, inputShape).RequireGrad();
        var y0 = call(x);
        var r = Data(dt, 12, [.. y0.Shape]);
        return new Problem([x, .. m.Parameters()], () => (call(x).Pow(2) * r).Sum());
    }

    private static Problem WithLoss(Func<Tensor, Tensor, Tensor> loss, Tensor target, DType dt, int classes = 4, Func<Tensor, Tensor>? after = null)
    {
        var lin = new Linear(5, classes, dtype: dt, generator: new Generator(3));
        var x = Data(dt, 11, 6, 5);
        return new Problem([.. lin.Parameters()], () => loss((after ?? (z => z))(lin.Call(x)), target));
    }

    private static Module Act(Module act, DType dt) => new Sequential(new Linear(5, 4, dtype: dt, generator: new Generator(3)), act);

    public static readonly Dictionary<string, Func<DType, Problem>> All = new()
    {
        ["linear"] = dt => { var m = new Linear(5, 4, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 3, 5); },
        ["conv2d"] = dt => { var m = new Conv2d(2, 3, 3, padding: 1, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 2, 2, 5, 5); },
        ["conv2d_strided_dilated_groups"] = dt =>
        {
            var m = new Conv2d(4, 4, 3, stride: 2, padding: 2, dilation: 2, groups: 2, dtype: dt, generator: new Generator(3));
            return Layer(m, dt, m.Call, 2, 4, 7, 6);
        },
        ["conv1d"] = dt => { var m = new Conv1d(2, 3, 3, stride: 2, padding: 1, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 2, 2, 7); },
        ["conv_transpose2d"] = dt =>
        {
            var m = new ConvTranspose2d(2, 3, 3, stride: 2, padding: 1, outputPadding: 1, dtype: dt, generator: new Generator(3));
            return Layer(m, dt, m.Call, 1, 2, 3, 3);
        },
        ["maxpool2d"] = dt => { var m = new MaxPool2d(2); return Layer(m, dt, m.Call, 2, 3, 6, 6); },
        ["maxpool2d_padded"] = dt => { var m = new MaxPool2d(3, stride: 2, padding: 1); return Layer(m, dt, m.Call, 1, 2, 7, 7); },
        ["avgpool2d"] = dt => { var m = new AvgPool2d(3, stride: 2, padding: 1); return Layer(m, dt, m.Call, 1, 2, 6, 6); },
        ["adaptive_avgpool2d"] = dt => { var m = new AdaptiveAvgPool2d((2, 3)); return Layer(m, dt, m.Call, 1, 2, 5, 7); },
        ["batchnorm1d"] = dt => { var m = new BatchNorm1d(4, dtype: dt); return Layer(m, dt, m.Call, 6, 4); },
        ["batchnorm2d"] = dt => { var m = new BatchNorm2d(3, dtype: dt); return Layer(m, dt, m.Call, 2, 3, 3, 3); },
        ["layernorm"] = dt => { var m = new LayerNorm(5, dtype: dt); return Layer(m, dt, m.Call, 3, 5); },
        ["groupnorm"] = dt => { var m = new GroupNorm(2, 4, dtype: dt); return Layer(m, dt, m.Call, 2, 4, 3, 3); },
        ["embedding"] = dt =>
        {
            var m = new Embedding(7, 3, dtype: dt, generator: new Generator(3));
            var idx = Tensor.FromArray(new long[] { 1, 4, 4, 6, 0 }, 5);
            var r = Data(dt, 12, 5, 3);
            return new Problem([.. m.Parameters()], () => (m.Call(idx).Pow(2) * r).Sum());
        },
        ["rnn_tanh"] = dt => { var m = new RNN(3, 4, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 5, 2, 3); },
        ["rnn_relu"] = dt => { var m = new RNN(3, 4, relu: true, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 5, 2, 3); },
        ["lstm"] = dt => { var m = new LSTM(3, 4, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 5, 2, 3); },
        ["lstm_two_layer_bidirectional"] = dt =>
        {
            var m = new LSTM(3, 4, numLayers: 2, bidirectional: true, batchFirst: true, dtype: dt, generator: new Generator(3));
            return Layer(m, dt, m.Call, 2, 4, 3);
        },
        ["gru"] = dt => { var m = new GRU(3, 4, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 5, 2, 3); },
        ["multihead_attention"] = dt => { var m = new MultiheadAttention(4, 2, dtype: dt, generator: new Generator(3)); return Layer(m, dt, m.Call, 3, 2, 4); },
        ["multihead_attention_cross_masked"] = dt =>
        {
            var m = new MultiheadAttention(4, 2, batchFirst: true, dtype: dt, generator: new Generator(3));
            var kv = Data(dt, 13, 2, 5, 4).RequireGrad();
            var mask = Tensor.FromArray(new long[] { 0, 0, 0, 1, 1, 0, 0, 0, 0, 1 }, 2, 5);
            var p = Layer(m, dt, q => m.Call(q, kv, kv, mask).Output, 2, 3, 4);
            return p with { Parameters = [.. p.Parameters, kv] };
        },
        ["transformer_encoder_layer"] = dt =>
        {
            var m = new TransformerEncoderLayer(4, 2, 8, dropout: 0, dtype: dt, generator: new Generator(3));
            return Layer(m, dt, m.Call, 3, 2, 4);
        },
        ["transformer_decoder_layer"] = dt =>
        {
            var m = new TransformerDecoderLayer(4, 2, 8, dropout: 0, dtype: dt, generator: new Generator(3));
            var memory = Data(dt, 13, 4, 2, 4).RequireGrad();
            var p = Layer(m, dt, t => m.Call(t, memory), 3, 2, 4);
            return p with { Parameters = [.. p.Parameters, memory] };
        },
        ["relu"] = dt => { var m = Act(new ReLU(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["sigmoid"] = dt => { var m = Act(new Sigmoid(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["tanh"] = dt => { var m = Act(new Tanh(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["leaky_relu"] = dt => { var m = Act(new LeakyReLU(0.1), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["elu"] = dt => { var m = Act(new ELU(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["selu"] = dt => { var m = Act(new SELU(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["gelu"] = dt => { var m = Act(new GELU(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["gelu_tanh"] = dt => { var m = Act(new GELU(tanhApproximation: true), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["silu"] = dt => { var m = Act(new SiLU(), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["softplus"] = dt => { var m = Act(new Softplus(beta: 2), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["hardtanh"] = dt => { var m = Act(new Hardtanh(-0.5, 0.5), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["softmax"] = dt => { var m = Act(new Softmax(1), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["log_softmax"] = dt => { var m = Act(new LogSoftmax(1), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["prelu"] = dt => { var m = Act(new PReLU(4, dtype: dt), dt); return Layer(m, dt, m.Call, 3, 5); },
        ["cross_entropy"] = dt => WithLoss(new CrossEntropyLoss().Call, Labels(), dt),
        ["cross_entropy_weighted_smoothed"] = dt =>
            WithLoss(new CrossEntropyLoss(Tensor.FromArray(new[] { 1.0, 2.0, 0.5, 1.5 }, 4).To(dt), labelSmoothing: 0.1).Call, Labels(), dt),
        ["cross_entropy_probabilities"] = dt => WithLoss(new CrossEntropyLoss().Call, Data(dt, 14, 6, 4).Softmax(1), dt),
        ["nll"] = dt => WithLoss(new NLLLoss().Call, Labels(), dt, after: z => z.LogSoftmax(1)),
        ["mse"] = dt => WithLoss(new MSELoss().Call, Data(dt, 14, 6, 4), dt),
        ["smooth_l1"] = dt => WithLoss(new SmoothL1Loss(beta: 2).Call, Data(dt, 14, 6, 4), dt),
        ["huber"] = dt => WithLoss(new HuberLoss(delta: 2).Call, Data(dt, 14, 6, 4), dt),
        ["bce"] = dt => WithLoss(new BCELoss().Call, Data(dt, 14, 6, 4).Sigmoid(), dt, after: z => z.Sigmoid()),
        ["bce_with_logits"] = dt => WithLoss(new BCEWithLogitsLoss(posWeight: Tensor.Full([4], 2.0, dt)).Call, Data(dt, 14, 6, 4).Sigmoid(), dt),
        ["kl_div"] = dt => WithLoss(new KLDivLoss(Reduction.BatchMean).Call, Data(dt, 14, 6, 4).Softmax(1), dt, after: z => z.LogSoftmax(1)),
    };

    private static Tensor Labels() => Tensor.FromArray(new long[] { 0, 3, 1, 2, 3, 0 }, 6);

    public static IEnumerable<object[]> Names => All.Keys.Select(k => new object[] { k });
}
