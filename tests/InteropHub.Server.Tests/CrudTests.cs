using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class CrudTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task HEAD_answers_what_GET_would_with_its_headers_and_no_body()
    {
        var id = await CreateAsync(Fhir.Patient("李", "头"));

        var read = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/fhir/Patient/{id}"));
        var search = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/fhir/Patient?_id={id}"));
        var missing = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/fhir/Patient/no-such-patient"));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.NotFound), (read.StatusCode, search.StatusCode, missing.StatusCode));
        Assert.Equal("W/\"1\"", read.Headers.ETag?.ToString());
        Assert.Equal("application/fhir+json", read.Content.Headers.ContentType?.MediaType);
        Assert.Empty(await read.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Create_assigns_an_id_and_answers_201_with_location_etag_and_last_modified()
    {
        var patient = Fhir.Patient();
        patient.Id = "client-chosen";

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await Fhir.Read<Patient>(response);
        Assert.NotEqual("client-chosen", created.Id);
        Assert.Equal("1", created.Meta!.VersionId);
        Assert.NotNull(created.Meta.LastUpdated);
        Assert.Equal($"W/\"1\"", response.Headers.ETag?.ToString());
        Assert.NotNull(response.Content.Headers.LastModified);
        Assert.EndsWith($"/fhir/Patient/{created.Id}/_history/1", response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task Read_returns_exactly_the_bytes_the_create_returned()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient()));
        var createdBytes = await response.Content.ReadAsByteArrayAsync();
        var id = (await Fhir.Read<Patient>(response)).Id;

        var read = await _client.GetAsync($"/fhir/Patient/{id}");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(createdBytes, await read.Content.ReadAsByteArrayAsync());
        Assert.Equal("W/\"1\"", read.Headers.ETag?.ToString());
    }

    [Fact]
    public async Task Parameters_and_transaction_or_batch_Bundles_are_not_stored_other_Bundles_are()
    {
        var parameters = await _client.PostAsync("/fhir/Parameters", Fhir.Content(new Parameters { Parameter = [new Parameters.ParameterComponent { Name = "x", Value = new FhirString("y") }] }));
        var transaction = await _client.PutAsync("/fhir/Bundle/tx-kept", Fhir.Content(new Bundle { Id = "tx-kept", Type = Bundle.BundleType.Transaction }));
        var batch = await _client.PostAsync("/fhir/Bundle", Fhir.Content(new Bundle { Type = Bundle.BundleType.Batch }));
        var collection = await _client.PostAsync("/fhir/Bundle", Fhir.Content(new Bundle { Type = Bundle.BundleType.Collection }));

        Assert.Equal(HttpStatusCode.BadRequest, parameters.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, transaction.StatusCode);
        Assert.StartsWith("A transaction Bundle is not stored: POST it to the base url", (await Fhir.Read<OperationOutcome>(transaction)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, batch.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/fhir/Bundle/tx-kept")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, collection.StatusCode);
    }

    [Fact]
    public async Task Reading_an_unknown_id_is_404_with_an_outcome()
    {
        var response = await _client.GetAsync("/fhir/Patient/does-not-exist");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Contains("Patient/does-not-exist", outcome.Issue[0].Diagnostics);
    }

    [Fact]
    public async Task Update_writes_a_new_version_and_vread_still_returns_the_old_one()
    {
        var id = await CreateAsync(Fhir.Patient("李", "德福"));
        var changed = Fhir.Patient("李", "德富");
        changed.Id = id;

        var update = await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Content(changed));

        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        Assert.Equal("2", (await Fhir.Read<Patient>(update)).Meta!.VersionId);
        var v1 = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}/_history/1"));
        var v2 = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}/_history/2"));
        Assert.Equal("德福", v1.Name[0].Given.Single());
        Assert.Equal("德富", v2.Name[0].Given.Single());
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{id}/_history/3")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{id}/_history/x")).StatusCode);
    }

    [Fact]
    public async Task A_version_id_is_compared_as_written_so_01_is_no_version_alone_or_in_a_batch()
    {
        var id = await CreateAsync(Fhir.Patient("李", "零一"));
        var batch = new Bundle
        {
            Type = Bundle.BundleType.Batch,
            Entry = [new Bundle.EntryComponent { Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.GET, Url = $"Patient/{id}/_history/01" } }],
        };

        var alone = await _client.GetAsync($"/fhir/Patient/{id}/_history/01");
        var inBatch = await Fhir.Read<Bundle>(await _client.PostAsync("/fhir", Fhir.Content(batch)));

        Assert.Equal(HttpStatusCode.NotFound, alone.StatusCode);
        Assert.Contains("'01'", (await Fhir.Read<OperationOutcome>(alone)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal("404 Not Found", inBatch.Entry.Single().Response!.Status);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/Patient/{id}/_history/1")).StatusCode);
    }

    [Fact]
    public async Task Update_of_an_absent_id_creates_the_resource_with_that_id()
    {
        var patient = Fhir.Patient();
        patient.Id = "mrn-" + Guid.NewGuid().ToString("N")[..8];

        var response = await _client.PutAsync($"/fhir/Patient/{patient.Id}", Fhir.Content(patient));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(patient.Id, (await Fhir.Read<Patient>(response)).Id);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/Patient/{patient.Id}")).StatusCode);
    }

    [Fact]
    public async Task Update_whose_body_id_differs_from_the_url_is_400()
    {
        var patient = Fhir.Patient();
        patient.Id = "a1";

        var response = await _client.PutAsync("/fhir/Patient/b2", Fhir.Content(patient));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("does not match", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task Update_without_an_id_in_the_body_is_400()
    {
        var response = await _client.PutAsync("/fhir/Patient/b2", Fhir.Content(Fhir.Patient()));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_body_of_another_type_than_the_url_is_400()
    {
        var response = await _client.PostAsync("/fhir/Observation", Fhir.Content(Fhir.Patient()));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Observation", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task Delete_makes_reads_answer_410_while_history_keeps_the_old_versions()
    {
        var id = await CreateAsync(Fhir.Patient());

        var delete = await _client.DeleteAsync($"/fhir/Patient/{id}");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var read = await _client.GetAsync($"/fhir/Patient/{id}");
        Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
        Assert.Equal("W/\"2\"", read.Headers.ETag?.ToString());
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/Patient/{id}/_history/1")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await _client.GetAsync($"/fhir/Patient/{id}/_history/2")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/fhir/Patient/{id}")).StatusCode);
    }

    [Fact]
    public async Task Updating_a_deleted_resource_brings_it_back_as_the_next_version()
    {
        var id = await CreateAsync(Fhir.Patient());
        await _client.DeleteAsync($"/fhir/Patient/{id}");
        var again = Fhir.Patient();
        again.Id = id;

        var response = await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Content(again));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("3", (await Fhir.Read<Patient>(response)).Meta!.VersionId);
    }

    [Fact]
    public async Task Deleting_an_id_that_never_existed_succeeds_with_nothing_written_unless_a_version_is_asked_for()
    {
        var ifMatch = new HttpRequestMessage(HttpMethod.Delete, "/fhir/Patient/never-was-either");
        ifMatch.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");

        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync("/fhir/Patient/never-was")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/fhir/Patient/never-was")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/fhir/Patient/never-was/_history")).StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await _client.SendAsync(ifMatch)).StatusCode);
    }

    [Theory]
    [InlineData("/fhir/Patient/has_underscore")]
    [InlineData("/fhir/Patient/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public async Task An_id_outside_the_fhir_id_rule_is_400(string url)
    {
        var response = await _client.GetAsync(url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Fact]
    public async Task Every_concrete_r4_resource_type_can_be_created_and_read()
    {
        var organization = new Organization { Name = "清溪县人民医院" };
        var encounter = new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP") };
        var immunization = new Immunization
        {
            Status = Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = new CodeableConcept("urn:oid:2.16.156.10011.2.3.3.24", "0201", "乙肝疫苗"),
            Patient = new ResourceReference("Patient/x"),
            Occurrence = new FhirDateTime("2025-04-30"),
        };
        var carePlan = new CarePlan { Status = RequestStatus.Active, Intent = CarePlan.CarePlanIntent.Plan, Subject = new ResourceReference("Patient/x") };

        foreach (Resource resource in new Resource[] { organization, encounter, immunization, carePlan })
        {
            var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync(response.Headers.Location!.AbsolutePath.Split("/_history")[0])).StatusCode);
        }
    }

    private async Task<string> CreateAsync(Patient patient)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await Fhir.Read<Patient>(response)).Id!;
    }
}

public sealed class CrudTestsOnSqlite(SqliteHub hub) : CrudTests(hub), IClassFixture<SqliteHub>;

public sealed class CrudTestsOnPostgres(PostgresHub hub) : CrudTests(hub), IClassFixture<PostgresHub>;
