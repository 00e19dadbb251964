using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.His;

namespace InteropHub.Adapters.Township;

/// <summary>
/// A problem in a batch, located as the batch report prints it (township-export.md §2): file, data row (header
/// = row 0), the line in the file, column and primary key. <see cref="Code"/> is a README reason code, or
/// <c>WARNING</c>. A batch-level problem has no file; a file-level one has row 0.
/// </summary>
public sealed record TownshipIssue(string? File, int Row, int Line, string? Column, string? Key, string Code, string Detail,
    IssueSeverity Severity = IssueSeverity.Error)
{
    public override string ToString() => $"{File} row {Row} (line {Line}) {Key} {Column} {Code}: {Detail}";
}

/// <summary>The manifest fields the adapter uses (township-export.md §1).</summary>
public sealed record TownshipManifest(string BatchId, string SourceSystem, string Institution, string ExportType, int Sequence,
    DateTimeOffset ExportTime, string Encoding, IReadOnlyList<TownshipFile> Files);

public sealed record TownshipFile(string Name, string Table, int Rows, string Sha256, string? Encoding);

/// <summary>
/// One accepted row. <see cref="Map"/> builds what it maps to, a new Bundle on each call (a batch of 100,000 rows
/// then holds only the rows' cells, and the ingest maps each row when its chunk is applied), or null for a table whose
/// mapping is not built yet (the row is validated, not applied). The ingest compares <see cref="UpdatedAt"/> with the
/// stored row of (<see cref="Table"/>, <see cref="Key"/>) to skip stale and repeated rows (§2 "Update"), and checks
/// that the residents in <see cref="ReferencedResidents"/> exist when they were not accepted in this batch.
/// <see cref="Institution"/> (the row's <c>org_code</c>, else the batch's) is the author its Provenance names.
/// </summary>
/// <param name="EarliestEvent">For a row about a resident of an earlier batch, its earliest event date (no planned date) and
/// the column: the ingest checks it against the stored birth date, as the reader does for a resident of the batch.</param>
/// <param name="ContentHash">A hash of the row's cells as sent, to tell a changed row from a repeated one when both
/// carry the same <c>updated_at</c>.</param>
/// <param name="AntenatalVisit">For an antenatal visit whose registration came in an earlier batch, the registration's
/// <c>reg_id</c> and the visit date: the ingest checks it against the stored registration date, as the reader does for a
/// registration of the batch.</param>
/// <param name="NewbornKey">For a dose of a resident of the batch, the child's newborn key from its row: the ingest looks
/// for a stored child whose birth certificate's correction left it a record key (<see cref="StoredRow.NewbornRecordKey"/>).</param>
/// <param name="Header">The columns of the row's file in their order (<see cref="ColumnLabel"/>).</param>
/// <param name="RegId">For a maternal visit, the registration it names (<c>reg_id</c>): a refusal because the hub lacks it names the column.</param>
/// <param name="BirthCertificateNo">For a dose of a resident of the batch that has neither an ID number nor a newborn key,
/// the child's birth certificate number: the ingest looks for the stored child it names, whose person key
/// (<see cref="StoredRow.PersonKey"/>) gives the id the certificate gave the dose.</param>
public sealed record TownshipRow(string File, string Table, int Row, int Line, string Key, DateTimeOffset UpdatedAt, bool Deleted,
    string Institution, Func<StoredRow?, Bundle?>? Mapping, IReadOnlyList<string> ReferencedResidents,
    (string Column, DateOnly Date)? EarliestEvent = null, string ContentHash = "", (string RegId, DateOnly Date)? AntenatalVisit = null,
    string? NewbornKey = null, string? BirthCertificateNo = null, string? RegId = null, IReadOnlyList<string>? Header = null)
{
    /// <summary>A column of the row's file as an issue names it: <c>record_no (column 2)</c>, as the reader's checks do.</summary>
    public string ColumnLabel(string column) => Header is null ? column : Label(Header, column);

    /// <summary>A column of a file with <paramref name="header"/> as an issue names it: <c>record_no (column 2)</c>.</summary>
    public static string Label(IReadOnlyList<string> header, string column)
    {
        for (var i = 0; i < header.Count; i++)
        {
            if (header[i] == column)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{column} (column {i + 1})");
            }
        }

        return column;
    }

    /// <param name="stored">What the hub holds of the row: see <see cref="StoredRow"/>.</param>
    public Bundle? Map(StoredRow? stored = null) => Mapping?.Invoke(stored);
}

/// <summary>What the hub holds for a row (none when it is new and no dose).</summary>
/// <param name="Id">For a dose, the id of the Immunization the row wrote before (kept, so an update never makes a second one).</param>
/// <param name="PersonKey">For a dose of a resident of an earlier batch, or of one of the batch known by its birth
/// certificate alone (<see cref="TownshipRow.BirthCertificateNo"/>), the stored Patient's person key
/// (<see cref="Identity.DoseIds.PersonKey"/>), for the id the HIS and the certificates give the same dose.</param>
/// <param name="SharedWithOtherSources">The stored dose carries another report's identifier (the HIS, a certificate,
/// another township row): a deleted row then takes back only its own.</param>
/// <param name="Replaces">An earlier version of the row was applied: this one replaces it whole (§2 "Update"), so the
/// items that version wrote and this one leaves empty are removed.</param>
/// <param name="NewbornRecordKey">For a dose of a resident of the batch, the record key of the stored child its newborn key
/// names (<see cref="Identity.ExtensionUrls.NewbornRecordKey"/>): the dose's id is made from it.</param>
/// <param name="LeavesDose">The stored dose (its id) that the row's earlier version reported and this version, of another
/// vaccine or date, no longer does: the row takes its <c>vacc_id</c> off it (the ingest may put the dose back to another
/// source's report, or delete it when no other source reports it).</param>
public sealed record StoredRow(string? Id = null, string? PersonKey = null, bool SharedWithOtherSources = false, bool Replaces = false,
    string? NewbornRecordKey = null, string? LeavesDose = null);

/// <summary>The result of reading and mapping one batch: accepted rows in application order, and every problem found.</summary>
public sealed record TownshipBatchResult(TownshipManifest? Manifest, IReadOnlyList<TownshipRow> Rows, IReadOnlyList<TownshipIssue> Issues)
{
    public bool BatchRejected => Manifest is null;
}
