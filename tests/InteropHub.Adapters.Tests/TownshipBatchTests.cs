using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.His;
using InteropHub.Adapters.Township;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Adapters.Tests;

public sealed class TownshipBatchTests
{
    private static Dictionary<string, byte[]> Batch(string folder) =>
        Directory.GetFiles(SampleFiles.Folder($"township/{folder}")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void Batch_001_rejects_exactly_the_three_documented_rows_and_accepts_every_other_row()
    {
        var result = TownshipBatchReader.Read(Batch("batch-001"));

        var errors = result.Issues.Where(i => i.Severity == IssueSeverity.Error).Select(i => (i.File, i.Row, i.Key, i.Code)).ToList();
        Assert.Equal(
        [
            ("residents.csv", 20, "36992110120100081", "ID_CHECK_DIGIT"),
            ("immunizations.csv", 30, "JZ-QX2110026-0000330", "UNKNOWN_CODE"),
            ("child_checkups.csv", 18, "ET-QX2110026-0000118", "IMPOSSIBLE_DATE"),
        ], errors);
        Assert.Equal(30 + 30 + 16 + 15 + 10 + 10 + 21 + 18 - 3, result.Rows.Count);
    }

    [Fact]
    public void A_rejected_row_names_file_row_line_column_and_reason()
    {
        var result = TownshipBatchReader.Read(Batch("batch-001"));

        var residents = result.Issues.Single(i => i.Code == "ID_CHECK_DIGIT");
        Assert.Equal(("residents.csv", 20, 21, "id_no (column 6)"), (residents.File, residents.Row, residents.Line, residents.Column));
        Assert.Contains("369902197803150217 校验位应为 8", residents.Detail, StringComparison.Ordinal);
        var checkup = result.Issues.Single(i => i.Code == "IMPOSSIBLE_DATE");
        Assert.Contains("checkup_date 2025-02-30 is not a calendar date", checkup.Detail, StringComparison.Ordinal);
        var vaccine = result.Issues.Single(i => i.Code == "UNKNOWN_CODE");
        Assert.Contains("vaccine_code 9999 is not in QXVAC", vaccine.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Rows_are_applied_residents_first_and_mapped_rows_carry_a_valid_transaction()
    {
        var result = TownshipBatchReader.Read(Batch("batch-001"));

        Assert.Equal("residents", result.Rows[0].Table);
        var serializers = new FhirSerializers();
        foreach (var row in result.Rows.Where(r => r.Mapping is not null))
        {
            var transaction = row.Map()!;
            Assert.IsType<Bundle>(serializers.ParseJson(serializers.ToJsonBytes(transaction)));
            Assert.DoesNotContain(transaction.Entry, e => e.Resource is Provenance);
        }

        Assert.All(result.Rows, r => Assert.NotNull(r.Map()));
        var lidefu = result.Rows.Single(r => r.Key == "36992110120100023").Map()!.Entry[0];
        Assert.StartsWith("Patient?identifier=urn:oid:2.16.156.10011.1.3|369902195804121372,urn:oid:2.16.156.10011.1.2|36992110120100023", lidefu.Request!.Url, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("batch-001", "residents")]
    [InlineData("batch-001", "immunizations")]
    [InlineData("batch-001", "contracts")]
    [InlineData("batch-001", "followups_hypertension")]
    [InlineData("batch-001", "followups_diabetes")]
    [InlineData("batch-001", "maternal_registrations")]
    [InlineData("batch-001", "maternal_visits")]
    [InlineData("batch-001", "child_checkups")]
    [InlineData("batch-003-longquan-gb18030", "residents")]
    public void The_first_row_of_each_table_applied_alone_maps_to_its_golden_bundle(string batch, string table)
    {
        var result = TownshipBatchReader.Read(Batch(batch));
        var row = result.Rows.First(r => r.Table == table);

        var transaction = row.Map()!;
        transaction.Entry.Add(TownshipMapper.Provenance(result.Manifest!, row.Institution, [(row, transaction)])!);
        var json = Encoding.UTF8.GetString(new FhirSerializers().ToJsonBytes(transaction, pretty: true)) + "\n";
        var name = $"{batch}.{table}.json";
        if (Environment.GetEnvironmentVariable("INTEROPHUB_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(GoldenFolder.Source, "township", name), json);
        }

        Assert.Equal(File.ReadAllText(SampleFiles.Folder($"../Golden/township/{name}")), json);
    }

    [Fact]
    public void Rows_applied_together_share_one_Provenance_naming_their_batch_and_targeting_what_they_write_and_each_resource_names_its_row()
    {
        var result = TownshipBatchReader.Read(Batch("batch-001"));
        var rows = result.Rows.Where(r => r.Table == "followups_hypertension").Take(3).Select(r => (Row: r, Transaction: r.Map()!)).ToList();

        var entry = TownshipMapper.Provenance(result.Manifest!, "QX2110026", rows)!;

        var provenance = Assert.IsType<Provenance>(entry.Resource);
        Assert.Equal(($"Provenance/{provenance.Id}", Bundle.HTTPVerb.PUT), (entry.Request!.Url, entry.Request.Method));
        var source = Assert.Single(provenance.Entity).What;
        Assert.Equal((TownshipMapper.BatchSystem, result.Manifest!.BatchId), (source.Identifier!.System, source.Identifier.Value));
        Assert.Equal($"QX-PHS {result.Manifest.BatchId} followups_hypertension.csv, 3 rows from row {rows[0].Row.Row} to {rows[2].Row.Row}", source.Display);
        // Each row's Encounter and Observations by id; the CarePlan the rows share (a conditional create) once, by its entry.
        var written = rows.SelectMany(r => r.Transaction.Entry).Select(e => e.Request!.Method == Bundle.HTTPVerb.PUT ? e.Request.Url : e.FullUrl).Distinct().ToList();
        Assert.Equal(written, provenance.Target.Select(t => t.Reference));
        Assert.All(rows, r => Assert.All(r.Transaction.Entry, e => Assert.Equal(
            $"urn:interophub:township:{result.Manifest.BatchId}#followups_hypertension.csv:{r.Row.Row}", e.Resource!.Meta!.Source)));
        Assert.Equal("Organization?identifier=urn:interophub:sid:org-code|QX2110026", provenance.Agent[0].Who.Reference);
        var occurred = Assert.IsType<Period>(provenance.Occurred);
        Assert.Equal((rows.Min(r => r.Row.UpdatedAt), rows.Max(r => r.Row.UpdatedAt)),
            (occurred.StartElement!.ToDateTimeOffset(TimeSpan.Zero), occurred.EndElement!.ToDateTimeOffset(TimeSpan.Zero)));
        Assert.NotEqual(provenance.Id, TownshipMapper.Provenance(result.Manifest, "QX2110026", rows[..2])!.Resource!.Id);
    }

    [Fact]
    public void Deleted_rows_are_targeted_by_the_id_they_delete_and_deletions_by_identifier_alone_have_no_Provenance()
    {
        var result = TownshipBatchReader.Read(Batch("batch-002"));
        var deleted = result.Rows.Single(r => r.Deleted);
        var byIdentifier = TownshipMapper.Provenance(result.Manifest!, "QX2110026", [(deleted, deleted.Map()!)]);
        var contract = new Bundle { Entry = [new Bundle.EntryComponent { Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.DELETE, Url = "EpisodeOfCare/QY-1" } }] };

        var byId = TownshipMapper.Provenance(result.Manifest!, "QX2110026", [(deleted with { Table = "contracts" }, contract)]);

        Assert.Null(byIdentifier);
        Assert.Equal("EpisodeOfCare/QY-1", Assert.Single(Assert.IsType<Provenance>(byId!.Resource).Target).Reference);
    }

    [Fact]
    public void A_dose_row_that_leaves_the_dose_its_earlier_version_reported_writes_its_own_and_takes_its_vacc_id_off_the_other_by_id()
    {
        var result = TownshipBatchReader.Read(Batch("batch-001"));
        var row = result.Rows.First(r => r is { Table: "immunizations", Deleted: false });

        var transaction = row.Map(new StoredRow(PersonKey: "369921199404042082/20250514/male/1", LeavesDose: "earlier-dose"))!;

        var dose = Assert.IsType<Immunization>(Assert.Single(transaction.Entry, e => e.Request?.Method == Bundle.HTTPVerb.PUT).Resource);
        Assert.NotEqual("earlier-dose", dose.Id);
        var leave = Assert.Single(transaction.Entry, e => e.Request?.Method == Bundle.HTTPVerb.PATCH);
        Assert.Equal("Immunization/earlier-dose", leave.Request!.Url);
        Assert.Contains(Assert.IsType<Parameters>(leave.Resource).Parameter.SelectMany(p => p.Part),
            p => p is { Name: "path", Value: FhirString { Value: { } path } } && path.Contains(row.Key, StringComparison.Ordinal));
        // Without LeavesDose, the row writes only its dose.
        Assert.DoesNotContain(row.Map(new StoredRow(PersonKey: "369921199404042082/20250514/male/1"))!.Entry, e => e.Request?.Method == Bundle.HTTPVerb.PATCH);
    }

    [Fact]
    public void A_bom_batch_reads_and_a_deleted_row_deletes_its_dose()
    {
        var result = TownshipBatchReader.Read(Batch("batch-002"));

        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
        var deleted = Assert.Single(result.Rows, r => r.Deleted);
        Assert.Equal(Bundle.HTTPVerb.DELETE, deleted.Map()!.Entry[0].Request!.Method);
        Assert.All(result.Rows.Where(r => r.Table != "residents" && r.ReferencedResidents.Count > 0), r => Assert.Single(r.ReferencedResidents));
    }

    [Fact]
    public void A_gb18030_batch_with_spreadsheet_guards_and_slashed_dates_reads_without_errors()
    {
        var result = TownshipBatchReader.Read(Batch("batch-003-longquan-gb18030"));

        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
        var sun = (Patient)result.Rows.Single(r => r.Key == "36992120120200017").Map()!.Entry[0].Resource!;
        Assert.Equal(("孙桂芳", "1949-10-01"), (sun.Name[0].Text, sun.BirthDate));
        Assert.Contains(sun.Identifier, i => i.Value == "369902194910010866");
    }

    [Fact]
    public void A_file_whose_checksum_differs_is_rejected_whole_and_the_others_are_kept()
    {
        var files = Batch("batch-001");
        files["contracts.csv"] = [.. files["contracts.csv"], (byte)'\n'];

        var result = TownshipBatchReader.Read(files);

        var integrity = Assert.Single(result.Issues, i => i.Code == "INTEGRITY");
        Assert.Equal(("contracts.csv", 0), (integrity.File, integrity.Row));
        Assert.DoesNotContain(result.Rows, r => r.Table == "contracts");
        Assert.Contains(result.Rows, r => r.Table == "residents");
    }

    [Fact]
    public void A_manifest_that_is_not_json_rejects_the_batch_as_MALFORMED()
    {
        var files = Batch("batch-001");
        files["manifest.json"] = "{ not json"u8.ToArray();

        var result = TownshipBatchReader.Read(files);

        Assert.True(result.BatchRejected);
        Assert.Equal("MALFORMED", Assert.Single(result.Issues).Code);
    }

    [Theory]
    [InlineData("manifest_version", null, "manifest_version")]
    [InlineData("manifest_version", "2.0", "manifest_version")]
    [InlineData("export_type", "weekly", "export_type")]
    [InlineData("source_system", "FOO", "source_system")]
    [InlineData("source_institution_code", "QX9999999", "source_institution_code")]
    public void A_manifest_without_a_required_key_or_with_a_value_outside_its_list_rejects_the_batch_as_MALFORMED(string key, string? value, string named)
    {
        var files = Batch("batch-001");
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(files["manifest.json"])!.AsObject();
        if (value is null)
        {
            manifest.Remove(key);
        }
        else
        {
            manifest[key] = value;
        }

        files["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        var result = TownshipBatchReader.Read(files);

        Assert.True(result.BatchRejected);
        var issue = Assert.Single(result.Issues);
        Assert.Equal("MALFORMED", issue.Code);
        Assert.Contains(named, issue.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_manifest_listing_a_file_twice_rejects_the_batch_as_MALFORMED_whether_or_not_the_two_entries_agree(bool otherChecksum)
    {
        var files = Batch("batch-001");
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(files["manifest.json"])!.AsObject();
        var list = manifest["files"]!.AsArray();
        var again = list.First(f => (string?)f!["name"] == "residents.csv")!.DeepClone();
        if (otherChecksum)
        {
            again["sha256"] = new string('0', 64);
        }

        list.Add(again);
        files["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());

        var result = TownshipBatchReader.Read(files);

        Assert.True(result.BatchRejected);
        Assert.Empty(result.Rows);
        Assert.Contains("residents.csv", Assert.Single(result.Issues, i => i.Code == "MALFORMED").Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_manifest_sequence_below_one_rejects_the_batch_and_a_batch_id_of_another_centre_is_a_warning()
    {
        var files = Batch("batch-001");
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(files["manifest.json"])!.AsObject();
        manifest["sequence"] = -1;
        files["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        var negative = TownshipBatchReader.Read(files);
        Assert.True(negative.BatchRejected);
        Assert.Contains("sequence -1", Assert.Single(negative.Issues).Detail, StringComparison.Ordinal);

        manifest["sequence"] = 1;
        manifest["batch_id"] = "QX2110050-20250630-001";
        files["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        var other = TownshipBatchReader.Read(files);
        Assert.False(other.BatchRejected);
        var warning = Assert.Single(other.Issues, i => i.Column == "batch_id");
        Assert.Equal((IssueSeverity.Warning, "manifest.json"), (warning.Severity, warning.File));
        Assert.Equal(TownshipBatchReader.Read(Batch("batch-001")).Rows.Count, other.Rows.Count);
    }

    [Theory]
    [InlineData("18", "", "0", "", "gest_days")]
    [InlineData("18", "3", "1", "", "referral_org_code")]
    [InlineData("18", "3", "1", "QX2100012", null)]
    public void An_antenatal_visit_needs_its_gestational_days_and_a_referral_its_organisation(string weeks, string days, string referred, string referralOrg, string? column)
    {
        var csv = "visit_id,reg_id,record_no,visit_type,visit_seq,visit_date,gest_weeks,gest_days,classification,referral_flag,referral_reason,referral_org_code,doctor_name,org_code,status,updated_at\r\n"
            + $"YF-QX2110026-0000901,YC-QX2110026-0000001,36992110120200041,AN,2,2024-10-14,{weeks},{days},1,{referred},{(referred == "1" ? "胎位异常" : "")},{referralOrg},何丽萍,QX2120048,active,2024-10-14 16:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("maternal_visits.csv", "maternal_visits", csv)));

        var error = result.Issues.FirstOrDefault(i => i.Severity == IssueSeverity.Error && i.Code == "MISSING_REQUIRED");
        Assert.Equal(column, error?.Column?.Split(' ')[0]);
    }

    [Fact]
    public void A_contract_in_the_2x_exporters_date_format_has_FHIR_dates_for_its_period()
    {
        var csv = "contract_id,record_no,team_code,team_name,doctor_code,doctor_name,sign_date,start_date,end_date,package_codes,key_population_codes,contract_status,terminate_date,org_code,status,updated_at\r\n"
            + "QY-QX2110026-0000901,36992110120100023,T-QX2110026-01,白沙镇第一家庭医生团队,W0107,吴国庆,2025/1/6,2025/1/7,2025/12/31,03,2,1,,QX2110026,active,2025-01-06 11:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("contracts.csv", "contracts", csv)));

        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
        var contract = Assert.Single(Assert.Single(result.Rows).Map()!.Entry.Select(e => e.Resource).OfType<EpisodeOfCare>());
        Assert.Equal(("2025-01-07", "2025-12-31"), (contract.Period!.Start, contract.Period.End));
    }

    [Fact]
    public void Row_checks_follow_the_specified_order_and_a_rejected_resident_takes_its_rows_with_it()
    {
        var csv = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n"
            + "36992110120100901,甲,1,1970-01-01,01,369902197001010013,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100902,乙,7,1970-02-30,01,369902197001010011,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100903,,1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100904,\"丁,\"\"quoted\"\"\",1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";
        var dose = "vacc_id,record_no,vaccine_code,dose_no,vacc_date,vacc_org_code,record_source,org_code,status,updated_at\r\n"
            + "JZ-QX2110026-0000901,36992110120100902,0101,1,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n"
            + "JZ-QX2110026-0000902,36992110120100904,0101,x,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv), ("immunizations.csv", "immunizations", dose)));

        var errors = result.Issues.Where(i => i.Severity == IssueSeverity.Error).Select(i => (i.Key, i.Code)).ToList();
        Assert.Equal(
        [
            ("36992110120100901", "ID_CHECK_DIGIT"),
            ("36992110120100902", "UNKNOWN_CODE"),
            ("36992110120100903", "MISSING_REQUIRED"),
            ("JZ-QX2110026-0000901", "UNKNOWN_REFERENCE"),
            ("JZ-QX2110026-0000902", "MALFORMED"),
        ], errors);
        var accepted = Assert.Single(result.Rows);
        Assert.Equal("丁,\"quoted\"", ((Patient)accepted.Map()!.Entry[0].Resource!).Name[0].Text);
    }

    [Fact]
    public void The_first_occurrence_of_a_key_is_processed_a_repeat_is_ignored_and_a_different_one_is_DUPLICATE_KEY()
    {
        const string header = "vacc_id,record_no,vaccine_code,dose_no,vacc_date,vacc_org_code,record_source,org_code,status,updated_at\r\n";
        const string good = "JZ-QX2110026-0000911,36992110120100023,0101,1,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";
        const string bad = "JZ-QX2110026-0000912,36992110120100023,9999,1,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";
        var csv = header + good + good + good.Replace(",1,2025-01-01,", ",2,2025-01-01,", StringComparison.Ordinal)
            + bad + bad.Replace("9999", "0101", StringComparison.Ordinal) + bad;

        var result = TownshipBatchReader.Read(Files(("immunizations.csv", "immunizations", csv)));

        // The identical repeat of the refused row (6) is ignored too, not refused a second time.
        Assert.Equal(
        [
            (2, "WARNING"), (3, "DUPLICATE_KEY"), (4, "UNKNOWN_CODE"), (5, "DUPLICATE_KEY"), (6, "WARNING"),
        ], result.Issues.Select(i => (i.Row, i.Code)));
        Assert.Equal(1, Assert.Single(result.Rows).Row);
    }

    [Fact]
    public void Rows_naming_a_resident_stay_accepted_when_a_different_copy_of_that_resident_is_DUPLICATE_KEY()
    {
        const string resident = "36992110120100921,甲,1,1970-01-01,01,369902197001010010,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";
        var csv = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n"
            + resident + resident.Replace(",甲,", ",乙,", StringComparison.Ordinal);
        var dose = "vacc_id,record_no,vaccine_code,dose_no,vacc_date,vacc_org_code,record_source,org_code,status,updated_at\r\n"
            + "JZ-QX2110026-0000921,36992110120100921,0101,1,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv), ("immunizations.csv", "immunizations", dose)));

        var issue = Assert.Single(result.Issues);
        Assert.Equal(("residents.csv", 2, "DUPLICATE_KEY"), (issue.File, issue.Row, issue.Code));
        Assert.Equal(["36992110120100921", "JZ-QX2110026-0000921"], result.Rows.Select(r => r.Key));
    }

    [Fact]
    public void A_value_outside_its_plausible_range_is_a_warning_naming_the_column_and_the_row_is_applied()
    {
        var header = "followup_id,record_no,followup_date,followup_method,sbp,dbp,weight_kg,visit_class,referral_flag,doctor_name,org_code,status,updated_at\r\n";
        var csv = header
            + "GXY-QX2110026-0000931,36992110120100023,2025-06-01,1,400,90,0,1,0,医生甲,QX2110026,active,2025-06-02 08:00:00\r\n"
            + "GXY-QX2110026-0000932,36992110120100023,2025-06-02,1,135,85,62.5,1,0,医生甲,QX2110026,active,2025-06-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("followups_hypertension.csv", "followups_hypertension", csv)));

        Assert.Equal([(1, "sbp", "WARNING"), (1, "weight_kg", "WARNING")], result.Issues.Select(i => (i.Row, i.Column, i.Code)));
        Assert.All(result.Issues, i => Assert.Equal(IssueSeverity.Warning, i.Severity));
        Assert.Contains("400", result.Issues[0].Detail, StringComparison.Ordinal);
        Assert.Equal(["GXY-QX2110026-0000931", "GXY-QX2110026-0000932"], result.Rows.Select(r => r.Key));
    }

    [Fact]
    public void A_pregnancy_registered_for_a_resident_recorded_as_a_man_is_applied_with_a_warning()
    {
        var residents = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n"
            + "36992110120100941,甲,1,1990-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";
        var registrations = "reg_id,record_no,register_date,lmp_date,edd,gest_weeks,gest_days,gravidity,parity_vaginal,parity_cesarean,high_risk,doctor_name,org_code,status,updated_at\r\n"
            + "YC-QX2110026-0000941,36992110120100941,2025-05-01,2025-03-10,2025-12-15,7,3,1,0,0,0,何丽萍,QX2110026,active,2025-05-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", residents), ("maternal_registrations.csv", "maternal_registrations", registrations)));

        var warning = Assert.Single(result.Issues);
        Assert.Equal(("maternal_registrations.csv", "record_no", IssueSeverity.Warning), (warning.File, warning.Column, warning.Severity));
        Assert.Contains(result.Rows, r => r.Key == "YC-QX2110026-0000941");
    }

    [Fact]
    public void A_nationality_outside_ISO_3166_is_UNKNOWN_CODE()
    {
        var csv = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,nationality_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n"
            + "36992110120100951,甲,1,1970-01-01,03,E1234567,,XXX,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100952,乙,1,1970-01-01,03,E1234568,,VNM,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        var issue = Assert.Single(result.Issues, i => i.Severity == IssueSeverity.Error);
        Assert.Equal(("36992110120100951", "UNKNOWN_CODE"), (issue.Key, issue.Code));
        Assert.Equal("36992110120100952", Assert.Single(result.Rows).Key);
    }

    [Fact]
    public void A_division_code_that_is_not_a_village_of_the_county_is_UNKNOWN_CODE()
    {
        var csv = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,nationality_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n"
            + "36992110120100961,甲,1,1970-01-01,03,E1234561,,VNM,369921999999,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100962,乙,1,1970-01-01,03,E1234562,,VNM,369921101,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100963,丙,1,1970-01-01,03,E1234563,,VNM,369921202202,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        Assert.Equal([("36992110120100961", "UNKNOWN_CODE"), ("36992110120100962", "UNKNOWN_CODE")],
            result.Issues.Where(i => i.Severity == IssueSeverity.Error).Select(i => (i.Key!, i.Code)));
        Assert.Equal("36992110120100963", Assert.Single(result.Rows).Key);
    }

    [Fact]
    public void A_child_under_one_without_an_id_number_needs_the_mother_s_or_the_birth_certificate_s()
    {
        const string Header = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,mother_id_no,birth_cert_no,created_date,archive_status,org_code,status,updated_at\r\n";
        var csv = Header
            + "36992110120100961,王秀英之女,2,2025-03-15,,,01,369921101201,1,0,,,2025-04-01,1,QX2110026,active,2025-04-01 08:00:00\r\n"
            + "36992110120100962,王秀英之子,1,2025-03-15,,,01,369921101201,1,0,,Q360418299,2025-04-01,1,QX2110026,active,2025-04-01 08:00:00\r\n"
            + "36992110120100963,甲,1,2020-03-15,,,01,369921101201,1,0,,,2025-04-01,1,QX2110026,active,2025-04-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        var issue = Assert.Single(result.Issues, i => i.Severity == IssueSeverity.Error);
        Assert.Equal(("36992110120100961", "MISSING_REQUIRED"), (issue.Key, issue.Code));
        Assert.Equal(["36992110120100962", "36992110120100963"], result.Rows.Select(r => r.Key));
    }

    [Fact]
    public void A_twins_birth_order_its_responsible_doctor_and_the_records_creation_date_reach_the_Patient()
    {
        const string Header = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,mother_id_no,birth_cert_no,birth_order,responsible_doctor,created_date,archive_status,org_code,status,updated_at\r\n";
        var csv = Header
            + "36992110120100971,王秀英之子,1,2025-03-15,,,01,369921101201,1,0,,Q360418298,2,吴国庆,2025-04-01,1,QX2110026,active,2025-04-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
        var patient = Assert.Single(Assert.Single(result.Rows).Map()!.Entry.Select(e => e.Resource).OfType<Patient>());
        Assert.Equal(2, ((Integer)patient.MultipleBirth!).Value);
        Assert.Equal("吴国庆", Assert.Single(patient.GeneralPractitioner).Display);
        Assert.Equal("2025-04-01", ((Date)patient.Extension.Single(e => e.Url == "urn:interophub:ext:health-record-created").Value!).Value);
    }

    /// <summary>The columns a residents.csv of the tests below needs.</summary>
    private const string ResidentsHeader = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n";

    [Fact]
    public void A_sex_code_that_disagrees_with_the_ID_number_and_an_upgraded_15_digit_number_are_warnings()
    {
        var csv = ResidentsHeader
            + "36992110120100971,甲,2,1958-04-12,01,369902195804121372,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100972,乙,1,1958-04-12,01,369902580412137,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        Assert.Equal(2, result.Rows.Count);
        Assert.Equal(
            [("36992110120100971", "sex_code"), ("36992110120100972", "id_no")],
            result.Issues.Where(i => i.Severity == IssueSeverity.Warning).Select(i => (i.Key!, i.Column!.Split(' ')[0])));
    }

    [Fact]
    public void A_row_whose_quote_never_closes_or_that_has_more_cells_than_columns_is_MALFORMED()
    {
        var csv = ResidentsHeader
            + "36992110120100981,甲,1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n"
            + "36992110120100982,乙,1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00,extra\r\n"
            + "36992110120100983,\"丙,1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,QX2110026,active,2025-01-01 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        Assert.Equal([(2, "MALFORMED"), (3, "MALFORMED")], result.Issues.Where(i => i.Severity == IssueSeverity.Error).Select(i => (i.Row, i.Code)));
        Assert.Equal("36992110120100981", Assert.Single(result.Rows).Key);
    }

    [Fact]
    public void A_dose_number_below_one_is_MALFORMED()
    {
        var csv = "vacc_id,record_no,vaccine_code,dose_no,vacc_date,vacc_org_code,record_source,org_code,status,updated_at\r\n"
            + "JZ-QX2110026-0000931,36992110120100023,0101,0,2025-01-01,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("immunizations.csv", "immunizations", csv)));

        var issue = Assert.Single(result.Issues);
        Assert.Equal(("MALFORMED", "dose_no (column 4)"), (issue.Code, issue.Column));
        Assert.Empty(result.Rows);
    }

    [Theory]
    [InlineData("ABC")]
    [InlineData("12345")]
    [InlineData("q360570012")]
    [InlineData("Q36057001X")]
    public void A_birth_certificate_number_not_a_capital_letter_and_nine_digits_is_MALFORMED(string number)
    {
        var csv = "record_no,name,sex_code,birth_date,ethnicity_code,nationality_code,division_code,residence_type,poverty_flag,birth_cert_no,created_date,archive_status,org_code,status,updated_at\r\n"
            + $"36992110120100961,丙女,2,2025-03-02,01,CHN,369921101201,1,0,{number},2025-03-05,1,QX2110026,active,2025-03-05 08:00:00\r\n"
            + "36992110120100962,丁女,2,2025-03-02,01,CHN,369921101201,1,0,Q360570012,2025-03-05,1,QX2110026,active,2025-03-05 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        var issue = Assert.Single(result.Issues, i => i.Severity == IssueSeverity.Error);
        Assert.Equal((1, "MALFORMED", "birth_cert_no (column 10)"), (issue.Row, issue.Code, issue.Column));
        Assert.Equal("36992110120100962", Assert.Single(result.Rows).Key);
    }

    [Fact]
    public void Full_width_digits_in_numbers_and_identifiers_are_read_as_ASCII()
    {
        var csv = "vacc_id,record_no,vaccine_code,dose_no,vacc_date,dose_ml,vacc_org_code,record_source,org_code,status,updated_at\r\n"
            + "JZ-QX2110026-0000921,３６９９２１１０１２０１０００２３,０１０１,２,2025-01-01,０.５,QX2110026,1,QX2110026,active,2025-01-02 08:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("immunizations.csv", "immunizations", csv)));

        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
        var dose = (Immunization)Assert.Single(result.Rows).Map()!.Entry[0].Resource!;
        Assert.Equal(("0101", 2, 0.5m), (dose.VaccineCode.Coding[0].Code, ((PositiveInt)dose.ProtocolApplied[0].DoseNumber).Value, dose.DoseQuantity!.Value));
        Assert.Equal("Patient?identifier=urn:oid:2.16.156.10011.1.2|36992110120100023", dose.Patient.Reference);
    }

    [Theory]
    [InlineData("1", "", "MISSING_REQUIRED")]
    [InlineData("3", "", null)]
    public void Conditional_columns_are_required_only_when_their_condition_holds(string method, string sbp, string? code)
    {
        var csv = "followup_id,record_no,followup_date,followup_method,sbp,dbp,visit_class,referral_flag,doctor_name,org_code,status,updated_at\r\n"
            + $"GXY-QX2110026-0000901,36992110120100023,2025-01-08,{method},{sbp},,1,0,吴国庆,QX2110026,active,2025-01-08 17:00:00\r\n";

        var result = TownshipBatchReader.Read(Files(("followups_hypertension.csv", "followups_hypertension", csv)));

        Assert.Equal(code, result.Issues.FirstOrDefault(i => i.Severity == IssueSeverity.Error)?.Code);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("\\")]
    public void A_zipped_batch_in_a_folder_reads_like_the_folder_whatever_its_separator_and_macOS_metadata(string separator)
    {
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string path, byte[] bytes)
            {
                using var entry = archive.CreateEntry(path).Open();
                entry.Write(bytes);
            }

            foreach (var (name, bytes) in Batch("batch-002"))
            {
                Add($"QX2110026-20250731-002{separator}{name}", bytes);
                Add($"__MACOSX/QX2110026-20250731-002/._{name}", [0, 5, 22, 7]);
            }

            Add("QX2110026-20250731-002/.DS_Store", [0, 0, 0, 1]);
        }

        var result = TownshipBatchReader.Read(TownshipBatchReader.FromZip(zip.ToArray()));

        Assert.Equal(TownshipBatchReader.Read(Batch("batch-002")).Rows.Count, result.Rows.Count);
        Assert.DoesNotContain(result.Issues, i => i.Severity == IssueSeverity.Error);
    }

    [Fact]
    public void A_file_damaged_in_the_zip_is_refused_alone_with_INTEGRITY_and_the_other_files_are_read()
    {
        // Stored entries, so the damage is to the file's bytes and only the directory's CRC-32 tells.
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in Batch("batch-002").Append(new("notes.csv", Encoding.UTF8.GetBytes("a file the manifest does not list"))))
            {
                using var entry = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
                entry.Write(bytes);
            }
        }

        var damaged = zip.ToArray();
        var at = damaged.AsSpan().IndexOf(Batch("batch-002")["residents.csv"].AsSpan(0, 40));
        Assert.True(at > 0);
        damaged[at + 60] ^= 0x20;
        damaged[damaged.AsSpan().IndexOf("a file the manifest"u8) + 3] ^= 0x20;

        Assert.Throws<InvalidDataException>(() => TownshipBatchReader.FromZip(damaged));
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var result = TownshipBatchReader.Read(TownshipBatchReader.FromZip(damaged, names), names);

        Assert.Equal(["notes.csv", "residents.csv"], names.Keys.Order(StringComparer.Ordinal));
        var refused = Assert.Single(result.Issues, i => i is { Code: "INTEGRITY", File: "residents.csv" });
        Assert.Contains("已损坏", refused.Detail, StringComparison.Ordinal);
        // A damaged file the manifest does not list is named as unlisted, as an intact one is.
        Assert.Single(result.Issues, i => i is { Code: "INTEGRITY", File: "notes.csv" });
        Assert.DoesNotContain(result.Rows, r => r.Table == "residents");
        Assert.Contains(result.Rows, r => r.Table != "residents");
        Assert.Equal(Batch("batch-002")["manifest.json"], TownshipBatchReader.FileFromZip(damaged, "manifest.json"));
    }

    [Fact]
    public void A_file_that_inflates_past_the_limit_is_refused_alone_without_being_held_whole()
    {
        // A few hundred kilobytes of deflated zeros that inflate past MaxFileBytes: a zip bomb.
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in Batch("batch-002").Where(f => f.Key != "residents.csv"))
            {
                using var entry = archive.CreateEntry(name).Open();
                entry.Write(bytes);
            }

            using var bomb = archive.CreateEntry("residents.csv", CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1 << 20];
            for (var written = 0L; written <= TownshipBatchReader.MaxFileBytes; written += zeros.Length)
            {
                bomb.Write(zeros);
            }
        }

        var damaged = new Dictionary<string, string>(StringComparer.Ordinal);
        var result = TownshipBatchReader.Read(TownshipBatchReader.FromZip(zip.ToArray(), damaged), damaged);

        Assert.Contains("MiB", damaged["residents.csv"], StringComparison.Ordinal);
        Assert.Contains("过大", Assert.Single(result.Issues, i => i is { Code: "INTEGRITY", File: "residents.csv" }).Detail, StringComparison.Ordinal);
        Assert.Contains(result.Rows, r => r.Table != "residents");
    }

    [Fact]
    public void A_row_recorded_by_an_institution_other_than_the_exporting_centre_or_its_clinics_is_kept_with_a_warning()
    {
        const string Header = "record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,division_code,residence_type,poverty_flag,created_date,archive_status,org_code,status,updated_at\r\n";
        string Row(string recordNo, string recorder) =>
            $"{recordNo},甲,1,1970-01-01,,,01,369921101201,1,0,2020-01-01,1,{recorder},active,2025-01-01 08:00:00\r\n";
        // The batch is 白沙镇卫生院's (QX2110026): its centre, its clinic 沙坪村卫生室, 梅林村卫生室 of 梅岭乡, the county hospital.
        var csv = Header + Row("36992110120100911", "QX2110026") + Row("36992110120100912", "QX212003X")
            + Row("36992110120100913", "QX212011X") + Row("36992110120100914", "QX2100012");

        var result = TownshipBatchReader.Read(Files(("residents.csv", "residents", csv)));

        Assert.Equal(4, result.Rows.Count);
        Assert.Equal(["36992110120100913", "36992110120100914"],
            result.Issues.Where(i => i is { Column: "org_code", Severity: IssueSeverity.Warning }).Select(i => i.Key));
    }

    private static Dictionary<string, byte[]> Files(params (string Name, string Table, string Csv)[] tables)
    {
        var files = tables.ToDictionary(t => t.Name, t => Encoding.UTF8.GetBytes(t.Csv));
        var entries = string.Join(",", tables.Select(t =>
            $$"""{"name":"{{t.Name}}","table":"{{t.Table}}","rows":{{t.Csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length - 1}},"sha256":"{{Convert.ToHexStringLower(SHA256.HashData(files[t.Name]))}}"}"""));
        files["manifest.json"] = Encoding.UTF8.GetBytes($$"""{"manifest_version":"1.0","batch_id":"QX2110026-20250701-009","source_system":"QX-PHS","source_institution_code":"QX2110026","export_type":"incremental","sequence":9,"export_time":"2025-07-01T02:00:00+08:00","encoding":"UTF-8","files":[{{entries}}]}""");
        return files;
    }
}
