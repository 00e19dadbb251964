using System.Text;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Endpoints;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace InteropHub.Server.Tests;

/// <summary>The one place failures become answers, with the failures no HTTP request can provoke on demand.</summary>
public sealed class FhirErrorMiddlewareTests
{
    private static async Task<(int Status, string RetryAfter, string Body)> AnswerAsync(Exception thrown)
    {
        var context = new DefaultHttpContext { RequestServices = new ServiceCollection().AddSingleton(new FhirSerializers()).BuildServiceProvider() };
        context.Response.Body = new MemoryStream();
        await new FhirErrorMiddleware(_ => throw thrown, NullLogger<FhirErrorMiddleware>.Instance).InvokeAsync(context);
        return (context.Response.StatusCode, context.Response.Headers.RetryAfter.ToString(),
            Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray()));
    }

    [Fact]
    public async Task A_database_command_timeout_is_503_with_Retry_After_and_an_OperationOutcome_not_500()
    {
        // Npgsql reports its command timeout as an exception whose inner exception is a TimeoutException.
        var (status, retryAfter, body) = await AnswerAsync(new InvalidOperationException("Exception while reading from stream",
            new TimeoutException("Timeout during reading attempt")));

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, status);
        Assert.Equal("5", retryAfter);
        Assert.Contains("\"resourceType\":\"OperationOutcome\"", body, StringComparison.Ordinal);
        Assert.Contains("\"code\":\"timeout\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Any_other_unexpected_failure_is_a_logged_500_with_an_OperationOutcome()
    {
        var (status, retryAfter, body) = await AnswerAsync(new InvalidOperationException("a bug"));

        Assert.Equal(StatusCodes.Status500InternalServerError, status);
        Assert.Equal("", retryAfter);
        Assert.Contains("\"code\":\"exception\"", body, StringComparison.Ordinal);
    }
}
