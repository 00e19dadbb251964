using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class ConformanceAndStartupTests(HubFactory hub)
{
    [Fact]
    public async Task Metadata_describes_every_resource_type_with_the_interactions_served()
    {
        var statement = await Fhir.Read<CapabilityStatement>(await hub.CreateClient().GetAsync("/fhir/metadata"));

        Assert.Equal(FHIRVersion.N4_0_1, statement.FhirVersion);
        Assert.Contains("application/fhir+xml", statement.Format);
        var rest = statement.Rest.Single();
        Assert.Equal(ModelInfo.SupportedResources.Count(t => !ModelInfo.GetTypeForFhirType(t)!.IsAbstract), rest.Resource.Count);
        var patient = rest.Resource.Single(r => r.Type == "Patient");
        Assert.Contains(patient.Interaction, i => i.Code == CapabilityStatement.TypeRestfulInteraction.Vread);
        Assert.Contains(patient.Interaction, i => i.Code == CapabilityStatement.TypeRestfulInteraction.HistoryInstance);
        Assert.True(patient.ConditionalCreate);
        var parameters = patient.SearchParam.Select(p => p.Name).ToList();
        foreach (var name in new[] { "_id", "_lastUpdated", "_tag", "_profile", "identifier", "name", "family", "birthdate", "organization" })
        {
            Assert.Contains(name, parameters);
        }

        Assert.DoesNotContain("_text", parameters);
        Assert.Equal(SearchParamType.Date, patient.SearchParam.Single(p => p.Name == "birthdate").Type);
        Assert.Contains(rest.Interaction, i => i.Code == CapabilityStatement.SystemRestfulInteraction.SearchSystem);
        Assert.Contains(rest.Interaction, i => i.Code == CapabilityStatement.SystemRestfulInteraction.HistorySystem);
        Assert.Contains(patient.Interaction, i => i.Code == CapabilityStatement.TypeRestfulInteraction.Patch);
        Assert.Contains(rest.Interaction, i => i.Code == CapabilityStatement.SystemRestfulInteraction.Transaction);
        Assert.Contains(rest.Interaction, i => i.Code == CapabilityStatement.SystemRestfulInteraction.Batch);
        Assert.Contains("application/json-patch+json", statement.PatchFormat);
    }

    [Fact]
    public async Task Metadata_in_terminology_mode_lists_the_stored_code_systems_and_an_unknown_mode_is_400()
    {
        var client = hub.CreateClient();
        var url = $"https://county.example/fhir/CodeSystem/{Guid.NewGuid():N}";
        var created = await client.PostAsync("/fhir/CodeSystem", Fhir.Content(new CodeSystem
        {
            Url = url, Version = "2025", Status = PublicationStatus.Active, Content = CodeSystemContentMode.Complete,
            Concept = [new CodeSystem.ConceptDefinitionComponent { Code = "a", Display = "A" }],
        }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var terminology = await Fhir.Read<TerminologyCapabilities>(await client.GetAsync("/fhir/metadata?mode=terminology"));
        var full = await Fhir.Read<CapabilityStatement>(await client.GetAsync("/fhir/metadata?mode=full"));
        var unknown = await client.GetAsync("/fhir/metadata?mode=everything");

        Assert.Equal(CapabilityStatementKind.Instance, terminology.Kind);
        Assert.Equal(["2025"], terminology.CodeSystem.Single(c => c.Uri == url).Version.Select(v => v.Code));
        Assert.Equal(FHIRVersion.N4_0_1, full.FhirVersion);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
    }

    [Fact]
    public async Task Metadata_lists_reindex_says_translate_needs_no_map_notifications_with_a_payload_are_PUT_and_binaries_are_sent_as_content()
    {
        var client = hub.CreateClient();

        var statement = await Fhir.Read<CapabilityStatement>(await client.GetAsync("/fhir/metadata"));
        var terminology = await Fhir.Read<TerminologyCapabilities>(await client.GetAsync("/fhir/metadata?mode=terminology"));

        var reindex = Assert.Single(statement.Rest[0].Operation, o => o.Name == "reindex");
        Assert.StartsWith("https://interophub.dev/fhir/OperationDefinition/", reindex.Definition, StringComparison.Ordinal);
        Assert.False(terminology.Translation!.NeedsMap);
        var subscription = statement.Rest[0].Resource.Single(r => r.Type == "Subscription").Documentation;
        Assert.Contains("PUT [endpoint]/[type]/[id]", subscription, StringComparison.Ordinal);
        Assert.DoesNotContain("POSTed", subscription, StringComparison.Ordinal);
        Assert.Contains("X-Security-Context", statement.Rest[0].Resource.Single(r => r.Type == "Binary").Documentation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_survives_a_restart_on_the_same_database()
    {
        var created = await Fhir.Read<Patient>(await hub.CreateClient().PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("周", "淑芬"))));

        using var restarted = hub.Restarted();
        var read = await restarted.CreateClient().GetAsync($"/fhir/Patient/{created.Id}");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("淑芬", (await Fhir.Read<Patient>(read)).Name[0].Given.Single());
    }

    [Fact]
    public async Task Seeds_load_on_first_start_and_a_restart_adds_no_versions()
    {
        using var first = hub.Restarted(loadSeeds: true);
        var hospital = await first.CreateClient().GetAsync("/fhir/Organization/QX2100012");
        Assert.Equal(HttpStatusCode.OK, hospital.StatusCode);
        Assert.Equal("清溪县人民医院", (await Fhir.Read<Organization>(hospital)).Name);

        using var second = hub.Restarted(loadSeeds: true);
        var again = await second.CreateClient().GetAsync("/fhir/Organization/QX2110026");

        Assert.Equal("W/\"1\"", again.Headers.ETag?.ToString());
        var clinic = await Fhir.Read<Organization>(await second.CreateClient().GetAsync("/fhir/Organization/QX2120013"));
        Assert.Equal("Organization/QX2110018", clinic.PartOf!.Reference);
    }
}

public sealed class ConformanceAndStartupTestsOnSqlite(SqliteHub hub) : ConformanceAndStartupTests(hub), IClassFixture<SqliteHub>;

public sealed class ConformanceAndStartupTestsOnPostgres(PostgresHub hub) : ConformanceAndStartupTests(hub), IClassFixture<PostgresHub>;
