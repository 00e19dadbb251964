using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using InteropHub.Adapters.Identity;

namespace InteropHub.Testing;

/// <summary>
/// Deterministic data in the three legacy formats of the fictional county (../shared/legacy/), at any scale: person
/// n always has the same ID number, record number and name, so a run can be repeated and compared. For benchmarks
/// and load tests; every item is valid per its specification (GB 11643 check characters included).
/// </summary>
public static class LegacyData
{
    private static readonly DateTime Epoch = new(2025, 1, 1, 8, 0, 0, DateTimeKind.Unspecified);

    private static readonly JsonSerializerOptions ManifestJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Person n's resident ID number: area 369921 (清溪县, fictional), a birth date from n (29,000 days from 1940), a
    /// sequence number and a valid check character. Persons up to 29 million apart never share one: n and n + 29,000
    /// are born the same day and get the next sequence number.
    /// </summary>
    public static string IdNumber(int n) => IdNumber(new DateTime(1940, 1, 1).AddDays(n % 29_000), n % 1000 + n / 29_000);

    /// <summary>A resident ID number of someone born on <paramref name="birth"/>: the sequence number's last digit is odd for a man, even for a woman.</summary>
    public static string IdNumber(DateTime birth, int sequence)
    {
        var first17 = $"369921{birth:yyyyMMdd}{sequence % 1000:D3}";
        return first17 + ResidentIdNumber.CheckCharacter(first17);
    }

    /// <summary>ADT^A04: person n registered at the county hospital, with a new outpatient visit.</summary>
    public static byte[] Hl7Registration(int n)
    {
        var mrn = (7_000_000 + n).ToString("D10", CultureInfo.InvariantCulture);
        var time = Epoch.AddSeconds(n).ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var text = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|{time}||ADT^A04^ADT_A01|BENCH-{n:D9}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r" +
            $"EVN|A04|{time}\r" +
            $"PID|1||{mrn}^^^QX2100012^MR||测试{n}||19700101|1||01^汉族^GB3304|沙坪村1组^白沙镇^清源市^江西省^^CHN^H^^369921\r" +
            $"PV1|1|O|0307^^^QX2100012^^^^^内分泌科|R|||D0155^许文涛||||||||||||MZ{n:D12}^^^QX2100012&2.16.156.10011.1.11&ISO^VN|||||||||||||||||||||||||{time}\r";
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>
    /// A township batch (a zip, township-export.md) from 白沙镇卫生院: <paramref name="residents"/> resident rows for
    /// persons <paramref name="first"/>.. and one vaccination row each, so 2 × residents rows in all.
    /// </summary>
    public static byte[] TownshipBatch(int first, int residents, int sequence = 1)
    {
        var people = new StringBuilder("record_no,name,sex_code,birth_date,id_type,id_no,ethnicity_code,nationality_code,marital_status_code,phone,division_code,address_detail,residence_type,health_card_no,insurance_type,poverty_flag,mother_id_no,birth_cert_no,birth_order,responsible_doctor,created_date,archive_status,death_date,org_code,status,updated_at\r\n");
        var doses = new StringBuilder("vacc_id,record_no,vaccine_code,dose_no,vacc_date,lot_no,manufacturer_code,expiry_date,dose_ml,route_code,site_code,vacc_org_code,vaccinator,trace_code,record_source,org_code,status,updated_at\r\n");
        for (var n = first; n < first + residents; n++)
        {
            var record = $"369921101201{n % 100_000:D5}";
            var id = IdNumber(n);
            var birth = $"{id[6..10]}-{id[10..12]}-{id[12..14]}";
            var sex = (id[16] - '0') % 2 == 1 ? "1" : "2";
            people.Append(CultureInfo.InvariantCulture, $"{record},居民{n},{sex},{birth},01,{id},01,CHN,20,139{n % 100_000_000:D8},369921101201,沙坪村{n % 9 + 1}组{n % 50 + 1}号,1,,02,0,,,,吴国庆,2011-03-18,1,,QX2110026,active,2025-05-20 16:40:00\r\n");
            doses.Append(CultureInfo.InvariantCulture, $"JZ-QX2110026-{n:D9},{record},1301,1,2024-10-{n % 28 + 1:D2},202409A011,M05,2025-09-30,0.5,2,4,QX2110026,黄晓燕,,1,QX2110026,active,2025-05-20 16:40:00\r\n");
        }

        var files = new Dictionary<string, (string Table, byte[] Bytes, int Rows)>
        {
            ["residents.csv"] = ("residents", Encoding.UTF8.GetBytes(people.ToString()), residents),
            ["immunizations.csv"] = ("immunizations", Encoding.UTF8.GetBytes(doses.ToString()), residents),
        };
        var manifest = new
        {
            manifest_version = "1.0",
            batch_id = $"QX2110026-GEN-{first:D9}-{sequence:D3}",
            source_system = "QX-PHS",
            source_system_version = "3.6.2",
            source_institution_code = "QX2110026",
            source_institution_name = "白沙镇卫生院",
            export_type = "incremental",
            sequence,
            export_time = "2025-06-30T02:00:00+08:00",
            encoding = "UTF-8",
            files = files.Select(f => new { name = f.Key, table = f.Value.Table, rows = f.Value.Rows, sha256 = Convert.ToHexStringLower(SHA256.HashData(f.Value.Bytes)) }),
        };

        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] bytes)
            {
                using var entry = zip.CreateEntry(name).Open();
                entry.Write(bytes);
            }

