using InteropHub.Fhir.Storage;
using InteropHub.Server;
using InteropHub.Server.Adapters;
using InteropHub.Server.Endpoints;
using InteropHub.Server.Operations.EvaluateMeasure;
using InteropHub.Server.Operations.Everything;
using InteropHub.Server.Operations.Expand;
using InteropHub.Server.Operations.Export;
using InteropHub.Server.Operations.Import;
using InteropHub.Server.Operations.Lookup;
using InteropHub.Server.Operations.Match;
using InteropHub.Server.Operations.RecognizedResults;
using InteropHub.Server.Operations.Refer;
using InteropHub.Server.Operations.Reindex;
using InteropHub.Server.Operations.Subsumes;
using InteropHub.Server.Operations.Translate;
using InteropHub.Server.Operations.Validate;
using InteropHub.Server.Operations.ValidateCode;
using InteropHub.Server.Seeds;
using InteropHub.Server.Security;

if (args.Length > 0 && args[0] == "import")
{
    // The command line import runs without the web host: same services, same import code, then exits.
    Environment.ExitCode = await ImportCommand.RunAsync(args[1..]);
    return;
}

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddInteropHub(builder.Configuration);
// The body limit is enforced while reading with a FHIR answer (413 + OperationOutcome), not by Kestrel's bare 413.
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = null);

var app = builder.Build();
await app.Services.GetRequiredService<IResourceStore>().MigrateAsync(app.Lifetime.ApplicationStopping);
await app.Services.GetRequiredService<SeedLoader>().LoadMappingsAsync(app.Lifetime.ApplicationStopping);
await app.Services.GetRequiredService<ProfileLoader>().LoadAsync(app.Lifetime.ApplicationStopping);
await app.Services.GetRequiredService<SeedLoader>().LoadAsync(app.Lifetime.ApplicationStopping);

// The pipeline is kept for the operations inside a batch, which run as requests of their own (Endpoints/BatchOperations).
app.Use(next =>
{
    app.Services.GetRequiredService<BatchOperations>().Pipeline = next;
    return next;
});

// HEAD is a GET without the body (RFC 9110 §9.3.2): answered by the GET endpoint, with its status and headers only.
app.Use(async (context, next) =>
{
    // Not for the bulk-data operations, whose GETs start a job or stream a whole file.
    if (!HttpMethods.IsHead(context.Request.Method) || context.Request.Path.Value?.Contains("/$export", StringComparison.Ordinal) == true
        || context.Request.Path.Value?.Contains("/$import", StringComparison.Ordinal) == true)
    {
        await next(context);
        return;
    }

    context.Request.Method = HttpMethods.Get;
    var body = context.Response.Body;
    context.Response.Body = Stream.Null;
    try
    {
        await next(context);
    }
    finally
    {
        context.Response.Body = body;
    }
});
app.UseRouting();
app.UseCors();
app.UseMiddleware<FhirErrorMiddleware>();
app.UseStatusCodePages(FhirErrorMiddleware.StatusCodeOutcome);
app.Use(FhirEndpoints.EnsureKnownOperationAsync);
app.Use(FhirEndpoints.EnsureUtf8QueryAsync);
app.UseMiddleware<CallerOrganizationMiddleware>();
app.MapGet("/", () => Results.Redirect("/fhir/metadata"));
app.MapFhirEndpoints();
app.MapExportEndpoints();
app.MapImportEndpoints();
app.MapEverythingEndpoints();
app.MapValidateEndpoints();
app.MapTranslateEndpoints();
app.MapExpandEndpoints();
app.MapLookupEndpoints();
app.MapValidateCodeEndpoints();
app.MapSubsumesEndpoints();
app.MapRecognizedResultsEndpoints();
app.MapMatchEndpoints();
app.MapReferEndpoints();
app.MapEvaluateMeasureEndpoints();
app.MapAdapterEndpoints();
app.MapProbableMatchEndpoints();
app.MapReindexEndpoints();
await app.RunAsync();

/// <summary>The entry point, public so the HTTP tests can host it with WebApplicationFactory.</summary>
public partial class Program;
