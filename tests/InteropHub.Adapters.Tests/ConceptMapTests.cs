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
