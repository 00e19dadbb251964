using Hl7.Fhir.Model;
using InteropHub.Fhir;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>Re-index jobs (<see cref="IReindexStore"/>): a parameter added after resources were stored finds them once its job is done.</summary>
public abstract partial class StoreConformanceTests
{
    private const string Ethnicity = "https://interophub.dev/fhir/StructureDefinition/ethnicity";
    private const string Gb3304 = "urn:oid:2.16.156.10011.2.3.3.3";

    [Fact]
    public async Task A_reindex_job_indexes_stored_resources_for_a_parameter_added_later_and_resumes_on_another_store_instance()
    {
        // Five patients written before the parameter exists (the default registry does not know it), one deleted,
        // and an observation that the job (Patient only) must leave alone.
        for (var i = 0; i < 5; i++)
        {
            var patient = NewPatient($"r{i}", new Identifier(IdCard, $"r{i}"));
            patient.Extension.Add(new Extension(Ethnicity, new Coding(Gb3304, i % 2 == 0 ? "01" : "03")));
            await PutAsync(patient);
        }

        await DeleteAsync("Patient", "r4");
        await PutAsync(new Observation { Id = "obs", Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6") });

        var registry = new SearchParameterRegistry();
        registry.Add(["Patient"], new SearchParam("ethnicity", SearchParamType.Token, "urn:test:ethnicity",
            $"Patient.extension('{Ethnicity}').value", [], []));
        var indexer = new SearchIndexer(registry, new HubOptions());
        var parser = new SearchParser(registry, new HubOptions());
        SearchIndexEntries Extract(StoredResource stored) => indexer.Extract(Serializers.ParseStored(stored.Json));
        async Task<List<string>> EthnicityAsync(string value) =>
            (await Store.FindAsync("Patient", parser.ParseCriteria("Patient", [new("ethnicity", value)]), null, 100, Ct)).Select(m => m.Id).ToList();

        Assert.Empty(await EthnicityAsync($"{Gb3304}|01"));
        var job = await ((IReindexStore)Store).StartReindexAsync("test", ["Patient"], Ct);
        Assert.Equal((ReindexStatus.Running, 0L, 4L), (job.Status, job.Done, job.Total));

        job = await ((IReindexStore)Store).ReindexBatchAsync(job.Id, 3, Extract, Ct);
        Assert.Equal((ReindexStatus.Running, 3L), (job.Status, job.Done));
        Assert.Equal(["r0", "r2"], await EthnicityAsync($"{Gb3304}|01"));

        // As after a restart: another store instance on the same database continues from the saved cursor.
        var restarted = (IReindexStore)Track(OpenStore(Location));
        var saved = (await restarted.ReadReindexJobsAsync(Ct)).Single();
        Assert.Equal((job.Id, job.Cursor, job.Done, "Patient"), (saved.Id, saved.Cursor, saved.Done, string.Join(',', saved.ResourceTypes)));
        job = await restarted.ReindexBatchAsync(job.Id, 3, Extract, Ct);

        Assert.Equal((ReindexStatus.Done, 4L, 4L), (job.Status, job.Done, job.Total));
        Assert.Equal(["r0", "r2"], await EthnicityAsync($"{Gb3304}|01"));
        Assert.Equal(["r1", "r3"], await EthnicityAsync("03"));
        Assert.Equal(["obs"], await FindIdsAsync("Observation", "code=8480-6"));
        Assert.Equal(["r1"], await FindIdsAsync("Patient", $"identifier={IdCard}|r1"));
        Assert.Equal(job.Updated, (await restarted.ReindexBatchAsync(job.Id, 3, Extract, Ct)).Updated);
    }

    [Fact]
    public async Task A_failed_reindex_job_keeps_its_error_and_a_job_for_every_type_counts_every_live_resource()
    {
        await PutAsync(NewPatient("a", new Identifier(IdCard, "1")));
        await PutAsync(NewOrganization("o"));

        var all = await ((IReindexStore)Store).StartReindexAsync("manual", [], Ct);
        await ((IReindexStore)Store).FailReindexAsync(all.Id, "resource Patient/a cannot be parsed", Ct);

        var saved = (await ((IReindexStore)Store).ReadReindexJobsAsync(Ct)).Single();
        Assert.Equal((ReindexStatus.Failed, 2L, "resource Patient/a cannot be parsed"), (saved.Status, saved.Total, saved.Error));
        Assert.Empty(saved.ResourceTypes);
    }
}
