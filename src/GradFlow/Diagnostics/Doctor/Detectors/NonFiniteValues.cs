namespace GradFlow.Diagnostics;

/// <summary>
/// A NaN or Inf in the loss, a parameter's gradient or a layer's backward flow: no threshold, no gate, at once. The
/// layer named is where the backward flow first carried one (the deepest such layer: backward runs from the loss),
/// else the parameters whose gradients held one. Online, the doctor adds the op that first made one (AnomalyMode).
/// </summary>
internal sealed class NonFiniteValues : Detector
{
    public override FindingKind Kind => FindingKind.NonFiniteValues;

    public override Finding? Check(RunHistory run, StepRecord step)
    {
        bool loss = step.Loss is { } l && !double.IsFinite(l);
        long gradCount = 0;
        for (int at = 0; at < step.Parameters.Count; at++) { var p = step.Parameters[at]; if (p.Gradient is { } g) gradCount += g.NaNCount + g.InfCount; }
        FlowStats? origin = null;
        for (int at = 0; at < step.Flow.Count; at++) { var f = step.Flow[at]; if (f.NonFinite > 0) origin = f; } // in depth order: the last is nearest the loss
        if (!loss && gradCount == 0 && origin is null && double.IsFinite(step.GlobalGradNorm)) return null;
        var layers = origin is not null ? [origin.Layer]
            : step.Parameters.Where(p => p.Gradient?.HasNonFinite == true).Select(p => p.Layer).Distinct().ToList();
        var evidence = new List<Evidence>
        {
            new("loss", step.Loss ?? double.NaN, double.NaN, "non-finite"),
            new("non-finite values in the parameters' gradients", gradCount, 0, "any NaN/Inf"),
            new("global gradient norm", step.GlobalGradNorm, double.NaN, "non-finite when any gradient is"),
        };
        if (origin is not null) evidence.Add(new Evidence($"non-finite values in the gradient leaving {Label(origin.Layer)}", origin.NonFinite, 0, "backward flow"));
        // Data-parallel: the allreduce spreads one rank's NaN to all; the rank that made it first is the one to debug.
        var rank = step.Distributed?.FirstNonFinite;
        if (rank is not null) evidence.Add(new Evidence($"rank that first produced a non-finite gradient (step {rank.Step}, {rank.Parameter})", rank.Rank, double.NaN, "each rank's gradients before the allreduce"));
        string lr = run.LearningRate is { } r ? RunHistory.Round1(r / 10) : "a tenth of the current one";
        return new Finding
        {
            Kind = Kind, Severity = Severity.Error,
            Title = (loss ? "the loss is NaN or infinite" : $"NaN/Inf in the gradients{(layers.Count > 0 ? $" of {Names(layers)}" : "")}") +
                    (rank is not null ? $", first on rank {rank.Rank}" : ""),
            Layers = layers, FirstStep = step.Step, LastStep = step.Step, Confidence = 1,
            Evidence = evidence,
            Explanation = "A NaN or infinity appeared. Once in the weights it spreads to every output and gradient and training cannot " +
                          "recover. Usual causes: a learning rate so high that the weights overflow, log or division of zero, or exp of a large value.",
            Fixes = Fixes(
                ("turn on AnomalyMode (or attach the doctor online) to name the op and module that first produced the NaN", "it checks each op's output as it runs"),
                ($"lower the learning rate to {lr} and clip the gradient norm", "most NaNs in training come from weights that overflowed after a huge step"),
                ("use the fused losses (CrossEntropy, BinaryCrossEntropyWithLogits) instead of log(softmax(x)) or log(sigmoid(x))", "they never take the log of zero")),
        };
    }
}
