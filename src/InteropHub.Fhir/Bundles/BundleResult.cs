using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources.History;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Bundles;

/// <param name="BaseUrl">The server's FHIR base (e.g. <c>https://hub.example/fhir</c>): entry URLs may be absolute under it.</param>
/// <param name="BeforeCommit">For a transaction: more to write in its session once every entry succeeded (the ingest
/// marks its inbox message processed there, so the two commit together).</param>
/// <param name="AfterLocks">For a transaction: called once every lock is held and the searches and current versions
/// the entries need are read, before anything is written, with the session (which answers those searches and reads
/// without a round trip) and the entries as they will be written (a copy of the request's, which it may change). The
/// ingest checks and completes the stored Patients its messages update there.</param>
/// <param name="Forward">For a batch: answers the entries the server runs as requests of their own (operations, the
/// capability statement, reads with parameters: <see cref="EntryPlan.IsForwarded"/>), given with their url relative to
/// the base and their index; without it they are refused.</param>
/// <param name="Lenient">For a batch: its searches ignore the parameters they do not know, with a warning
/// (<c>Prefer: handling=lenient</c>, search.html#errors).</param>
/// <param name="RefusedEntries">For a batch: the entries that did not parse (a resource missing a required element, an
/// unknown element, a bad code or method), by index, with their issues; each is answered 400 alone.</param>
public sealed record BundleRequest(Bundle Bundle, string BaseUrl, Func<IWriteSession, CancellationToken, System.Threading.Tasks.Task>? BeforeCommit = null,
    Func<IWriteSession, IReadOnlyList<Bundle.EntryComponent>, CancellationToken, System.Threading.Tasks.Task>? AfterLocks = null,
    Func<Bundle.EntryComponent, string, int, CancellationToken, System.Threading.Tasks.Task<EntryResponse>>? Forward = null,
    bool Lenient = false, IReadOnlyDictionary<int, OperationOutcome>? RefusedEntries = null);

/// <summary>The answer to a batch or transaction: one response per request entry, in the order of the request.</summary>
public sealed record BundleResult(Bundle.BundleType Type, IReadOnlyList<EntryResponse> Entries);

/// <summary>
/// One entry of a batch-response or transaction-response (Bundle.entry.response): the HTTP status the
/// interaction would have had on its own, and what it returned.
/// </summary>
/// <param name="Resource">The version written or read (its ETag and lastModified go into the response; the body too unless HEAD).</param>
/// <param name="Location">For writes: <c>Type/id/_history/version</c>.</param>
/// <param name="Outcome">For a failed batch entry: why.</param>
/// <param name="Search">For a search: the page of matches, which becomes a searchset Bundle.</param>
/// <param name="History">For a history read: the page of versions, which becomes a history Bundle.</param>
/// <param name="Url">The entry's request URL (relative), for the links of a nested search or history Bundle.</param>
/// <param name="IsRead">A GET's answer: its body is what was asked for, whatever <c>Prefer: return</c> says about writes.</param>
/// <param name="Json">What an operation returned (<see cref="BundleRequest.Forward"/>): a resource as JSON.</param>
public sealed record EntryResponse(
    int Status,
    StoredResource? Resource = null,
    string? Location = null,
    OperationOutcome? Outcome = null,
    SearchPage? Search = null,
    HistoryPage? History = null,
    string? Url = null,
    bool WithBody = true,
    bool IsRead = false,
    byte[]? Json = null);
