using System.Net;
using Hl7.Fhir.Model;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>
/// Custom search parameters: the ones shipped in profiles/ are installed at start-up, SearchParameters posted over
/// REST become usable once the stored resources are re-indexed for them, and re-index jobs show their progress.
/// </summary>
public abstract class CustomSearchParameterTests(HubFactory hub)
{
    private const string Gb3304 = "urn:oid:2.16.156.10011.2.3.3.3";

    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Search_parameters_shipped_in_profiles_are_installed_at_start_up_and_find_what_they_index()
    {
        await WaitForReindexAsync();
        var marker = Guid.NewGuid().ToString("N");
        var second = await CreateAsync(Dose(marker, 2));
        await CreateAsync(Dose(marker, 1));
        var patient = Fhir.Patient("王", "芳");
        patient.Extension.Add(new Extension("https://interophub.dev/fhir/StructureDefinition/ethnicity", new Coding(Gb3304, "15", "土家族")));
        patient.Identifier.Add(new Identifier("urn:test", marker));
        var tujia = await CreateAsync(patient);
        var task = new Hl7.Fhir.Model.Task
        {
            Status = Hl7.Fhir.Model.Task.TaskStatus.InProgress,
            Intent = Hl7.Fhir.Model.Task.TaskIntent.Order,
            BusinessStatus = new CodeableConcept("urn:interophub:cs:referral-status", "accepted"),
            Identifier = [new Identifier("urn:test", marker)],
        };
        var accepted = await CreateAsync(task);

        Assert.Equal([second], await IdsAsync($"Immunization?dose-number=2&identifier=urn:test|{marker}"));
        Assert.Equal([second], await IdsAsync($"Immunization?dose-number=ge2&identifier=urn:test|{marker}"));
        Assert.Equal([tujia], await IdsAsync($"Patient?ethnicity={Gb3304}|15&identifier=urn:test|{marker}"));
        Assert.Equal([accepted], await IdsAsync($"Task?business-status=accepted&identifier=urn:test|{marker}"));
        var stored = await Fhir.Read<SearchParameter>(await _client.GetAsync("/fhir/SearchParameter/immunization-dose-number"));
        Assert.Equal("dose-number", stored.Code);
        // The CapabilityStatement lists them with the specification's.
        var capabilities = await Fhir.Read<CapabilityStatement>(await _client.GetAsync("/fhir/metadata"));
        var rest = capabilities.Rest.Single().Resource;
        Assert.Contains(rest.Single(r => r.Type == "Immunization").SearchParam, p => p.Name == "dose-number" && p.Definition == stored.Url);
        Assert.Contains(rest.Single(r => r.Type == "Patient").SearchParam, p => p.Name == "ethnicity");
        Assert.Contains(rest.Single(r => r.Type == "Patient").SearchParam, p => p.Name == "birthdate");
        Assert.Equal(CapabilityStatement.ConditionalReadStatus.FullSupport, rest.Single(r => r.Type == "Patient").ConditionalRead);

        // Conditional writes take custom parameters too: this create finds the 土家族 patient and writes nothing.
        var again = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient("王", "芳")) };
        again.Headers.Add("If-None-Exist", $"ethnicity={Gb3304}|15&identifier=urn:test|{marker}");
        var existing = await _client.SendAsync(again);
        Assert.Equal(HttpStatusCode.OK, existing.StatusCode);
        Assert.Equal(tujia, (await Fhir.Read<Patient>(existing)).Id);
    }

    [Fact]
    public async Task Transaction_entries_take_custom_parameters_in_if_none_exist_conditional_updates_and_conditional_references()
    {
        await WaitForReindexAsync();
        var marker = Guid.NewGuid().ToString("N");
        var patient = Fhir.Patient("向", "红");
        patient.Extension.Add(new Extension("https://interophub.dev/fhir/StructureDefinition/ethnicity", new Coding(Gb3304, "15", "土家族")));
        patient.Identifier.Add(new Identifier("urn:test", marker));
        var tujia = await CreateAsync(patient);
        var criteria = $"ethnicity={Gb3304}|15&identifier=urn:test|{marker}";
        var dose = Dose(marker, 3);
        dose.Patient = new ResourceReference($"Patient?{criteria}");
        var transaction = new Bundle
        {
            Type = Bundle.BundleType.Transaction,
            Entry =
            [
                new Bundle.EntryComponent
                {
                    Resource = Fhir.Patient("向", "红"),
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient", IfNoneExist = criteria },
                },
                new Bundle.EntryComponent
                {
                    Resource = dose,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Immunization?dose-number=3&identifier=urn:test|{marker}" },
                },
            ],
        };

        var response = await _client.PostAsync("/fhir", Fhir.Content(transaction));

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var answer = await Fhir.Read<Bundle>(response);
        Assert.Equal("200 OK", answer.Entry[0].Response!.Status);
        Assert.StartsWith($"Patient/{tujia}/", answer.Entry[0].Response!.Location, StringComparison.Ordinal);
        Assert.Equal("201 Created", answer.Entry[1].Response!.Status);
        var written = await IdsAsync($"Immunization?dose-number=3&identifier=urn:test|{marker}");
        var stored = await Fhir.Read<Immunization>(await _client.GetAsync($"/fhir/Immunization/{written.Single()}"));
        Assert.Equal($"Patient/{tujia}", stored.Patient.Reference);
    }

    [Fact]
    public async Task A_search_parameter_posted_over_rest_finds_the_resources_stored_before_it_once_they_are_reindexed()
    {
        var code = "marker-" + Guid.NewGuid().ToString("N")[..8];
        var url = $"urn:test:extension:{code}";
        var ids = new List<string>();
        foreach (var value in new[] { "red", "blue", "red" })
        {
            var patient = Fhir.Patient("李", "四");
            patient.Extension.Add(new Extension(url, new FhirString(value)));
            ids.Add(await CreateAsync(patient));
        }

        var created = await _client.PostAsync("/fhir/SearchParameter", Fhir.Content(new SearchParameter
        {
            Url = $"urn:test:search-parameter:{code}",
            Name = "Marker",
            Status = PublicationStatus.Active,
            Description = "A test marker",
            Code = code,
            Base = [ResourceType.Patient],
            Type = SearchParamType.String,
            Expression = $"Patient.extension('{url}').value",
        }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        // Until its job has run the parameter is refused with the reason, never answered with a partial result.
        for (var attempt = 0; ; attempt++)
        {
            var early = await _client.GetAsync($"/fhir/Patient?{code}=red");
            if (early.StatusCode == HttpStatusCode.OK)
            {
                break;
            }

            Assert.Equal(HttpStatusCode.BadRequest, early.StatusCode);
            Assert.Contains("cannot be used yet", (await Fhir.Read<OperationOutcome>(early)).Issue.Single().Diagnostics, StringComparison.Ordinal);
            Assert.True(attempt < 300, "The parameter did not become usable within 30 s.");
            await System.Threading.Tasks.Task.Delay(100);
        }

        Assert.Equal(new[] { ids[0], ids[2] }.Order(StringComparer.Ordinal), (await IdsAsync($"Patient?{code}=red")).Order(StringComparer.Ordinal));
        Assert.Equal([ids[1]], await IdsAsync($"Patient?{code}=BLU"));
        var jobs = await Fhir.Read<Parameters>(await _client.GetAsync("/fhir/$reindex"));
        Assert.Contains(jobs.Parameter, j => Part(j, "reason").StartsWith($"urn:test:search-parameter:{code}#", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("gender", "Patient.gender", "SearchParameter.code")]
    [InlineData("_secret", "Patient.gender", "SearchParameter.code")]
    [InlineData("fine-code", "Patient.name.where(", "SearchParameter.expression")]
    public async Task A_search_parameter_the_hub_cannot_index_is_422_naming_the_element(string code, string expression, string element)
    {
        var response = await _client.PostAsync("/fhir/SearchParameter", Fhir.Content(new SearchParameter
        {
            Url = $"urn:test:bad:{Guid.NewGuid():N}",
            Name = "Bad",
            Status = PublicationStatus.Active,
            Description = "cannot be indexed",
            Code = code,
            Base = [ResourceType.Patient],
            Type = SearchParamType.Token,
            Expression = expression,
        }));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(element, (await Fhir.Read<OperationOutcome>(response)).Issue.Single().Expression.Single());
    }

    [Fact]
    public async Task A_reindex_asked_for_by_hand_is_accepted_listed_with_its_progress_and_finishes()
    {
        await CreateAsync(Fhir.Patient("赵", "六"));

        var response = await _client.PostAsync("/fhir/$reindex?_type=Patient", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = (await Fhir.Read<Parameters>(response)).Parameter.Single();
        var id = Part(job, "id");
        Assert.Equal("Patient", Part(job, "type"));
        Assert.True(long.Parse(Part(job, "total"), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        await WaitForReindexAsync();
        var listed = (await Fhir.Read<Parameters>(await _client.GetAsync("/fhir/$reindex"))).Parameter
            .Single(j => Part(j, "id") == id);
        Assert.Equal("done", Part(listed, "status"));
        Assert.Equal(Part(listed, "total"), Part(listed, "done"));
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.PostAsync("/fhir/$reindex?_type=Nonsense", null)).StatusCode);
    }

    [Fact]
    public async Task A_database_indexed_before_the_current_extraction_is_reindexed_once_by_a_job_named_for_it()
    {
        await WaitForReindexAsync();

        var jobs = (await Fhir.Read<Parameters>(await _client.GetAsync("/fhir/$reindex"))).Parameter;

        var upgrade = Assert.Single(jobs, j => Part(j, "reason") == InteropHub.Fhir.Search.Indexing.SearchIndexer.Revision);
        Assert.Equal("done", Part(upgrade, "status"));
        await hub.Services.GetRequiredService<InteropHub.Fhir.Search.Custom.SearchParameterCatalog>().ReconcileAsync(CancellationToken.None);
        Assert.Single((await Fhir.Read<Parameters>(await _client.GetAsync("/fhir/$reindex"))).Parameter,
            j => Part(j, "reason") == InteropHub.Fhir.Search.Indexing.SearchIndexer.Revision);
    }

    private static Immunization Dose(string marker, int dose) => new()
    {
        Status = Immunization.ImmunizationStatusCodes.Completed,
        VaccineCode = new CodeableConcept("urn:oid:2.16.156.10011.2.3.3.2", "0201"),
        Patient = new ResourceReference("Patient/unknown"),
        Occurrence = new FhirDateTime("2024-05-01"),
        Identifier = [new Identifier("urn:test", marker)],
        ProtocolApplied = [new Immunization.ProtocolAppliedComponent { DoseNumber = new PositiveInt(dose) }],
    };

    private async Task WaitForReindexAsync()
    {
        for (var attempt = 0; attempt < 300; attempt++)
        {
            var jobs = await Fhir.Read<Parameters>(await _client.GetAsync("/fhir/$reindex"));
            if (jobs.Parameter.All(j => Part(j, "status") != "running"))
            {
                // The registry follows a finished job at the worker's next reconcile.
                await System.Threading.Tasks.Task.Delay(200);
                return;
            }

            await System.Threading.Tasks.Task.Delay(100);
        }

        Assert.Fail("Re-indexing did not finish within 30 s.");
    }

    private static string Part(Parameters.ParameterComponent job, string name) =>
        job.Part.Single(p => p.Name == name).Value is PrimitiveType { JsonValue: { } value }
            ? Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""
            : "";

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return response.Headers.Location!.OriginalString.Split('/')[^3];
    }

    private async Task<List<string>> IdsAsync(string relative)
    {
        var response = await _client.GetAsync("/fhir/" + relative);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await Fhir.Read<Bundle>(response)).Entry.Select(e => e.Resource!.Id!).ToList();
    }
}

public sealed class CustomSearchParameterTestsOnSqlite(SqliteHub hub) : CustomSearchParameterTests(hub), IClassFixture<SqliteHub>;

public sealed class CustomSearchParameterTestsOnPostgres(PostgresHub hub) : CustomSearchParameterTests(hub), IClassFixture<PostgresHub>;
