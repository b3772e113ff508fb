using GradFlow.NN;
using static GradFlow.Tests.TestUtil;

namespace GradFlow.Tests.NN;

public class RecurrentTests
{
    // Several steps of float32 matrix products and saturating nonlinearities: a few ulps of drift per step.
    private const double Rtol = 1e-5, Atol = 1e-5;

    private static Dictionary<string, Tensor> RunRnn(RNN m, Dictionary<string, Tensor> xs)
    {
        var (y, h) = m.Call(xs["x"], xs.GetValueOrDefault("h0"));
        return new() { ["y"] = y, ["h"] = h };
    }

    private static Dictionary<string, Tensor> RunGru(GRU m, Dictionary<string, Tensor> xs)
    {
        var (y, h) = m.Call(xs["x"], xs.GetValueOrDefault("h0"));
        return new() { ["y"] = y, ["h"] = h };
    }

    private static Dictionary<string, Tensor> RunLstm(LSTM m, Dictionary<string, Tensor> xs)
    {
        var (y, (h, c)) = m.Call(xs["x"], xs.ContainsKey("h0") ? (xs["h0"], xs["c0"]) : null);
        return new() { ["y"] = y, ["h"] = h, ["c"] = c };
    }

    [Fact]
    public void RnnTanhMatchesPyTorch()
    {
        var m = new RNN(3, 4);
        NNFixtures.Check("rnn_tanh", m, xs => RunRnn(m, xs), Rtol, Atol);
    }

    [Fact]
    public void RnnReluTwoLayersBatchFirstMatchesPyTorch()
    {
        var m = new RNN(3, 4, numLayers: 2, relu: true, batchFirst: true);
        NNFixtures.Check("rnn_relu_2layer_batchfirst_h0", m, xs => RunRnn(m, xs), Rtol, Atol);
    }

    [Fact]
    public void LstmMatchesPyTorch()
    {
        var m = new LSTM(3, 4);
        NNFixtures.Check("lstm", m, xs => RunLstm(m, xs), Rtol, Atol);
    }

    [Fact]
    public void LstmBidirectionalTwoLayersWithStateMatchesPyTorch()
    {
        var m = new LSTM(3, 4, numLayers: 2, bidirectional: true, batchFirst: true);
        NNFixtures.Check("lstm_bi_2layer_state", m, xs => RunLstm(m, xs), Rtol, Atol);
    }

    [Fact]
    public void GruMatchesPyTorch()
    {
        var m = new GRU(3, 4);
        NNFixtures.Check("gru", m, xs => RunGru(m, xs), Rtol, Atol);
    }

    [Fact]
    public void GruBidirectionalWithStateMatchesPyTorch()
    {
        var m = new GRU(3, 4, bidirectional: true);
        NNFixtures.Check("gru_bi_h0", m, xs => RunGru(m, xs), Rtol, Atol);
    }

    [Fact]
    public void RnnGradChecksOverSteps()
    {
        var m = new RNN(2, 3, numLayers: 2, bidirectional: true, dtype: DType.Float64);
        var x = R64(1, 4, 2, 2);
        var h0 = R64(2, 4, 2, 3);
        Assert.True(GradCheck.Check(_ => m.Call(x, h0).Output, [x, h0, .. m.Parameters()]));
    }

    [Fact]
    public void LstmGradChecksOverSteps()
    {
        var m = new LSTM(2, 3, batchFirst: true, dtype: DType.Float64);
        var x = R64(3, 2, 4, 2);
        var h0 = R64(4, 1, 2, 3);
        var c0 = R64(5, 1, 2, 3);
        Assert.True(GradCheck.Check(_ => { var (y, (_, c)) = m.Call(x, (h0, c0)); return Tensor.Cat([y.Reshape(-1), c.Reshape(-1)]); },
            [x, h0, c0, .. m.Parameters()]));
    }

    [Fact]
    public void GruGradChecksOverSteps()
    {
        var m = new GRU(2, 3, numLayers: 2, dtype: DType.Float64);
        var x = R64(6, 4, 2, 2);
        Assert.True(GradCheck.Check(_ => m.Call(x, null).HN, [x, .. m.Parameters()]));
    }

    [Fact]
    public void NamesAndShapesFollowPyTorch()
    {
        var m = new LSTM(3, 5, numLayers: 2, bidirectional: true);
        Assert.Equal(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
            "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
            "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"], m.StateDict().Keys);
        Assert.Equal([20, 10], m.StateDict()["weight_ih_l1"].Shape.ToArray());
        var (y, (h, c)) = m.Call(Tensor.Zeros(7, 3), null); // unbatched
        Assert.Equal([7, 10], y.Shape.ToArray());
        Assert.Equal([4, 5], h.Shape.ToArray());
        var bound = 1 / Math.Sqrt(5);
        Assert.All(m.Parameters().SelectMany(p => p.ToDoubleArray()), v => Assert.InRange(v, -bound, bound));
        var ex = Assert.Throws<ArgumentException>(() => m.Call(Tensor.Zeros(7, 2, 3), (Tensor.Zeros(4, 3, 5), Tensor.Zeros(4, 2, 5))));
        Assert.Contains("h0 of shape [4, 2, 5], got [4, 3, 5]", ex.Message);
        var bad = Assert.Throws<ArgumentException>(() => new GRU(3, 4).Call(Tensor.Zeros(5, 2, 4)));
        Assert.Contains("[L, N, 3]", bad.Message);
    }
}
