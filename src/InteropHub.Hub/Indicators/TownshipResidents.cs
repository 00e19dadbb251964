using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <param name="Start">First instant of the period.</param>
/// <param name="End">First instant after the period.</param>
/// <param name="Township">Only the residents of this township centre, <c>Organization/{id}</c>; null for every township.</param>
public sealed record IndicatorRequest(DateTimeOffset Start, DateTimeOffset End, string? Township)
{
    private static readonly TimeSpan China = TimeSpan.FromHours(8);

    /// <summary>The period's first day, China Standard Time.</summary>
    public DateOnly FirstDay => DateOnly.FromDateTime(Start.ToOffset(China).DateTime);

    /// <summary>The period's last day, China Standard Time.</summary>
    public DateOnly LastDay => DateOnly.FromDateTime(End.AddTicks(-1).ToOffset(China).DateTime);
}

/// <param name="Township">The township centre whose records hold the resident.</param>
/// <param name="Person">The resident's record counted for the person (<c>Patient/{id}</c>): the record itself, or for a second
/// record of one resident ID number, the first one read (<see cref="TownshipResidents.People"/>).</param>
public sealed record Resident(string Township, DateOnly? BirthDate, string Person);

/// <summary>
/// The population the plans' township indicators count (DOMAIN.md §3): the Patients whose records a township keeps
/// (<c>managingOrganization</c>, as the township health records set it: a township or community health centre, WS 218
/// class C or B1, or a village clinic or community station that is <c>partOf</c> one) who are active (a record retired
/// by a merge is not, so no one is counted twice), born by the end of the period and not dead before its start. Two
/// records of one resident ID number not merged yet are one person (DOMAIN.md §3: "minus deaths and duplicates"): each
/// record is a key, both naming the same <see cref="Resident"/>, so what either record has counts for the person once. A
/// hospital manages no residents here. Days are China Standard Time.
/// </summary>
public sealed class TownshipResidents(IResourceScanner scanner, FhirSerializers serializers)
{
    /// <summary>The health-organisation classes of WS 218 (卫生机构分类代码) on Organization.type.</summary>
    public const string Ws218System = "urn:interophub:cs:ws218";

    /// <summary>The type system of the township export's public-health service visits (follow-ups, antenatal visits, check-ups).</summary>
    public const string PublicHealthVisitSystem = "urn:interophub:cs:qx-phs-visit";

    private static readonly TimeSpan China = TimeSpan.FromHours(8);
    private static readonly byte[] ManagingOrganization = "\"managingOrganization\""u8.ToArray();

    /// <summary>Each resident (<c>Patient/{id}</c>) of the request's townships, as of <paramref name="asOf"/>.</summary>
    public async Task<Dictionary<string, Resident>> ReadAsync(IndicatorRequest request, DateTimeOffset asOf, CancellationToken ct) =>
        await ReadAsync(request, await InstitutionsAsync(asOf, ct), asOf, ct);

    /// <summary><see cref="ReadAsync(IndicatorRequest, DateTimeOffset, CancellationToken)"/> with the institutions already read.</summary>
    public async Task<Dictionary<string, Resident>> ReadAsync(IndicatorRequest request, IReadOnlyDictionary<string, Institution> institutions,
        DateTimeOffset asOf, CancellationToken ct)
    {
        if (request.Township is { } subject)
        {
            // A report for a clinic or a hospital would read as a coverage of 0: its records are its centre's.
            var institution = institutions.GetValueOrDefault(subject) ?? throw new ResourceNotFoundException($"{subject} is not known.");
            if (institution.Township != subject)
            {
                throw new InvalidInputException(institution.Township is { } centre
                    ? $"subject {subject} keeps its records for {centre}: ask for that township centre."
                    : $"subject {subject} is not a township or community health centre (WS 218 class C or B1 on Organization.type).", "subject");
            }
        }

        var residents = new Dictionary<string, Resident>(StringComparer.Ordinal);
        var byIdNumber = new Dictionary<string, Resident>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Patient", null, asOf, ct))
        {
            // A Patient no institution manages (most of a hospital's) is not parsed.
            if (stored.Json.AsSpan().IndexOf(ManagingOrganization) < 0
                || serializers.ParseStored(stored.Json) is not Patient patient || patient.Active == false
                || patient.ManagingOrganization?.Reference is not { } manager || institutions.GetValueOrDefault(manager)?.Township is not { } township
                || request.Township is { } only && only != township)
            {
                continue;
            }

            if (Day(patient.BirthDate) > request.LastDay || DiedBefore(patient, request.FirstDay))
            {
                continue;
            }

            // A birth date of a year or a month stands for its last day: ages are then never overstated.
            var reference = $"Patient/{stored.Id}";
            var idNumber = patient.Identifier.FirstOrDefault(i => i.System == ResidentIdSystem && !string.IsNullOrEmpty(i.Value))?.Value;
            residents[reference] = idNumber is not null && byIdNumber.TryGetValue(idNumber, out var first)
                ? first
                : new Resident(township, Day(patient.BirthDate, last: true), reference);
            if (idNumber is not null)
            {
                byIdNumber.TryAdd(idNumber, residents[reference]);
            }
        }

        return residents;
    }

