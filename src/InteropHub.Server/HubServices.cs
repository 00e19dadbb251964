using InteropHub.Adapters.Ingest;
using InteropHub.Fhir;
using InteropHub.Hub.Referrals;
using InteropHub.Fhir.BulkData.Export;
using InteropHub.Fhir.BulkData.Import;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Create;
using InteropHub.Fhir.Resources.Delete;
using InteropHub.Fhir.Resources.Everything;
using InteropHub.Fhir.Resources.History;
using InteropHub.Fhir.Resources.Patch;
using InteropHub.Fhir.Resources.Read;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Custom;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Terminology;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Adapters;
using InteropHub.Server.Endpoints;
using InteropHub.Server.Formatting;
using InteropHub.Server.Seeds;
using InteropHub.Server.Subscriptions;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using Microsoft.Extensions.Options;

namespace InteropHub.Server;

/// <summary>Registers the hub's services from configuration (see README: Configuration).</summary>
public static class HubServices
{
    public static IServiceCollection AddInteropHub(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<HubOptions>(configuration.GetSection("InteropHub"));
        services.Configure<SeedOptions>(configuration.GetSection("InteropHub:Seeds"));
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<HubOptions>>().Value);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<FhirSerializers>();
        // One registry per hub: custom search parameters (profiles/, SearchParameter resources) belong to this hub's
        // database, not to every hub in the process.
        services.AddSingleton<SearchParameterRegistry>();
        services.Configure<ProfileOptions>(configuration.GetSection("InteropHub:Profiles"));
        services.AddSingleton<ProfileLoader>();
        services.AddSingleton<SearchParameterCatalog>();
        services.AddSingleton<IWriteRule>(sp => sp.GetRequiredService<SearchParameterCatalog>());
        services.AddSingleton(sp => (IReindexStore)sp.GetRequiredService<StoreInstance>().Store);
        services.AddHostedService<ReindexWorker>();
        services.AddSingleton<SearchIndexer>();
        services.AddSingleton<SearchParser>();
        services.AddSingleton<LocalTerminology>();
        services.AddSingleton<IWriteRule, ReferralWriteRule>();
        services.AddSingleton<IWriteRule, InteropHub.Hub.Indicators.NipScheduleRule>();
        services.AddSingleton<ReferPatient>();
        services.AddSingleton(_ =>
        {
            var referrals = new ReferralOptions();
            configuration.GetSection("InteropHub:Referrals").Bind(referrals);
            return referrals;
        });
        services.AddSingleton<OverdueReferrals>();
        services.AddSingleton<ReferralMetrics>();
        services.AddSingleton<InteropHub.Hub.Indicators.TownshipResidents>();
        services.AddSingleton<InteropHub.Hub.Indicators.ContractCoverage>();
        services.AddSingleton<InteropHub.Hub.Indicators.NipCoverage>();
        services.AddSingleton<InteropHub.Hub.Indicators.ChronicDiseaseManagement>();
        services.AddSingleton<InteropHub.Hub.Indicators.MaternalCare>();
        services.AddSingleton<InteropHub.Hub.Indicators.PrimaryCareShare>();
        services.AddSingleton<InteropHub.Hub.Indicators.ResultRecognitionRate>();
        services.AddSingleton<InteropHub.Server.Endpoints.BatchOperations>();
        services.AddSingleton<InteropHub.Server.Endpoints.TerminologyCapabilitiesDocument>();
        services.AddHostedService<InteropHub.Server.Jobs.OverdueReferralWorker>();
        services.AddSingleton<VersionWriter>();
        services.AddSingleton<CreateResource>();
        services.AddSingleton<InteropHub.Fhir.Resources.Validate.ProfileValidator>();
        services.AddSingleton<InteropHub.Fhir.Resources.Validate.ValidateResource>();
        services.AddSingleton<InteropHub.Fhir.Resources.Translate.TranslateConcept>();
        services.AddSingleton<InteropHub.Fhir.Resources.Expand.ExpandValueSet>();
        services.AddSingleton<InteropHub.Fhir.Resources.Lookup.LookupCode>();
        services.AddSingleton<InteropHub.Fhir.Resources.ValidateCode.ValidateConcept>();
        services.AddSingleton<InteropHub.Fhir.Resources.Subsumes.CheckSubsumption>();
        services.AddSingleton<ReadResource>();
        services.AddSingleton<UpdateResource>();
        services.AddSingleton<DeleteResource>();
        services.AddSingleton<PatchResource>();
        services.AddSingleton<ReadHistory>();
        services.AddSingleton<SearchResources>();
        services.AddSingleton<PatientEverything>();
        services.AddSingleton<InteropHub.Adapters.Identity.MatchPatients>();
        services.AddSingleton<InteropHub.Adapters.Identity.ProbableMatches>();
        services.AddSingleton<InteropHub.Hub.ResultRecognition.RecognizedResults>();
        services.AddSingleton<IWriteRule, InteropHub.Hub.ResultRecognition.RecognitionTagRule>();
        services.AddSingleton<IWriteRule, InteropHub.Hub.ResultRecognition.NonRecognitionReasonRule>();
        services.AddSingleton<InteropHub.Hub.ResultRecognition.RecognitionRetagging>();
        services.AddHostedService<InteropHub.Server.Jobs.RecognitionTagWorker>();
        services.AddSingleton<ProcessBundle>();
        services.AddSingleton<FhirRequestReader>();
        services.AddSingleton<CapabilityStatementDocument>();
        services.AddSingleton<SeedLoader>();
        // One store instance serves every role; the read cache, when on, fronts it for single-resource reads.
        services.AddSingleton(_ => new StoreInstance(CreateStore(configuration)));
        services.AddSingleton<IResourceStore>(sp =>
        {
            var cache = new ReadCacheOptions();
            configuration.GetSection("InteropHub:ReadCache").Bind(cache);
            var store = sp.GetRequiredService<StoreInstance>().Store;
            return cache.MaxBytes > 0 ? new CachingResourceStore(store, cache) : store;
        });
        services.AddSingleton(sp => (IInboxStore)sp.GetRequiredService<StoreInstance>().Store);
        services.AddSingleton(sp => (IResourceScanner)sp.GetRequiredService<StoreInstance>().Store);
        services.AddSingleton(sp => (IHubStateStore)sp.GetRequiredService<StoreInstance>().Store);
        services.AddSingleton(sp =>
        {
            var export = new ExportOptions();
            configuration.GetSection("InteropHub:Export").Bind(export);
            return new ExportJobs(sp.GetRequiredService<IResourceScanner>(), sp.GetRequiredService<IResourceStore>(), sp.GetRequiredService<SearchParser>(),
                sp.GetRequiredService<InteropHub.Fhir.Search.Terminology.LocalTerminology>(), sp.GetRequiredService<FhirSerializers>(), export,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<SearchIndexer>());
        });
        services.AddSingleton(sp => (IImportJobStore)sp.GetRequiredService<StoreInstance>().Store);
        services.AddSingleton(sp =>
        {
            var import = new ImportOptions();
            configuration.GetSection("InteropHub:Import").Bind(import);
            return import;
        });
        services.AddSingleton<ImportJobs>();
        services.AddHostedService<ImportResumer>();
        services.AddHostedService<ReadCacheFollower>();
        services.AddSingleton<MergedRecords>();
        services.AddSingleton<IngestPipeline>();
        services.AddSingleton(_ =>
        {
            var mllp = new MllpOptions();
            configuration.GetSection("InteropHub:Mllp").Bind(mllp);
            return mllp;
        });
        // Checked here, so a wrong value stops the start-up rather than the first message.
        var his = new HisHttpOptions();
        configuration.GetSection("InteropHub:His").Bind(his);
        services.AddSingleton(his.RejectStatus is StatusCodes.Status200OK or StatusCodes.Status400BadRequest
            ? his
            : throw new InvalidOperationException($"InteropHub:His:RejectStatus is {his.RejectStatus}: it must be 400 or 200."));
        services.AddSingleton<MllpListener>();
        services.AddHostedService(sp => sp.GetRequiredService<MllpListener>());
        services.AddHostedService<InboxRecovery>();
        services.AddSingleton(_ =>
        {
            var township = new TownshipOptions();
            configuration.GetSection("InteropHub:Township").Bind(township);
            return township;
        });
        services.AddHostedService<TownshipDropFolder>();
        services.AddSubscriptions(configuration);
        var origins = configuration.GetSection("InteropHub:Cors:Origins").Get<string[]>()?.Where(o => !string.IsNullOrWhiteSpace(o)).ToArray() ?? [];
        if (origins.Length > 0)
        {
            services.AddCors(cors => cors.AddDefaultPolicy(policy => AllowOrigins(policy, origins)));
        }
        else
        {
            services.AddCors();
        }
        return services;
    }

    /// <summary>
    /// Browser apps on other origins (a SMART app, a regional portal) may call the API when their origins are configured
    /// (<c>*</c> for any; none by default: the hub has no authentication yet, so a page anywhere could otherwise read it
    /// from a clinician's browser). The headers a FHIR client reads from answers (Location, ETag, the bulk-data polling
    /// headers) are exposed. No credentials: the hub has no cookies to share.
    /// </summary>
    private static void AllowOrigins(Microsoft.AspNetCore.Cors.Infrastructure.CorsPolicyBuilder policy, string[] origins)
    {
        if (origins is ["*"])
        {
            policy.AllowAnyOrigin();
        }
        else
        {
            policy.WithOrigins(origins);
        }

        policy.AllowAnyMethod().AllowAnyHeader()
            .WithExposedHeaders("Location", "Content-Location", "ETag", "Last-Modified", "X-Progress", "Retry-After", "Expires")
            .SetPreflightMaxAge(TimeSpan.FromHours(1));
    }

    private static IResourceStore CreateStore(IConfiguration configuration)
    {
        var provider = configuration["InteropHub:Storage:Provider"] ?? "Sqlite";
        if (provider.Equals("Sqlite", StringComparison.OrdinalIgnoreCase))
        {
            var options = new SqliteStoreOptions();
            configuration.GetSection("InteropHub:Storage:Sqlite").Bind(options);
            return new SqliteResourceStore(options);
        }

        if (provider.Equals("Postgres", StringComparison.OrdinalIgnoreCase))
        {
            var connectionString = configuration.GetConnectionString("Postgres");
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new InvalidOperationException("InteropHub:Storage:Provider is Postgres but ConnectionStrings:Postgres is empty.");
            }

            return new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = connectionString });
        }

        throw new InvalidOperationException($"InteropHub:Storage:Provider '{provider}' is not known; use Sqlite or Postgres.");
    }
}

/// <summary>The configured store, owned by the container (disposed once, at shutdown).</summary>
internal sealed class StoreInstance(IResourceStore store) : IAsyncDisposable
{
    public IResourceStore Store => store;

    public ValueTask DisposeAsync() => store is IAsyncDisposable disposable ? disposable.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>Keeps the read cache in step with writes made by other hub instances (PostgreSQL change feed).</summary>
internal sealed class ReadCacheFollower(IResourceStore store) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        store is CachingResourceStore cache ? cache.FollowChangesAsync(stoppingToken) : Task.CompletedTask;
}

/// <summary>Continues at start-up the import jobs a stop left unfinished, and stops the running ones (to be continued) at shutdown.</summary>
internal sealed class ImportResumer(ImportJobs jobs) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => jobs.ResumeAllAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => jobs.StopAsync();
}

/// <summary>
/// Runs the re-index jobs (see <see cref="SearchParameterCatalog"/>). The stored custom parameters are registered
/// before the hub takes requests, so a restart does not make them unknown for a moment.
/// </summary>
internal sealed class ReindexWorker(SearchParameterCatalog catalog) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await catalog.ReconcileAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => catalog.RunAsync(stoppingToken);
}
