using System.CommandLine;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>
/// The gradflow command line on System.CommandLine: verbs with help, unknown options and bad values refused with one
/// line and exit code 2, input problems (missing or damaged files, unwritable directories) reported in one line with
/// exit code 2, a stack trace only with --verbose.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for usage and input errors.</summary>
    public const int UsageError = 2;

    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show details, and the stack trace of an unexpected error.", Recursive = true };

    /// <summary>Runs a command line; <paramref name="cancel"/> stops a training run as Ctrl+C does (tests use it).</summary>
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null, CancellationToken cancel = default)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var console = CreateConsole(stdout);
        var root = new RootCommand("gradflow: train neural networks in pure .NET and watch, judge and report their gradients.")
        {
            DemoCommand.Create(console),
            ReportCommand.Create(console),
            DoctorCommand.Create(console),
            InspectCommand.Create(console),
            TrainCommand.Create(console, cancel),
        };
        root.Options.Add(Verbose);
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            // One line: every problem the parser found ("--epoch" and its stray value are two).
            string message = string.Join(" ", result.Errors.Select(e => e.Message).Distinct());
            stderr.WriteLine($"gradflow: {System.Text.RegularExpressions.Regex.Replace(message, @"\s*\n\s*", " ")}");
            stderr.WriteLine($"Run '{HelpHint(result)}' for usage.");
            return UsageError;
        }
        try
        {
            return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (CliException e)
        {
            stderr.WriteLine($"gradflow: {e.Message}");
            return e.ExitCode;
        }
        catch (GradFlow.Distributed.MpiException e) when (e.AllRanks)
        {
            // Under mpirun every rank raised this same error at the same collective (a checkpoint not confirmed, ranks not
            // at the same step): each says so in one write, which mpirun cannot interleave with another rank's, and ends.
            var world = GradFlow.Distributed.Communicator.World;
            string line = $"gradflow: rank {world.Rank} of {world.Size}: {e.Message}{Environment.NewLine}";
            if (ReferenceEquals(stderr, Console.Error))
            {
                Console.Error.Flush();
                using var raw = Console.OpenStandardError();
                raw.Write(System.Text.Encoding.UTF8.GetBytes(line));
            }
            else stderr.Write(line);
            world.Dispose();
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or FormatException)
        {
            // What a user can fix (a path, a file, a value): one line; the trace only when asked for.
            stderr.WriteLine($"gradflow: {e.Message}");
            if (result.GetValue(Verbose)) stderr.WriteLine(e);
            return UsageError;
        }
    }

    private static string HelpHint(ParseResult result)
    {
        var command = result.CommandResult.Command;
        return command is RootCommand ? "gradflow --help" : $"gradflow {command.Name} --help";
    }

    // Spectre.Console writes to the given writer; colours only on a real terminal, plain text when redirected or in tests.
    private static IAnsiConsole CreateConsole(TextWriter stdout)
    {
        bool terminal = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = 200; // a log file or a pipe: no wrapping at 80 columns
        return console;
    }

    /// <summary>An integer option with a default and an inclusive range, refused with its name when outside.</summary>
    public static Option<int> IntOption(string name, int fallback, int min, int max, string description)
    {
        var o = new Option<int>(name) { Description = description, DefaultValueFactory = _ => fallback };
        o.Validators.Add(r =>
        {
            if (!TryValue(r, out int v)) return; // not a number: the parser reports that itself
            if (v < min || v > max) r.AddError($"{name} must be an integer from {min} to {max}, got {v}.");
        });
        return o;
    }

    /// <summary>A number option with a default and an inclusive range.</summary>
    public static Option<double> DoubleOption(string name, double fallback, double min, double max, string description)
    {
        var o = new Option<double>(name) { Description = description, DefaultValueFactory = _ => fallback };
        o.Validators.Add(r =>
        {
            if (!TryValue(r, out double v)) return;
            if (!(v >= min && v <= max)) r.AddError($"{name} must be a number from {min} to {max}, got {v}.");
        });
        return o;
    }

    private static bool TryValue<T>(System.CommandLine.Parsing.OptionResult r, out T value)
    {
        try
        {
            value = r.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>Makes sure a directory exists and can be written, or fails with one line saying so.</summary>
    public static void EnsureWritableDirectory(string dir, string option)
    {
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".gradflow-write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new CliException($"{option} '{dir}' cannot be written: {e.Message} Choose a directory you can write to.");
        }
    }
}

/// <summary>A problem the user can fix, reported as one line with an exit code (2 by default).</summary>
internal sealed class CliException(string message, int exitCode = CliApp.UsageError) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
