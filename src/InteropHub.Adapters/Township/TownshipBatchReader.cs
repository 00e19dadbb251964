using System.Globalization;
using System.IO.Compression;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Township;

/// <summary>
/// Reads a township export batch (township-export.md): manifest, per-file integrity (SHA-256 and row count),
/// encoding (UTF-8 with or without BOM, or GB 18030), RFC 4180 rows, and the per-row checks of §2 in their
/// order; valid rows are mapped by <see cref="TownshipMapper"/>. Pure: the batch is given as file name → bytes.
/// </summary>
public static class TownshipBatchReader
{
    private static readonly TimeSpan China = TimeSpan.FromHours(8);
    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, true);

    /// <summary>
    /// The files of a zipped batch, at the zip root or inside one folder. Windows tools may write the folder with a
    /// backslash; the metadata macOS adds (<c>__MACOSX/</c>, <c>._name</c>, <c>.DS_Store</c>) is not part of the batch.
    /// A zip without a readable directory throws <see cref="InvalidDataException"/>; so does a damaged entry (data that
    /// does not inflate, or fails the directory's CRC-32) or one that inflates past <see cref="MaxFileBytes"/>, unless
    /// <paramref name="damaged"/> collects its name and why instead (the file is then left out, and <see cref="Read"/>
    /// refuses it alone, as a file whose SHA-256 differs).
    /// </summary>
    public static IReadOnlyDictionary<string, byte[]> FromZip(byte[] zip, IDictionary<string, string>? damaged = null)
    {
        using var archive = new ZipArchive(new MemoryStream(zip, writable: false), ZipArchiveMode.Read);
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        long total = 0;
        foreach (var (name, entry) in BatchEntries(archive))
        {
            try
            {
                files[name] = ReadEntry(entry, MaxBatchBytes - total);
                total += files[name].Length;
            }
            catch (InvalidDataException e) when (damaged is not null)
            {
                files.Remove(name);
                damaged[name] = e.Message;
            }
        }

        return files;
    }

    /// <summary>
    /// The most a file of a batch may inflate to: a township's full export is tens of megabytes; a zip whose entry
    /// inflates further (a few megabytes that expand to gigabytes) is refused before it fills the hub's memory.
    /// </summary>
    public const int MaxFileBytes = 256 * 1024 * 1024;

    /// <summary>The most the files of one batch may inflate to together; the files past it are refused alone.</summary>
    public const long MaxBatchBytes = 1024L * 1024 * 1024;

    /// <summary>
    /// One file of a zipped batch by its name (<c>manifest.json</c>), read alone; null when the batch has none. Throws
    /// <see cref="InvalidDataException"/> as <see cref="FromZip"/> does.
    /// </summary>
    public static byte[]? FileFromZip(byte[] zip, string name)
    {
        using var archive = new ZipArchive(new MemoryStream(zip, writable: false), ZipArchiveMode.Read);
        return BatchEntries(archive).LastOrDefault(e => e.Name == name).Entry is { } entry ? ReadEntry(entry, MaxFileBytes) : null;
    }

    private static IEnumerable<(string Name, ZipArchiveEntry Entry)> BatchEntries(ZipArchive archive)
    {
        foreach (var entry in archive.Entries)
        {
            var path = entry.FullName.Replace('\\', '/');
            var name = path[(path.LastIndexOf('/') + 1)..];
            if (name.Length > 0 && !path.StartsWith("__MACOSX/", StringComparison.Ordinal) && !name.StartsWith("._", StringComparison.Ordinal) && name != ".DS_Store")
            {
                yield return (name, entry);
            }
        }
    }

    /// <param name="room">What the batch's files may still inflate to, with this one.</param>
    private static byte[] ReadEntry(ZipArchiveEntry entry, long room)
    {
        // The directory's size is the sender's word: the bytes are counted as they inflate.
        var limit = Math.Min(MaxFileBytes, room);
        var tooLarge = new InvalidDataException(limit < MaxFileBytes
            ? $"{entry.FullName} 解压后使整个批次超过 {MaxBatchBytes / (1024 * 1024)} MiB 的上限"
            : $"{entry.FullName} 解压后超过 {MaxFileBytes / (1024 * 1024)} MiB，超出单个文件的上限");
        if (entry.Length > limit)
        {
            throw tooLarge;
        }

        using var copy = new MemoryStream();
        try
        {
            using var stream = entry.Open();
            var buffer = new byte[81920];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                if (copy.Length + read > limit)
                {
                    throw tooLarge;
                }

                copy.Write(buffer, 0, read);
            }
        }
        catch (InvalidDataException e) when (e != tooLarge)
        {
            throw new InvalidDataException($"{entry.FullName}: {e.Message}", e);
        }

        // The archive does not check an entry's CRC-32 as it reads: data damaged in a stored (uncompressed) entry
        // would read as other bytes.
        var bytes = copy.ToArray();
        if (Crc32.HashToUInt32(bytes) != entry.Crc32)
        {
            throw new InvalidDataException($"{entry.FullName}: its data does not match the CRC-32 the zip's directory gives (the file was damaged).");
        }

        return bytes;
    }

    /// <param name="damaged">Files of the zip whose data was damaged (<see cref="FromZip"/>): each is refused alone.</param>
    public static TownshipBatchResult Read(IReadOnlyDictionary<string, byte[]> files, IReadOnlyDictionary<string, string>? damaged = null)
    {
        var issues = new List<TownshipIssue>();
        var manifest = ReadManifest(files, issues);
        if (manifest is null)
        {
            return new TownshipBatchResult(null, [], issues);
        }

        var rows = new List<TownshipRow>();
        var state = new BatchState(manifest);
        foreach (var name in files.Keys.Union(damaged?.Keys ?? []).Where(n => n != "manifest.json" && !manifest.Files.Any(f => f.Name == n))
            .Order(StringComparer.Ordinal))
        {
            issues.Add(new TownshipIssue(name, 0, 0, null, null, RejectionReason.Integrity.Code(), $"{name} 不在清单中"));
        }

        // Tables are applied in the order of §3 so that references resolve.
        var ordered = manifest.Files.OrderBy(f => TownshipSchema.Tables.ToList().FindIndex(t => t.Table == f.Table) is var i && i < 0 ? int.MaxValue : i);
        foreach (var file in ordered)
        {
            ReadFile(file, files, damaged, state, rows, issues);
        }

        return new TownshipBatchResult(manifest, rows, issues);
    }

    /// <summary>The warning on a pregnancy registered for a resident recorded as a man (§3.6), in this batch or an earlier one.</summary>
    internal static string MaleRegistration(string recordNo) => $"record_no {recordNo} 的居民性别为男，孕产妇建册应为女性居民";

    /// <summary>The batch's manifest alone (its batch id keys the batch in the inbox), or null when it is missing or unreadable.</summary>
    public static TownshipManifest? ReadManifest(IReadOnlyDictionary<string, byte[]> files) => ReadManifest(files, []);

    private static TownshipManifest? ReadManifest(IReadOnlyDictionary<string, byte[]> files, List<TownshipIssue> issues)
    {
        void Reject(string detail) => issues.Add(new TownshipIssue("manifest.json", 0, 0, null, null, RejectionReason.Malformed.Code(), detail));
        if (!files.TryGetValue("manifest.json", out var bytes))
        {
            Reject("批次缺少 manifest.json");
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            var root = document.RootElement;
            string Text(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
                ? s
                : throw new FormatException($"清单缺少必填项 {key}");
            // §1 manifest.json: the version this reader knows, the one source system and the two kinds of export.
            if (Text("manifest_version") is var version && !(version == "1" || version.StartsWith("1.", StringComparison.Ordinal)))
            {
                throw new FormatException($"清单版本 manifest_version {version} 不受支持，应为 1.0");
            }

            if (Text("source_system") is var system && system != "QX-PHS")
            {
                throw new FormatException($"清单 source_system {system} 应为 QX-PHS");
            }

            if (Text("export_type") is var exportType && exportType is not ("full" or "incremental"))
            {
                throw new FormatException($"清单 export_type {exportType} 应为 full 或 incremental");
            }

            var exportTime = DateTimeOffset.Parse(Text("export_time"), CultureInfo.InvariantCulture);
            var sequence = root.TryGetProperty("sequence", out var seq) && seq.TryGetInt32(out var n) ? n : throw new FormatException("清单缺少必填项 sequence");
            if (sequence < 1)
            {
                throw new FormatException($"清单 sequence {sequence} 应为 1, 2, 3 …");
            }

            // The exporting centre is one of the county's institutions (legacy README). The batch id, a key unique per
            // source, begins with that centre's code (<institution code>-<YYYYMMDD>-<NNN>): one that does not is a
            // warning, as the id keys nothing but the batch.
            var institution = Text("source_institution_code");
            if (!CountyCodes.Institutions.ContainsKey(institution))
            {
                throw new FormatException($"清单 source_institution_code {institution} 不在机构代码表中");
            }

            var batchId = Text("batch_id");
            if (!batchId.StartsWith(institution + "-", StringComparison.Ordinal))
            {
                issues.Add(new TownshipIssue("manifest.json", 0, 0, "batch_id", batchId, "WARNING",
                    $"批次号 {batchId} 不以导出机构代码 {institution} 开头 (<机构代码>-<YYYYMMDD>-<NNN>)", IssueSeverity.Warning));
            }

            var encoding = Text("encoding");
            if (encoding is not ("UTF-8" or "GB18030"))
            {
                throw new FormatException($"清单 encoding {encoding} 应为 UTF-8 或 GB18030");
            }

            if (!root.TryGetProperty("files", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("清单缺少必填项 files");
            }

            var entries = new List<TownshipFile>();
            foreach (var f in list.EnumerateArray())
            {
                string FileText(string key) => f.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
                    ? s
                    : throw new FormatException($"清单 files[] 缺少必填项 {key}");
                var rows = f.TryGetProperty("rows", out var r) && r.TryGetInt32(out var count) ? count : throw new FormatException("清单 files[] 缺少必填项 rows");
                entries.Add(new TownshipFile(FileText("name"), FileText("table"), rows, FileText("sha256").ToLowerInvariant(),
                    f.TryGetProperty("encoding", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null));
                // §1: one entry per file. A second entry would read the file twice, or leave its rows in the batch
                // while the report refuses them under the other entry's checksum.
                if (entries.Count(x => x.Name == entries[^1].Name) > 1)
                {
                    throw new FormatException($"清单 files[] 两次列出 {entries[^1].Name}，每个文件只能列出一次");
                }
            }

            return new TownshipManifest(batchId, Text("source_system"), institution, Text("export_type"),
                sequence, exportTime, encoding, entries);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            Reject($"manifest.json 无法读取: {e.Message}");
            return null;
        }
    }

    private static void ReadFile(TownshipFile file, IReadOnlyDictionary<string, byte[]> files, IReadOnlyDictionary<string, string>? damaged, BatchState state,
        List<TownshipRow> rows, List<TownshipIssue> issues)
    {
        void FileIssue(string code, string detail) => issues.Add(new TownshipIssue(file.Name, 0, 0, null, null, code, detail));
        if (!files.TryGetValue(file.Name, out var bytes))
        {
            FileIssue(RejectionReason.Integrity.Code(), damaged?.TryGetValue(file.Name, out var why) == true
                ? $"{file.Name} 在 zip 中已损坏或过大（{why}），整个文件未处理；同一 batch_id 的重发不再处理，请在新批次中重新导出"
                : $"清单列出的文件 {file.Name} 不存在");
            return;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (hash != file.Sha256)
        {
            FileIssue(RejectionReason.Integrity.Code(), $"{file.Name} 的 SHA-256 为 {hash}，清单为 {file.Sha256}");
            return;
        }

        var schema = TownshipSchema.Find(file.Table);
        if (schema is null)
        {
            FileIssue(RejectionReason.Unsupported.Code(), $"表 {file.Table} 不在接口范围内，文件已跳过");
            return;
        }

        string text;
        try
        {
            var encoding = file.Encoding ?? state.Manifest.Encoding;
            text = encoding == "GB18030"
                ? Hl7Parser.Gb18030.GetString(bytes)
                : StrictUtf8.GetString(bytes.AsSpan(bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0));
        }
        catch (DecoderFallbackException)
        {
            FileIssue(RejectionReason.Malformed.Code(), $"{file.Name} 不是有效的 {file.Encoding ?? state.Manifest.Encoding} 文本");
            return;
        }

        var table = CsvTable.Parse(text, TownshipSchema.NormalizedColumns(schema));
        if (table.Rows.Count != file.Rows)
        {
            FileIssue(RejectionReason.Integrity.Code(), $"{file.Name} 有 {table.Rows.Count} 行数据，清单为 {file.Rows}");
            return;
        }

        var columns = TownshipSchema.ColumnsOf(schema);
        var missing = columns.Where(c => c.Required && !table.Header.Contains(c.Name)).Select(c => c.Name).ToList();
        if (missing.Count > 0)
        {
            FileIssue(RejectionReason.Malformed.Code(), $"{file.Name} 缺少必需的列 {string.Join(", ", missing)}");
            return;
        }

        foreach (var extra in table.Header.Where(h => columns.All(c => c.Name != h)))
        {
            issues.Add(new TownshipIssue(file.Name, 0, 1, extra, null, "WARNING", $"未知的列 {extra} 已忽略", IssueSeverity.Warning));
        }

        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var row in table.Rows)
        {
            var validator = new RowValidator(file, schema, table, row, state);
            var key = row[schema.Key];
            // The first occurrence of a key is the one processed, even when it is rejected (§2 "Duplicates").
            var earlier = key.Length > 0 && !seen.TryAdd(key, row.Content) ? seen[key] : null;
            // An identical repeat is ignored whatever became of the first, valid or not: it is not a row to check again
            // (a repeat of a refused row is not a second refusal).
            var issue = earlier == row.Content
                ? new TownshipIssue(file.Name, row.Number, row.Line, null, key, "WARNING", "同一主键的相同行重复出现，已忽略", IssueSeverity.Warning)
                : validator.Validate(earlier);
            if (issue is not null)
            {
                issues.Add(issue);
                // A later occurrence of a key does not change what became of the first (§2 "Duplicates"): rows naming
                // an accepted resident stay accepted when a different copy of it is refused.
                if (issue.Severity == IssueSeverity.Error && earlier is null)
                {
                    state.Rejected(schema.Table, key);
                }

                continue;
            }

            var deleted = row["status"] == "deleted";
            if (!deleted)
            {
                foreach (var (column, detail) in PlausibleRanges.Outside(columns.Select(c => c.Name), c => TextNormalizer.Number(row[c])))
                {
                    issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, column, key, "WARNING", detail, IssueSeverity.Warning));
                }

                // §2: the row was recorded by the exporting centre or one of its village clinics; another institution is
                // kept as sent (the row may be right and the code a slip), with a warning.
                var recorder = row["org_code"];
                if (recorder.Length > 0 && recorder != state.Manifest.Institution
                    && CountyCodes.ClinicCentres.GetValueOrDefault(recorder) != state.Manifest.Institution)
                {
                    issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, "org_code", key, "WARNING",
                        $"org_code {recorder} 不是导出机构 {state.Manifest.Institution} 或其村卫生室", IssueSeverity.Warning));
                }
            }

            if (schema.Table == "residents" && !deleted && row["id_type"] == "01" && row["id_no"].Length > 0)
            {
                // Warnings never reject (README "Rejection reasons"): an upgraded 15-digit number, a sex digit that
                // disagrees with the stated sex.
                var check = ResidentIdNumber.Check(TextNormalizer.Number(row["id_no"]), DateOnly.MaxValue);
                if (check.Upgraded)
                {
                    issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, "id_no", key, "WARNING", $"15位身份证号已升级为 {check.Value}", IssueSeverity.Warning));
                }

                if (check.IsValid && !ResidentIdNumber.KnownArea(check.Value))
                {
                    issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, "id_no", key, "WARNING",
                        $"身份证号 {check.Value} 的地区码 {check.Value[..6]} 不在行政区划表中", IssueSeverity.Warning));
                }

                if (check.IsValid && row["sex_code"] is "1" or "2" && check.IsMale != (row["sex_code"] == "1"))
                {
                    issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, "sex_code", key, "WARNING",
                        $"sex_code {row["sex_code"]} 与身份证号第17位所示性别不符", IssueSeverity.Warning));
                }
            }

            var updatedAt = RowValidator.ParseDateTime(row["updated_at"])!.Value;
            var resident = state.Resident(row["record_no"]);
            if (!deleted && schema.Table == "maternal_registrations" && resident?["sex_code"] == "1")
            {
                // §3.6: the registered resident is a woman. Applied all the same: the mistake may be the resident's sex.
                issues.Add(new TownshipIssue(file.Name, row.Number, row.Line, "record_no", key, "WARNING", MaleRegistration(row["record_no"]), IssueSeverity.Warning));
            }

            var registrationInBatch = schema.Table == "maternal_visits" && state.Registration(row["reg_id"]) is not null;
            Func<StoredRow?, Bundle?> mapping = stored => TownshipMapper.Map(schema.Table, row, deleted, resident,
                $"{TownshipMapper.SourcePrefix}{state.Manifest.BatchId}#{file.Name}:{row.Number}", registrationInBatch, stored);
            if (deleted && schema.Table == "residents")
            {
                // Its later rows in this batch name a resident who is no longer known (§2 "References").
                state.Deleted(key);
            }
            else if (!deleted)
            {
                // A deleted registration is no registration its visits can name.
                state.Accepted(schema.Table, key, row);
            }

            var residents = schema.ReferencesResident && !state.ResidentInBatch(row["record_no"]) ? new[] { row["record_no"] } : [];
            // A deleted row may carry only its key: the exporting institution of the batch is then its author.
            var institution = string.IsNullOrEmpty(row["org_code"]) ? state.Manifest.Institution : row["org_code"];
            var earliest = residents.Length == 0 || deleted ? null : TownshipSchema.ColumnsOf(schema)
                .Where(c => c.Type == ColumnType.Date && !c.Planned)
                .Select(c => (Column: c.Name, Date: RowValidator.ParseDate(row[c.Name])))
                .Where(e => e.Date is not null).OrderBy(e => e.Date).Select(e => ((string, DateOnly)?)(e.Column, e.Date!.Value)).FirstOrDefault();
            // The cells of the schema's columns in its order, so a later batch whose columns come in another order hashes alike.
            var cells = string.Join('\u001F', columns.Select(c => row[c.Name]));
            var contentHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(cells)).AsSpan(0, 8));
            var antenatal = !deleted && !registrationInBatch && schema.Table == "maternal_visits" && row["visit_type"] == "AN"
                && RowValidator.ParseDate(row["visit_date"]) is { } visitDate ? (row["reg_id"], visitDate) : ((string, DateOnly)?)null;
            var newbornKey = schema.Table == "immunizations" && !deleted && resident is not null ? TownshipMapper.NewbornKey(resident) : null;
            var certificateOnly = schema.Table == "immunizations" && !deleted && resident is not null && newbornKey is null
                && !TownshipMapper.IsIdNumber(resident) && TextNormalizer.Number(resident["birth_cert_no"]) is { Length: > 0 } certificate ? certificate : null;
            rows.Add(new TownshipRow(file.Name, schema.Table, row.Number, row.Line, key, updatedAt, deleted, institution, mapping, residents, earliest, contentHash,
                antenatal, newbornKey, certificateOnly, schema.Table == "maternal_visits" && !deleted ? row["reg_id"] : null, table.Header));
        }
    }

    /// <summary>What earlier files of the batch accepted and rejected, for references and birth-date checks.</summary>
    private sealed class BatchState(TownshipManifest manifest)
    {
        private readonly Dictionary<string, CsvRow> _residents = new(StringComparer.Ordinal);
        private readonly HashSet<string> _rejectedResidents = new(StringComparer.Ordinal);
        private readonly HashSet<string> _deletedResidents = new(StringComparer.Ordinal);
        private readonly Dictionary<string, CsvRow> _registrations = new(StringComparer.Ordinal);
        private readonly HashSet<string> _rejectedRegistrations = new(StringComparer.Ordinal);

        public TownshipManifest Manifest { get; } = manifest;

        public bool ResidentInBatch(string recordNo) => _residents.ContainsKey(recordNo);

        public bool ResidentRejected(string recordNo) => _rejectedResidents.Contains(recordNo);

        public bool ResidentDeleted(string recordNo) => _deletedResidents.Contains(recordNo);

        public void Deleted(string recordNo)
        {
            _deletedResidents.Add(recordNo);
            _residents.Remove(recordNo);
        }

        public bool RegistrationRejected(string regId) => _rejectedRegistrations.Contains(regId);

        public CsvRow? Registration(string regId) => _registrations.GetValueOrDefault(regId);

        public CsvRow? Resident(string recordNo) => _residents.GetValueOrDefault(recordNo);

        public void Accepted(string table, string key, CsvRow row)
        {
            if (table == "residents")
            {
                _residents[key] = row;
            }
            else if (table == "maternal_registrations")
            {
                _registrations[key] = row;
            }
        }

        public void Rejected(string table, string key)
        {
            if (table == "residents")
            {
                _rejectedResidents.Add(key);
            }
            else if (table == "maternal_registrations")
            {
                _rejectedRegistrations.Add(key);
            }
        }
    }

    /// <summary>The checks of §2 in their order; the first failure is the reason (township-export.md §2 "Invalid rows").</summary>
    private sealed class RowValidator(TownshipFile file, TableSchema schema, CsvTable table, CsvRow row, BatchState state)
    {
        private static readonly string[] DateFormats = ["yyyy-MM-dd", "yyyy/M/d", "yyyyMMdd"];

        private readonly IReadOnlyList<Column> _columns = TownshipSchema.ColumnsOf(schema);

        /// <summary>The "C" columns of §3.3–3.8: (table, column, required when, the rule as the spec states it).</summary>
        private static readonly (string Table, string Column, Func<CsvRow, bool> When, string Why)[] Conditional =
        [
            ("contracts", "terminate_date", r => r["contract_status"] == "2", "contract_status = 2 已解约"),
            ("followups_hypertension", "sbp", r => r["followup_method"] is "1" or "2", "门诊或家庭随访"),
            ("followups_hypertension", "dbp", r => r["followup_method"] is "1" or "2", "门诊或家庭随访"),
            ("followups_hypertension", "referral_reason", r => r["referral_flag"] == "1", "referral_flag = 1"),
            ("followups_hypertension", "referral_org_code", r => r["referral_flag"] == "1", "referral_flag = 1"),
            ("followups_diabetes", "fpg_mmol", r => r["followup_method"] is "1" or "2", "门诊或家庭随访"),
            ("followups_diabetes", "referral_reason", r => r["referral_flag"] == "1", "referral_flag = 1"),
            ("followups_diabetes", "referral_org_code", r => r["referral_flag"] == "1", "referral_flag = 1"),
            ("maternal_registrations", "high_risk_factors", r => r["high_risk"] == "1", "high_risk = 1"),
            ("maternal_registrations", "delivery_date", r => r["pregnancy_outcome"] is "1" or "2", "pregnancy_outcome = 1 或 2"),
            ("maternal_visits", "gest_weeks", r => r["visit_type"] == "AN", "产前随访"),
            ("maternal_visits", "gest_days", r => r["visit_type"] == "AN", "产前随访"),
            ("maternal_visits", "delivery_date", r => r["visit_type"] is "PP" or "PP42", "产后访视"),
            ("maternal_visits", "abnormal_desc", r => r["classification"] == "2", "classification = 2"),
            ("maternal_visits", "referral_reason", r => r["referral_flag"] == "1", "referral_flag = 1"),
            ("maternal_visits", "referral_org_code", r => r["referral_flag"] == "1", "referral_flag = 1"),
        ];

        /// <param name="earlier">The content of an earlier row with the same key in this file, if any.</param>
        public TownshipIssue? Validate(string? earlier)
        {
            if (row.Unreadable is { } why)
            {
                // Its cells are not where the header says: no column can be checked, the row is refused as it stands.
                return Fail(RejectionReason.Malformed, schema.Key, why);
            }

            var key = row[schema.Key];
            if (key.Length == 0)
            {
                return Fail(RejectionReason.MissingRequired, schema.Key, $"{schema.Key} 为空");
            }

            if (row["status"] == "deleted")
            {
                // A deleted row needs only its key, status and updated_at; the rest is not validated (§2 "Retraction").
                return ParseDateTime(row["updated_at"]) is null
                    ? Fail(RejectionReason.MissingRequired, "updated_at", "updated_at 为空或无效")
                    : Duplicate(earlier, key);
            }

            return Required() ?? Numbers() ?? Codes() ?? Identifiers() ?? Dates() ?? Duplicate(earlier, key) ?? References();
        }

        public static DateTimeOffset? ParseDateTime(string value) =>
            DateTime.TryParseExact(value, ["yyyy-MM-dd HH:mm:ss", "yyyy/M/d H:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm:ss"],
                CultureInfo.InvariantCulture, DateTimeStyles.None, out var local)
                ? new DateTimeOffset(local, China)
                : null;

        public static DateOnly? ParseDate(string value) =>
            DateOnly.TryParseExact(value, DateFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null;

        private TownshipIssue? Required()
        {
            foreach (var column in _columns.Where(c => c.Required && row[c.Name].Length == 0))
            {
                return Fail(RejectionReason.MissingRequired, column.Name, $"{column.Name} 为空");
            }

            foreach (var (table, column, when, why) in Conditional)
            {
                if (table == schema.Table && row[column].Length == 0 && when(row))
                {
                    return Fail(RejectionReason.MissingRequired, column, $"{column} 为空({why})");
                }
            }

            // Conditional columns of residents (§3.1).
            if (schema.Table == "residents")
            {
                if (row["id_no"].Length > 0 && row["id_type"].Length == 0)
                {
                    return Fail(RejectionReason.MissingRequired, "id_type", "填写了 id_no 时 id_type 必填");
                }

                if (row["nationality_code"] is "" or "CHN" && row["ethnicity_code"].Length == 0)
                {
                    return Fail(RejectionReason.MissingRequired, "ethnicity_code", "中国国籍时 ethnicity_code 必填");
                }

                if (row["archive_status"] == "3" && row["death_date"].Length == 0)
                {
                    return Fail(RejectionReason.MissingRequired, "death_date", "archive_status = 3(死亡)时 death_date 必填");
                }

                // A child under one without an ID number is found through its mother or its birth certificate.
                var exported = DateOnly.FromDateTime(state.Manifest.ExportTime.ToOffset(China).DateTime);
                if (row["id_no"].Length == 0 && row["mother_id_no"].Length == 0 && row["birth_cert_no"].Length == 0
                    && ParseDate(row["birth_date"]) is { } born && born > exported.AddYears(-1))
                {
                    return Fail(RejectionReason.MissingRequired, "mother_id_no", "未满 1 岁且无 id_no 的儿童需填写 mother_id_no 或 birth_cert_no");
                }
            }

            return null;
        }

        private TownshipIssue? Numbers()
        {
            foreach (var column in _columns.Where(c => c.Type is ColumnType.Int or ColumnType.Dec))
            {
                var value = TextNormalizer.Number(row[column.Name]);
                if (value.Length == 0)
                {
                    continue;
                }

                var integer = 0;
                var ok = column.Type == ColumnType.Int
                    ? int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out integer)
                    : decimal.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out _);
                if (!ok)
                {
                    return Fail(RejectionReason.Malformed, column.Name, $"{column.Name} {value} 不是数字");
                }

                if (column.Type == ColumnType.Int && integer < column.Min)
                {
                    return Fail(RejectionReason.Malformed, column.Name, $"{column.Name} {value} 应不小于 {column.Min}");
                }
            }

            // A certificate number links persons (README rule 4), so one of another shape is refused, not kept.
            foreach (var column in _columns.Where(c => c.Type == ColumnType.CertificateNo))
            {
                var value = TextNormalizer.Number(row[column.Name]);
                if (value.Length > 0 && !(value.Length == 10 && char.IsAsciiLetterUpper(value[0]) && !value.AsSpan(1).ContainsAnyExceptInRange('0', '9')))
                {
                    return Fail(RejectionReason.Malformed, column.Name, $"{column.Name} {value} 不是出生医学证明编号（一个大写字母加 9 位数字）");
                }
            }

            return null;
        }

        private TownshipIssue? Codes()
        {
            foreach (var column in _columns)
            {
                var value = TextNormalizer.Number(row[column.Name]);
                if (value.Length == 0)
                {
                    continue;
                }

                if (column.Type == ColumnType.Institution && !CountyCodes.Institutions.ContainsKey(value))
                {
                    return Fail(RejectionReason.UnknownCode, column.Name, $"{column.Name} {value} 不在机构表中");
                }

                if (column.Codes is { } codes)
                {
                    foreach (var code in column.Multi ? value.Split('|', StringSplitOptions.TrimEntries) : [value])
                    {
                        if (!codes.Contains(code))
                        {
                            var system = column.Name == "vaccine_code" ? " is not in QXVAC" : "";
                            return Fail(RejectionReason.UnknownCode, column.Name, $"{column.Name} {code}{system} 不在值域中");
                        }
                    }
                }
            }

            return null;
        }

        private TownshipIssue? Identifiers()
        {
            var asOf = DateOnly.FromDateTime(state.Manifest.ExportTime.ToOffset(China).DateTime);
            var idColumns = _columns.Where(c => c.Type == ColumnType.IdNumber).Select(c => c.Name).ToList();
            if (schema.Table == "residents" && row["id_type"] == "01")
            {
                idColumns.Insert(0, "id_no");
            }

            foreach (var name in idColumns)
            {
                var value = row[name];
                if (value.Length == 0)
                {
                    continue;
                }

                var check = ResidentIdNumber.Check(value, asOf);
                if (!check.IsValid)
                {
                    return Fail(check.Failure!.Value, name, $"{name} {check.Detail}");
                }
            }

            return null;
        }

        private TownshipIssue? Dates()
        {
            var export = state.Manifest.ExportTime;
            var exportDate = DateOnly.FromDateTime(export.ToOffset(China).DateTime);
            foreach (var column in _columns.Where(c => c.Type is ColumnType.Date or ColumnType.DateTime))
            {
                var value = row[column.Name];
                if (value.Length == 0)
                {
                    continue;
                }

                if (column.Type == ColumnType.DateTime)
                {
                    if (ParseDateTime(value) is not { } instant)
                    {
                        return Fail(RejectionReason.ImpossibleDate, column.Name, $"{column.Name} {value} 不是有效的日期时间");
                    }

                    if (instant > export)
                    {
                        return Fail(RejectionReason.ImpossibleDate, column.Name, $"{column.Name} {value} 晚于导出时间");
                    }

                    continue;
                }

                if (ParseDate(value) is not { } date)
                {
                    return Fail(RejectionReason.ImpossibleDate, column.Name, $"{column.Name} {value} is not a calendar date");
                }

                if (!column.Planned && date > exportDate)
                {
                    return Fail(RejectionReason.ImpossibleDate, column.Name, $"{column.Name} {value} 晚于导出时间");
                }
            }

            return Order("start_date", "end_date") ?? Order("followup_date", "next_followup_date") ?? Order("lmp_date", "register_date")
                ?? Order("birth_date", "death_date") ?? Order("lmp_date", "delivery_date") ?? Order("delivery_date", "visit_date")
                ?? BeforeRegistration() ?? BeforeBirth();
        }

        /// <summary>An antenatal visit before its registration (the registration accepted earlier in this batch).</summary>
        private TownshipIssue? BeforeRegistration()
        {
            if (schema.Table != "maternal_visits" || row["visit_type"] != "AN" || state.Registration(row["reg_id"]) is not { } registration)
            {
                return null;
            }

            return ParseDate(row["visit_date"]) is { } visit && ParseDate(registration["register_date"]) is { } registered && visit < registered
                ? Fail(RejectionReason.ImpossibleDate, "visit_date", $"visit_date {row["visit_date"]} 早于建册日期 {registration["register_date"]}")
                : null;
        }

        private TownshipIssue? Order(string first, string second)
        {
            if (ParseDate(row[first]) is { } a && ParseDate(row[second]) is { } b && b < a)
            {
                return Fail(RejectionReason.ImpossibleDate, second, $"{second} {row[second]} 早于 {first} {row[first]}");
            }

            return null;
        }

        private TownshipIssue? BeforeBirth()
        {
            if (!schema.ReferencesResident || state.Resident(row["record_no"]) is not { } resident || ParseDate(resident["birth_date"]) is not { } birth)
            {
                return null;
            }

            foreach (var column in _columns.Where(c => c.Type == ColumnType.Date && !c.Planned))
            {
                if (ParseDate(row[column.Name]) is { } date && date < birth)
                {
                    return Fail(RejectionReason.ImpossibleDate, column.Name, $"{column.Name} {row[column.Name]} 早于出生日期 {resident["birth_date"]}");
                }
            }

            return null;
        }

        /// <summary>A later occurrence of a key with other content (an identical one is ignored before any check).</summary>
        private TownshipIssue? Duplicate(string? earlier, string key) =>
            earlier is null ? null : Fail(RejectionReason.DuplicateKey, schema.Key, $"主键 {key} 在文件中重复且内容不同");

        private TownshipIssue? References()
        {
            if (schema.ReferencesResident && state.ResidentRejected(row["record_no"]))
            {
                return Fail(RejectionReason.UnknownReference, "record_no", $"record_no {row["record_no"]} 的居民档案已被拒绝");
            }

            if (schema.ReferencesResident && state.ResidentDeleted(row["record_no"]))
            {
                return Fail(RejectionReason.UnknownReference, "record_no", $"record_no {row["record_no"]} 的居民档案已在本批次中删除");
            }

            if (schema.Table == "maternal_visits" && state.RegistrationRejected(row["reg_id"]))
            {
                return Fail(RejectionReason.UnknownReference, "reg_id", $"reg_id {row["reg_id"]} 的建册记录已被拒绝");
            }

            // §2 "References": the visit is the registered woman's (a registration of an earlier batch is checked by
            // the hub when the row applies: TownshipCareMapping.MaternalVisit).
            if (schema.Table == "maternal_visits" && state.Registration(row["reg_id"]) is { } registration
                && TextNormalizer.Number(registration["record_no"]) != TextNormalizer.Number(row["record_no"]))
            {
                return Fail(RejectionReason.UnknownReference, "reg_id", $"reg_id {row["reg_id"]} 是 record_no {registration["record_no"]} 的建册记录，不是 {row["record_no"]} 的");
            }

            return null;
        }

        private TownshipIssue Fail(RejectionReason reason, string column, string detail) =>
            new(file.Name, row.Number, row.Line, ColumnLabel(column), row[schema.Key], reason.Code(), detail);

        private string ColumnLabel(string column) => TownshipRow.Label(table.Header, column);
    }
}
