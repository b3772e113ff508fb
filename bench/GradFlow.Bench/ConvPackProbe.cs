using GradFlow.Bench.Cases;
using GradFlow.Kernels;

namespace GradFlow.Bench;

/// <summary>
/// A/B of the GEMM packs that conv2 of the cnn bench spends on (<see cref="GemmTranspose.Pack8"/>, the vector copies of
/// short panel runs) against the scalar gather and memmove, in one process: the two alternate block by block, the
/// order swapped every round, each round a new/old ratio; a null control pits the old path against itself. Times are
/// the thread's CPU (run with --threads 1). <c>--conv-packs</c>: conv2's GEMMs alone; <c>--conv-ab</c>: the cnn (or
/// mlp) bench's training step (forward, backward) and kept-graph HVP.
/// </summary>
internal static class ConvPackProbe
{
    /// <summary>conv2's per-image GEMMs with each operand's pack contiguous or transposing (the same products).</summary>
    public static void Packs(int rounds)
    {
        const int m = 64, l = 121, k = 288, n = 64;
        var gen = new Generator(1);
        float[] w = Fill(gen, m * k), wt = Fill(gen, m * k), col = Fill(gen, k * l), colT = Fill(gen, k * l), dy = Fill(gen, m * l), dyT = Fill(gen, m * l);
        float[] y = new float[m * l], dw = new float[m * k];
        double Fwd(bool contiguous) => Time(n, () =>
        {
            if (contiguous) GemmOf<float>.Run(true, false, m, l, k, 1f, wt, m, col, l, 0f, y, l);
            else GemmOf<float>.Run(false, false, m, l, k, 1f, w, k, col, l, 0f, y, l);
        });
        double Wgt(bool contiguous) => Time(n, () =>
        {
            if (contiguous) GemmOf<float>.Run(true, false, m, k, l, 1f, dyT, m, colT, k, 1f, dw, k);
            else GemmOf<float>.Run(false, true, m, k, l, 1f, dy, l, col, l, 1f, dw, k);
        });
        Console.WriteLine($"forward GEMM, contiguous/transposing packs {Ab(rounds, Fwd)}");
        GemmTranspose.Pack8Enabled = false;
        Console.WriteLine($"weight GEMM, contiguous/transposing scalar packs {Ab(rounds, Wgt)}");
        GemmTranspose.Pack8Enabled = true;
        double Runs(bool on, Func<bool, double> gemm)
        {
            GemmPacking.SmallRunsEnabled = on;
            return gemm(false);
        }
        Console.WriteLine($"forward GEMM, vector/memmove short runs {Ab(rounds, on => Runs(on, Fwd))}");
        Console.WriteLine($"weight GEMM, vector/memmove short runs {Ab(rounds, on => Runs(on, Wgt))}");
        double Input(bool on)
        {
            GemmPacking.SmallRunsEnabled = on;
            return Time(n, () => GemmOf<float>.Run(true, false, k, l, m, 1f, w, k, dy, l, 0f, colT, l));
        }
        Console.WriteLine($"input-gradient GEMM, vector/memmove short runs {Ab(rounds, Input)}");
        GemmPacking.SmallRunsEnabled = true;
        Console.WriteLine($"weight GEMM, contiguous/transposing packs {Ab(rounds, Wgt)}");
    }

    public static void Model(int rounds)
    {
        // CONV_AB=pack: the AVX transposing pack (GemmTranspose.Pack8) alone; =runs: the vector copies of short panel
        // runs alone; otherwise both.
        string? toggle = Environment.GetEnvironmentVariable("CONV_AB");
        void Use(bool on)
        {
            if (toggle is null or "pack") GemmTranspose.Pack8Enabled = on;
            if (toggle is null or "runs") GemmPacking.SmallRunsEnabled = on;
        }
        // CONV_AB_CASE=mlp: the mlp bench model instead (its GEMMs use the same packs).
        bool mlp = Environment.GetEnvironmentVariable("CONV_AB_CASE") == "mlp";
        TrainingCase step = mlp ? new MlpCase() : new CnnCase();
        step.Setup();
        var kept = new HvpKeptCase(mlp ? new MlpCase() : new CnnCase());
        kept.Setup();
        (double F, double B) Steps(bool batched)
        {
            Use(batched);
            double f = 0, bw = 0;
            for (int i = 0; i < 3; i++)
            {
                var (a, c) = step.TimedStep();
                (f, bw) = (f + a, bw + c);
            }
            return (f, bw);
        }
        double Hvp(bool batched)
        {
            Use(batched);
            return Time(3, kept.Step);
        }
        for (int i = 0; i < 3; i++) { Steps(true); Steps(false); Hvp(true); Hvp(false); }
        var fwd = new List<double>(); var bwd = new List<double>(); var nullFwd = new List<double>(); var nullBwd = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            bool swap = r % 2 == 1;
            (double F, double B) o, n;
            if (swap) (n, o) = (Steps(true), Steps(false));
            else (o, n) = (Steps(false), Steps(true));
            fwd.Add(n.F / o.F);
            bwd.Add(n.B / o.B);
            var (o2, n2) = (Steps(false), Steps(false));
            nullFwd.Add(n2.F / o2.F);
            nullBwd.Add(n2.B / o2.B);
        }
        Console.WriteLine($"{step.Name} step forward   {Summary(fwd)}  null {Summary(nullFwd)}");
        Console.WriteLine($"{step.Name} step backward  {Summary(bwd)}  null {Summary(nullBwd)}");
        Console.WriteLine($"{kept.Name}       {Ab(rounds, Hvp)}  null {Ab(rounds, _ => Hvp(false))}");
        Use(true);
    }

    // new/old per round, the order of the two swapped every round.
    private static string Ab(int rounds, Func<bool, double> run)
    {
        run(false);
        run(true);
        var ratios = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            double o, n;
            if (r % 2 == 0) (o, n) = (run(false), run(true));
            else (n, o) = (run(true), run(false));
            ratios.Add(n / o);
        }
        return Summary(ratios);
    }

    private static string Summary(List<double> ratios)
    {
        ratios.Sort();
        double Q(double q) => ratios[(int)Math.Round(q * (ratios.Count - 1))];
        return $"new/old median {Q(0.5):F3} (q25-q75 {Q(0.25):F3}-{Q(0.75):F3}, {ratios.Count} rounds)";
    }

    // The calling thread's CPU time: run with --threads 1 so that all the work is on it.
    private static double Time(int reps, Action action)
    {
        double t = ThreadCpu.NowMs();
        for (int i = 0; i < reps; i++) action();
        return ThreadCpu.NowMs() - t;
    }

    private static float[] Fill(Generator gen, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)gen.NextNormal();
        return a;
    }
}
