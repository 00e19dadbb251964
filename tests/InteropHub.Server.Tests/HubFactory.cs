using System.Net.Http.Headers;
using System.Text;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace InteropHub.Server.Tests;

/// <summary>
/// The hub in-process on one store. Each test class gets its own database through its class fixture; the
/// store-specific subclasses only say where the database is.
/// </summary>
public abstract class HubFactory : WebApplicationFactory<Program>
{
    /// <summary>Small enough to test 413 cheaply, large enough for every other test body.</summary>
    public const long MaxBodyBytes = 256 * 1024;

    public abstract string StoreName { get; }

    /// <summary>The folder <c>$import</c> may read from (InteropHub:Import:Root).</summary>
    public static string ImportRoot { get; } = Path.Combine(Path.GetTempPath(), "interophub-tests", "imports");

    /// <summary>Storage settings: provider, path or connection string.</summary>
    public abstract IReadOnlyDictionary<string, string?> StoreSettings { get; }

    public bool LoadSeeds { get; init; }

    /// <summary>The MLLP port; 0 (the default here) keeps the listener off, so test hosts never contend for 2575.</summary>
    public int MllpPort { get; init; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in StoreSettings)
        {
            builder.UseSetting(key, value);
        }

        builder.UseSetting("InteropHub:Seeds:Load", LoadSeeds ? "true" : "false");
        builder.UseSetting("InteropHub:MaxBodyBytes", MaxBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("InteropHub:MaxPageSize", "100");
        builder.UseSetting("InteropHub:Export:Folder", Path.Combine(Path.GetTempPath(), "interophub-tests", "exports"));
        builder.UseSetting("InteropHub:MaxIncludes", "5");
        builder.UseSetting("InteropHub:Import:Root", ImportRoot);
        // The tests serve their NDJSON from this machine, which an $import may reach only when its URL is listed.
        builder.UseSetting("InteropHub:Import:AllowedUrls:0", "http://127.0.0.1:*/");
        // So are the subscribers the tests run (Receiver).
        builder.UseSetting("InteropHub:Subscriptions:AllowedEndpoints:0", "http://127.0.0.1:*/");
        builder.UseSetting("InteropHub:Cors:Origins:0", "*");
        builder.UseSetting("InteropHub:Mllp:Port", MllpPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // The periodic jobs run once at start-up and then rarely: tests run them explicitly when they need them.
        builder.UseSetting("InteropHub:Referrals:CheckEvery", "01:00:00");
        builder.UseSetting("InteropHub:Recognition:CheckEvery", "01:00:00");
    }

    /// <summary>A new hub on the same database, as after a restart.</summary>
    public abstract HubFactory Restarted(bool loadSeeds = false, int mllpPort = 0);
}

public sealed class SqliteHub : HubFactory
{
    private readonly string _path;

    public SqliteHub()
        : this(Path.Combine(Path.GetTempPath(), "interophub-tests", Guid.NewGuid().ToString("N"), "hub.db"))
    {
    }

    private SqliteHub(string path) => _path = path;

    public override string StoreName => "SQLite";

    public override IReadOnlyDictionary<string, string?> StoreSettings => new Dictionary<string, string?>
    {
        ["InteropHub:Storage:Provider"] = "Sqlite",
        ["InteropHub:Storage:Sqlite:Path"] = _path,
    };

    public override HubFactory Restarted(bool loadSeeds = false, int mllpPort = 0) => new SqliteHub(_path) { LoadSeeds = loadSeeds, MllpPort = mllpPort };
}

/// <summary>Helpers for building requests from SDK POCOs and reading answers back into them.</summary>
public static class Fhir
{
    public const string JsonType = "application/fhir+json";
    public const string XmlType = "application/fhir+xml";

    private static readonly FhirJsonDeserializer Json = new(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable));
    private static readonly FhirXmlDeserializer Xml = new(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable));

    public static HttpContent Content(Resource resource) =>
        new ByteArrayContent(new InteropHub.Fhir.Serialization.FhirSerializers().ToJsonBytes(resource)) { Headers = { ContentType = new MediaTypeHeaderValue(JsonType) } };

    public static HttpContent XmlContent(Resource resource) =>
        new ByteArrayContent(new InteropHub.Fhir.Serialization.FhirSerializers().ToXmlBytes(resource)) { Headers = { ContentType = new MediaTypeHeaderValue(XmlType) } };

    public static HttpContent Raw(string body, string contentType = JsonType) =>
        new ByteArrayContent(Encoding.UTF8.GetBytes(body)) { Headers = { ContentType = new MediaTypeHeaderValue(contentType) } };

    public static async Task<T> Read<T>(HttpResponseMessage response) where T : Resource
    {
        var text = await response.Content.ReadAsStringAsync();
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? "";
        var resource = mediaType.Contains("xml", StringComparison.Ordinal) ? Xml.DeserializeResource(text) : Json.DeserializeResource(text);
        return Assert.IsType<T>(resource);
    }

    public static Patient Patient(string family = "张", string given = "三", string? identifier = null)
    {
        var patient = new Patient
        {
            Name = [new HumanName { Family = family, Given = [given] }],
            Gender = AdministrativeGender.Male,
            BirthDate = "1990-01-01",
            Address = [new Address { City = "清源市", District = "清溪县", Line = ["白沙镇沙坪村3组"] }],
        };
        if (identifier is not null)
        {
            patient.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", identifier));
        }

        return patient;
    }
}

public sealed class PostgresHub : HubFactory
{
    private readonly string _connectionString;

    public PostgresHub()
        : this(InteropHub.Testing.PostgresCluster.CreateDatabaseAsync("hub").GetAwaiter().GetResult())
    {
    }

    private PostgresHub(string connectionString) => _connectionString = connectionString;

    public override string StoreName => "PostgreSQL";

    public override IReadOnlyDictionary<string, string?> StoreSettings => new Dictionary<string, string?>
    {
        ["InteropHub:Storage:Provider"] = "Postgres",
        ["ConnectionStrings:Postgres"] = _connectionString,
    };

    public override HubFactory Restarted(bool loadSeeds = false, int mllpPort = 0) => new PostgresHub(_connectionString) { LoadSeeds = loadSeeds, MllpPort = mllpPort };
}
