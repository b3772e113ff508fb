using System.Globalization;
using GradFlow.Bench.Cases;
using GradFlow.Diagnostics;

namespace GradFlow.Bench;

/// <summary>
/// The sharpness probe's measured cost, not a count: each bench model trains (mlp with SGD, cnn with Adam, as their bench
/// cases), and every 100 steps the probe runs on the case's fixed batch, warm-started from the previous probe as in a
/// monitored run. Each round times its 100 training steps and then the probe in the stepping thread's CPU time (so the
/// share survives a shared machine), the probe whole: the operator's making, every product, Lanczos with its
/// reorthogonalisation, and the conversions. Prints one JSON line per probe and the median share. Run with
/// <c>GRADFLOW_NUM_THREADS=1 GradFlow.Bench --probe-cost ROUNDS</c>.
/// </summary>
internal static class ProbeCost
{
    private const int Every = 100;

    public static void Run(int rounds)
    {
        foreach (var c in new TrainingCase[] { new MlpCase(), new CnnCase() })
        {
            c.Setup();
            for (int i = 0; i < Every; i++) c.Step();
            var probe = new SharpnessProbe(c.BatchLoss, c.BuiltModel, c.BuiltOptimizer, Every);
            probe.Run(Every); // the cold probe: its start vector is random, later ones are warm
            // Steady state, as a long run pays it: untimed probes at the same weights (a product each) until the JIT is
            // quiet. The double-backward kernels run only in products, so a run's first probes execute them unoptimised
            // (a method is recompiled after 30 calls) while the background compiler takes the other core.
            BenchRunner.WarmUntilJitQuiet(() => probe.Run(Every));
            var shares = new List<double>();
            for (int r = 1; r <= rounds; r++)
            {
                double t0 = ThreadCpu.NowMs();
                for (int i = 0; i < Every; i++) c.Step();
                double t1 = ThreadCpu.NowMs();
                var result = probe.Run((r + 1) * Every);
                double t2 = ThreadCpu.NowMs();
                double share = (t2 - t1) / (t1 - t0);
                shares.Add(share);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"model\":\"{c.Name}\",\"step\":{(r + 1) * Every},\"train_ms\":{t1 - t0:F1},\"probe_ms\":{t2 - t1:F1},\"products\":{result.HvpCount},\"percent_of_{Every}_steps\":{share * 100:F2}}}"));
            }
            shares.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"model\":\"{c.Name}\",\"warm_probes\":{rounds},\"median_percent_of_{Every}_steps\":{shares[rounds / 2] * 100:F2},\"min\":{shares[0] * 100:F2},\"max\":{shares[^1] * 100:F2}}}"));
        }
    }
}
