using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Tests;

internal static class BulkPatients
{
    /// <summary>Loads <paramref name="count"/> patients, alternately female and male, through the bulk path.</summary>
    public static System.Threading.Tasks.Task LoadBulkPatientsAsync(this IResourceStore store, int count)
    {
        var writer = new VersionWriter(new FhirSerializers(), TimeProvider.System);
        var batch = Enumerable.Range(0, count).Select(i =>
        {
            var patient = new Patient { Gender = i % 2 == 0 ? AdministrativeGender.Female : AdministrativeGender.Male };
            var (row, index) = writer.Prepare(patient, $"bulk-{i}", 1, "PUT");
            return new BulkResource(row, index);
        }).ToList();
        return ((IBulkLoader)store).LoadAsync(batch, CancellationToken.None);
    }
}
