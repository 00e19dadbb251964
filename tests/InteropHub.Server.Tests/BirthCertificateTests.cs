using System.Globalization;
using System.Net;
using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Identity;
using InteropHub.Testing;

namespace InteropHub.Server.Tests;

/// <summary>
/// Birth certificates over HTTP (birth-certificate.md): corrections and replacements that change the newborn key, and
/// the status of a batch whose certificates fare differently.
/// </summary>
public abstract class BirthCertificateTests(HubFactory hub) : AdapterTestBase(hub)
{
    /// <summary>A generated first issue's certificate with one element's value changed and the change listed in Corrections.</summary>
    private static string Corrected(string xml, string element, string from, string to, string field) =>
        xml.Replace($"<{element}>{from}</{element}>", $"<{element}>{to}</{element}>", StringComparison.Ordinal)
            .Replace("<LastModified>", $"<Corrections><Correction><Field>{field}</Field><OldValue>{from}</OldValue><NewValue>{to}</NewValue>"
                + "<Reason>录入错误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><LastModified>", StringComparison.Ordinal);

    private static string Code(IEnumerable<OperationOutcome.IssueComponent> issues) =>
        Assert.Single(issues, i => i.Details?.Coding[0].Code is "APPLIED" or "UNCHANGED" or "STALE").Details!.Coding[0].Code!;

    /// <summary>The birth records of the newborn a certificate names, counted per type, and its newborn keys.</summary>
    private async Task<(int Encounters, int Observations, int RelatedPersons, int Immunizations, List<string> Keys)> BirthRecordsAsync(string certificateNo)
    {
        var newborn = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={certificateNo}"));
        return ((await SearchAsync<Encounter>($"Encounter?subject=Patient/{newborn.Id}")).Count,
            (await SearchAsync<Observation>($"Observation?subject=Patient/{newborn.Id}")).Count,
            (await SearchAsync<RelatedPerson>($"RelatedPerson?patient=Patient/{newborn.Id}")).Count,
            (await SearchAsync<Immunization>($"Immunization?patient=Patient/{newborn.Id}")).Count,
            [.. newborn.Identifier.Where(i => i.System == Systems.NewbornKey).Select(i => i.Value!)]);
    }

    /// <summary>A girl's first-issue certificate of newborn n, then its version 2 correcting her sex to male (a new newborn key).</summary>
    private static (string First, string Corrected) FirstIssueAndSexCorrection(int n)
    {
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(n));
        Assert.Contains("<SexCode>2</SexCode>", first, StringComparison.Ordinal);
        return (first, Corrected(first, "SexCode", "2", "1", "Newborn/SexCode")
            .Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_birth_certificate_correction_of_the_sex_updates_the_birth_records_and_leaves_the_newborn_only_the_new_key()
    {
        await SeedOrganizationsAsync();
        var (first, corrected) = FirstIssueAndSexCorrection(7_401);
        var mother = MotherIdOf(first);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        var before = await BirthRecordsAsync("Q360007401");

        Assert.Equal("APPLIED", Code(await PostCertificateAsync(corrected)));

        var after = await BirthRecordsAsync("Q360007401");
        Assert.Equal((1, 3, 1, 1), (before.Encounters, before.Observations, before.RelatedPersons, before.Immunizations));
        Assert.Equal((1, 3, 1, 1), (after.Encounters, after.Observations, after.RelatedPersons, after.Immunizations));
        var key = Assert.Single(after.Keys);
        Assert.StartsWith(mother + "/", key, StringComparison.Ordinal);
        Assert.EndsWith("/male/1", key, StringComparison.Ordinal);
        var stale = Assert.Single(before.Keys);
        Assert.Empty(await SearchAsync<Patient>($"Patient?identifier={Systems.NewbornKey}|{Uri.EscapeDataString(stale)}"));
        Assert.Equal(AdministrativeGender.Male, Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007401")).Gender);
    }

    [Fact]
    public async Task After_a_correction_changed_the_newborn_key_the_HIS_report_of_the_birth_dose_and_mother_joins_the_certificates()
    {
        await SeedOrganizationsAsync();
        var (first, corrected) = FirstIssueAndSexCorrection(7_421);
        var mother = MotherIdOf(first);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(corrected)));

        // The hospital names the boy by the corrected key (mother, birth, sex), and reports his hepatitis B birth dose and his mother.
        var born = Local(first, "BirthDateTime");
        var given = Local(first, "AdministeredAt");
        var vxu = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|{given.AddDays(1):yyyyMMddHHmmss}||VXU^V04^VXU_V04|NB-KEY-7421|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||NB00007421^^^QX2100012^MR||新生儿7421||{born:yyyyMMddHHmm}|M{new string('|', 13)}{mother}\r"
            + "NK1|1|母亲7421|MTH\r"
            + "ORC|RE||JZ-NB-KEY-7421^QXHIS\r"
            + $"RXA|0|1|{given:yyyyMMddHHmmss}||0101^乙肝疫苗^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||202410B027|20261031|M02^^QXMFR|||CP|A\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(vxu));
        Assert.True(Msa(ack) == "AA", ack);

        var records = await BirthRecordsAsync("Q360007421");
        Assert.Equal((1, 1), (records.RelatedPersons, records.Immunizations));
        var newborn = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007421"));
        Assert.Contains(newborn.Identifier, i => i.Value == "NB00007421");
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{newborn.Id}"));
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
    }

