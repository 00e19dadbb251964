using System.Runtime.CompilerServices;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.ResultRecognition;

/// <summary>
/// Tags results that qualify for mutual recognition (DOMAIN.md §2) when they are written: an Observation or
/// DiagnosticReport whose code is in the recognition catalogue and whose performing Organization has at least the
/// item's minimum grade and has passed quality control gets <c>meta.tag</c> <see cref="TagSystem"/>|<see cref="Recognizable"/>;
/// one that does not qualify loses it, whatever the client sent. The validity window is not part of the tag: it
/// depends on when the result is looked at, and <see cref="RecognizedResults"/> applies it. Writes of the catalogue
/// itself are refused when it cannot be read as one, so a broken catalogue never reaches the results.
/// </summary>
public sealed class RecognitionTagRule(FhirSerializers serializers) : IWriteRule
{
    public const string TagSystem = RecognitionCatalogue.CodeSystemUrl;
    public const string Recognizable = "recognizable";
    public const string CatalogueId = "result-recognition";

    private Cached? _cache;

    /// <summary>The catalogue each open write session has read: a bundle or an import batch of results reads it once.</summary>
    private readonly ConditionalWeakTable<IWriteSession, StrongBox<RecognitionCatalogue?>> _read = new();

    public async System.Threading.Tasks.Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        switch (next)
        {
            case CodeSystem codeSystem:
                if (codeSystem.Url == RecognitionCatalogue.CodeSystemUrl)
                {
                    RecognitionCatalogue.FromCodeSystem(codeSystem);
                }

                // The session's next result reads the catalogue again, as written by this session.
                _read.Remove(session);
                break;
            case Observation or DiagnosticReport:
                var catalogue = await CatalogueAsync(session, ct);
                var qualifies = await QualifiesAsync(next, catalogue, async id =>
                {
                    var stored = await session.ReadCurrentAsync("Organization", id, ct);
                    return stored is { IsDeleted: false } ? serializers.ParseStored(stored.Json) as Organization : null;
                });
                SetTag(next, qualifies);
                break;
        }
    }

    /// <summary>Whether a result qualifies under <paramref name="catalogue"/> (null: no catalogue, nothing qualifies).</summary>
    public static async Task<bool> QualifiesAsync(Resource result, RecognitionCatalogue? catalogue, Func<string, Task<Organization?>> organization)
    {
        // Only a result that stands: final or since corrected. A preliminary, cancelled or entered-in-error one is not
        // a quality-controlled result another institution must accept (DOMAIN.md §3).
        var (codes, performers) = result switch
        {
            Observation { Status: ObservationStatus.Final or ObservationStatus.Amended or ObservationStatus.Corrected } observation =>
                (observation.Code?.Coding ?? [], observation.Performer),
            DiagnosticReport { Status: DiagnosticReport.DiagnosticReportStatus.Final or DiagnosticReport.DiagnosticReportStatus.Amended
                or DiagnosticReport.DiagnosticReportStatus.Corrected or DiagnosticReport.DiagnosticReportStatus.Appended } report =>
                (report.Code?.Coding ?? [], report.Performer),
            _ => ([], []),
        };
        if (catalogue?.Find(codes) is not { } item)
        {
            return false;
        }

        var performer = performers.Select(p => p.Reference).FirstOrDefault(r => r?.StartsWith("Organization/", StringComparison.Ordinal) == true);
        return performer is not null && await organization(performer["Organization/".Length..]) is { } found
            && RecognizedResults.Level(found) >= item.MinimumLevel && RecognizedResults.QualityControl(found);
    }

    public static bool IsTagged(Resource resource) => resource.Meta?.Tag.Any(t => t.System == TagSystem && t.Code == Recognizable) == true;

    private static void SetTag(Resource resource, bool qualifies)
    {
        resource.Meta ??= new Meta();
        resource.Meta.Tag.RemoveAll(t => t.System == TagSystem);
        if (qualifies)
        {
            resource.Meta.Tag.Add(new Coding(TagSystem, Recognizable, "可互认"));
        }
    }

    /// <summary>The catalogue as the transaction sees it, parsed once per stored version.</summary>
    private async Task<RecognitionCatalogue?> CatalogueAsync(IWriteSession session, CancellationToken ct)
    {
        if (_read.TryGetValue(session, out var read))
        {
            return read.Value;
        }

        var catalogue = await ReadCatalogueAsync(session, ct);
        _read.AddOrUpdate(session, new StrongBox<RecognitionCatalogue?>(catalogue));
        return catalogue;
    }

    private async Task<RecognitionCatalogue?> ReadCatalogueAsync(IWriteSession session, CancellationToken ct)
    {
        var stored = await session.ReadCurrentAsync("CodeSystem", CatalogueId, ct);
        if (stored is not { IsDeleted: false })
        {
            return null;
        }

        if (_cache is { } cache && cache.VersionId == stored.VersionId && cache.LastUpdated == stored.LastUpdated)
        {
            return cache.Catalogue;
        }

        RecognitionCatalogue? catalogue;
        try
        {
            catalogue = serializers.ParseStored(stored.Json) is CodeSystem codeSystem ? RecognitionCatalogue.FromCodeSystem(codeSystem) : null;
        }
        catch (InvalidInputException)
        {
            // Stored before catalogue writes were checked: treated as no catalogue rather than failing every result write.
            catalogue = null;
        }

        _cache = new Cached(stored.VersionId, stored.LastUpdated, catalogue);
        return catalogue;
    }

    private sealed record Cached(int VersionId, DateTimeOffset LastUpdated, RecognitionCatalogue? Catalogue);
}

