namespace GradFlow.Bench;

/// <summary>
/// One benchmark case: a named step (a matmul, a training step of a model) that the runner times.
/// Add a case by writing one class and listing it in <see cref="CaseRegistry"/>; PyTorch's twin goes in
/// bench/torch_bench.py under the same name.
/// </summary>
internal interface IBenchCase
{
    /// <summary>The name shared with bench/torch_bench.py, e.g. "gemm1024".</summary>
    string Name { get; }

    /// <summary>Floating-point operations in one step, for GFLOPS; 0 when not meaningful.</summary>
    double FlopsPerStep { get; }

    /// <summary>Allocates inputs; not timed.</summary>
    void Setup();

    /// <summary>The timed unit of work.</summary>
    void Step();
}
