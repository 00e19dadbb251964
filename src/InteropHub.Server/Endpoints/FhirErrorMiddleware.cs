using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Diagnostics;
using InteropHub.Fhir.Errors;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Endpoints;

/// <summary>
/// The one place where failures become HTTP answers: typed <see cref="FhirException"/>s with their status,
/// Kestrel's request errors with theirs, a database timeout as 503, and anything unexpected as a logged 500. Every body
/// is an OperationOutcome.
/// </summary>
public sealed class FhirErrorMiddleware(RequestDelegate next, ILogger<FhirErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (FhirException e) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            if (e is UnsupportedMediaTypeException && HttpMethods.IsPatch(context.Request.Method))
            {
                // RFC 5789 §2.2: a PATCH refused for its media type is told which patch formats are taken.
                context.Response.Headers["Accept-Patch"] = FhirRequestReader.AcceptPatch;
            }

            await FhirResults.WriteOutcomeAsync(context, e.Outcome, (int)e.Status);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            await Answer(context, FhirException.Issue(OperationOutcome.IssueType.Invalid, e.Message), e.StatusCode);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted && IsTimeout(e))
        {
            // The database did not answer within its command timeout (a machine under load, a search planned badly): the
            // request may succeed when sent again, which a 503 says and a 500 does not.
            logger.LogWarning(e, "Timed out on {Method} {Path}", context.Request.Method, context.Request.Path);
            context.Response.Clear();
            context.Response.Headers.RetryAfter = "5";
            await FhirResults.WriteOutcomeAsync(context, FhirException.Issue(OperationOutcome.IssueType.Timeout,
                $"The database did not answer in time (trace id {context.TraceIdentifier}); try again shortly."), StatusCodes.Status503ServiceUnavailable);
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            logger.LogError(e, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            await Answer(context, FhirException.Issue(OperationOutcome.IssueType.Exception,
                $"Internal server error (trace id {context.TraceIdentifier}); the details are in the server log."), StatusCodes.Status500InternalServerError);
        }
    }

    /// <summary>A timeout anywhere in the chain (Npgsql wraps its command timeout as the inner exception).</summary>
    private static bool IsTimeout(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    private static Task Answer(HttpContext context, OperationOutcome outcome, int status)
    {
        context.Response.Clear();
        return FhirResults.WriteOutcomeAsync(context, outcome, status);
    }

    /// <summary>Gives routing's bodiless 404/405 answers an OperationOutcome that says what was wrong.</summary>
    public static Task StatusCodeOutcome(StatusCodeContext statusContext)
    {
        var context = statusContext.HttpContext;
        var request = context.Request;
        var message = context.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => $"No FHIR interaction at {request.Method} {request.Path}. The FHIR base is /fhir, e.g. GET /fhir/metadata.",
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {request.Path}.",
            _ => $"HTTP {context.Response.StatusCode} on {request.Method} {request.Path}.",
        };
        var code = context.Response.StatusCode == StatusCodes.Status404NotFound ? OperationOutcome.IssueType.NotFound : OperationOutcome.IssueType.NotSupported;
        return FhirResults.WriteOutcomeAsync(context, FhirException.Issue(code, message), context.Response.StatusCode);
    }
}
