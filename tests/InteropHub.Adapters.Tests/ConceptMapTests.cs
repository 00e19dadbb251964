using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.Identity;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Adapters.Tests;

/// <summary>
/// The ConceptMaps in <c>mappings/</c> are built here with the SDK from the county code tables the mappers use, so
/// the published maps and the mappings cannot drift apart. INTEROPHUB_UPDATE_GOLDEN=1 rewrites them.
/// </summary>
public sealed class ConceptMapTests
{
    private static readonly FhirSerializers Serializers = new();

    public static TheoryData<string> Maps()
    {
        var data = new TheoryData<string>();
        foreach (var name in Build().Keys)
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Maps))]
    public void The_published_concept_map_matches_the_code_tables_the_mappers_use(string name)
    {
        var map = Build()[name];
        var json = Encoding.UTF8.GetString(Serializers.ToJsonBytes(map, pretty: true)) + "\n";
        var path = Path.Combine(MappingsFolder, name + ".json");
        if (Environment.GetEnvironmentVariable("INTEROPHUB_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, json);
        }

        Assert.True(File.Exists(path), $"{path} is missing; run with INTEROPHUB_UPDATE_GOLDEN=1");
        Assert.Equal(File.ReadAllText(path), json);
        Assert.IsType<ConceptMap>(Serializers.ParseJson(Encoding.UTF8.GetBytes(json)));
    }

    private static Dictionary<string, ConceptMap> Build() => new(StringComparer.Ordinal)
    {
        ["qxvac-to-cvx"] = Map("qxvac-to-cvx", "County vaccine codes to CVX", "县疫苗编码 → CVX", Systems.Vaccine, Systems.Cvx,
            CountyCodes.Vaccines.Values.OrderBy(v => v.Code, StringComparer.Ordinal).Select(v => (v.Code, v.Name, v.Cvx, (string?)null,
                v.Cvx is null ? ConceptMapEquivalence.Unmatched : v.Approximate ? ConceptMapEquivalence.Inexact : ConceptMapEquivalence.Equivalent))),
        ["qxlis-to-loinc"] = Map("qxlis-to-loinc", "County LIS item codes to LOINC", "县检验项目编码 → LOINC", Systems.Local("QXLIS"), Systems.Loinc,
            CountyCodes.LabItems.Values.OrderBy(i => i.Code, StringComparer.Ordinal).Select(i => (i.Code, i.Name, i.Loinc, (string?)null,
                i.Loinc is null ? ConceptMapEquivalence.Unmatched : ConceptMapEquivalence.Equivalent))),
        ["gb2261-1-sex-to-administrative-gender"] = Map("gb2261-1-sex-to-administrative-gender", "GB/T 2261.1 sex to FHIR administrative gender",
            "性别 GB/T 2261.1 → AdministrativeGender", Systems.Sex, "http://hl7.org/fhir/administrative-gender",
            [("0", "未知的性别", "unknown", "Unknown", ConceptMapEquivalence.Equivalent), ("1", "男", "male", "Male", ConceptMapEquivalence.Equivalent),
             ("2", "女", "female", "Female", ConceptMapEquivalence.Equivalent), ("9", "未说明的性别", "unknown", "Unknown", ConceptMapEquivalence.Wider)]),
        ["gb2261-2-marital-status-to-v3"] = Map("gb2261-2-marital-status-to-v3", "GB/T 2261.2 marital status to HL7 v3 MaritalStatus",
            "婚姻状况 GB/T 2261.2 → v3-MaritalStatus", Systems.MaritalStatus, "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
            [("10", "未婚", "S", "Never Married", ConceptMapEquivalence.Equivalent), ("20", "已婚", "M", "Married", ConceptMapEquivalence.Equivalent),
             ("21", "初婚", "M", "Married", ConceptMapEquivalence.Wider), ("22", "再婚", "M", "Married", ConceptMapEquivalence.Wider),
             ("23", "复婚", "M", "Married", ConceptMapEquivalence.Wider), ("30", "丧偶", "W", "Widowed", ConceptMapEquivalence.Equivalent),
             ("40", "离婚", "D", "Divorced", ConceptMapEquivalence.Equivalent), ("90", "未说明的婚姻状况", "UNK", "unknown", ConceptMapEquivalence.Equivalent)]),
        ["his-patient-class-to-v3-actcode"] = Map("his-patient-class-to-v3-actcode", "HIS patient class (PV1-2) to HL7 v3 ActCode encounter class",
            "患者类别 PV1-2 → Encounter.class", "http://terminology.hl7.org/CodeSystem/v2-0004", "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            [("I", "住院", "IMP", "inpatient encounter", ConceptMapEquivalence.Equivalent), ("O", "门诊", "AMB", "ambulatory", ConceptMapEquivalence.Equivalent),
             ("E", "急诊", "EMER", "emergency", ConceptMapEquivalence.Equivalent)]),
        ["gb3304-ethnicity-to-letter-code"] = Map("gb3304-ethnicity-to-letter-code", "GB/T 3304 ethnicity numeric codes to the standard's letter codes",
            "民族 GB/T 3304 数字代码 → 字母代码 (GB 3304-91 表 3; 97、98 无字母代码)", Systems.Ethnicity, "urn:interophub:cs:gb3304-letter-code",
            CountyCodes.Ethnicities.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => EthnicityLetterCodes.TryGetValue(e.Key, out var letter)
                ? (e.Key, e.Value, (string?)letter.Code, (string?)letter.Romanization, ConceptMapEquivalence.Equivalent)
                : (e.Key, e.Value, null, null, ConceptMapEquivalence.Unmatched))),
        ["his-department-to-diagnosis-treatment-subject"] = Map("his-department-to-diagnosis-treatment-subject",
            "HIS department codes to the national list of diagnosis and treatment subjects",
            "HIS 科室代码 (his-hl7v2.md §8) → 医疗机构诊疗科目名录 (卫医发〔1994〕第27号)", Systems.Local("qxhis-department"),
            CountyCodes.DiagnosisTreatmentSubjects,
            CountyCodes.Departments.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => (d.Key, d.Value, (string?)CountyCodes.DepartmentSubjects[d.Key].Code,
                (string?)CountyCodes.DepartmentSubjects[d.Key].Name, d.Key == "0304C" ? ConceptMapEquivalence.Wider : ConceptMapEquivalence.Equivalent))),
    };

    /// <summary>GB 3304-91 (中国各民族名称的罗马字母拼写法和代码), table 3: letter code and romanization by numeric code.</summary>
    private static readonly Dictionary<string, (string Code, string Romanization)> EthnicityLetterCodes = new(StringComparer.Ordinal)
    {
        ["01"] = ("HA", "Han"), ["02"] = ("MG", "Mongol"), ["03"] = ("HU", "Hui"), ["04"] = ("ZA", "Zang"), ["05"] = ("UG", "Uygur"),
        ["06"] = ("MH", "Miao"), ["07"] = ("YI", "Yi"), ["08"] = ("ZH", "Zhuang"), ["09"] = ("BY", "Buyei"), ["10"] = ("CS", "Chosen"),
        ["11"] = ("MA", "Man"), ["12"] = ("DO", "Dong"), ["13"] = ("YA", "Yao"), ["14"] = ("BA", "Bai"), ["15"] = ("TJ", "Tujia"),
        ["16"] = ("HN", "Hani"), ["17"] = ("KZ", "Kazak"), ["18"] = ("DA", "Dai"), ["19"] = ("LI", "Li"), ["20"] = ("LS", "Lisu"),
        ["21"] = ("VA", "Va"), ["22"] = ("SH", "She"), ["23"] = ("GS", "Gaoshan"), ["24"] = ("LH", "Lahu"), ["25"] = ("SU", "Sui"),
        ["26"] = ("DX", "Dongxiang"), ["27"] = ("NX", "Naxi"), ["28"] = ("JP", "Jingpo"), ["29"] = ("KG", "Kirgiz"), ["30"] = ("TU", "Tu"),
        ["31"] = ("DU", "Daur"), ["32"] = ("ML", "Mulao"), ["33"] = ("QI", "Qiang"), ["34"] = ("BL", "Blang"), ["35"] = ("SL", "Salar"),
        ["36"] = ("MN", "Maonan"), ["37"] = ("GL", "Gelao"), ["38"] = ("XB", "Xibe"), ["39"] = ("AC", "Achang"), ["40"] = ("PM", "Pumi"),
        ["41"] = ("TA", "Tajik"), ["42"] = ("NU", "Nu"), ["43"] = ("UZ", "Uzbek"), ["44"] = ("RS", "Russ"), ["45"] = ("EW", "Ewenki"),
        ["46"] = ("DE", "Deang"), ["47"] = ("BN", "Bonan"), ["48"] = ("YG", "Yugur"), ["49"] = ("GI", "Gin"), ["50"] = ("TT", "Tatar"),
        ["51"] = ("DR", "Derung"), ["52"] = ("OR", "Oroqen"), ["53"] = ("HZ", "Hezhen"), ["54"] = ("MB", "Monba"), ["55"] = ("LB", "Lhoba"),
        ["56"] = ("JN", "Jino"),
    };

    private static ConceptMap Map(string id, string title, string description, string source, string target,
        IEnumerable<(string Code, string Display, string? Target, string? TargetDisplay, ConceptMapEquivalence Equivalence)> elements)
    {
        var group = new ConceptMap.GroupComponent { Source = source, Target = target };
        foreach (var (code, display, targetCode, targetDisplay, equivalence) in elements)
        {
            group.Element.Add(new ConceptMap.SourceElementComponent
            {
                Code = code,
                Display = display,
                Target = [new ConceptMap.TargetElementComponent { Code = targetCode, Display = targetDisplay, Equivalence = equivalence }],
            });
        }

        return new ConceptMap
        {
            Id = id,
            Url = $"urn:interophub:conceptmap:{id}",
            Version = "1.0.0",
            Name = string.Concat(id.Split('-').Select(p => char.ToUpperInvariant(p[0]) + p[1..])),
            Title = title,
            Status = PublicationStatus.Active,
            Publisher = "InteropHub",
            Description = description,
            Group = [group],
        };
    }

    private static string MappingsFolder
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "InteropHub.sln")))
            {
                directory = directory.Parent;
            }

            return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("Repository root not found."), "mappings");
        }
    }
}