    [Fact]
    public async Task A_childs_dose_reported_later_by_MRN_and_ID_number_joins_the_dose_the_certificate_keyed_by_the_newborn_key()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_451));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        var mother = MotherIdOf(certificate);
        var born = Local(certificate, "BirthDateTime");
        var given = Local(certificate, "AdministeredAt");
        string Vxu(string control, string pid3, string pid21) =>
            $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|{given.AddDays(1):yyyyMMddHHmmss}||VXU^V04^VXU_V04|{control}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||{pid3}||新生儿7451||{born:yyyyMMddHHmm}|F{new string('|', 13)}{pid21}\r"
            + $"ORC|RE||JZ-{control}^QXHIS\r"
            + $"RXA|0|1|{given:yyyyMMddHHmmss}||0101^乙肝疫苗^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||202410B027|20261031|M02^^QXMFR|||CP|A\r";

        // The hospital reports the girl's birth dose naming her by MRN and her mother (PID-21): the certificate's dose.
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(Vxu("NB-ID-7451-1", "NB00007451^^^QX2100012^MR", mother)));
        Assert.True(Msa(ack) == "AA", ack);
        // Later she has an ID number, and the dose is sent again naming her by MRN and ID number alone.
        var childId = LegacyData.IdNumber(born.Date, 452);
        (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(Vxu("NB-ID-7451-2", $"NB00007451^^^QX2100012^MR~{childId}^^^&2.16.156.10011.1.3&ISO^NNCHN", "")));
        Assert.True(Msa(ack) == "AA", ack);

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007451"));
        Assert.Contains(child.Identifier, i => i.Value == childId);
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}"));
        // The hospital gave it (RXA-9 00): first hand, with no other origin, and still the certificate's too.
        Assert.True(dose.PrimarySource);
        Assert.Null(dose.ReportOrigin);
        Assert.Contains(dose.Identifier, i => i.System == Systems.CertificateDose);
    }

    [Fact]
    public async Task After_a_correction_changed_the_newborn_key_a_township_batch_with_the_child_and_its_birth_dose_joins_the_certificates_dose()
    {
        await SeedOrganizationsAsync();
        var (first, corrected) = FirstIssueAndSexCorrection(7_431);
        var mother = MotherIdOf(first);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(corrected)));

        // The township's first export of the boy: his health record (mother, birth, the corrected sex) and the birth dose.
        var batch = Rewrite(LegacyData.TownshipBatch(first: 874_001, residents: 1), "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1],
            ("mother_id_no", mother), ("birth_date", Local(first, "BirthDateTime").ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), ("sex_code", "1"),
            ("id_type", ""), ("id_no", "")));
        batch = Rewrite(batch, "immunizations.csv", lines =>
        {
            lines[1] = WithCells(lines[0], lines[1], ("vaccine_code", "0101"), ("dose_no", "1"),
                ("vacc_date", Local(first, "AdministeredAt").ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
            lines.RemoveRange(2, lines.Count - 2);
        });
        var response = await PostTownshipAsync(batch);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var records = await BirthRecordsAsync("Q360007431");
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient={Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007431")).Id}"));
        Assert.Equal(1, records.Immunizations);
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:township-vaccination");
    }

    [Fact]
    public async Task A_township_resident_row_for_a_certified_newborn_keeps_the_certificates_time_of_birth()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_461));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        var born = Local(certificate, "BirthDateTime");

        // The township's health record of the child: found by the mother, birth date, sex and order; no time of birth.
        var batch = Rewrite(ChildsRecord(certificate, 874_011, ("mother_id_no", MotherIdOf(certificate))), "immunizations.csv",
            lines => lines.RemoveRange(1, lines.Count - 1));
        var response = await PostTownshipAsync(batch);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007461"));
        Assert.Contains(child.Identifier, i => i.System == "urn:oid:2.16.156.10011.1.2");
        var time = Assert.Single(child.BirthDateElement!.Extension, e => e.Url == ExtensionUrls.BirthTime);
        Assert.Equal(new DateTimeOffset(born, TimeSpan.FromHours(8)), Assert.IsType<FhirDateTime>(time.Value).ToDateTimeOffset(TimeSpan.FromHours(8)));
    }

    [Fact]
    public async Task A_township_deletion_of_its_row_of_a_birth_dose_the_certificate_reports_without_a_trace_code_leaves_the_certificates_dose()
    {
        await SeedOrganizationsAsync();
        var certificate = System.Text.RegularExpressions.Regex.Replace(Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_471)), "<TraceCode>[0-9]*</TraceCode>", "");
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        // The township's record of the child and its 历史补录 of the hepatitis B birth dose: the certificate's dose.
        string vaccId = "";
        var batch = Rewrite(ChildsRecord(certificate, 874_021, ("mother_id_no", MotherIdOf(certificate))), "immunizations.csv", lines =>
        {
            lines[1] = BirthDoseRow(certificate, lines[0], lines[1]);
            vaccId = lines[1].Split(',')[lines[0].Split(',').ToList().IndexOf("vacc_id")];
            lines.RemoveRange(2, lines.Count - 2);
        });
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);
        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007471"));
        Assert.Contains(Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}")).Identifier, i => i.Value == vaccId);

        // The township retracts its row: the certificate still reports the dose.
        var deletion = Rewrite(Rewrite(LegacyData.TownshipBatch(first: 874_021, residents: 1, sequence: 2), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "immunizations.csv", lines => lines[1] = DeletedRow(lines[0], "vacc_id", vaccId, "2025-12-01 08:00:00"));
        var response = await PostTownshipAsync(deletion);
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}"));
        Assert.DoesNotContain(dose.Identifier, i => i.Value == vaccId);
        Assert.Contains(dose.Identifier, i => i.System == Systems.CertificateDose);
    }

    [Theory]
    [InlineData(7_501, 874_051, "vacc_date")]
    [InlineData(7_511, 874_061, "vaccine_code")]
    public async Task A_township_row_of_a_birth_dose_the_certificate_reports_that_an_update_moves_to_another_date_or_vaccine_leaves_the_certificates_dose_as_it_says(
        int certificateNo, int resident, string changed)
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(certificateNo));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        var child = Assert.Single(await SearchAsync<Patient>($"Patient?identifier=Q36000{certificateNo}"));
        var reported = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}"));
        // The township's 历史补录 of the hepatitis B birth dose joins the certificate's dose.
        string vaccId = "", doseRow = "";
        var batch = Rewrite(ChildsRecord(certificate, resident, ("mother_id_no", MotherIdOf(certificate))), "immunizations.csv", lines =>
        {
            lines[1] = WithCells(lines[0], BirthDoseRow(certificate, lines[0], lines[1]), ("lot_no", "TOWNSHIP01"));
            vaccId = lines[1].Split(',')[lines[0].Split(',').ToList().IndexOf("vacc_id")];
            doseRow = lines[1];
            lines.RemoveRange(2, lines.Count - 2);
        });
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);
        Assert.Contains(Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}")).Identifier, i => i.Value == vaccId);

        // The row is replaced whole by a version of another date (or vaccine): another dose of the child.
        var day = Local(certificate, "AdministeredAt");
        var update = Rewrite(Rewrite(LegacyData.TownshipBatch(first: resident, residents: 1, sequence: 2), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "immunizations.csv", lines => lines[1] = WithCells(lines[0], doseRow, ("updated_at", "2025-06-01 08:00:00"),
                changed == "vacc_date" ? ("vacc_date", day.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)) : ("vaccine_code", "0201")));
        var issues = (await GetJsonAsync((await PostTownshipAsync(update)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var doses = await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}");
        Assert.Equal(2, doses.Count);
        // The certificate's dose is as the certificate says, without the row.
        var certified = Assert.Single(doses, d => d.Identifier.Any(i => i.System == Systems.CertificateDose));
        Assert.Equal(reported.Id, certified.Id);
        Assert.DoesNotContain(certified.Identifier, i => i.Value == vaccId);
        Assert.Equal("0101", certified.VaccineCode.Coding.First(c => c.System == Systems.Vaccine).Code);
        Assert.Equal(((FhirDateTime)reported.Occurrence!).Value, ((FhirDateTime)certified.Occurrence!).Value);
        Assert.Equal(reported.LotNumber, certified.LotNumber);
        // The row's dose is the row's alone.
        var township = Assert.Single(doses, d => d.Identifier.Any(i => i.Value == vaccId));
        Assert.DoesNotContain(township.Identifier, i => i.System == Systems.CertificateDose);
        Assert.Equal("TOWNSHIP01", township.LotNumber);
        Assert.Equal(changed == "vaccine_code" ? "0201" : "0101", township.VaccineCode.Coding.First(c => c.System == Systems.Vaccine).Code);
        Assert.StartsWith((changed == "vacc_date" ? day.AddDays(1) : day).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), ((FhirDateTime)township.Occurrence!).Value,
            StringComparison.Ordinal);

        // Back to the certificate's date and vaccine: one dose again, which both report.
        var back = Rewrite(update, "immunizations.csv", lines => lines[1] = WithCells(lines[0], doseRow, ("updated_at", "2025-06-02 08:00:00")),
            batchId: $"QX2110026-GEN-{resident:D9}-003");
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(back)).StatusCode);
        var joined = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}"));
        Assert.Equal(reported.Id, joined.Id);
        Assert.Contains(joined.Identifier, i => i.Value == vaccId);
        Assert.Contains(joined.Identifier, i => i.System == Systems.CertificateDose);
    }

    [Fact]
    public async Task A_deleted_township_resident_of_a_certified_newborn_takes_back_its_name_phone_and_address_and_the_certificates_name_returns()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_521));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        var certified = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007521"));
        Assert.Equal("新生儿7521", certified.Name.Single().Text);

        // The township's record of the child, then its later version with another name and phone.
        var record = Rewrite(ChildsRecord(certificate, 874_071, ("mother_id_no", MotherIdOf(certificate))), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(record)).StatusCode);
        string residentRow = "", header = "";
        var update = Rewrite(record, "residents.csv", lines =>
        {
            header = lines[0];
            residentRow = lines[1] = WithCells(lines[0], lines[1], ("name", "乳名二"), ("phone", "13900007777"), ("updated_at", "2025-06-01 08:00:00"));
        }, batchId: "QX2110026-GEN-000874071-002");
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(update)).StatusCode);
        var linked = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007521"));
        Assert.Equal(certified.Id, linked.Id);
        Assert.Contains(linked.Name, n => n.Text == "乳名二");

        // The township retracts the resident: what its rows said of the child goes, and the certificate's name is back.
        var recordNo = residentRow.Split(',')[0];
        var deletion = Rewrite(update, "residents.csv", lines => lines[1] = DeletedRow(header, "record_no", recordNo, "2025-06-02 08:00:00"),
            batchId: "QX2110026-GEN-000874071-003");
        var issues = (await GetJsonAsync((await PostTownshipAsync(deletion)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007521"));
        Assert.Equal(certified.Id, child.Id);
        Assert.Equal(["新生儿7521"], child.Name.Select(n => n.Text));
        Assert.DoesNotContain(child.Telecom, t => t.Value is "13900007777" or "13900874071");
        Assert.DoesNotContain(child.Address, a => a.Text?.Contains("沙坪村", StringComparison.Ordinal) == true || a.Line.Any(l => l?.Contains("沙坪村", StringComparison.Ordinal) == true));
        Assert.DoesNotContain(child.Identifier, i => i.System == Systems.HealthRecord);
        Assert.Equal(certified.Telecom.Count, child.Telecom.Count);
        Assert.Equal(certified.Address.Count, child.Address.Count);
        Assert.True(child.Active != false);
    }

    [Fact]
    public async Task A_township_birth_dose_of_a_child_known_by_its_certificate_number_alone_joins_the_certificates_dose()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_481));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(certificate)));
        // The child's health record names it by its certificate only: no ID number, no mother's ID number.
        var batch = Rewrite(ChildsRecord(certificate, 874_031, ("birth_cert_no", "Q360007481"), ("mother_id_no", "")), "immunizations.csv", lines =>
        {
            lines[1] = BirthDoseRow(certificate, lines[0], lines[1]);
            lines.RemoveRange(2, lines.Count - 2);
        });
        var response = await PostTownshipAsync(batch);
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007481"));
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}&vaccine-code=0101"));
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:township-vaccination");
        Assert.Contains(dose.Identifier, i => i.System == Systems.CertificateDose);
    }

    /// <summary>A township batch of generated resident <paramref name="first"/> made the certificate's child (its birth date and
    /// sex, no ID number), with the cells that link it, and that resident's generated dose.</summary>
    private static byte[] ChildsRecord(string certificate, int first, params (string Column, string Value)[] linking) =>
        Rewrite(LegacyData.TownshipBatch(first, residents: 1), "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1],
        [
            ("birth_date", Local(certificate, "BirthDateTime").ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            ("sex_code", certificate.Contains("<SexCode>1</SexCode>", StringComparison.Ordinal) ? "1" : "2"), ("id_type", ""), ("id_no", ""),
            .. linking,
        ]));

    /// <summary>A dose row made the township's 历史补录 of the certificate's hepatitis B birth dose.</summary>
    private static string BirthDoseRow(string certificate, string header, string line) =>
        WithCells(header, line, ("vaccine_code", "0101"), ("dose_no", "1"), ("record_source", "2"),
            ("vacc_date", Local(certificate, "AdministeredAt").ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));

    private static DateTime Local(string xml, string element) =>
        DateTimeOffset.Parse(xml.Split($"<{element}>")[1].Split($"</{element}>")[0], CultureInfo.InvariantCulture).ToOffset(TimeSpan.FromHours(8)).DateTime;

    [Fact]
    public async Task A_birth_certificate_replacement_that_corrects_the_birth_date_updates_the_same_birth_records()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_402));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        var born = System.Text.RegularExpressions.Regex.Match(first, "<BirthDateTime>([^<]+)</BirthDateTime>").Groups[1].Value;
        var earlier = DateTimeOffset.Parse(born, CultureInfo.InvariantCulture).AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

        // 换发 (§3): a new number replacing the first, the birth date corrected.
        var reissue = Corrected(first, "BirthDateTime", born, earlier, "Newborn/BirthDateTime")
            .Replace("<CertificateNo>Q360007402</CertificateNo>", "<CertificateNo>R360007402</CertificateNo>", StringComparison.Ordinal)
            .Replace("<IssueType>1</IssueType>", "<IssueType>3</IssueType>", StringComparison.Ordinal)
            .Replace("<Status>1</Status>", "<Status>1</Status><Replaces><CertificateNo>Q360007402</CertificateNo><Reason>出生日期有误</Reason></Replaces>",
                StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(reissue)));

        var after = await BirthRecordsAsync("R360007402");
        Assert.Equal((1, 3, 1, 1), (after.Encounters, after.Observations, after.RelatedPersons, after.Immunizations));
        Assert.Contains(earlier[..10].Replace("-", "", StringComparison.Ordinal), Assert.Single(after.Keys), StringComparison.Ordinal);
        Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007402"));
    }

    [Fact]
    public async Task A_reissue_whose_new_number_a_township_record_holds_merges_that_record_and_the_first_certificates_child_into_one_patient()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_406));
        var born = Local(first, "BirthDateTime");
        // The township recorded the child by the replacement's number alone (no ID number yet), with a dose.
        var township = Rewrite(LegacyData.TownshipBatch(first: 879_001, residents: 1), "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1],
            ("id_type", ""), ("id_no", ""), ("birth_cert_no", "R360007406"), ("birth_date", born.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            ("sex_code", first.Contains("<SexCode>1</SexCode>", StringComparison.Ordinal) ? "1" : "2")));
        township = Rewrite(township, "immunizations.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("vacc_date", born.AddDays(40).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(township)).StatusCode);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        Assert.Equal(2, (await SearchAsync<Patient>("Patient?identifier=R360007406,Q360007406")).Count);

        // 换发 (§3, README linking rule 4): the child of Q360007406 gains R360007406, which names the township's record.
        var reissue = first.Replace("<CertificateNo>Q360007406</CertificateNo>", "<CertificateNo>R360007406</CertificateNo>", StringComparison.Ordinal)
            .Replace("<IssueType>1</IssueType>", "<IssueType>3</IssueType>", StringComparison.Ordinal)
            .Replace("<Status>1</Status>", "<Status>1</Status><Replaces><CertificateNo>Q360007406</CertificateNo><Reason>污损</Reason></Replaces>", StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(reissue)));

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=R360007406"));
        Assert.Equal(child.Id, Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007406")).Id);
        Assert.NotEqual(false, child.Active);
        var retired = Assert.Single(await SearchAsync<Patient>($"Patient?link=Patient/{child.Id}"));
        Assert.False(retired.Active);
        Assert.Empty(retired.Identifier);
        Assert.Contains(child.Identifier, i => i.Value == "369921101201" + (879_001 % 100_000).ToString("D5", CultureInfo.InvariantCulture));
        // The records of both are the child's: the certificate's birth records and the township's dose.
        Assert.Empty(await SearchAsync<Immunization>($"Immunization?patient=Patient/{retired.Id}"));
        Assert.Contains(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}"), i => i.Identifier.Any(x => x.Value == "JZ-QX2110026-000879001"));
        Assert.Single(await SearchAsync<Encounter>($"Encounter?patient=Patient/{child.Id}"));
    }

    [Fact]
    public async Task A_township_record_and_a_HIS_message_naming_a_reissued_newborns_numbers_keep_which_is_current_and_which_old()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_408));
        var reissue = first.Replace("<CertificateNo>Q360007408</CertificateNo>", "<CertificateNo>R360007408</CertificateNo>", StringComparison.Ordinal)
            .Replace("<IssueType>1</IssueType>", "<IssueType>2</IssueType>", StringComparison.Ordinal)
            .Replace("<Status>1</Status>", "<Status>1</Status><Replaces><CertificateNo>Q360007408</CertificateNo><Reason>遗失</Reason></Replaces>", StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(reissue)));
        async Task<List<(string, Identifier.IdentifierUse?)>> NumbersAsync() =>
            [.. Assert.Single(await SearchAsync<Patient>("Patient?identifier=R360007408")).Identifier
                .Where(i => i.System == Systems.BirthCertificate).Select(i => (i.Value!, i.Use)).Order()];
        List<(string, Identifier.IdentifierUse?)> expected = [("Q360007408", Identifier.IdentifierUse.Old), ("R360007408", Identifier.IdentifierUse.Official)];
        Assert.Equal(expected, await NumbersAsync());

        // The township records the child by the first number; the hospital registers it by the new one. Neither says
        // which is current, and the hub keeps what the reissue said.
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(ChildsRecord(first, 879_081, ("birth_cert_no", "Q360007408")))).StatusCode);
        Assert.Equal(expected, await NumbersAsync());
        var born = Local(first, "BirthDateTime");
        var adt = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250701090000||ADT^A28^ADT_A05|NUMBERS-879081|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A28|20250701090000\r"
            + $"PID|1||0000879081^^^QX2100012^MR~R360007408^^^CN-BMC^BCT||宝宝||{born:yyyyMMdd}|{(first.Contains("<SexCode>1</SexCode>", StringComparison.Ordinal) ? "M" : "F")}\r";
        var ack = (await PostHl7Async(Encoding.UTF8.GetBytes(adt))).Ack;
        Assert.True(Msa(ack) == "AA", ack);

        Assert.Equal(expected, await NumbersAsync());
    }

    [Fact]
    public async Task A_correction_that_takes_the_father_away_withdraws_the_father_of_record_and_keeps_the_mother()
    {
        await SeedOrganizationsAsync();
        var first = File.ReadAllText(Path.Combine(Legacy, "birth-certificate", "Q360418201.xml"))
            .Replace("Q360418201", "Q369990401", StringComparison.Ordinal).Replace("36992119960823078X", LegacyData.IdNumber(884_401), StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q369990401"));
        Assert.Equal(2, (await SearchAsync<RelatedPerson>($"RelatedPerson?patient=Patient/{child.Id}&active=true")).Count);

        // 信息更正 (§3): version 2 without <Father> (§2: absent when not declared).
        var corrected = System.Text.RegularExpressions.Regex.Replace(first, "<Father>.*?</Father>", "", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Remarks>", "<Corrections><Correction><Field>Father/Name</Field><OldValue>陈志强</OldValue><NewValue></NewValue>"
                + "<Reason>父亲信息有误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><Remarks>", StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(corrected)));

        var parents = await SearchAsync<RelatedPerson>($"RelatedPerson?patient=Patient/{child.Id}");
        Assert.False(Assert.Single(parents, p => p.Relationship.Any(r => r.Coding.Any(c => c.Code == "FTH"))).Active);
        Assert.True(Assert.Single(parents, p => p.Relationship.Any(r => r.Coding.Any(c => c.Code == "MTH"))).Active);
    }

    [Fact]
    public async Task A_voided_certificate_withdraws_its_birth_records_and_number_and_leaves_the_child_its_doses_and_parents()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_407));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(first)));
        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=Q360007407"));

        // 作废 (§3): the same number, the next version, Status 2.
        var voided = first.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Status>1</Status>", "<Status>2</Status>", StringComparison.Ordinal);
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(voided)));

        Assert.Equal(DocumentReferenceStatus.EnteredInError, Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=Q360007407")).Status);
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=Q360007407"));
        var kept = await SearchAsync<Patient>($"Patient?_id={child.Id}");
        Assert.Contains(Assert.Single(kept).Identifier, i => i.System == Systems.NewbornKey);
        Assert.Equal(Encounter.EncounterStatus.EnteredInError, Assert.Single(await SearchAsync<Encounter>($"Encounter?subject=Patient/{child.Id}")).Status);
        var observations = await SearchAsync<Observation>($"Observation?subject=Patient/{child.Id}");
        Assert.Equal(3, observations.Count);
        Assert.All(observations, o => Assert.Equal(ObservationStatus.EnteredInError, o.Status));
        Assert.Equal(Immunization.ImmunizationStatusCodes.Completed, Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{child.Id}")).Status);
        Assert.Single(await SearchAsync<RelatedPerson>($"RelatedPerson?patient=Patient/{child.Id}"));
    }

    [Fact]
    public async Task A_birth_certificate_batch_with_one_unchanged_and_one_refused_certificate_is_a_partial_success()
    {
        await SeedOrganizationsAsync();
        var applied = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_403));
        Assert.Equal("APPLIED", Code(await PostCertificateAsync(applied)));
        var refused = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_404)).Replace("<HealthStatusCode>1</HealthStatusCode>",
            "<HealthStatusCode>7</HealthStatusCode>", StringComparison.Ordinal);
        static string Body(string xml) => xml[xml.IndexOf("<BirthCertificate ", StringComparison.Ordinal)..];
        var batch = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BirthCertificateBatch batchId=\"QX-BMC-TEST-7403\" exportTime=\"2025-06-30T23:00:00+08:00\" "
            + "sourceSystem=\"QX-BMC\" institutionCode=\"QX2100012\" count=\"2\" schemaVersion=\"1.0\">\n" + Body(applied) + "\n" + Body(refused) + "\n</BirthCertificateBatch>";

        using var content = new StringContent(batch, Encoding.UTF8, "application/xml");
        var response = await Client.PostAsync(new Uri("/adapters/birth-certificates", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.MultiStatus, response.StatusCode);
        var issues = (await Fhir.Read<OperationOutcome>(response)).Issue;
        Assert.Contains(issues, i => i.Details?.Coding[0].Code == "UNCHANGED" && (i.Diagnostics ?? "").Contains("Q360007403", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Details?.Coding[0].Code == "UNKNOWN_CODE" && (i.Diagnostics ?? "").Contains("Q360007404", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_birth_certificate_batch_without_its_batchId_is_refused_whole_as_MALFORMED()
    {
        await SeedOrganizationsAsync();
        var xml = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_405));
        var batch = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BirthCertificateBatch exportTime=\"2025-06-30T23:00:00+08:00\" "
            + "sourceSystem=\"QX-BMC\" institutionCode=\"QX2100012\" count=\"1\" schemaVersion=\"1.0\">\n"
            + xml[xml.IndexOf("<BirthCertificate ", StringComparison.Ordinal)..] + "\n</BirthCertificateBatch>";

        using var content = new StringContent(batch, Encoding.UTF8, "application/xml");
        var response = await Client.PostAsync(new Uri("/adapters/birth-certificates", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
        Assert.Equal("MALFORMED", issue.Details?.Coding[0].Code);
        Assert.Contains("batchId", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<DocumentReference>("DocumentReference?identifier=Q360007405"));
    }
}

public sealed class BirthCertificateTestsOnSqlite(SqliteHub hub) : BirthCertificateTests(hub), IClassFixture<SqliteHub>;

public sealed class BirthCertificateTestsOnPostgres(PostgresHub hub) : BirthCertificateTests(hub), IClassFixture<PostgresHub>;
