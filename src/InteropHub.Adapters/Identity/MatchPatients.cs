using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Adapters.Identity;

/// <param name="OnlyCertain">onlyCertainMatches: the one certain match, or nothing when several records are certain.</param>
/// <param name="Count">The most matches to return.</param>
public sealed record MatchRequest(Patient Patient, bool OnlyCertain, int Count);

/// <param name="Patient">The stored record, as stored.</param>
public sealed record PatientMatch(StoredResource Patient, PatientComparison Comparison);

/// <param name="SeveralCertain">How many records matched certainly when <see cref="MatchRequest.OnlyCertain"/> returned none for it.</param>
public sealed record MatchResult(IReadOnlyList<PatientMatch> Matches, int SeveralCertain);

/// <summary>
/// <c>Patient/$match</c> (patient-operation-match.html): the stored Patients that may be the person described, graded by
/// <see cref="PatientMatching"/>, most likely first. Candidates are found by search: each identifier, the exact birth
/// date, each name and each phone number (at most <see cref="CandidatesPerSearch"/> per search); a merged-away record
/// (inactive, <c>replaced-by</c>) is never returned, but one that shares an identifier with the person makes its
/// surviving record a certain match.
/// </summary>
public sealed class MatchPatients(SearchResources search, IResourceStore store, FhirSerializers serializers)
{
    public const int CandidatesPerSearch = 500;

    public async Task<MatchResult> HandleAsync(MatchRequest request, CancellationToken ct)
    {
        var asked = PersonFacts.Of(request.Patient);
        var candidates = new Dictionary<string, StoredResource>(StringComparer.Ordinal);
        foreach (var query in Searches(request.Patient, asked))
        {
            var page = await search.HandleAsync(new SearchRequest("Patient", [.. query, new("_count", CandidatesPerSearch.ToString(System.Globalization.CultureInfo.InvariantCulture))]), ct);
            foreach (var match in page.Matches)
            {
                candidates.TryAdd(match.Id, match);
            }
        }

        var matches = new Dictionary<string, PatientMatch>(StringComparer.Ordinal);
        foreach (var candidate in candidates.Values)
        {
            var patient = (Patient)serializers.ParseStored(candidate.Json);
            var comparison = PatientMatching.Compare(asked, PersonFacts.Of(patient));
            if (Survivor(patient) is { } survivorId)
            {
                // The hub merged this record into another: only what it shares certainly speaks for the survivor.
                if (comparison?.Grade == MatchGrade.Certain && !matches.ContainsKey(survivorId)
                    && await store.ReadAsync("Patient", survivorId, ct) is { IsDeleted: false } survivor)
                {
                    matches[survivorId] = new PatientMatch(survivor, comparison with { Agree = [.. comparison.Agree, "merged record"] });
                }

                continue;
            }

            if (comparison is not null && (!matches.TryGetValue(candidate.Id, out var found) || found.Comparison.Score < comparison.Score))
            {
                matches[candidate.Id] = new PatientMatch(candidate, comparison);
            }
        }

        var ordered = matches.Values.OrderByDescending(m => m.Comparison.Score).ThenBy(m => m.Patient.Id, StringComparer.Ordinal).ToList();
        if (request.OnlyCertain)
        {
            var certain = ordered.Where(m => m.Comparison.Grade == MatchGrade.Certain).ToList();
            return certain.Count > 1 ? new MatchResult([], certain.Count) : new MatchResult(certain, 0);
        }

        return new MatchResult(ordered.Take(request.Count).ToList(), 0);
    }

    /// <summary>The id of the record a merged-away Patient was replaced by, or null for a record in use.</summary>
    public static string? Survivor(Patient patient) =>
        patient.Active == false && patient.Link.FirstOrDefault(l => l.Type == Patient.LinkType.ReplacedBy)?.Other?.Reference is { } reference
            && reference.StartsWith("Patient/", StringComparison.Ordinal)
            ? reference["Patient/".Length..]
            : null;

    private static IEnumerable<List<KeyValuePair<string, string>>> Searches(Patient patient, PersonFacts facts)
    {
        foreach (var identifier in facts.Identifiers)
        {
            var bar = identifier.IndexOf('|', StringComparison.Ordinal);
            yield return [new("identifier", $"{Escape(identifier[..bar])}|{Escape(identifier[(bar + 1)..])}")];
        }

        if (facts.BirthDate is { } birthDate)
        {
            yield return [new("birthdate", birthDate)];
        }

        var names = patient.Name.Where(n => n.Use != HumanName.NameUse.Temp).ToList();
        foreach (var text in names.SelectMany(n => new[] { n.Text, string.Concat(n.Family, string.Concat(n.Given ?? [])) })
            .Where(n => !string.IsNullOrWhiteSpace(n)).Select(n => n!.Trim()).Distinct(StringComparer.Ordinal))
        {
            yield return [new("name", Escape(text))];
        }

        // A record kept as family and given only (no text) is found by both.
        foreach (var name in names)
        {
            if (name.Family is { } family && !string.IsNullOrWhiteSpace(family)
                && (name.Given ?? []).FirstOrDefault(g => !string.IsNullOrWhiteSpace(g)) is { } given)
            {
                yield return [new("family", Escape(family.Trim())), new("given", Escape(given.Trim()))];
            }
        }

        foreach (var phone in facts.Phones)
        {
            yield return [new("phone", phone)];
        }
    }

    /// <summary>FHIR search escaping of a value taken as given (search.html#escaping).</summary>
    private static string Escape(string value)
    {
        var text = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c is '\\' or ',' or '|' or '$')
            {
                text.Append('\\');
            }

            text.Append(c);
        }

        return text.ToString();
    }
}
