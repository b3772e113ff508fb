namespace GradFlow;

/// <summary>
/// Runs backward: finds the part of the graph reachable from the roots, counts for every node how
/// many gradients it waits for, then executes nodes in dependency order, summing the gradients that
/// reach the same input. With capture targets (Autograd.Grad) it returns their gradients instead of
/// accumulating into leaves, and runs only the nodes that lead to a target.
/// </summary>
internal static class Engine
{
    private sealed class NodeTask
    {
        public Tensor?[] Buffer = [];
        public int Dependencies;
        public bool Needed;
        public List<(int OutputNr, int Index)>? Captures;
    }

    // The bookkeeping of a backward (the node -> task map, the tasks, the work stacks) is reused by the next
    // backward on the same thread, so a steady-state training step allocates no engine state. A backward
    // started inside another on the same thread (a hook calling Backward) gets fresh state.
    private sealed class RunState
    {
        public readonly Dictionary<Node, NodeTask> Tasks = new(ReferenceEqualityComparer.Instance);
        public readonly Stack<Node> Stack = new();
        public readonly Stack<Node> Ready = new();
        public readonly Stack<NodeTask> Pool = new();

        public NodeTask Rent(Node node)
        {
            var task = Pool.Count > 0 ? Pool.Pop() : new NodeTask();
            if (task.Buffer.Length != node.NumOutputs) task.Buffer = new Tensor?[node.NumOutputs];
            return task;
        }

        public void Reset()
        {
            foreach (var task in Tasks.Values)
            {
                Array.Clear(task.Buffer);
                task.Dependencies = 0;
                task.Needed = false;
                task.Captures = null;
                Pool.Push(task);
            }
            // What grew for one huge graph is not kept: Clear costs the dictionary's capacity, and idle tasks hold memory.
            bool huge = Tasks.Count > 4096;
            Tasks.Clear();
            if (huge)
            {
                Tasks.TrimExcess();
                Pool.Clear();
            }
            Stack.Clear();
            Ready.Clear();
        }
    }

    [ThreadStatic] private static RunState? t_state;
    [ThreadStatic] private static RunState? t_current; // the backward running on this thread, innermost

    // True when, in the backward running on this thread, a gradient about to be handed to input inputNr of target will
    // reach that node's backward as it is: the node runs, waits for no other gradient, has nothing summed into that
    // input yet (so no other gradient is added to it, in place or not) and no pre-hook on it. Asked through
    // Instrumentation, by an observer in OnBackward, before the engine passes the gradient on.
    internal static bool ReachesUnchanged(Node target, int inputNr) =>
        t_current is { } state && state.Tasks.TryGetValue(target, out var task) && task.Needed && task.Dependencies == 1
        && inputNr < task.Buffer.Length && task.Buffer[inputNr] is null && target.PreHooks?[inputNr] is null;
    [ThreadStatic] private static bool t_running;

    // True while a backward runs on this thread (so a backward starting now is nested in it: a hook's).
    internal static bool IsRunning => t_running;

    public static Tensor?[] Run(Tensor[] roots, Tensor?[]? gradients, bool retainGraph, bool createGraph, Tensor[]? captures)
    {
        var rootEdges = new Edge[roots.Length];
        var rootGrads = new Tensor[roots.Length];
        for (int i = 0; i < roots.Length; i++)
        {
            var root = roots[i];
            Guard.NotNull(root, "Backward", "outputs");
            if (!root.RequiresGrad)
                Guard.ThrowInvalid("Backward", $"output {i} (shape {Guard.Shape(root)}) does not require grad and has no GradFn.");
            rootEdges[i] = root.GradientEdge();
            rootGrads[i] = RootGradient(root, gradients?[i], i);
        }

        Instrumentation.BackwardBegin(roots);
        bool nested = t_running;
        var state = nested ? new RunState() : t_state ??= new RunState();
        t_running = true;
        var outer = t_current;
        t_current = state;
        try
        {
            return Run(state, rootEdges, rootGrads, retainGraph, createGraph, captures);
        }
        finally
        {
            state.Reset();
            t_running = nested;
            t_current = outer;
        }
    }

