using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.Identity;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Adapters.Tests;

public sealed class BirthCertificateTests
{
    private static readonly DateTimeOffset Received = new(2025, 6, 30, 12, 0, 0, TimeSpan.FromHours(8));
    private static readonly FhirSerializers Serializers = new();

    public static TheoryData<string> Samples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(SampleFiles.Folder("birth-certificate"), "*.xml").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(file));
        }

        return data;
    }

    private static BirthCertificateResult Read(string xml) => BirthCertificateReader.Read(Encoding.UTF8.GetBytes(xml), Received);

    private static string Sample(string name) => File.ReadAllText(SampleFiles.Folder($"birth-certificate/{name}.xml"));

    [Fact]
    public void Only_a_correction_of_the_father_that_leaves_none_withdraws_the_father_of_record()
    {
        static bool Withdraws(string xml) => Assert.IsType<CertificateAccepted>(Assert.Single(Read(xml).Certificates))
            .Transaction.Annotations(typeof(UndeclaredFather)).Any();
        var withoutFather = System.Text.RegularExpressions.Regex.Replace(Sample("Q360418201"), "<Father>.*?</Father>", "",
            System.Text.RegularExpressions.RegexOptions.Singleline);
        var correction = withoutFather.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Remarks>", "<Corrections><Correction><Field>Father/Name</Field><OldValue>陈志强</OldValue><NewValue></NewValue>"
                + "<Reason>父亲信息有误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><Remarks>", StringComparison.Ordinal);

        // A certificate that never declared a father says nothing of one the HIS names (NK1) under the same id.
        Assert.False(Withdraws(withoutFather));
        Assert.False(Withdraws(Sample("Q360418201")));
        Assert.True(Withdraws(correction));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_sample_certificate_is_accepted_and_maps_to_its_golden_bundles(string sample)
    {
        var result = BirthCertificateReader.Read(SampleFiles.Bytes($"birth-certificate/{sample}.xml"), Received);

        Assert.False(result.DocumentRejected);
        var text = new StringBuilder();
        foreach (var outcome in result.Certificates)
        {
            var accepted = Assert.IsType<CertificateAccepted>(outcome);
            var json = Serializers.ToJsonBytes(accepted.Transaction, pretty: true);
            Assert.IsType<Bundle>(Serializers.ParseJson(Serializers.ToJsonBytes(accepted.Transaction)));
            text.Append(Encoding.UTF8.GetString(json)).Append('\n');
        }

        var golden = Path.Combine(GoldenFolder.Source, "birth-certificate", sample + ".json");
        if (Environment.GetEnvironmentVariable("INTEROPHUB_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(golden, text.ToString());
        }

        Assert.Equal(File.ReadAllText(SampleFiles.Folder($"../Golden/birth-certificate/{sample}.json")), text.ToString());
    }

    [Fact]
    public void A_replacement_keeps_the_same_newborn_and_supersedes_the_old_certificate()
    {
        var first = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Sample("Q360418201")).Certificates));
        var second = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Sample("R360007315_reissue_of_Q360418201")).Certificates));

        Assert.Equal("Q360418201", second.Supersedes);
        var newborn = second.Transaction.Entry.Select(e => e.Resource).OfType<Patient>().Single(p => p.Identifier.Any(i => i.System == Systems.BirthCertificate));
        Assert.Contains(newborn.Identifier, i => i.Value == "Q360418201" && i.Use == Identifier.IdentifierUse.Old);
        Assert.Equal("陈思雨", newborn.Name[0].Text);
        // The birth event, its observations and doses keep their ids across the reissue.
        var ids = (CertificateAccepted c) => c.Transaction.Entry.Where(e => e.Resource is Encounter or Observation or Immunization or RelatedPerson).Select(e => e.Request!.Url).ToList();
        Assert.Equal(ids(first), ids(second));
        var document = second.Transaction.Entry.Select(e => e.Resource).OfType<DocumentReference>().Single();
        Assert.Equal("Q360418201", document.RelatesTo[0].Target!.Identifier!.Value);
    }

    /// <summary>
    /// 信息更正 (§3): the same certificate, RecordVersion 2, <paramref name="field"/> changed from <paramref name="from"/> to
    /// <paramref name="to"/> and the change listed in Corrections.
    /// </summary>
    private static string Corrected(string xml, string field, string from, string to)
    {
        var element = field[(field.IndexOf('/', StringComparison.Ordinal) + 1)..];
        Assert.Contains($"<{element}>{from}</{element}>", xml, StringComparison.Ordinal);
        var before = xml.Contains("<Remarks>", StringComparison.Ordinal) ? "<Remarks>" : "<LastModified>";
        return xml.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace($"<{element}>{from}</{element}>", $"<{element}>{to}</{element}>", StringComparison.Ordinal)
            .Replace(before, $"<Corrections><Correction><Field>{field}</Field><OldValue>{from}</OldValue><NewValue>{to}</NewValue>"
                + $"<Reason>录入错误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections>{before}", StringComparison.Ordinal);
    }

    private static List<string> BirthRecordIds(CertificateAccepted c) =>
        [.. c.Transaction.Entry.Where(e => e.Resource is Encounter or Observation or Immunization or RelatedPerson).Select(e => e.Request!.Url!)];

    private static Patient Newborn(CertificateAccepted c) =>
        c.Transaction.Entry.Select(e => e.Resource).OfType<Patient>().Single(p => p.Identifier.Any(i => i.System == Systems.BirthCertificate));

    [Theory]
    [InlineData("Q360418201", "Newborn/SexCode", "2", "1", "36992119960823078X/20250315/male/1", "36992119960823078X/20250315/female/1")]
    [InlineData("Q360418201", "Newborn/BirthDateTime", "2025-03-15T08:42:00+08:00", "2025-03-14T23:42:00+08:00",
        "36992119960823078X/20250314/female/1", "36992119960823078X/20250315/female/1")]
    [InlineData("Q360418266_twin1", "Newborn/BirthOrder", "1", "2", "369921199205300464/20250402/male/2", "369921199205300464/20250402/male/1")]
    public void A_correction_of_the_newborn_key_keeps_the_birth_records_ids_and_clears_the_stale_key(string sample, string field, string from, string to,
        string key, string stale)
    {
        var first = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Sample(sample)).Certificates));
        var corrected = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Corrected(Sample(sample), field, from, to)).Certificates));

        Assert.Equal(BirthRecordIds(first), BirthRecordIds(corrected));
        var newborn = Newborn(corrected);
        Assert.Equal(key, Assert.Single(newborn.Identifier, i => i.System == Systems.NewbornKey).Value);
        var cleared = Assert.Single(newborn.Extension, e => e.Url == ExtensionUrls.Cleared);
        Assert.Equal($"identifier:{Systems.NewbornKey}|{stale}", ((Code)cleared.Value!).Value);
    }

    [Fact]
    public void A_replacement_that_corrects_the_sex_keeps_the_birth_records_ids_of_the_first_certificate()
    {
        var first = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Sample("Q360418201")).Certificates));
        var reissue = Sample("R360007315_reissue_of_Q360418201").Replace("<SexCode>2</SexCode>", "<SexCode>1</SexCode>", StringComparison.Ordinal)
            .Replace("</Corrections>", "<Correction><Field>Newborn/SexCode</Field><OldValue>2</OldValue><NewValue>1</NewValue>"
                + "<Reason>性别录入错误</Reason><ApprovedDate>2025-04-07</ApprovedDate></Correction></Corrections>", StringComparison.Ordinal);

        var second = Assert.IsType<CertificateAccepted>(Assert.Single(Read(reissue).Certificates));

        Assert.Equal(BirthRecordIds(first), BirthRecordIds(second));
        Assert.Equal("36992119960823078X/20250315/male/1", Assert.Single(Newborn(second).Identifier, i => i.System == Systems.NewbornKey).Value);
        Assert.Contains(Newborn(second).Extension, e => e.Url == ExtensionUrls.Cleared && ((Code)e.Value!).Value!.EndsWith("/female/1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_correction_of_other_fields_clears_no_key()
    {
        var corrected = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Corrected(Sample("Q360418201"), "Newborn/HealthStatusCode", "1", "2")).Certificates));

        Assert.DoesNotContain(Newborn(corrected).Extension, e => e.Url == ExtensionUrls.Cleared);
    }

    [Fact]
    public void The_newborn_carries_the_same_newborn_key_as_the_HIS_admission()
    {
        var accepted = Assert.IsType<CertificateAccepted>(Assert.Single(Read(Sample("Q360418201")).Certificates));

        var newborn = accepted.Transaction.Entry.Select(e => e.Resource).OfType<Patient>().Single(p => p.BirthDate == "2025-03-15");
        Assert.Contains(newborn.Identifier, i => i.System == Systems.NewbornKey && i.Value == "36992119960823078X/20250315/female/1");
        var mother = accepted.Transaction.Entry.Single(e => e.Resource is RelatedPerson r && r.Relationship[0].Coding[0].Code == "MTH");
        Assert.Equal("36992119960823078X", ((RelatedPerson)mother.Resource!).Identifier[0].Value);
    }

    [Fact]
    public void A_batch_is_validated_certificate_by_certificate()
    {
        var batch = Sample("batch_QX-BMC-20250430-001");
        var at = batch.IndexOf("<BirthWeight unit=\"g\">", StringComparison.Ordinal);
        var broken = string.Concat(batch.AsSpan(0, at), "<BirthWeight unit=\"kg\">", batch.AsSpan(at + "<BirthWeight unit=\"g\">".Length));

        var result = Read(broken);

        Assert.Equal(3, result.Certificates.Count);
        Assert.IsType<CertificateRejected>(result.Certificates[0]);
        Assert.Equal("MALFORMED", result.Certificates[0].Issues[0].Code);
        Assert.All(result.Certificates.Skip(1), c => Assert.IsType<CertificateAccepted>(c));
    }

    [Fact]
    public void A_batch_whose_count_differs_is_rejected_whole_as_INTEGRITY()
    {
        var batch = Sample("batch_QX-BMC-20250430-001").Replace("count=\"3\"", "count=\"4\"", StringComparison.Ordinal);

        var result = Read(batch);

        Assert.True(result.DocumentRejected);
        Assert.Equal("INTEGRITY", Assert.Single(result.DocumentIssues).Code);
    }

    [Theory]
    [InlineData("batchId=\"QX-BMC-20250430-001\" ")]
    [InlineData("exportTime=\"2025-04-30T23:00:00+08:00\" ")]
    [InlineData("sourceSystem=\"QX-BMC\" ")]
    [InlineData("institutionCode=\"QX2100039\" ")]
    [InlineData(" schemaVersion=\"1.0\"")]
    public void A_batch_whose_envelope_lacks_a_required_attribute_is_rejected_whole_as_MALFORMED(string attribute)
    {
        var batch = Sample("batch_QX-BMC-20250430-001");
        var envelope = batch[..batch.IndexOf('>', batch.IndexOf("<BirthCertificateBatch", StringComparison.Ordinal))];
        Assert.Contains(attribute, envelope, StringComparison.Ordinal);

        var result = Read(batch.Replace(envelope, envelope.Replace(attribute, "", StringComparison.Ordinal), StringComparison.Ordinal));

        Assert.True(result.DocumentRejected);
        Assert.Empty(result.Certificates);
        var issue = Assert.Single(result.DocumentIssues);
        Assert.Equal("MALFORMED", issue.Code);
        Assert.Contains(attribute.Trim().Split('=')[0], issue.Detail, StringComparison.Ordinal);
        Assert.Equal(2, issue.Line);
    }

    [Fact]
    public void An_XSD_error_is_reported_at_the_line_and_position_of_the_attribute_or_element_at_fault_and_names_it()
    {
        var xml = Sample("Q360418201");
        var lines = xml.Split('\n');
        var weightLine = Array.FindIndex(lines, l => l.Contains("<BirthWeight unit=\"g\">", StringComparison.Ordinal)) + 1;
        var pluralityLine = Array.FindIndex(lines, l => l.Contains("<Plurality>", StringComparison.Ordinal)) + 1;

        var unit = Assert.IsType<CertificateRejected>(Assert.Single(Read(xml.Replace("<BirthWeight unit=\"g\">", "<BirthWeight unit=\"kg\">", StringComparison.Ordinal)).Certificates)).Errors[0];
        var plurality = Assert.IsType<CertificateRejected>(Assert.Single(Read(xml.Replace("<Plurality>1</Plurality>", "<Plurality>one</Plurality>", StringComparison.Ordinal)).Certificates)).Errors[0];

        Assert.Equal(("MALFORMED", weightLine, lines[weightLine - 1].IndexOf("unit=", StringComparison.Ordinal) + 1), (unit.Code, unit.Line, unit.Position));
        Assert.Contains("Newborn/BirthWeight/@unit", unit.Detail, StringComparison.Ordinal);
        Assert.Equal(("MALFORMED", pluralityLine, lines[pluralityLine - 1].IndexOf("Plurality", StringComparison.Ordinal) + 1), (plurality.Code, plurality.Line, plurality.Position));
        Assert.Contains("Newborn/Plurality", plurality.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_XSD_error_in_a_batch_is_reported_at_its_own_line_in_the_batch()
    {
        var batch = Sample("batch_QX-BMC-20250430-001");
        var at = batch.LastIndexOf("<BirthWeight unit=\"g\">", StringComparison.Ordinal);
        var line = batch[..at].Count(c => c == '\n') + 1;

        var result = Read(string.Concat(batch.AsSpan(0, at), "<BirthWeight unit=\"kg\">", batch.AsSpan(at + "<BirthWeight unit=\"g\">".Length)));

        Assert.All(result.Certificates.Take(2), c => Assert.IsType<CertificateAccepted>(c));
        var error = Assert.IsType<CertificateRejected>(result.Certificates[2]).Errors[0];
        Assert.Equal(line, error.Line);
        Assert.Contains("BirthCertificate/Newborn/BirthWeight/@unit", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mothers_15_digit_id_number_is_upgraded_with_a_warning()
    {
        var xml = Sample("Q360418201").Replace("<IdDocument typeCode=\"01\">36992119960823078X</IdDocument>",
            "<IdDocument typeCode=\"01\">369921960823078</IdDocument>", StringComparison.Ordinal);

        var accepted = Assert.IsType<CertificateAccepted>(Assert.Single(Read(xml).Certificates));

        var warning = Assert.Single(accepted.Warnings);
        Assert.Contains("369921960823078", warning.Detail, StringComparison.Ordinal);
        Assert.Contains("36992119960823078X", warning.Detail, StringComparison.Ordinal);
        Assert.Contains(accepted.Transaction.Entry.Select(e => e.Resource).OfType<Patient>(),
            p => p.Identifier.Any(i => i.System == Systems.ResidentId && i.Value == "36992119960823078X"));
    }

    [Fact]
    public void A_DTD_or_external_entity_is_refused_as_MALFORMED()
    {
        var xml = "<?xml version=\"1.0\"?><!DOCTYPE BirthCertificate [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
            + Sample("Q360418201")[Sample("Q360418201").IndexOf("<BirthCertificate", StringComparison.Ordinal)..].Replace("<Remarks>", "<Remarks>&x;", StringComparison.Ordinal);

        var result = Read(xml);

        Assert.True(result.DocumentRejected);
        Assert.Equal("MALFORMED", result.DocumentIssues[0].Code);
        Assert.DoesNotContain("root:", result.DocumentIssues[0].Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<IdDocument typeCode=\"01\">36992119960823078X</IdDocument>", "<IdDocument typeCode=\"01\">369921199608230781</IdDocument>", "ID_CHECK_DIGIT")]
    [InlineData("<SexCode>2</SexCode>", "<SexCode>5</SexCode>", "UNKNOWN_CODE")]
    [InlineData("<IssuingInstitution code=\"QX2100012\">", "<IssuingInstitution code=\"QX9999999\">", "UNKNOWN_CODE")]
    [InlineData("<Vaccination vaccineCode=\"0201\"", "<Vaccination vaccineCode=\"9999\"", "UNKNOWN_CODE")]
    [InlineData("<AdministeredAt>2025-03-15T10:20:00+08:00</AdministeredAt>", "<AdministeredAt>2025-03-14T10:20:00+08:00</AdministeredAt>", "IMPOSSIBLE_DATE")]
    [InlineData("<AdministeredAt>2025-03-15T10:20:00+08:00</AdministeredAt>", "<AdministeredAt>2099-03-15T10:20:00+08:00</AdministeredAt>", "IMPOSSIBLE_DATE")]
    [InlineData("<IssueDate>2025-03-17</IssueDate>", "<IssueDate>2025-03-14</IssueDate>", "IMPOSSIBLE_DATE")]
    [InlineData("<IssueDate>2025-03-17</IssueDate>", "<IssueDate>2025-07-17</IssueDate>", "IMPOSSIBLE_DATE")]
    [InlineData("<Name>王秀英</Name>", "<Name></Name>", "MISSING_REQUIRED")]
    [InlineData("<Plurality>1</Plurality>", "<Plurality>one</Plurality>", "MALFORMED")]
    [InlineData("<BirthDateTime>2025-03-15T08:42:00+08:00</BirthDateTime>", "<BirthDateTime>0001-01-01T00:00:00+08:00</BirthDateTime>", "IMPOSSIBLE_DATE")]
    [InlineData("<BirthDateTime>2025-03-15T08:42:00+08:00</BirthDateTime>", "<BirthDateTime>9999-12-31T23:00:00-08:00</BirthDateTime>", "IMPOSSIBLE_DATE")]
    [InlineData("<AdministeredAt>2025-03-15T10:20:00+08:00</AdministeredAt>", "<AdministeredAt>0001-01-01T00:00:00+08:00</AdministeredAt>", "IMPOSSIBLE_DATE")]
    [InlineData("<LastModified>2025-03-17T11:02:00+08:00</LastModified>", "<LastModified>0001-01-01T00:00:00+08:00</LastModified>", "IMPOSSIBLE_DATE")]
    [InlineData("<BirthWeight unit=\"g\">3350</BirthWeight>", "<BirthWeight unit=\"g\">99999999999</BirthWeight>", "MALFORMED")]
    [InlineData("<RecordVersion>1</RecordVersion>", "<RecordVersion>99999999999999999999</RecordVersion>", "MALFORMED")]
    [InlineData("doseNo=\"1\"", "doseNo=\"99999999999\"", "MALFORMED")]
    [InlineData("<NationalityCode>CHN</NationalityCode>\n    <EthnicityCode>01</EthnicityCode>\n    <IdDocument typeCode=\"01\">36992119960823078X",
        "<NationalityCode>ZZZ</NationalityCode>\n    <EthnicityCode></EthnicityCode>\n    <IdDocument typeCode=\"01\">36992119960823078X", "UNKNOWN_CODE")]
    [InlineData("<NationalityCode>CHN</NationalityCode>\n    <EthnicityCode>01</EthnicityCode>\n    <IdDocument typeCode=\"01\">36992119960823078X",
        "<NationalityCode>CHN</NationalityCode>\n    <EthnicityCode></EthnicityCode>\n    <IdDocument typeCode=\"01\">36992119960823078X", "MISSING_REQUIRED")]
    [InlineData("<IssueType>1</IssueType>", "<IssueType>2</IssueType>", "MISSING_REQUIRED")]
    [InlineData("<BirthOrder>1</BirthOrder>", "<BirthOrder>2</BirthOrder>", "MALFORMED")]
    // Within the county, a township's or village's division code is one of its table's; elsewhere the province is checked.
    [InlineData("<DivisionCode>369921100</DivisionCode>", "<DivisionCode>369921999</DivisionCode>", "UNKNOWN_CODE")]
    [InlineData("<DivisionCode>369921100</DivisionCode>", "<DivisionCode>369921100299</DivisionCode>", "UNKNOWN_CODE")]
    [InlineData("divisionCode=\"369921101202\"", "divisionCode=\"999999999999\"", "UNKNOWN_CODE")]
    [InlineData("divisionCode=\"369921101202\"", "divisionCode=\"369921101299\"", "UNKNOWN_CODE")]
    // Replaces on a first issue would join this newborn to another certificate's child; a certificate cannot replace itself.
    [InlineData("<Status>1</Status>", "<Status>1</Status>\n  <Replaces>\n    <CertificateNo>Q360418266</CertificateNo>\n    <Reason>遗失</Reason>\n  </Replaces>", "MALFORMED")]
    [InlineData("<IssueType>1</IssueType>\n  <RecordVersion>1</RecordVersion>\n  <Status>1</Status>",
        "<IssueType>2</IssueType>\n  <RecordVersion>1</RecordVersion>\n  <Status>1</Status>\n  <Replaces>\n    <CertificateNo>Q360418201</CertificateNo>\n    <Reason>遗失</Reason>\n  </Replaces>", "MALFORMED")]
    public void Invalid_certificates_are_rejected_with_the_first_failing_check(string from, string to, string code)
    {
        var xml = Sample("Q360418201");
        Assert.Contains(from, xml, StringComparison.Ordinal);

        var outcome = Assert.Single(Read(xml.Replace(from, to, StringComparison.Ordinal)).Certificates);

        var rejected = Assert.IsType<CertificateRejected>(outcome);
        Assert.Equal(code, rejected.Errors[0].Code);
        Assert.True(rejected.Errors[0].Line > 0);
    }

    [Fact]
    public void A_foreign_mother_without_an_ethnicity_is_accepted_and_with_one_refused_saying_it_must_be_empty()
    {
        var xml = Sample("Q360418201");
        const string Chinese = "<NationalityCode>CHN</NationalityCode>\n    <EthnicityCode>01</EthnicityCode>\n    <IdDocument typeCode=\"01\">36992119960823078X</IdDocument>";
        Assert.Contains(Chinese, xml, StringComparison.Ordinal);

        var without = Read(xml.Replace(Chinese, "<NationalityCode>VNM</NationalityCode>\n    <EthnicityCode></EthnicityCode>\n    <IdDocument typeCode=\"03\">C1234567</IdDocument>", StringComparison.Ordinal));
        var with = Read(xml.Replace(Chinese, "<NationalityCode>VNM</NationalityCode>\n    <EthnicityCode>01</EthnicityCode>\n    <IdDocument typeCode=\"03\">C1234567</IdDocument>", StringComparison.Ordinal));

        Assert.True(Assert.Single(without.Certificates) is CertificateAccepted, string.Join("; ", (without.Certificates[0] as CertificateRejected)?.Errors.Select(e => e.Code + " " + e.Detail) ?? []));
        var rejected = Assert.IsType<CertificateRejected>(Assert.Single(with.Certificates));
        Assert.Contains("应为空", rejected.Errors[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_document_declared_GB18030_is_decoded_by_its_declaration()
    {
        var xml = Sample("Q360418201").Replace("encoding=\"UTF-8\"", "encoding=\"GB18030\"", StringComparison.Ordinal);

        var result = BirthCertificateReader.Read(InteropHub.Adapters.His.Parsing.Hl7Parser.Gb18030.GetBytes(xml), Received);

        var accepted = Assert.IsType<CertificateAccepted>(Assert.Single(result.Certificates));
        Assert.Contains(accepted.Transaction.Entry, e => e.Resource is RelatedPerson r && r.Name[0].Text == "王秀英");
    }
}
