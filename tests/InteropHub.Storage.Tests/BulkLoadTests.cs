using Hl7.Fhir.Model;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>The bulk load path (<see cref="IBulkLoader"/>): what it writes must be what a normal write would have.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Bulk_loaded_resources_are_read_found_in_history_and_searched_like_written_ones()
    {
        var prepared = Enumerable.Range(0, 3)
            .Select(i => _writer.Prepare(NewPatient(null, new Identifier(IdCard, $"bulk-{i}")), $"bulk-{i}", 1, "PUT"))
            .Select(p => new BulkResource(p.Row, p.Index))
            .ToList();
        var observation = _writer.Prepare(new Observation
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "8480-6"),
            Subject = new ResourceReference("Patient/bulk-1"),
        }, "bulk-o", 1, "POST");
        prepared.Add(new BulkResource(observation.Row, observation.Index));

        await ((IBulkLoader)Store).LoadAsync(prepared, Ct);

        var read = await Store.ReadAsync("Patient", "bulk-1", Ct);
        Assert.Equal(prepared[1].Version.Json, read!.Json);
        Assert.Equal(["bulk-1/1"], (await Store.ReadHistoryAsync(new HistoryQuery("Patient", "bulk-1", null, 10, null), Ct)).Select(Label));
        Assert.Equal(["bulk-2"], await FindIdsAsync("Patient", $"identifier={IdCard}|bulk-2"));
        Assert.Equal(["bulk-0", "bulk-1", "bulk-2"], await FindIdsAsync("Patient", "name=张三"));
        Assert.Equal(["bulk-o"], await FindIdsAsync("Observation", "subject:Patient.identifier=bulk-1&code=8480-6"));

        // A later normal write takes over the resource: version 2, index rows replaced under the same row id.
        var updated = NewPatient("bulk-1", new Identifier(IdCard, "renamed"));
        await PutAsync(updated);
        Assert.Equal(2, (await Store.ReadAsync("Patient", "bulk-1", Ct))!.VersionId);
        Assert.Empty(await FindIdsAsync("Patient", $"identifier={IdCard}|bulk-1"));
        Assert.Equal(["bulk-1"], await FindIdsAsync("Patient", $"identifier={IdCard}|renamed"));
    }

    [Fact]
    public async Task A_bulk_load_naming_an_existing_resource_fails_whole_and_writes_nothing()
    {
        await PutAsync(NewPatient("exists", new Identifier(IdCard, "1")));
        var fresh = _writer.Prepare(NewPatient(null, new Identifier(IdCard, "2")), "fresh", 1, "PUT");
        var again = _writer.Prepare(NewPatient(null, new Identifier(IdCard, "3")), "exists", 1, "PUT");

        await Assert.ThrowsAnyAsync<Exception>(() => ((IBulkLoader)Store).LoadAsync([new(fresh.Row, fresh.Index), new(again.Row, again.Index)], Ct));

        Assert.Null(await Store.ReadAsync("Patient", "fresh", Ct));
        Assert.Empty(await FindIdsAsync("Patient", $"identifier={IdCard}|2"));
        Assert.Equal(["exists"], await FindIdsAsync("Patient", $"identifier={IdCard}|1,{IdCard}|3"));
    }
}
