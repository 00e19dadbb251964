using System.Text;

namespace InteropHub.Adapters.Township;

/// <summary>One data row: its 1-based data row number (header = row 0), the file line it starts on, and its cells by column name.</summary>
public sealed class CsvRow
{
    private readonly IReadOnlyDictionary<string, int> _columns;
    private readonly List<string> _cells;

    internal CsvRow(int number, int line, IReadOnlyDictionary<string, int> columns, List<string> cells)
    {
        Number = number;
        Line = line;
        _columns = columns;
        _cells = cells;
    }

    public int Number { get; }

    public int Line { get; }

    /// <summary>The cell of a column, trimmed and cleaned of spreadsheet guards; empty when absent.</summary>
    public string this[string column] =>
        _columns.TryGetValue(column, out var index) && index < _cells.Count ? _cells[index] : "";

    /// <summary>The raw cells, for comparing two occurrences of one key (DUPLICATE_KEY).</summary>
    public string Content => string.Join('\u001F', _cells);

    /// <summary>Why the row cannot be read as cells of its columns (a quote never closed, more cells than columns), or null.</summary>
    public string? Unreadable { get; internal init; }
}

/// <summary>
/// An RFC 4180 reader (township-export.md §1 "CSV dialect"): comma, double-quote quoting with doubled quotes,
/// quoted fields spanning lines, CRLF or LF. Cells are trimmed, and the 2.x exporter's guards around long numbers
/// (<c>="…"</c>, a leading apostrophe or tab) are removed.
/// </summary>
public sealed class CsvTable
{
    private CsvTable(IReadOnlyList<string> header, IReadOnlyList<CsvRow> rows)
    {
        Header = header;
        Rows = rows;
    }

    public IReadOnlyList<string> Header { get; }

    public IReadOnlyList<CsvRow> Rows { get; }

    /// <param name="normalized">Columns whose cells are NFKC-normalised (full-width digits and letters to ASCII): numbers,
    /// codes and identifiers, never names or free text (README "Normalising", township-export.md §1).</param>
    public static CsvTable Parse(string text, IReadOnlySet<string>? normalized = null)
    {
        var records = Records(text).ToList();
        if (records.Count == 0)
        {
            return new CsvTable([], []);
        }

        var header = records[0].Cells.Select(c => c.Trim()).ToList();
        var columns = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
        {
            columns.TryAdd(header[i], i);
        }

        var rows = new List<CsvRow>(records.Count - 1);
        for (var i = 1; i < records.Count; i++)
        {
            var cells = records[i].Cells.Select(Clean).ToList();
            for (var c = 0; c < cells.Count && c < header.Count; c++)
            {
                if (normalized?.Contains(header[c]) == true)
                {
                    cells[c] = cells[c].Normalize(NormalizationForm.FormKC);
                }
            }

            rows.Add(new CsvRow(i, records[i].Line, columns, cells)
            {
                Unreadable = records[i].Unclosed ? "引号未闭合，该行读到了文件末尾"
                    : cells.Count > header.Count ? $"该行有 {cells.Count} 个字段，多于表头的 {header.Count} 列(引号不成对或多余的逗号)"
                    : null,
            });
        }

        return new CsvTable(header, rows);
    }

    private static string Clean(string cell)
    {
        var value = cell.Trim();
        if (value.StartsWith("=\"", StringComparison.Ordinal) && value.EndsWith('"') && value.Length >= 3)
        {
            value = value[2..^1];
        }

        return value.TrimStart('\'', '\t').Trim();
    }

    /// <summary>The records of the text: the line each starts on, its cells, and whether a quoted cell was still open at the end.</summary>
    private static IEnumerable<(int Line, List<string> Cells, bool Unclosed)> Records(string text)
    {
        var line = 1;
        var i = 0;
        while (i < text.Length)
        {
            var start = line;
            var cells = new List<string>();
            var cell = new StringBuilder();
            var quoted = false;
            var atCellStart = true;
            while (i < text.Length)
            {
                var c = text[i];
                if (quoted)
                {
                    if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                    {
                        cell.Append('"');
                        i += 2;
                        continue;
                    }

                    if (c == '"')
                    {
                        quoted = false;
                    }
                    else
                    {
                        if (c == '\n')
                        {
                            line++;
                        }

                        cell.Append(c);
                    }

                    i++;
                    continue;
                }

                if (c == '"' && atCellStart)
                {
                    quoted = true;
                    atCellStart = false;
                    i++;
                    continue;
                }

                if (c == ',')
                {
                    cells.Add(cell.ToString());
                    cell.Clear();
                    atCellStart = true;
                    i++;
                    continue;
                }

                if (c is '\r' or '\n')
                {
                    i += c == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                    line++;
                    break;
                }

                if (!(atCellStart && c is ' ' or '\t'))
                {
                    atCellStart = false;
                }

                cell.Append(c);
                i++;
            }

            cells.Add(cell.ToString());
            if (cells.Count == 1 && cells[0].Trim().Length == 0)
            {
                continue; // empty line
            }

            yield return (start, cells, quoted);
        }
    }
}
