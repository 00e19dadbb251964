using InteropHub.Adapters.His;

namespace InteropHub.Adapters.Township;

/// <summary>
/// What became of each file's rows in one run of a batch, for the report's summary and its line per file
/// (issue 5: "GET shows per-file, per-row results"; the rows themselves are the issues that name them).
/// </summary>
public sealed class BatchTally
{
    private readonly Dictionary<string, FileCounts> _files = new(StringComparer.Ordinal);

    /// <summary>
    /// <see cref="Applied"/>: written by this run (a deletion of a resident the hub never had included: it is recorded);
    /// <see cref="Unchanged"/>: the hub already held this version (a batch sent again, or a run after a crash);
    /// <see cref="Stale"/>: an older version than the hub's, or the same <c>updated_at</c> with other content;
    /// <see cref="Refused"/>: rejected with a reason; <see cref="NotStored"/>: the hub's own failure, applied by a replay.
    /// </summary>
    public sealed class FileCounts
    {
        public int Applied { get; set; }
        public int Unchanged { get; set; }
        public int Stale { get; set; }
        public int Refused { get; set; }
        public int NotStored { get; set; }
        public int Accounted => Applied + Unchanged + Stale + Refused + NotStored;
    }

    /// <summary>Starts from the reader's findings: each data row with an error is refused once, whatever its number of errors.</summary>
    public BatchTally(TownshipBatchResult batch)
    {
        foreach (var row in batch.Issues.Where(i => i is { Severity: IssueSeverity.Error, File: not null, Row: > 0 }).Select(i => (i.File!, i.Row)).Distinct())
        {
            this[row.Item1].Refused++;
        }
    }

    public FileCounts this[string file] => _files.TryGetValue(file, out var counts) ? counts : _files[file] = new FileCounts();

    public int Applied => _files.Values.Sum(f => f.Applied);

    public int NotStored => _files.Values.Sum(f => f.NotStored);

    /// <summary>
    /// The summary: rows applied out of every data row the manifest lists, then what became of the others. Rows the
    /// tally does not account for were refused with their file (a file-level error) or repeated unchanged in their file.
    /// </summary>
    public string Summary(TownshipBatchResult batch)
    {
        var listed = Math.Max(batch.Rows.Count, batch.Manifest?.Files.Sum(f => f.Rows) ?? 0);
        var all = new FileCounts
        {
            Applied = Applied,
            Unchanged = _files.Values.Sum(f => f.Unchanged),
            Stale = _files.Values.Sum(f => f.Stale),
            Refused = _files.Values.Sum(f => f.Refused),
            NotStored = NotStored,
        };
        return $"batch {batch.Manifest?.BatchId}: {all.Applied} of {listed} rows applied; {Others(all, listed - all.Accounted)}";
    }

    /// <summary>A line per file of the manifest, in its order: the file's table, its rows and what became of them.</summary>
    public IEnumerable<(string File, string Line)> Files(TownshipBatchResult batch)
    {
        foreach (var file in batch.Manifest?.Files ?? [])
        {
            var counts = this[file.Name];
            var fileRefused = batch.Issues.FirstOrDefault(i => i is { Severity: IssueSeverity.Error, Row: 0 } && i.File == file.Name);
            var rest = Math.Max(0, file.Rows - counts.Accounted);
            yield return (file.Name, fileRefused is not null
                ? $"{file.Name} ({file.Table}): {file.Rows} rows, none read: the file was refused ({fileRefused.Code}: {fileRefused.Detail})"
                : $"{file.Name} ({file.Table}): {counts.Applied} of {file.Rows} rows applied; {Others(counts, rest)}");
        }
    }

    private static string Others(FileCounts counts, int rest)
    {
        var parts = new List<string>
        {
            $"{counts.Unchanged} unchanged (the hub already held them)",
            $"{counts.Stale} stale",
            $"{counts.Refused} refused",
        };
        if (counts.NotStored > 0)
        {
            parts.Add($"{counts.NotStored} not stored (the batch can be replayed)");
        }

        if (rest > 0)
        {
            parts.Add($"{rest} not read (repeated in their file, or in a refused file)");
        }

        return string.Join(", ", parts);
    }
}
