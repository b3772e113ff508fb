using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// Where `gradflow train` reports progress: a live bar with loss, accuracy, throughput and ETA on a terminal, one plain
/// line per epoch when the output is redirected (a log file, a pipe, a test).
/// </summary>
internal abstract class TrainProgress
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly long _firstStep, _totalSteps;
    private long _examples;

    protected TrainProgress(long firstStep, long totalSteps) => (_firstStep, _totalSteps) = (firstStep, totalSteps);

    /// <summary>Runs the training loop under the right kind of progress for the console.</summary>
    public static int Run(IAnsiConsole console, long firstStep, long totalSteps, Func<TrainProgress, int> loop)
    {
        if (!console.Profile.Capabilities.Interactive) return loop(new Plain(console, firstStep, totalSteps));
        int code = 0;
        console.Progress()
            .AutoClear(true)
            .Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
            .Start(ctx => code = loop(new Live(console, ctx.AddTask("training", maxValue: totalSteps), firstStep, totalSteps)));
        return code;
    }

    /// <summary>Examples per second since this process started training.</summary>
    protected double Throughput => _examples / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);

    /// <summary>The time left at the pace of this session so far.</summary>
    protected string Eta(long step)
    {
        long done = step - _firstStep;
        if (done <= 0) return "-";
        var left = TimeSpan.FromSeconds(_clock.Elapsed.TotalSeconds / done * (_totalSteps - step));
        return left.ToString(left.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss", CultureInfo.InvariantCulture);
    }

    /// <summary>After every step: the global step, the epoch (1-based), the running loss and accuracy of this epoch.</summary>
    public void Step(long step, int epoch, int epochs, double loss, double accuracy, int examples)
    {
        _examples += examples;
        OnStep(step, epoch, epochs, loss, accuracy);
    }

    protected abstract void OnStep(long step, int epoch, int epochs, double loss, double accuracy);

    /// <summary>After an epoch's evaluation.</summary>
    public void Epoch(long step, int epoch, int epochs, double loss, double trainAccuracy, double testAccuracy) =>
        Line(string.Create(CultureInfo.InvariantCulture,
            $"epoch {epoch}/{epochs}  step {step}  loss {loss:0.0000}  train {trainAccuracy:P1}  test {testAccuracy:P1}  {Throughput:N0} ex/s  ETA {Eta(step)}"));

    /// <summary>A line above the live display (or just a line).</summary>
    public abstract void Line(string text);

    private sealed class Plain(IAnsiConsole console, long firstStep, long totalSteps) : TrainProgress(firstStep, totalSteps)
    {
        protected override void OnStep(long step, int epoch, int epochs, double loss, double accuracy) { }

        public override void Line(string text) => console.WriteLine(text);
    }

    private sealed class Live(IAnsiConsole console, ProgressTask task, long firstStep, long totalSteps) : TrainProgress(firstStep, totalSteps)
    {
        private long _lastRefresh = -1;

        protected override void OnStep(long step, int epoch, int epochs, double loss, double accuracy)
        {
            task.Value = step;
            // Redrawing the text costs more than a small step: ten times a second is plenty.
            long tick = _clock.ElapsedMilliseconds / 100;
            if (tick == _lastRefresh) return;
            _lastRefresh = tick;
            task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"epoch {epoch}/{epochs}  step {step}/{_totalSteps}  loss {loss:0.0000}  acc {accuracy:P1}  {Throughput:N0} ex/s  ETA {Eta(step)}"));
        }

        public override void Line(string text) => console.WriteLine(text);
    }
}
