using GradFlow.Bench;
using GradFlow.Kernels;

// Usage: GradFlow.Bench [--case NAME]... [--reps N] [--warmup N] [--seconds S] [--threads N] [--split] [--monitor] | --list | --curvature-counts | --probe-cost ROUNDS | --probe-rules [mlp|cnn]... | --hvp-profile | --conv-gemm | --pool-backward ROUNDS | --conv-packs ROUNDS | --conv-ab ROUNDS | --conv-direct ROUNDS | [--rounds N] [--block N] --ab A B
// Prints one JSON line per case; thread count defaults to GRADFLOW_NUM_THREADS / processor count.
var names = new List<string>();
int reps = 9, warmup = 3, rounds = 100, block = 0;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--case": names.Add(args[++i]); break;
        case "--reps": reps = Math.Max(5, int.Parse(args[++i])); break;
        case "--warmup": warmup = int.Parse(args[++i]); break;
        case "--list":
            foreach (var c in CaseRegistry.All()) Console.WriteLine(c.Name);
            return 0;
        case "--seconds": BenchRunner.MinSeconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--split": BenchRunner.Split = true; break;
        case "--monitor": BenchRunner.AlwaysMonitor = true; break; // training cases with the default monitor on every step (to profile)
        case "--threads": Parallelism.NumThreads = int.Parse(args[++i]); break;
        case "--hvp-profile": // per-op time, GEMM work and bytes of a training step, an HVP operator's making and a kept product (profiling only)
            HvpProfile.Run(new GradFlow.Bench.Cases.MlpCase(), 10);
            HvpProfile.Run(new GradFlow.Bench.Cases.CnnCase(), 10);
            return 0;
        case "--conv-gemm": ConvGemmProbe.Run(); return 0;
        case "--pool-backward": PoolBackwardProbe.Run(int.Parse(args[++i])); return 0; // the 2x2 max-pool backward, vector against scalar
        case "--probe-cost": ProbeCost.Run(int.Parse(args[++i])); return 0; // the sharpness probe's time against 100 training steps, measured
        case "--conv-direct": ConvDirectProbe.Run(int.Parse(args[++i])); return 0; // the direct first-layer kernel against im2col + GEMM, A/B
        case "--ab": // two sides alternated in one process (AbRunner): "case", "DIR:case" (another build) or ".:case" (a second copy of this one)
            return AbRunner.Run(args[++i], args[++i], rounds, Parallelism.NumThreads, block);
        case "--rounds": rounds = int.Parse(args[++i]); break;
        case "--block": block = int.Parse(args[++i]); break; // --ab: per turn one untimed step and this many timed ones
        case "--conv-packs": ConvPackProbe.Packs(int.Parse(args[++i])); return 0; // conv2's GEMMs with each pack, A/B
        case "--conv-ab": ConvPackProbe.Model(int.Parse(args[++i])); return 0; // the packs on the cnn (or mlp) step and kept HVP, A/B
        case "--curvature-counts": CurvatureCounts.Run(); return 0; // HVP counts for lambda_max (docs/CURVATURE.md), no timing
        case "--probe-rules": ProbeRules.Run(args[(i + 1)..]); return 0; // a warm probe's stopping rules and start vectors, counts and errors
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

var cases = CaseRegistry.All().Where(c => names.Count == 0 || names.Contains(c.Name)).ToList();
if (cases.Count == 0)
{
    Console.Error.WriteLine($"no case matches {string.Join(", ", names)}");
    return 2;
}

foreach (var benchCase in cases)
{
    Console.WriteLine(BenchRunner.Run(benchCase, reps, warmup, Parallelism.NumThreads));
}

return 0;
