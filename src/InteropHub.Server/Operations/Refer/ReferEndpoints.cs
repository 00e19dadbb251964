using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Hub.Referrals;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Refer;

/// <summary>
/// <c>POST [base]/ServiceRequest/$refer</c> with a Parameters body (patient, from, to, direction, reason,
/// supportingInfo, note): creates the referral ServiceRequest and Task in one transaction and answers 201 with the
/// transaction-response Bundle and the Task's Location.
/// </summary>
public static class ReferEndpoints
{
    public static IEndpointRouteBuilder MapReferEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/fhir/ServiceRequest/$refer", Handle);
        return app;
    }

    private static async Task<IResult> Handle(HttpRequest request, FhirRequestReader reader, ReferPatient handler, FhirSerializers serializers,
        CancellationToken ct)
    {
        var parameters = await reader.ReadResourceAsync(request, ct) as Parameters
            ?? throw new InvalidInputException("$refer takes a Parameters resource.", "resourceType");
        var baseUrl = FhirResults.BaseUrl(request);
        var outcome = await handler.HandleAsync(ReferPatient.Parse(parameters), baseUrl, ct);
        request.HttpContext.Response.Headers.Location = $"{baseUrl}/{outcome.TaskLocation}";
        return FhirResults.Json(BundleWriter.Response(outcome.Result, request, serializers), StatusCodes.Status201Created);
    }
}