    private static Tensor?[] Run(RunState state, Edge[] rootEdges, Tensor[] rootGrads, bool retainGraph, bool createGraph, Tensor[]? captures)
    {
        var tasks = Discover(state, rootEdges);
        Tensor?[] results = [];
        if (captures is not null)
        {
            results = new Tensor?[captures.Length];
            for (int i = 0; i < captures.Length; i++)
            {
                var e = captures[i].GradientEdge();
                if (e.Function is null || !tasks.TryGetValue(e.Function, out var t)) continue;
                (t.Captures ??= []).Add((e.InputNr, i));
            }
            MarkNeeded(tasks);
        }
        else
        {
            foreach (var t in tasks.Values) t.Needed = true;
        }
        foreach (var (node, _) in tasks)
            foreach (var e in node.Next)
                if (e.Function is not null && tasks[e.Function] is { Needed: true } child) child.Dependencies++;

        var ready = state.Ready;
        for (int i = 0; i < rootEdges.Length; i++)
        {
            var task = tasks[rootEdges[i].Function!];
            Accumulate(task.Buffer, rootEdges[i].InputNr, rootGrads[i]);
        }
        foreach (var (node, task) in tasks)
            if (task.Dependencies == 0 && task.Needed) ready.Push(node);

        while (ready.Count > 0)
        {
            var node = ready.Pop();
            Execute(node, tasks[node], tasks, ready, results, retainGraph, createGraph, captures is not null);
        }
        return results;
    }

    private static Tensor RootGradient(Tensor root, Tensor? gradient, int index)
    {
        if (gradient is null)
        {
            if (root.NumEl != 1)
                Guard.ThrowInvalid("Backward", $"a gradient can be implicitly created only for scalar outputs; output {index} has shape {Guard.Shape(root)}. Pass the output's gradient explicitly.");
            return Tensor.OnesLike(root);
        }
        if (!Shapes.Equal(gradient.Shape, root.Shape) || gradient.DType != root.DType)
            Guard.ThrowArg("Backward", "gradient", $"gradient {gradient.DType.Name()} {Guard.Shape(gradient)} does not match output {index}: {root.DType.Name()} {Guard.Shape(root)}.");
        gradient.Storage.Exposed = true; // the caller's tensor: a leaf may not adopt it
        return gradient;
    }

    /// <summary>Every node reachable from the roots, found iteratively (graphs of recurrent nets are deep).</summary>
    private static Dictionary<Node, NodeTask> Discover(RunState state, Edge[] rootEdges)
    {
        var tasks = state.Tasks;
        var stack = state.Stack;
        foreach (var e in rootEdges)
        {
            if (tasks.ContainsKey(e.Function!)) continue;
            tasks[e.Function!] = state.Rent(e.Function!);
            stack.Push(e.Function!);
        }
        while (stack.Count > 0)
        {
            foreach (var e in stack.Pop().Next)
            {
                if (e.Function is null || tasks.ContainsKey(e.Function)) continue;
                tasks[e.Function] = state.Rent(e.Function);
                stack.Push(e.Function);
            }
        }
        return tasks;
    }

