using System.Text.RegularExpressions;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;

namespace InteropHub.Server.Security;

/// <summary>
/// Until authentication exists, a caller names its organisation with <c>X-Organization: Organization/{id}</c>; the
/// referral rules use it to tell the referring from the receiving institution. A malformed value is a 400.
/// </summary>
public sealed partial class CallerOrganizationMiddleware(RequestDelegate next)
{
    public const string Header = "X-Organization";

    public async Task InvokeAsync(HttpContext context)
    {
        var value = context.Request.Headers[Header].ToString().Trim();
        if (value.Length > 0 && !OrganizationReference().IsMatch(value))
        {
            throw new InvalidInputException($"{Header} must be a reference such as Organization/QX2100012, not '{value}'.", Header);
        }

        // The FHIR API's clients; the adapters' endpoints carry legacy messages whose rules the adapters apply, so a
        // header sent there names no caller of their writes.
        var fhir = context.Request.Path.StartsWithSegments("/fhir", StringComparison.Ordinal);
        CallerContext.Organization = fhir && value.Length > 0 ? value : null;
        CallerContext.OverHttp = fhir;
        try
        {
            await next(context);
        }
        finally
        {
            CallerContext.Organization = null;
            CallerContext.OverHttp = false;
        }
    }

    [GeneratedRegex(@"^Organization/[A-Za-z0-9\-\.]{1,64}$")]
    private static partial Regex OrganizationReference();
}
