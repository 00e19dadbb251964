using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary>
/// Token <c>:in</c>, <c>:not-in</c>, <c>:above</c> and <c>:below</c> over HTTP, from ValueSets and CodeSystems posted
/// to the hub: searches, lenient handling, conditional create, and transaction entries.
/// </summary>
public abstract class TerminologySearchTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Searches_expand_value_sets_and_code_system_hierarchies_stored_in_the_hub()
    {
        var (system, marker) = await SeedAsync();
        var valueSet = await ValueSetAsync(system, "respiratory");
        var ids = new Dictionary<string, string>();
        foreach (var code in new[] { "respiratory", "pneumonia", "influenza", "cardiac", "hypertension" })
        {
            ids[code] = await CreateAsync(Coded(system, code, marker));
        }

        string Of(params string[] codes) => string.Join(',', codes.Select(c => ids[c]).Order(StringComparer.Ordinal));

        Assert.Equal(Of("respiratory", "pneumonia", "influenza"), await IdsAsync($"code:in={valueSet}&identifier=urn:test|{marker}"));
        Assert.Equal(Of("cardiac", "hypertension"), await IdsAsync($"code:not-in={valueSet}&identifier=urn:test|{marker}"));
        Assert.Equal(Of("respiratory", "pneumonia", "influenza"), await IdsAsync($"code:below={system}|respiratory&identifier=urn:test|{marker}"));
        Assert.Equal(Of("cardiac", "hypertension"), await IdsAsync($"code:above={system}|hypertension&identifier=urn:test|{marker}"));
        Assert.Equal(Of("respiratory", "pneumonia"), await IdsAsync($"code:above={system}|pneumonia&identifier=urn:test|{marker}"));
    }

    [Theory]
    [InlineData("code:in=http://hub.example/ValueSet/never-posted", "is not stored in the hub")]
    [InlineData("code:below=http://snomed.info/sct|22298006", "http://snomed.info/sct is not stored in the hub")]
    public async Task A_value_set_or_code_system_not_stored_in_the_hub_is_400_naming_the_parameter_or_ignored_when_lenient(string query, string why)
    {
        var strict = await _client.GetAsync($"/fhir/Observation?{query}");
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Observation?{query}&_count=1");
        request.Headers.Add("Prefer", "handling=lenient");
        var lenient = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, strict.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(strict)).Issue.Single();
        Assert.Equal(query[..query.IndexOf('=', StringComparison.Ordinal)], issue.Expression.Single());
        Assert.Contains(why, issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, lenient.StatusCode);
        var bundle = await Fhir.Read<Bundle>(lenient);
        var warning = Assert.IsType<OperationOutcome>(bundle.Entry.Single(e => e.Search?.Mode == Bundle.SearchEntryMode.Outcome).Resource);
        Assert.Contains(why, warning.Issue.Single().Diagnostics, StringComparison.Ordinal);
        Assert.DoesNotContain("code", bundle.SelfLink!.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Conditional_create_and_transaction_entries_expand_terminology_modifiers()
    {
        var (system, marker) = await SeedAsync();
        var valueSet = await ValueSetAsync(system, "respiratory");
        var influenza = await CreateAsync(Coded(system, "influenza", marker));

        var create = new HttpRequestMessage(HttpMethod.Post, "/fhir/Observation") { Content = Fhir.Content(Coded(system, "pneumonia", marker)) };
        create.Headers.Add("If-None-Exist", $"code:below={system}|respiratory&identifier=urn:test|{marker}");
        var existing = await _client.SendAsync(create);
        var transaction = new Bundle
        {
            Type = Bundle.BundleType.Transaction,
            Entry =
            [
                new Bundle.EntryComponent
                {
                    Resource = Coded(system, "pneumonia", marker),
                    Request = new Bundle.RequestComponent
                    {
                        Method = Bundle.HTTPVerb.POST,
                        Url = "Observation",
                        IfNoneExist = $"code:in={valueSet}&identifier=urn:test|{marker}",
                    },
                },
                new Bundle.EntryComponent
                {
                    Resource = Coded(system, "cardiac", marker),
                    Request = new Bundle.RequestComponent
                    {
                        Method = Bundle.HTTPVerb.POST,
                        Url = "Observation",
                        IfNoneExist = $"code:not-in={valueSet}&identifier=urn:test|{marker}",
                    },
                },
            ],
        };
        var answer = await _client.PostAsync("/fhir", Fhir.Content(transaction));

        Assert.Equal(HttpStatusCode.OK, existing.StatusCode);
        Assert.Equal(influenza, (await Fhir.Read<Observation>(existing)).Id);
        Assert.True(answer.StatusCode == HttpStatusCode.OK, await answer.Content.ReadAsStringAsync());
        var entries = (await Fhir.Read<Bundle>(answer)).Entry;
        Assert.Equal("200 OK", entries[0].Response!.Status);
        Assert.StartsWith($"Observation/{influenza}/", entries[0].Response!.Location, StringComparison.Ordinal);
        Assert.Equal("201 Created", entries[1].Response!.Status);
    }

    /// <summary>A fresh code system (respiratory > pneumonia, influenza; cardiac > hypertension by subsumedBy) and a marker.</summary>
    private async Task<(string System, string Marker)> SeedAsync()
    {
        var marker = Guid.NewGuid().ToString("N");
        var system = $"http://hub.example/CodeSystem/{marker}";
        var hypertension = new CodeSystem.ConceptDefinitionComponent { Code = "hypertension" };
        hypertension.Property.Add(new CodeSystem.ConceptPropertyComponent { Code = "subsumedBy", Value = new Code("cardiac") });
        await CreateAsync(new CodeSystem
        {
            Url = system,
            Status = PublicationStatus.Active,
            Content = CodeSystemContentMode.Complete,
            Concept =
            [
                new CodeSystem.ConceptDefinitionComponent
                {
                    Code = "respiratory",
                    Concept = [new CodeSystem.ConceptDefinitionComponent { Code = "pneumonia" }, new CodeSystem.ConceptDefinitionComponent { Code = "influenza" }],
                },
                new CodeSystem.ConceptDefinitionComponent { Code = "cardiac" },
                hypertension,
            ],
        });
        return (system, marker);
    }

    /// <summary>Posts a ValueSet of the whole code system less its cardiac codes; returns its canonical URL.</summary>
    private async Task<string> ValueSetAsync(string system, string name)
    {
        var url = $"{system}/ValueSet/{name}";
        var valueSet = new ValueSet
        {
            Url = url,
            Status = PublicationStatus.Active,
            Compose = new ValueSet.ComposeComponent
            {
                Include = [new ValueSet.ConceptSetComponent { System = system }],
                Exclude = [new ValueSet.ConceptSetComponent { System = system, Concept = [new() { Code = "cardiac" }, new() { Code = "hypertension" }] }],
            },
        };
        await CreateAsync(valueSet);
        return url;
    }

    private static Observation Coded(string system, string code, string marker) => new()
    {
        Status = ObservationStatus.Final,
        Code = new CodeableConcept(system, code),
        Identifier = [new Identifier("urn:test", marker)],
    };

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return response.Headers.Location!.OriginalString.Split('/')[^3];
    }

    private async Task<string> IdsAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Observation?{query}");
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return string.Join(',', (await Fhir.Read<Bundle>(response)).Entry.Select(e => e.Resource!.Id!).Order(StringComparer.Ordinal));
    }
}

public sealed class TerminologySearchTestsOnSqlite(SqliteHub hub) : TerminologySearchTests(hub), IClassFixture<SqliteHub>;

public sealed class TerminologySearchTestsOnPostgres(PostgresHub hub) : TerminologySearchTests(hub), IClassFixture<PostgresHub>;
