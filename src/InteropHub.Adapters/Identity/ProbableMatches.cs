using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Adapters.Identity;

/// <param name="Patients">The two records, as stored.</param>
public sealed record MatchPair(IReadOnlyList<Patient> Patients, PatientComparison Comparison);

/// <param name="Scanned">How many Patients in use were read.</param>
/// <param name="Dismissed">How many pairs a reviewer said are two persons (not listed).</param>
public sealed record ProbableMatchList(IReadOnlyList<MatchPair> Pairs, int Scanned, int Dismissed);

/// <summary>
/// The review list of legacy/README.md "Linking persons": pairs of Patient records in use that may be one person but
/// were not linked by an identifier — the same name, sex and birth date (probable) — and pairs that share an identifier
/// yet are two records (certain: written apart, e.g. by REST, or one of them with a conflicting birth date or gender).
/// The hub never merges them itself; a merge (HIS ADT^A40) or a reviewer's dismissal takes a pair off the list.
/// Computed on demand from the stored Patients (one scan; a record merged away, <c>replaced-by</c>, is not in use), so
/// the list always says what the records say now.
/// </summary>
public sealed class ProbableMatches(IResourceScanner scanner, IResourceStore store, IHubStateStore state, FhirSerializers serializers, TimeProvider clock)
{
    private const string DismissedPrefix = "identity-distinct:";

    /// <summary>A key shared by more records than this (a placeholder name or number) pairs only its first ones.</summary>
    public const int MaxGroup = 50;

    public async Task<ProbableMatchList> ListAsync(CancellationToken ct)
    {
        var ids = new List<string>();
        var patients = new Dictionary<int, Patient>();
        var firstByKey = new Dictionary<int, int>();
        var groups = new Dictionary<int, List<int>>();
        var candidates = new HashSet<(int, int)>();
        await foreach (var stored in scanner.ScanAsync("Patient", null, clock.GetUtcNow(), ct))
        {
            if (serializers.ParseStored(stored.Json) is not Patient patient || MatchPatients.Survivor(patient) is not null)
            {
                continue;
            }

            var index = ids.Count;
            ids.Add(stored.Id);
            var paired = false;
            // Keys hashed (to bound memory over a county's records): a collision only adds a pair that the comparison drops.
            foreach (var key in Keys(PersonFacts.Of(patient)).Select(k => k.GetHashCode(StringComparison.Ordinal)).Distinct())
            {
                if (firstByKey.TryAdd(key, index))
                {
                    continue;
                }

                if (!groups.TryGetValue(key, out var members))
                {
                    groups[key] = members = [firstByKey[key]];
                }

                if (members.Count < MaxGroup)
                {
                    foreach (var member in members)
                    {
                        candidates.Add((member, index));
                    }

                    members.Add(index);
                    paired = true;
                }
            }

            if (paired)
            {
                patients[index] = patient;
            }
        }

        var dismissed = await state.ReadStatesStartingWithAsync(DismissedPrefix, ct);
        var pairs = new List<MatchPair>();
        var dismissedListed = 0;
        foreach (var (a, b) in candidates)
        {
            // The first record of a key was scanned before anything shared it: read again once.
            if (!patients.TryGetValue(a, out var first) && await ReadAsync(ids[a], ct) is { } read)
            {
                patients[a] = first = read;
            }

            var second = patients[b];
            if (first is null || Linked(first, ids[b]) || Linked(second, ids[a])
                || PatientMatching.Compare(first, second) is not { Grade: MatchGrade.Certain or MatchGrade.Probable } comparison)
            {
                continue;
            }

            if (dismissed.TryGetValue(DismissedKey(ids[a], ids[b]), out var when) && when.Length > 0)
            {
                dismissedListed++;
                continue;
            }

            pairs.Add(new MatchPair([first, second], comparison));
        }

        return new ProbableMatchList(
            pairs.OrderByDescending(p => p.Comparison.Score).ThenBy(p => p.Patients[0].Id, StringComparer.Ordinal).ThenBy(p => p.Patients[1].Id, StringComparer.Ordinal).ToList(),
            ids.Count, dismissedListed);
    }

    /// <summary>
    /// A reviewer's decision that two records are two persons: the pair is no longer listed; or, with
    /// <paramref name="undo"/>, that decision taken back (the pair is listed again while the records still match).
    /// </summary>
    public async Task DismissAsync(string firstId, string secondId, CancellationToken ct, bool undo = false)
    {
        if (firstId == secondId)
        {
            throw new InvalidInputException("A pair is two different Patients.", "patient");
        }

        foreach (var id in new[] { firstId, secondId })
        {
            if (await store.ReadAsync("Patient", id, ct) is not { IsDeleted: false })
            {
                throw new ResourceNotFoundException($"Patient/{id} is not known.");
            }
        }

        // Taken back as an empty value: hub state keeps names, it does not remove them.
        await state.WriteStateAsync(DismissedKey(firstId, secondId), undo ? "" : clock.GetUtcNow().ToString("O"), ct);
    }

    /// <summary>The two ids in ordinal order, so a pair has one key whichever way it was named.</summary>
    private static string DismissedKey(string a, string b) =>
        string.CompareOrdinal(a, b) < 0 ? $"{DismissedPrefix}{a}|{b}" : $"{DismissedPrefix}{b}|{a}";

    /// <summary>The keys two records of one person share: each identifier; each name with sex and birth date.</summary>
    private static IEnumerable<string> Keys(PersonFacts facts)
    {
        foreach (var identifier in facts.Identifiers)
        {
            yield return "id " + identifier;
        }

        if (facts.BirthDate is { } birthDate && facts.Gender is { } gender)
        {
            foreach (var name in facts.Names)
            {
                yield return $"person {birthDate} {gender} {name}";
            }
        }
    }

    private static bool Linked(Patient patient, string otherId) =>
        patient.Link.Any(l => l.Other?.Reference == $"Patient/{otherId}");

    private async Task<Patient?> ReadAsync(string id, CancellationToken ct) =>
        await store.ReadAsync("Patient", id, ct) is { IsDeleted: false } stored ? serializers.ParseStored(stored.Json) as Patient : null;
}
