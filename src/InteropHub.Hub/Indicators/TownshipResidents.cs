using System.Globalization;
using Hl7.Fhir.Model;
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
public sealed record Resident(string Township, DateOnly? BirthDate);

/// <summary>
/// The population the plans' township indicators count (DOMAIN.md §3): the Patients whose records a township keeps
/// (<c>managingOrganization</c>, as the township health records set it: a community or township health centre, WS 218
/// class C, or a village clinic that is <c>partOf</c> one) who are active (a record retired by a merge is not, so no
/// one is counted twice), born by the end of the period and not dead before its start. A hospital manages no residents
/// here. Days are China Standard Time.
/// </summary>
public sealed class TownshipResidents(IResourceScanner scanner, FhirSerializers serializers)
{
    /// <summary>The health-organisation classes of WS 218 (卫生机构分类代码) on Organization.type.</summary>
    public const string Ws218System = "urn:interophub:cs:ws218";

    private static readonly TimeSpan China = TimeSpan.FromHours(8);

    /// <summary>Each resident (<c>Patient/{id}</c>) of the request's townships, as of <paramref name="asOf"/>.</summary>
    public async Task<Dictionary<string, Resident>> ReadAsync(IndicatorRequest request, DateTimeOffset asOf, CancellationToken ct)
    {
        var townships = await TownshipCentresAsync(asOf, ct);
        var residents = new Dictionary<string, Resident>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Patient", null, asOf, ct))
        {
            if (serializers.ParseStored(stored.Json) is not Patient patient || patient.Active == false
                || patient.ManagingOrganization?.Reference is not { } manager || !townships.TryGetValue(manager, out var township)
                || request.Township is { } only && only != township)
            {
                continue;
            }

            var born = Day(patient.BirthDate);
            if (born > request.LastDay || DiedBefore(patient, request.FirstDay))
            {
                continue;
            }

            residents[$"Patient/{stored.Id}"] = new Resident(township, born);
        }

        return residents;
    }

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

    private static bool DiedBefore(Patient patient, DateOnly day) => patient.Deceased switch
    {
        FhirBoolean { Value: true } => true,
        FhirDateTime died => Day(died.Value) is not { } date || date < day,
        _ => false,
    };

    /// <summary>Each organisation that keeps residents' records, with its township centre: a centre itself, a clinic through <c>partOf</c>.</summary>
    private async Task<Dictionary<string, string>> TownshipCentresAsync(DateTimeOffset asOf, CancellationToken ct)
    {
        var parents = new Dictionary<string, string?>(StringComparer.Ordinal);
        var centres = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Organization", null, asOf, ct))
        {
            if (serializers.ParseStored(stored.Json) is not Organization organization)
            {
                continue;
            }

            var reference = $"Organization/{stored.Id}";
            parents[reference] = organization.PartOf?.Reference;
            if (organization.Type.Any(t => t.Coding.Any(c => c.System == Ws218System && c.Code?.StartsWith('C') == true)))
            {
                centres.Add(reference);
            }
        }

        var townships = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var organization in parents.Keys)
        {
            // Up the partOf chain to the first centre (a few steps; a cycle ends it).
            var at = organization;
            for (var step = 0; at is not null && step < 8; step++)
            {
                if (centres.Contains(at))
                {
                    townships[organization] = at;
                    break;
                }

                at = parents.GetValueOrDefault(at);
            }
        }

        return townships;
    }
}
