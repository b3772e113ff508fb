using System.Globalization;

namespace GradFlow.Data;

/// <summary>
/// Reads numeric CSV into a <see cref="TensorDataset"/>: every column but the label column becomes a
/// float32 feature; the label column becomes an int64 class (or a float32 value for regression). A
/// malformed cell gives an InvalidDataException naming the line and column.
/// </summary>
public static class Csv
{
    /// <summary>Reads a file (gzip-compressed if the name ends in .gz).</summary>
    public static TensorDataset Read(string path, int labelColumn = -1, bool hasHeader = false, bool classLabels = true, char separator = ',')
    {
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new System.IO.Compression.GZipStream(fs, System.IO.Compression.CompressionMode.Decompress) : fs;
        using var reader = new StreamReader(s);
        try
        {
            return Read(reader, labelColumn, hasHeader, classLabels, separator);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Reads CSV text; <paramref name="labelColumn"/> counts from the end when negative.</summary>
    public static TensorDataset Read(TextReader reader, int labelColumn = -1, bool hasHeader = false, bool classLabels = true, char separator = ',')
    {
        Guard.NotNull(reader, "Csv.Read", nameof(reader));
        var features = new List<float>();
        var labels = new List<double>();
        int columns = -1, line = 0, label = 0;
        if (hasHeader) { reader.ReadLine(); line++; }
        for (string? text; (text = reader.ReadLine()) is not null;)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            var cells = text.Split(separator);
            if (columns < 0)
            {
                columns = cells.Length;
                if (columns < 2) throw new InvalidDataException($"CSV: line {line} has {columns} column; need features and a label.");
                label = labelColumn < 0 ? columns + labelColumn : labelColumn;
                if ((uint)label >= (uint)columns) throw new InvalidDataException($"CSV: label column {labelColumn} is out of range for {columns} columns.");
            }
            else if (cells.Length != columns)
                throw new InvalidDataException($"CSV: line {line} has {cells.Length} columns, the first row has {columns}.");
            for (int c = 0; c < columns; c++)
            {
                if (!double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                    throw new InvalidDataException($"CSV: line {line}, column {c + 1}: '{cells[c]}' is not a number.");
                if (c == label)
                {
                    if (classLabels && (v != Math.Floor(v) || v < 0 || v > int.MaxValue))
                        throw new InvalidDataException($"CSV: line {line}: class label '{cells[c]}' is not a non-negative integer.");
                    labels.Add(v);
                }
                else features.Add((float)v);
            }
        }
        if (columns < 0) throw new InvalidDataException("CSV: no data rows.");
        int n = labels.Count;
        var x = Tensor.FromArray(features.ToArray(), n, columns - 1);
        var y = classLabels ? Tensor.FromArray(labels.Select(v => (long)v).ToArray()) : Tensor.FromArray(labels.Select(v => (float)v).ToArray());
        return new TensorDataset(x, y);
    }
}
