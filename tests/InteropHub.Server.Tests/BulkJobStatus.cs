using System.Net;
using System.Text.Json;

namespace InteropHub.Server.Tests;

/// <summary>Polls a bulk job's status URL (export or import) until it answers 200, checking every 202 carries X-Progress.</summary>
internal static class BulkJobStatus
{
    public static async Task<JsonElement> WaitAsync(HttpClient client, string status, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var response = await client.GetAsync(status);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            }

            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            Assert.True(response.Headers.Contains("X-Progress"));
            Assert.True(DateTime.UtcNow < deadline, $"the job at {status} did not finish within {timeout.TotalSeconds} s");
            await Task.Delay(20);
        }
    }
}