    /// <summary>In capture mode a node is needed if it holds a target or leads to one (a post-order walk).</summary>
    private static void MarkNeeded(Dictionary<Node, NodeTask> tasks)
    {
        var state = new Dictionary<Node, bool>(ReferenceEqualityComparer.Instance); // false: open, true: done
        var stack = new Stack<(Node Node, int Next)>();
        foreach (var root in tasks.Keys)
        {
            if (state.ContainsKey(root)) continue;
            stack.Push((root, 0));
            state[root] = false;
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                if (next < node.Next.Length)
                {
                    stack.Push((node, next + 1));
                    var child = node.Next[next].Function;
                    if (child is not null && !state.ContainsKey(child))
                    {
                        state[child] = false;
                        stack.Push((child, 0));
                    }
                    continue;
                }
                var task = tasks[node];
                task.Needed |= task.Captures is not null;
                foreach (var e in node.Next)
                    if (e.Function is not null && tasks[e.Function].Needed) task.Needed = true;
                state[node] = true;
            }
        }
    }

    private static void Execute(Node node, NodeTask task, Dictionary<Node, NodeTask> tasks, Stack<Node> ready,
        Tensor?[] results, bool retainGraph, bool createGraph, bool captureMode)
    {
        var grads = task.Buffer;
        using (new GradModeScope(createGraph))
        {
            RunPreHooks(node, grads);
        }
        if (task.Captures is not null)
            foreach (var (outputNr, index) in task.Captures)
                if ((results[index] = grads[outputNr]) is { } captured) captured.Storage.Exposed = true;

        bool anyGradient = false;
        foreach (var g in grads) anyGradient |= g is not null;
        Tensor?[] gradInputs = [];
        if (anyGradient && !(captureMode && node is AccumulateGrad))
        {
            if (Instrumentation.RecurrentStepsArmed) Instrumentation.BeforeBackward(node, grads);
            using (new GradModeScope(createGraph))
            {
                Autograd.t_backwardDepth++;
                try { gradInputs = node.Backward(grads); }
                finally { Autograd.t_backwardDepth--; }
            }
            Instrumentation.Backward(node, grads, gradInputs);
            MarkShared(gradInputs);
        }
        if (!retainGraph) node.Release();

        var next = node.Next;
        for (int i = 0; i < next.Length; i++)
        {
            var f = next[i].Function;
            if (f is null) continue;
            var child = tasks[f];
            if (!child.Needed) continue;
            if (i < gradInputs.Length && gradInputs[i] is { } g)
            {
                using (new GradModeScope(createGraph))
                {
                    Accumulate(child.Buffer, next[i].InputNr, g);
                }
            }
            if (--child.Dependencies == 0) ready.Push(f);
        }
    }

    private static void RunPreHooks(Node node, Tensor?[] grads)
    {
        for (int k = 0; k < grads.Length; k++)
        {
            if (grads[k] is not { } g) continue;
            if (node.PreHooks?[k] is { } hooks)
            {
                g.Storage.Exposed = true; // a hook may keep it
                foreach (var hook in hooks.ToArray()) g = hook(g) ?? g;
                g.Storage.Exposed = true;
            }
            grads[k] = g;
            if (node.RetainGradTensors?[k] is { } retained)
            {
                g.Storage.Exposed = true;
                using var _ = TensorArena.Suspend();
                var old = retained.Grad;
                retained.Grad = old is null ? (Autograd.IsGradEnabled ? g : g.Detach().Clone()) : old + g;
            }
        }
    }

    private static void Accumulate(Tensor?[] buffer, int slot, Tensor g)
    {
        if (buffer[slot] is not { } old)
        {
            buffer[slot] = g;
            return;
        }
        if (!Autograd.IsGradEnabled && OwnedByEngine(old, g))
        {
            // A gradient only this buffer holds (PyTorch's InputBuffer adds in place likewise): a weight used at
            // every step of a sequence sums its 35 contributions into one buffer instead of 35 new tensors.
            Tensor.AddIntoRaw(old, g);
            return;
        }
        // The sum is a gradient of this backward: counted as one, it is rented from the step's arena and may be adopted.
        Autograd.t_backwardDepth++;
        try { buffer[slot] = old + g; }
        finally { Autograd.t_backwardDepth--; }
    }

    private static bool OwnedByEngine(Tensor old, Tensor g)
    {
        var s = old.Storage;
        return s.FromBackward && !s.Exposed && !ReferenceEquals(s, g.Storage) && old.Offset == 0 && old.NumEl == s.Length
            && old.IsContiguous && old.DType == g.DType && Shapes.Equal(old.ShapeArray, g.ShapeArray);
    }

    // A node that hands one storage to two inputs (Add's backward passes the same gradient to both operands)
    // makes it shared: neither consumer may then add into it in place or adopt it.
    private static void MarkShared(Tensor?[] gradInputs)
    {
        for (int i = 1; i < gradInputs.Length; i++)
        {
            if (gradInputs[i] is not { } a) continue;
            for (int j = 0; j < i; j++)
                if (gradInputs[j] is { } b && ReferenceEquals(a.Storage, b.Storage))
                {
                    a.Storage.Exposed = true;
                    break;
                }
        }
    }
}
