namespace GradFlow.Cli;

/// <summary>The gradflow command line: `gradflow demo [--epochs N] [--seed S] [--lr X] [--batch-size B]`.</summary>
internal static class CliApp
{
    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintHelp();
            return args.Length == 0 ? 1 : 0;
        }
        try
        {
            var options = Options.Parse(args.AsSpan(1));
            return args[0] switch
            {
                "demo" => DemoCommand.Run(options, Console.Out),
                _ => Fail($"unknown command '{args[0]}'."),
            };
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"gradflow: {message}");
        Console.Error.WriteLine("Run 'gradflow --help' for usage.");
        return 2;
    }

    private static void PrintHelp()
    {
        Console.WriteLine("""
            gradflow — train and watch gradients, in pure .NET

            Usage:
              gradflow demo [options]   Train a small MLP on the embedded Digits data set, printing loss,
                                        accuracy and every layer's gradient norm each epoch.

            Options:
              --epochs N       epochs to train (default 15)
              --batch-size B   mini-batch size (default 64)
              --lr X           learning rate of SGD with momentum 0.9 (default 0.05)
              --seed S         random seed (default 0)
              --log-dir DIR    also write the monitor's run log (runlog.jsonl) and TensorBoard event files to DIR
            """);
    }
}

/// <summary>Parsed --name value pairs, with typed accessors that name the bad option.</summary>
internal sealed class Options
{
    private readonly Dictionary<string, string> _values = [];

    public static Options Parse(ReadOnlySpan<string> args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"expected '--option value', got '{args[i]}'.");
            o._values[args[i][2..]] = args[++i];
        }
        return o;
    }

    public int Int(string name, int fallback, int min, int max)
    {
        if (!_values.TryGetValue(name, out var s)) return fallback;
        if (!int.TryParse(s, out int v) || v < min || v > max)
            throw new ArgumentException($"--{name} must be an integer from {min} to {max}, got '{s}'.");
        return v;
    }

    public string? String(string name) => _values.GetValueOrDefault(name);

    public double Double(string name, double fallback, double min, double max)
    {
        if (!_values.TryGetValue(name, out var s)) return fallback;
        if (!double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out double v) || !(v >= min && v <= max))
            throw new ArgumentException($"--{name} must be a number from {min} to {max}, got '{s}'.");
        return v;
    }
}
