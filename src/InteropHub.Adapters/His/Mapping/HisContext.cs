using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>State of one message being mapped: the transaction being built and the problems found so far.</summary>
internal sealed class HisContext
{
    public HisContext(Hl7Message message, Hl7Time messageTime, StoredKeys? stored = null)
    {
        Message = message;
        MessageTime = messageTime;
        Institution = message.SendingFacility;
        Stored = stored ?? StoredKeys.None;
    }

    /// <summary>What the hub holds that decides the ids of the message's records.</summary>
    public StoredKeys Stored { get; }

    /// <summary>The doses mapped, with their id under the patient's MRN key (<see cref="HisAccepted.Doses"/>).</summary>
    public List<(string Id, string MrnId, string Vaccine, DateOnly Date)> Doses { get; } = [];

    /// <summary>The MRN of the patient of the doses (<see cref="HisAccepted.DosePatient"/>).</summary>
    public Identifier? DosePatient { get; set; }

    public Hl7Message Message { get; }

    /// <summary>MSH-7: the upper bound for clinical times (his-hl7v2.md §5 "Dates").</summary>
    public Hl7Time MessageTime { get; }

    /// <summary>MSH-4.1, the sending institution.</summary>
    public string Institution { get; }

    public TransactionBuilder Builder { get; } = new();

    public List<HisIssue> Errors { get; } = [];

    public List<HisIssue> Warnings { get; } = [];

    public List<HisPrecondition> Preconditions { get; } = [];

    public PatientMerge? Merge { get; set; }

    public string Event => Message.TriggerEvent;

    public void Error(RejectionReason reason, Hl7Location? location, string detail, int? errorCode = null) =>
        Errors.Add(new HisIssue(reason, location, detail, IssueSeverity.Error, errorCode));

    public void Warn(Hl7Location? location, string detail) => Warnings.Add(HisIssue.Warning(location, detail));

    /// <summary>A segment the structure requires; its absence is recorded and null returned.</summary>
    public Hl7Segment? Required(string segmentId)
    {
        var segment = Message.First(segmentId);
        if (segment is null)
        {
            Error(RejectionReason.MissingRequired, new Hl7Location(segmentId), $"{Message.MessageCode}^{Event} 缺少 {segmentId} 段", 100);
        }

        return segment;
    }

    /// <summary>The first of a segment that should occur once; later copies are ignored with a warning (§9).</summary>
    public Hl7Segment? Single(string segmentId)
    {
        var all = Message.All(segmentId).ToList();
        if (all.Count > 1)
        {
            Warn(all[1].Location(), $"{segmentId} 段重复 {all.Count} 次，仅使用第一个");
        }

        return all.FirstOrDefault();
    }

    /// <summary>Reads a timestamp field; a bad value is IMPOSSIBLE_DATE, an empty required one MISSING_REQUIRED.</summary>
    public Hl7Time? Time(Hl7Segment segment, int field, bool required = false, int component = 0)
    {
        var value = component > 0 ? segment[field][component] : segment[field].Value;
        var location = segment.Location(field, 0, component);
        if (value.Length == 0 || Hl7Time.IsPlaceholder(value))
        {
            // Placeholder dates of old records mean "unknown": not an error even where the field is required (§9).
            if (required && value.Length == 0)
            {
                Error(RejectionReason.MissingRequired, location, $"{location} 为空");
            }

            return null;
        }

        if (!Hl7Time.TryParse(value, out var time))
        {
            Error(RejectionReason.ImpossibleDate, location, $"{location} {value} 不是有效的日期时间");
            return null;
        }

        return time;
    }

    /// <summary>A time that may not lie more than a day after the message was sent (clock skew allowance, §5).</summary>
    public Hl7Time? PastTime(Hl7Segment segment, int field, bool required = false)
    {
        var time = Time(segment, field, required);
        if (time is { } t && t.Value > MessageTime.Value.AddDays(1))
        {
            var location = segment.Location(field);
            Error(RejectionReason.ImpossibleDate, location, $"{location} {segment[field].Value} 晚于消息时间 {Message.DateTimeOfMessage}");
            return null;
        }

        return time;
    }

    /// <summary>Checks an institution code named in a message; unknown codes are UNKNOWN_CODE.</summary>
    public ResourceReference? KnownOrganization(string code, Hl7Location location)
    {
        if (CountyCodes.Institutions.ContainsKey(code))
        {
            return FhirValues.Organization(code);
        }

        Error(RejectionReason.UnknownCode, location, $"{location} 机构代码 {code} 不在机构表中");
        return null;
    }