/// <summary>
/// Re-evaluates the recognition tag of every stored Observation and DiagnosticReport, for when the catalogue has
/// changed: a result whose tag no longer matches is saved again through the normal update path (a new version,
/// which <see cref="RecognitionTagRule"/> tags afresh). The catalogue version a pass completed for is kept in the
/// database (<see cref="IHubStateStore"/>), so a pass runs once per catalogue change, and a pass interrupted by a
/// stop runs again after the restart; results already right are not rewritten.
/// </summary>
public sealed class RecognitionRetagging(IResourceStore store, IResourceScanner scanner, IHubStateStore state, UpdateResource update,
    FhirSerializers serializers, TimeProvider clock)
{
    public const string StateName = "recognition-retag";

    /// <summary>Runs a pass when the stored catalogue is not the one the last completed pass ran for; returns how many
    /// results were saved again, or null when no pass was due.</summary>
    public async Task<int?> RunIfCatalogueChangedAsync(CancellationToken ct)
    {
        var version = await store.ReadAsync("CodeSystem", RecognitionTagRule.CatalogueId, ct) is { } stored
            ? $"{stored.VersionId}@{stored.LastUpdated.UtcTicks}"
            : null;
        if (version is null || version == await state.ReadStateAsync(StateName, ct))
        {
            return null;
        }

        var rewritten = await RunOnceAsync(ct);
        await state.WriteStateAsync(StateName, version, ct);
        return rewritten;
    }

    /// <summary>Runs one pass; returns how many results were saved again.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var stored = await store.ReadAsync("CodeSystem", RecognitionTagRule.CatalogueId, ct);
        RecognitionCatalogue? catalogue = null;
        if (stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is CodeSystem codeSystem)
        {
            try
            {
                catalogue = RecognitionCatalogue.FromCodeSystem(codeSystem);
            }
            catch (InvalidInputException)
            {
                catalogue = null;
            }
        }

        var organizations = new Dictionary<string, Organization?>(StringComparer.Ordinal);
        async Task<Organization?> OrganizationAsync(string id)
        {
            if (!organizations.TryGetValue(id, out var organization))
            {
                var found = await store.ReadAsync("Organization", id, ct);
                organization = organizations[id] = found is { IsDeleted: false } ? serializers.ParseStored(found.Json) as Organization : null;
            }

            return organization;
        }

        var rewritten = 0;
        var until = clock.GetUtcNow();
        foreach (var type in new[] { "Observation", "DiagnosticReport" })
        {
            await foreach (var result in scanner.ScanAsync(type, null, until, ct))
            {
                var resource = serializers.ParseStored(result.Json);
                if (await RecognitionTagRule.QualifiesAsync(resource, catalogue, OrganizationAsync) == RecognitionTagRule.IsTagged(resource))
                {
                    continue;
                }

                try
                {
                    await update.HandleAsync(new UpdateRequest(type, result.Id, null, resource, [result.VersionId]), ct);
                    rewritten++;
                }
                catch (PreconditionFailedException)
                {
                    // Written meanwhile: that write was tagged under the current catalogue.
                }
            }
        }

        return rewritten;
    }
}