            Add("manifest.json", JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJson));
            foreach (var (name, file) in files)
            {
                Add(name, file.Bytes);
            }
        }

        return buffer.ToArray();
    }

    /// <summary>A first-issue birth certificate (birth-certificate.md) of newborn n at the county hospital; the mother is born 1988–1997.</summary>
    public static byte[] BirthCertificate(int n)
    {
        var born = Epoch.AddMinutes(n * 7L);
        var motherBorn = new DateTime(1988, 1, 1).AddDays(n % 3650);
        var motherAge = born.Year - motherBorn.Year - (born.DayOfYear < motherBorn.DayOfYear ? 1 : 0);
        var xml = $"""
            <?xml version="1.0" encoding="UTF-8"?>
            <BirthCertificate schemaVersion="1.0">
              <CertificateNo>Q36{n % 10_000_000:D7}</CertificateNo>
              <IssueType>1</IssueType>
              <RecordVersion>1</RecordVersion>
              <Status>1</Status>
              <IssueDate>{born.AddDays(2):yyyy-MM-dd}</IssueDate>
              <IssuingInstitution code="QX2100012">清溪县人民医院</IssuingInstitution>
              <Newborn>
                <Name>新生儿{n}</Name>
                <SexCode>{n % 2 + 1}</SexCode>
                <BirthDateTime>{born:yyyy-MM-ddTHH:mm:ss}+08:00</BirthDateTime>
                <GestationalAge weeks="39" days="{n % 7}"/>
                <BirthWeight unit="g">{3000 + n % 800}</BirthWeight>
                <BirthLength unit="cm">50</BirthLength>
                <HealthStatusCode>1</HealthStatusCode>
                <Plurality>1</Plurality>
                <BirthOrder>1</BirthOrder>
              </Newborn>
              <BirthPlace>
                <CategoryCode>1</CategoryCode>
                <DivisionCode>369921100</DivisionCode>
                <Province>江西省</Province>
                <City>清源市</City>
                <County>清溪县</County>
                <Township>清溪镇</Township>
                <Detail>清溪县人民医院</Detail>
              </BirthPlace>
              <Mother>
                <Name>母亲{n}</Name>
                <Age>{motherAge}</Age>
                <NationalityCode>CHN</NationalityCode>
                <EthnicityCode>01</EthnicityCode>
                <IdDocument typeCode="01">{IdNumber(motherBorn, n)}</IdDocument>
                <Address divisionCode="369921101202">江西省清源市清溪县白沙镇新塘村5组8号</Address>
              </Mother>
              <MidwiferyInstitution code="QX2100012">清溪县人民医院</MidwiferyInstitution>
              <Attendant staffCode="N0311" roleCode="2">黄晓燕</Attendant>
              <BirthDoseVaccinations>
                <Vaccination vaccineCode="0101" doseNo="1">
                  <AdministeredAt>{born.AddHours(2):yyyy-MM-ddTHH:mm:ss}+08:00</AdministeredAt>
                  <LotNo>202410B027</LotNo>
                  <ManufacturerCode>M02</ManufacturerCode>
                  <ExpiryDate>2026-10-31</ExpiryDate>
                  <InstitutionCode>QX2100012</InstitutionCode>
                  <TraceCode>810613204102{n % 100_000_000:D8}</TraceCode>
                </Vaccination>
              </BirthDoseVaccinations>
              <LastModified>{born.AddDays(2):yyyy-MM-ddTHH:mm:ss}+08:00</LastModified>
            </BirthCertificate>
            """;
        return Encoding.UTF8.GetBytes(xml);
    }
}
