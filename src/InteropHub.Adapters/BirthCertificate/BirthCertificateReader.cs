using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using System.Xml.Schema;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.BirthCertificate;

/// <summary>
/// Reads a <c>&lt;BirthCertificate&gt;</c> or <c>&lt;BirthCertificateBatch&gt;</c> (birth-certificate.md) with DTDs and
/// external entities refused, validates a batch's envelope and each certificate on its own against the county XSD,
/// applies the checks of §4 in their order, and maps the valid ones. Pure: <c>receivedAt</c> is the "time of sending" bound for dates.
/// </summary>
public static class BirthCertificateReader
{
    private static readonly XmlSchemaSet Schemas = LoadSchemas();

    private static readonly XmlReaderSettings SafeReader = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreComments = true,
    };

    private static readonly string[] RequiredPaths =
    [
        "CertificateNo", "IssueType", "RecordVersion", "Status", "IssueDate", "IssuingInstitution", "Newborn/SexCode",
        "Newborn/BirthDateTime", "Newborn/BirthWeight", "Newborn/BirthLength", "Newborn/HealthStatusCode", "Newborn/Plurality",
        "Newborn/BirthOrder", "BirthPlace/CategoryCode", "BirthPlace/DivisionCode", "BirthPlace/Province", "BirthPlace/County",
        "Mother/Name", "Mother/Age", "Mother/NationalityCode", "Mother/IdDocument", "Mother/Address", "Attendant", "LastModified",
    ];

    static BirthCertificateReader()
    {
        // The old township client declares encoding="GB18030"; the declaration is authoritative (§1).
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
    }

    public static BirthCertificateResult Read(byte[] document, DateTimeOffset receivedAt)
    {
        XDocument xml;
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(document, writable: false), SafeReader);
            xml = XDocument.Load(reader, LoadOptions.SetLineInfo);
        }
        catch (XmlException e)
        {
            return new BirthCertificateResult([new CertificateIssue(RejectionReason.Malformed.Code(), $"XML 无法解析: {e.Message}", e.LineNumber, e.LinePosition)], []);
        }

        var root = xml.Root!;
        if (root.Name.LocalName is not ("BirthCertificate" or "BirthCertificateBatch"))
        {
            return new BirthCertificateResult([Issue(root, RejectionReason.Malformed, $"根元素 {root.Name.LocalName} 不是 BirthCertificate 或 BirthCertificateBatch")], []);
        }

        var (envelope, schemaErrors) = Validate(xml);
        if (root.Name.LocalName == "BirthCertificate")
        {
            return new BirthCertificateResult([], [ReadCertificate(root, schemaErrors.GetValueOrDefault(root), receivedAt)]);
        }

        // The batch's own attributes are required by the XSD too (§1 "Batch"): an envelope that breaks it is no batch
        // the hub can account for, so the document is MALFORMED whole, as one that is not well-formed.
        if (envelope is not null)
        {
            return new BirthCertificateResult([envelope], []);
        }

        var certificates = root.Elements("BirthCertificate").ToList();
        if (!int.TryParse((string?)root.Attribute("count"), out var count) || count != certificates.Count)
        {
            return new BirthCertificateResult([Issue(root, RejectionReason.Integrity, $"批次 count={(string?)root.Attribute("count")}，实际证件数 {certificates.Count}")], []);
        }

        // "Time of sending" for a batch is its export time when that is earlier than the arrival.
        if (DateTimeOffset.TryParse((string?)root.Attribute("exportTime"), CultureInfo.InvariantCulture, out var exported) && exported < receivedAt)
        {
            receivedAt = exported;
        }

        return new BirthCertificateResult([], [.. certificates.Select(c => ReadCertificate(c, schemaErrors.GetValueOrDefault(c), receivedAt))]);
    }

    /// <param name="schemaError">The certificate's first XSD error (<see cref="Validate"/>), reported after the required elements (§4).</param>
    private static CertificateOutcome ReadCertificate(XElement certificate, CertificateIssue? schemaError, DateTimeOffset receivedAt)
    {
        var number = Text(certificate, "CertificateNo");
        _ = int.TryParse(Text(certificate, "RecordVersion"), out var version);
        CertificateRejected Reject(CertificateIssue issue) => new(number.Length > 0 ? number : null, version, [issue]);

        foreach (var path in RequiredPaths)
        {
            var element = certificate.XPathElement(path);
            if (element is null || element.Value.Trim().Length == 0)
            {
                return Reject(Issue(element ?? certificate, RejectionReason.MissingRequired, $"{path} 为空或缺失"));
            }
        }

        if (Text(certificate, "IssueType") is "2" or "3" && Text(certificate, "Replaces/CertificateNo").Length == 0)
        {
            return Reject(Issue(certificate.Element("IssueType")!, RejectionReason.MissingRequired,
                $"IssueType {Text(certificate, "IssueType")} (补发/换发) 需要 Replaces/CertificateNo"));
        }

        // §2: Replaces is for a reissue or replacement only. On a first issue it would join this newborn to the child of
        // the certificate it names (rule 4), whose newborn may be another child (a twin's certificate named by mistake).
        if (Text(certificate, "IssueType") == "1" && certificate.Element("Replaces") is { } replaces && Text(certificate, "Replaces/CertificateNo").Length > 0)
        {
            return Reject(Issue(replaces, RejectionReason.Malformed,
                $"IssueType 1 (首次签发) 不应有 Replaces/CertificateNo {Text(certificate, "Replaces/CertificateNo")}: 只有补发 (2) 或换发 (3) 替代原证"));
        }

        if (Text(certificate, "Replaces/CertificateNo") is { Length: > 0 } replaced && replaced == Text(certificate, "CertificateNo"))
        {
            return Reject(Issue(certificate.Element("Replaces")!, RejectionReason.Malformed, $"Replaces/CertificateNo {replaced} 与本证编号相同: 证书不能替代自身"));
        }

        if (schemaError is not null)
        {
            return Reject(schemaError);
        }

        if (int.TryParse(Text(certificate, "Newborn/BirthOrder"), out var order) && int.TryParse(Text(certificate, "Newborn/Plurality"), out var plurality)
            && order > plurality)
        {
            return Reject(Issue(certificate.XPathElement("Newborn/BirthOrder")!, RejectionReason.Malformed, $"BirthOrder {order} 大于胎数 Plurality {plurality}"));
        }

        var warnings = new List<CertificateIssue>();
        var issue = OutOfRange(certificate) ?? Codes(certificate) ?? Identifiers(certificate, warnings) ?? Dates(certificate, receivedAt, warnings);
        if (issue is not null)
        {
            return Reject(issue);
        }

        return BirthCertificateMapper.Map(certificate, number, version, warnings);
    }

    internal static string Text(XElement element, string path) => element.XPathElement(path)?.Value.Trim() ?? "";

    private static XElement? XPathElement(this XElement element, string path)
    {
        XElement? current = element;
        foreach (var name in path.Split('/'))
        {
            current = current?.Element(name);
        }

        return current;
    }

    private static CertificateIssue Issue(XObject at, RejectionReason reason, string detail, IssueSeverity severity = IssueSeverity.Error)
    {
        var info = (IXmlLineInfo)at;
        return new CertificateIssue(severity == IssueSeverity.Error ? reason.Code() : "WARNING", detail, info.LineNumber, info.LinePosition, severity);
    }

    /// <summary>
    /// Validates the document against the XSD in one pass, in place: each error keeps the line and position of the
    /// element or attribute at fault (the document is loaded with its line information) and names it. The first error
    /// of each certificate is that certificate's, so one bad certificate rejects only itself (§1 "Batch processing");
    /// the first error of the batch element, its attributes or a child that is no certificate is the envelope's.
    /// </summary>
    private static (CertificateIssue? Envelope, Dictionary<XElement, CertificateIssue> Certificates) Validate(XDocument document)
    {
        CertificateIssue? envelope = null;
        var certificates = new Dictionary<XElement, CertificateIssue>();
        document.Validate(Schemas, (sender, e) =>
        {
            // The sender is the node being validated: an element (its content, a missing attribute), an attribute, a text.
            var at = sender as XObject ?? document.Root!;
            var element = at as XElement ?? at.Parent ?? document.Root!;
            var certificate = element.AncestorsAndSelf("BirthCertificate").LastOrDefault();
            var path = string.Join('/', element.AncestorsAndSelf().TakeWhile(a => a != certificate?.Parent).Reverse().Select(a => a.Name.LocalName))
                + (at is XAttribute attribute ? $"/@{attribute.Name.LocalName}" : "");
            var issue = Issue(at, RejectionReason.Malformed, $"不符合 XSD: {path}: {e.Message}");
            if (certificate is null)
            {
                envelope ??= issue;
            }
            else
            {
                certificates.TryAdd(certificate, issue);
            }
        });
        return (envelope, certificates);
    }

    private static CertificateIssue? Codes(XElement c)
    {
        CertificateIssue? Check(string path, Func<string, bool> known, string what, bool optional = false)
        {
            var element = c.XPathElement(path);
            var value = element?.Value.Trim() ?? "";
            if (value.Length == 0 && optional)
            {
                return null;
            }

            return known(value) ? null : Issue(element ?? c, RejectionReason.UnknownCode, $"{path} {value} 不在{what}中");
        }

        CertificateIssue? Institution(XElement? element, string path)
        {
            var code = element is null ? null : ((string?)element.Attribute("code") ?? element.Value).Trim();
            return code is null || CountyCodes.Institutions.ContainsKey(code) ? null : Issue(element!, RejectionReason.UnknownCode, $"{path} 机构代码 {code} 不在机构表中");
        }

        string[] idTypes = ["01", "02", "03", "04", "05", "06", "07", "99"];
        var issue = Check("Newborn/SexCode", v => v is "0" or "1" or "2" or "9", " GB/T 2261.1 ")
            ?? Check("Newborn/HealthStatusCode", v => v is "1" or "2" or "3", "健康状况代码")
            ?? Check("BirthPlace/CategoryCode", v => v is "1" or "2" or "3" or "9", " CV02.01.102 ")
            ?? Check("BirthPlace/DivisionCode", IsDivisionCode, "行政区划代码表")
            ?? (c.XPathElement("Mother/Address") is { } address && ((string?)address.Attribute("divisionCode"))?.Trim() is { Length: > 0 } living
                && !IsDivisionCode(living)
                ? Issue(address, RejectionReason.UnknownCode, $"Mother/Address divisionCode {living} 不在行政区划代码表中")
                : null)
            ?? Institution(c.Element("IssuingInstitution"), "IssuingInstitution")
            ?? Institution(c.Element("MidwiferyInstitution"), "MidwiferyInstitution");
        if (issue is not null)
        {
            return issue;
        }

        foreach (var parent in new[] { "Mother", "Father" })
        {
            if (c.Element(parent) is not { } person)
            {
                continue;
            }

            var nationality = Text(person, "NationalityCode");
            var chinese = nationality == "CHN";
            var ethnicity = person.Element("EthnicityCode");
            issue = (nationality.Length > 0 && !Iso3166.Alpha3.Contains(nationality)
                    ? Issue(person.Element("NationalityCode")!, RejectionReason.UnknownCode, $"{parent}/NationalityCode {nationality} 不是 ISO 3166 三字母国家代码")
                    : null)
                ?? (!chinese && ethnicity is not null && ethnicity.Value.Trim().Length > 0
                    ? Issue(ethnicity, RejectionReason.UnknownCode, $"{parent}/EthnicityCode 仅在国籍为 CHN 时填写，国籍 {nationality} 时应为空")
                    : null)
                ?? (chinese && (ethnicity is null || ethnicity.Value.Trim().Length == 0)
                    ? Issue(ethnicity ?? person, RejectionReason.MissingRequired, $"{parent}/EthnicityCode 在国籍为 CHN 时必填")
                    : null)
                ?? (chinese ? Check($"{parent}/EthnicityCode", CountyCodes.Ethnicities.ContainsKey, " GB/T 3304 ") : null)
                ?? (idTypes.Contains((string?)person.Element("IdDocument")?.Attribute("typeCode"))
                    ? null
                    : Issue(person.Element("IdDocument")!, RejectionReason.UnknownCode, $"{parent}/IdDocument typeCode 不在 CV02.01.101 中"));
            if (issue is not null)
            {
                return issue;
            }
        }

        if (c.Element("MidwiferyInstitution") is null && Text(c, "BirthPlace/CategoryCode") is "1" or "2")
        {
            return Issue(c, RejectionReason.MissingRequired, "MidwiferyInstitution 在医疗机构内出生时必填");
        }

        foreach (var dose in c.Elements("BirthDoseVaccinations").Elements("Vaccination"))
        {
            var vaccine = (string?)dose.Attribute("vaccineCode") ?? "";
            if (!CountyCodes.Vaccines.ContainsKey(vaccine))
            {
                return Issue(dose, RejectionReason.UnknownCode, $"Vaccination vaccineCode {vaccine} 不在 QXVAC 中");
            }

            if (Institution(dose.Element("InstitutionCode"), "Vaccination/InstitutionCode") is { } unknown)
            {
                return unknown;
            }
        }

        return null;
    }

    /// <summary>
    /// 6-, 9- or 12-digit division codes under a GB/T 2260 province code (the county table adds codes, never provinces);
    /// within the county, a township's or village's code is one of its table's (as the township export checks), since
    /// only there does the hub hold the table. A birth elsewhere is checked to its province.
    /// </summary>
    private static bool IsDivisionCode(string value) =>
        value.Length is 6 or 9 or 12 && value.All(char.IsAsciiDigit)
        && int.Parse(value.AsSpan(0, 2), CultureInfo.InvariantCulture) is (>= 11 and <= 15) or (>= 21 and <= 23) or (>= 31 and <= 37)
            or (>= 41 and <= 46) or (>= 50 and <= 54) or (>= 61 and <= 65) or 71 or 81 or 82
        && (value.Length == 6 || !value.StartsWith(CountyCodes.CountyDivision, StringComparison.Ordinal)
            || CountyCodes.Villages.Keys.Any(village => village.StartsWith(value, StringComparison.Ordinal)));

    private static readonly string[] IntegerPaths = ["RecordVersion", "Newborn/BirthWeight", "Newborn/Plurality", "Newborn/BirthOrder", "Mother/Age"];

    /// <summary>
    /// The schema's types are unbounded (xs:positiveInteger, xs:dateTime from year 1): a value the checks and the
    /// mapping cannot hold, or a date outside 1900–2100, is refused here naming its element.
    /// </summary>
    private static CertificateIssue? OutOfRange(XElement c)
    {
        var dates = new[] { c.XPathElement("Newborn/BirthDateTime"), c.Element("LastModified") }
            .Concat(c.Elements("BirthDoseVaccinations").Elements("Vaccination").Select(v => v.Element("AdministeredAt")));
        foreach (var element in dates.OfType<XElement>())
        {
            if (!DateTimeOffset.TryParse(element.Value.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) || at.Year is < 1900 or > 2100)
            {
                return Issue(element, RejectionReason.ImpossibleDate, $"{element.Name.LocalName} {element.Value.Trim()} 不在 1900–2100 年之间");
            }
        }

        if (c.Element("IssueDate") is { } issued
            && (!DateOnly.TryParseExact(issued.Value.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day) || day.Year is < 1900 or > 2100))
        {
            return Issue(issued, RejectionReason.ImpossibleDate, $"IssueDate {issued.Value.Trim()} 不在 1900–2100 年之间");
        }

        var numbers = IntegerPaths.Select(path => (XObject?)c.XPathElement(path))
            .Append(c.XPathElement("Newborn/GestationalAge")?.Attribute("weeks"))
            .Append(c.XPathElement("Newborn/GestationalAge")?.Attribute("days"))
            .Concat(c.Elements("BirthDoseVaccinations").Elements("Vaccination").Select(v => (XObject?)v.Attribute("doseNo")));
        foreach (var at in numbers.OfType<XObject>())
        {
            var (name, value) = at is XAttribute a ? ("@" + a.Name.LocalName, a.Value.Trim()) : (((XElement)at).Name.LocalName, ((XElement)at).Value.Trim());
            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
            {
                return Issue(at, RejectionReason.Malformed, $"{name} {value} 超出可处理的数值范围");
            }
        }

        if (c.XPathElement("Newborn/BirthLength") is { } length && !decimal.TryParse(length.Value.Trim(), NumberStyles.Number, CultureInfo.InvariantCulture, out _))
        {
            return Issue(length, RejectionReason.Malformed, $"BirthLength {length.Value.Trim()} 超出可处理的数值范围");
        }

        return null;
    }

    /// <summary>
    /// The parents' resident ID numbers (type 01): an invalid one rejects the certificate; a 15-digit one (upgraded) or
    /// one whose area code is no division is accepted with a warning (README "Rejection reasons").
    /// </summary>
    private static CertificateIssue? Identifiers(XElement c, List<CertificateIssue> warnings)
    {
        var birth = DateOnly.FromDateTime(DateTimeOffset.Parse(Text(c, "Newborn/BirthDateTime"), CultureInfo.InvariantCulture).DateTime);
        foreach (var parent in new[] { "Mother", "Father" })
        {
            var document = c.Element(parent)?.Element("IdDocument");
            if (document is null || (string?)document.Attribute("typeCode") != "01")
            {
                continue;
            }

            var check = ResidentIdNumber.Check(document.Value, birth);
            if (!check.IsValid)
            {
                return Issue(document, check.Failure!.Value, $"{parent}/IdDocument {check.Detail}");
            }

            if (check.Upgraded)
            {
                warnings.Add(Issue(document, RejectionReason.IdFormat, $"{parent}/IdDocument 15位身份证号 {document.Value.Trim()} 已升级为 {check.Value}", IssueSeverity.Warning));
            }

            if (!ResidentIdNumber.KnownArea(check.Value))
            {
                warnings.Add(Issue(document, RejectionReason.IdFormat,
                    $"{parent}/IdDocument 身份证号 {check.Value} 的地区码 {check.Value[..6]} 不在行政区划表中", IssueSeverity.Warning));
            }
        }

        return null;
    }

    private static CertificateIssue? Dates(XElement c, DateTimeOffset receivedAt, List<CertificateIssue> warnings)
    {
        var born = DateTimeOffset.Parse(Text(c, "Newborn/BirthDateTime"), CultureInfo.InvariantCulture);
        var issued = DateOnly.ParseExact(Text(c, "IssueDate"), "yyyy-MM-dd", CultureInfo.InvariantCulture);
        var bornDate = DateOnly.FromDateTime(born.ToOffset(TimeSpan.FromHours(8)).DateTime);
        var sentDate = DateOnly.FromDateTime(receivedAt.ToOffset(TimeSpan.FromHours(8)).DateTime);
        if (bornDate > issued)
        {
            return Issue(c.Element("IssueDate")!, RejectionReason.ImpossibleDate, $"出生 {born:yyyy-MM-dd} 晚于签发日期 {issued:yyyy-MM-dd}");
        }

        if (born > receivedAt || issued > sentDate)
        {
            return Issue(c.Element("IssueDate")!, RejectionReason.ImpossibleDate, "出生或签发日期晚于发送时间");
        }

        var mother = c.Element("Mother")!;
        var age = int.Parse(Text(mother, "Age"), CultureInfo.InvariantCulture);
        var id = mother.Element("IdDocument")!;
        DateOnly? motherBirth = (string?)id.Attribute("typeCode") == "01" ? ResidentIdNumber.Check(id.Value, bornDate).BirthDate : null;
        var ageFromId = motherBirth is { } mb ? bornDate.Year - mb.Year - (bornDate < mb.AddYears(bornDate.Year - mb.Year) ? 1 : 0) : (int?)null;
        if ((ageFromId ?? age) < 12)
        {
            return Issue(mother, RejectionReason.ImpossibleDate, $"母亲出生时年龄 {ageFromId ?? age} 岁，小于 12 岁");
        }

        foreach (var dose in c.Elements("BirthDoseVaccinations").Elements("Vaccination"))
        {
            var given = DateTimeOffset.Parse(Text(dose, "AdministeredAt"), CultureInfo.InvariantCulture);
            if (given < born)
            {
                return Issue(dose, RejectionReason.ImpossibleDate, $"接种时间 {Text(dose, "AdministeredAt")} 早于出生时间");
            }

            // README reason table: IMPOSSIBLE_DATE is also a date in the future, and a dose is an event.
            if (given > receivedAt)
            {
                return Issue(dose, RejectionReason.ImpossibleDate, $"接种时间 {Text(dose, "AdministeredAt")} 晚于发送时间");
            }
        }

        if (ageFromId is { } fromId && Math.Abs(fromId - age) > 1)
        {
            warnings.Add(Issue(mother.Element("Age")!, RejectionReason.ImpossibleDate, $"母亲年龄 {age} 与身份证号推算的 {fromId} 岁不符", IssueSeverity.Warning));
        }

        var weight = int.Parse(Text(c, "Newborn/BirthWeight"), CultureInfo.InvariantCulture);
        if (weight is < 300 or > 6500)
        {
            warnings.Add(Issue(c.XPathElement("Newborn/BirthWeight")!, RejectionReason.ImpossibleDate, $"出生体重 {weight} g 超出 300–6500 g", IssueSeverity.Warning));
        }

        var weeks = int.Parse((string?)c.XPathElement("Newborn/GestationalAge")?.Attribute("weeks") ?? "0", CultureInfo.InvariantCulture);
        if (weeks is < 20 or > 44)
        {
            warnings.Add(Issue(c.XPathElement("Newborn/GestationalAge")!, RejectionReason.ImpossibleDate, $"出生孕周 {weeks} 超出 20–44 周", IssueSeverity.Warning));
        }

        return null;
    }

    private static XmlSchemaSet LoadSchemas()
    {
        var set = new XmlSchemaSet { XmlResolver = null };
        using var stream = typeof(BirthCertificateReader).Assembly.GetManifestResourceStream("birth-certificate.xsd")
            ?? throw new InvalidOperationException("birth-certificate.xsd is not embedded.");
        using var reader = XmlReader.Create(stream, SafeReader);
        set.Add(null, reader);
        set.Compile();
        return set;
    }
}