    /// <summary>The resident ID number's system (GB 11643, the OID of the national identifier scheme).</summary>
    private const string ResidentIdSystem = "urn:oid:2.16.156.10011.1.3";

    /// <summary>One entry per person, keyed by <see cref="Resident.Person"/>: what a denominator counts.</summary>
    public static List<KeyValuePair<string, Resident>> People(IReadOnlyDictionary<string, Resident> residents) =>
        [.. residents.Where(r => r.Key == r.Value.Person)];

    /// <summary>The day of a FHIR date or dateTime, in China Standard Time; null when absent or unreadable.</summary>
    /// <param name="last">A year or a month stands for its last day (an end), else for its first.</param>
    public static DateOnly? Day(string? value, bool last = false)
    {
        if (string.IsNullOrEmpty(value) || !FhirDateTime.IsValidValue(value))
        {
            return null;
        }

        if (value.Length <= 10)
        {
            var first = DateOnly.ParseExact(value.Length == 4 ? value + "-01-01" : value.Length == 7 ? value + "-01" : value, "yyyy-MM-dd", CultureInfo.InvariantCulture);
            return !last ? first : value.Length == 4 ? first.AddYears(1).AddDays(-1) : value.Length == 7 ? first.AddMonths(1).AddDays(-1) : first;
        }

        return DateOnly.FromDateTime(new FhirDateTime(value).ToDateTimeOffset(China).ToOffset(China).DateTime);
    }

    /// <summary>Dead before the day: a death of a year or a month by its last day; dead with no date, always.</summary>
    private static bool DiedBefore(Patient patient, DateOnly day) => patient.Deceased switch
    {
        FhirBoolean { Value: true } => true,
        FhirDateTime died => Day(died.Value, last: true) is not { } date || date < day,
        _ => false,
    };

    /// <summary>
    /// Every organisation, with its township centre when it has one (a township or community health centre, WS 218 class C
    /// or B1, is its own; a village clinic's or a community station's is the centre it is <c>partOf</c>), and whether it is
    /// a primary institution (基层医疗卫生机构: class B, C or D, or part of a centre).
    /// </summary>
    public async Task<Dictionary<string, Institution>> InstitutionsAsync(DateTimeOffset asOf, CancellationToken ct)
    {
        var parents = new Dictionary<string, string?>(StringComparer.Ordinal);
        var classes = new Dictionary<string, string?>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Organization", null, asOf, ct))
        {
            if (serializers.ParseStored(stored.Json) is not Organization organization)
            {
                continue;
            }

            var reference = $"Organization/{stored.Id}";
            parents[reference] = organization.PartOf?.Reference;
            classes[reference] = organization.Type.SelectMany(t => t.Coding).FirstOrDefault(c => c.System == Ws218System && c.Code is { Length: > 0 })?.Code;
        }

        var institutions = new Dictionary<string, Institution>(StringComparer.Ordinal);
        foreach (var (organization, ownClass) in classes)
        {
            // Up the partOf chain to the first centre (a few steps; a cycle ends it).
            string? township = null;
            var at = organization;
            for (var step = 0; at is not null && step < 8; step++)
            {
                if (IsCentre(classes.GetValueOrDefault(at)))
                {
                    township = at;
                    break;
                }

                at = parents.GetValueOrDefault(at);
            }

            institutions[organization] = new Institution(township, township is not null || ownClass?[0] is 'B' or 'C' or 'D');
        }

        return institutions;
    }

    /// <summary>A centre that keeps a township's or a city district's residents' records: a township health centre (卫生院, WS 218
    /// class C) or a community health service centre (社区卫生服务中心, B1; its stations, B2, belong to one).</summary>
    private static bool IsCentre(string? ws218) => ws218 is { Length: > 0 } code && (code[0] == 'C' || code.StartsWith("B1", StringComparison.Ordinal));
}

/// <param name="Township">The township centre the organisation is or belongs to, if any.</param>
/// <param name="Primary">A primary institution (基层医疗卫生机构).</param>
public sealed record Institution(string? Township, bool Primary);
