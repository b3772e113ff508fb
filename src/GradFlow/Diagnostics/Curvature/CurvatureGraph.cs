namespace GradFlow.Diagnostics;

/// <summary>Checks on a loss's autograd graph before curvature is taken through it.</summary>
internal static class CurvatureGraph
{
    /// <summary>
    /// Walks the graph behind <paramref name="loss"/> (public <see cref="Node.NextEdges"/> only) and throws on the
    /// first node without double backward, naming it and its module scope: a Hessian through it would be silently
    /// missing that node's second derivative.
    /// </summary>
    public static void CheckTwiceDifferentiable(Tensor loss)
    {
        if (loss.GradFn is not { } root) return;
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance) { root };
        var stack = new Stack<Node>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!node.IsTwiceDifferentiable)
                throw new NotSupportedException(
                    $"{nameof(CurvatureOperator)}: op {node.Name}{(node.Scope is { } s ? $" (in module '{s}')" : "")} has no double backward, " +
                    "so second derivatives through it cannot be taken; use a composed form of the op, or leave its parameters out.");
            foreach (var edge in node.NextEdges)
                if (edge.Function is { } next && seen.Add(next)) stack.Push(next);
        }
    }
}
