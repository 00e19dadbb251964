using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary>Several hub instances on one PostgreSQL database, as behind a load balancer.</summary>
public sealed class MultiInstanceTests(PostgresHub hub) : IClassFixture<PostgresHub>
{
    [Fact]
    public async Task A_read_on_one_instance_sees_an_update_made_on_another()
    {
        using var other = hub.Restarted();
        var a = hub.CreateClient();
        var b = other.CreateClient();
        var patient = await Fhir.Read<Patient>(await a.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("吴", "一"))));
        Assert.Equal(HttpStatusCode.OK, (await b.GetAsync($"/fhir/Patient/{patient.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.GetAsync($"/fhir/Patient/{patient.Id}")).StatusCode);

        patient.Name[0].Given = ["二"];
        Assert.Equal(HttpStatusCode.OK, (await a.PutAsync($"/fhir/Patient/{patient.Id}", Fhir.Content(patient))).StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(5);
        string? version;
        do
        {
            version = (await b.GetAsync($"/fhir/Patient/{patient.Id}")).Headers.ETag?.ToString();
        }
        while (version != "W/\"2\"" && DateTime.UtcNow < deadline && await Delay());

        Assert.Equal("W/\"2\"", version);
    }

    private static async Task<bool> Delay()
    {
        await System.Threading.Tasks.Task.Delay(10);
        return true;
    }
}