    /// <summary>An XCN (<c>code^name</c>) as a Practitioner of the institution, created on first sight.</summary>
    /// <param name="telecom">The practitioner's phones (PRD-5), written when the hub first sees them.</param>
    public ResourceReference? Practitioner(Hl7Value xcn, string institution, IEnumerable<ContactPoint>? telecom = null)
    {
        var code = TextNormalizer.Number(xcn.Component(1).Subcomponent(1).Text);
        var name = TextNormalizer.Name(xcn.Component(1).Subcomponent(2).Text.Length > 0 ? xcn.Component(1).Subcomponent(2).Text : xcn[2]);
        if (code.Length == 0)
        {
            return name.Length == 0 ? null : new ResourceReference { Display = name };
        }

        var practitioner = new Practitioner
        {
            Identifier = [new Identifier(Systems.Staff(institution), code)],
            Name = name.Length == 0 ? [] : [new HumanName { Text = name }],
            Telecom = telecom?.ToList() ?? [],
        };
        var reference = Builder.CreateIfAbsent(practitioner, Criteria.Identifier(Systems.Staff(institution), code));
        return new ResourceReference(reference.Reference, name.Length == 0 ? null : name);
    }

    /// <summary>A PL (<c>department^room^bed^facility^…^description</c>) as the department's Location, created on first sight.</summary>
    public ResourceReference? Location(Hl7Value pl)
    {
        var department = pl[1];
        if (department.Length == 0)
        {
            return null;
        }

        var facility = pl.Component(4).Subcomponent(1).Value is { Length: > 0 } f ? f : Institution;
        var name = pl[9] is { Length: > 0 } described ? described : CountyCodes.Departments.GetValueOrDefault(department, department);
        var location = new Location
        {
            Identifier = [new Identifier(Systems.Department(facility), department)],
            Status = Hl7.Fhir.Model.Location.LocationStatus.Active,
            Name = name,
            Mode = Hl7.Fhir.Model.Location.LocationMode.Instance,
            PhysicalType = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/location-physical-type", "wa", "Ward"),
            ManagingOrganization = FhirValues.Organization(facility),
        };
        var reference = Builder.CreateIfAbsent(location, Criteria.Identifier(Systems.Department(facility), department));
        var bed = string.Join("-", new[] { pl[2], pl[3] }.Where(p => p.Length > 0));
        return new ResourceReference(reference.Reference, bed.Length > 0 ? $"{name} {bed}" : name);
    }

    /// <summary>A CE/CWE value as a CodeableConcept: the sender's coding first, then the alternate coding when sent.</summary>
    public static CodeableConcept Concept(Hl7Value ce, Func<string, string>? systemFor = null)
    {
        systemFor ??= CodingSystem;
        var concept = new CodeableConcept();
        AddCoding(concept, ce[1], ce.Component(2).Text.Trim(), ce[3], systemFor);
        AddCoding(concept, ce[4], ce.Component(5).Text.Trim(), ce[6], systemFor);
        if (concept.Coding.Count == 0 && ce.Component(2).Text.Trim() is { Length: > 0 } text)
        {
            concept.Text = text;
        }

        return concept;
    }

    /// <summary>Maps an HL7 coding-system name (CE.3) to a FHIR system URI.</summary>
    public static string CodingSystem(string name) => name.ToUpperInvariant() switch
    {
        "LN" or "LOINC" => Systems.Loinc,
        "CVX" => Systems.Cvx,
        "ICD10" or "I10" => Systems.Icd10,
        "ICD10-CN2" => Systems.Icd10Cn2,
        "TCM" => Systems.TcmDiagnosis,
        "UCUM" => Systems.Ucum,
        "GB3304" or "2.16.156.10011.2.3.3.3" => Systems.Ethnicity,
        "GB2261.2" => Systems.MaritalStatus,
        var hl7 when hl7.StartsWith("HL7", StringComparison.Ordinal) && hl7.Length == 7 =>
            $"http://terminology.hl7.org/CodeSystem/v2-{hl7[3..]}",
        "" => Systems.Local("unspecified"),
        _ => Systems.Local(name),
    };

    public static string Number(decimal value) => value.ToString(CultureInfo.InvariantCulture);

    private static void AddCoding(CodeableConcept concept, string code, string display, string system, Func<string, string> systemFor)
    {
        if (code.Length == 0)
        {
            return;
        }

        concept.Coding.Add(new Coding(systemFor(system), code, display.Length == 0 ? null : display));
    }
}
