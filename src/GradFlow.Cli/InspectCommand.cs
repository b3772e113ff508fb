using System.CommandLine;
using System.Globalization;
using GradFlow.Diagnostics;
using GradFlow.Formats;
using Spectre.Console;

namespace GradFlow.Cli;

/// <summary>`gradflow inspect FILE`: the tensors of a checkpoint or safetensors file, with norms and non-finite counts.</summary>
internal static class InspectCommand
{
    private static readonly Argument<string> s_file = new("file") { Description = "A GradFlow checkpoint or any safetensors file" };

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("inspect", "List the tensors of a checkpoint or safetensors file: names, shapes, dtypes, norms, NaN/Inf counts.") { s_file };
        command.SetAction(r =>
        {
            string path = r.GetValue(s_file)!;
            if (!File.Exists(path)) throw new CliException($"file '{path}' does not exist.");
            SafeTensorsContent content;
            try { content = SafeTensors.Load(path); }
            catch (InvalidDataException e) when (!e.Message.Contains(path, StringComparison.Ordinal))
            {
                throw new CliException($"{path}: {e.Message}");
            }
            var table = new Table().AddColumns("tensor", "shape", "dtype", "L2 norm", "max |x|", "NaN", "Inf");
            long values = 0;
            int broken = 0;
            foreach (var (name, t) in content.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                values += t.NumEl;
                string shape = "[" + string.Join(", ", t.Shape.ToArray()) + "]";
                if (!t.DType.IsFloatingPoint() || t.NumEl == 0)
                {
                    table.AddRow(Markup.Escape(name), Markup.Escape(shape), t.DType.Name(), "-", "-", "-", "-");
                    continue;
                }
                var s = TensorStats.Of(t, histogram: false);
                if (s.HasNonFinite) broken++;
                table.AddRow(Markup.Escape(name), Markup.Escape(shape), t.DType.Name(), Num(s.L2Norm), Num(s.MaxAbs),
                    s.NaNCount.ToString(CultureInfo.InvariantCulture), s.InfCount.ToString(CultureInfo.InvariantCulture));
            }
            console.WriteLine($"{path}: {content.Tensors.Count} tensors, {values:N0} values{(broken > 0 ? $", {broken} with NaN/Inf" : "")}");
            console.Write(table);
            if (content.Metadata.Count > 0)
            {
                var meta = new Table().AddColumns("metadata", "value");
                foreach (var (k, v) in content.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    meta.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 120 ? v[..117] + "..." : v));
                console.Write(meta);
            }
            return 0;
        });
        return command;
    }

    private static string Num(double v) =>
        !double.IsFinite(v) ? v.ToString(CultureInfo.InvariantCulture) : v == 0 ? "0"
        : Math.Abs(v) is >= 1e-3 and < 1e4 ? v.ToString("0.####", CultureInfo.InvariantCulture) : v.ToString("0.###e0", CultureInfo.InvariantCulture);
}
