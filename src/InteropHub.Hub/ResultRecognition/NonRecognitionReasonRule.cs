using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.ResultRecognition;

/// <summary>
/// An order for a catalogued item, placed while the patient has a prior result the requester must recognise
/// (<see cref="RecognizedResults"/>), must say why the test is done again (DOMAIN.md §2): the ServiceRequest carries
/// the extension <see cref="ReasonExtension"/> with a Coding from the national list kept in
/// <c>mappings/non-recognition-reason.json</c>; without it, or with a code not on the list, the order is refused
/// with 422 naming the rule. Checked when an order is created, and when an update changes what it orders, for whom or
/// by whom, makes a finished order active again, or drops the reason it was placed with. The
/// requester may be the institution, one of its PractitionerRoles, or a practitioner (whose role names the
/// institution, else the caller's X-Organization does).
/// </summary>
public sealed class NonRecognitionReasonRule(RecognizedResults recognized, FhirSerializers serializers, TimeProvider clock) : IWriteRule
{
    public const string ReasonExtension = "https://interophub.dev/fhir/StructureDefinition/non-recognition-reason";
    public const string ReasonSystem = "https://interophub.dev/fhir/CodeSystem/non-recognition-reason";
    public const string ReasonCodeSystemId = "non-recognition-reason";

    public async System.Threading.Tasks.Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        if (next is not ServiceRequest order || Finished(order)
            || (previous is { IsDeleted: false } && serializers.ParseStored(previous.Json) is ServiceRequest before && SameOrder(order, before)))
        {
            return;
        }

        var reason = order.Extension.FirstOrDefault(e => e.Url == ReasonExtension);
        if (reason is not null)
        {
            await CheckReasonAsync(session, reason, ct);
            return;
        }

        if (order.Subject?.Reference is not { } subject || !subject.StartsWith("Patient/", StringComparison.Ordinal) || order.Code is null
            || await RequestingOrganizationAsync(session, order.Requester?.Reference, ct) is not { } requester)
        {
            return;
        }

        var at = order.AuthoredOnElement?.ToDateTimeOffset(TimeSpan.FromHours(8)) ?? clock.GetUtcNow();
        foreach (var coding in order.Code.Coding.Where(c => c.Code is not null))
        {
            IReadOnlyList<RecognizedResult> prior;
            try
            {
                prior = await recognized.HandleAsync(new RecognizedResultsRequest(subject["Patient/".Length..], $"{coding.System}|{coding.Code}", at, requester), ct);
            }
            catch (FhirException)
            {
                // No catalogue loaded or a requester the hub does not know: nothing can be said to need recognising.
                return;
            }

            if (prior.Count > 0)
            {
                throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                    $"[non-recognition-reason] {subject} has {prior.Count} result(s) of {coding.Code} that {requester} must recognise " +
                    $"(e.g. Observation/{prior[0].Observation.Id}, recognised until {prior[0].Expires:yyyy-MM-dd HH:mm}); " +
                    $"an order placed anyway needs the reason in extension {ReasonExtension} (a Coding from {ReasonSystem}). " +
                    $"GET Patient/{subject["Patient/".Length..]}/$recognized-results lists them.",
                    "ServiceRequest.extension");
            }
        }
    }

    private static bool Finished(ServiceRequest order) => order.Status is RequestStatus.Revoked or RequestStatus.Completed or RequestStatus.EnteredInError;

    /// <summary>
    /// An update that leaves what the rule judged as it was: a live order of the same codes, patient and requester, which
    /// keeps its reason if it had one (an order accepted without one is not refused later because a result arrived since).
    /// </summary>
    private static bool SameOrder(ServiceRequest next, ServiceRequest before) =>
        !Finished(before) && before.Code is { } had && next.Code is { } has
        && had.Coding.Select(c => $"{c.System}|{c.Code}").ToHashSet(StringComparer.Ordinal).SetEquals(has.Coding.Select(c => $"{c.System}|{c.Code}"))
        && before.Subject?.Reference == next.Subject?.Reference && before.Requester?.Reference == next.Requester?.Reference
        && (before.Extension.All(e => e.Url != ReasonExtension) || next.Extension.Any(e => e.Url == ReasonExtension));

    /// <summary>The institution that orders: the requester if an Organization, the organisation of a PractitionerRole, a
    /// practitioner's (by one of their roles) or else the caller's.</summary>
    private async Task<string?> RequestingOrganizationAsync(IWriteSession session, string? requester, CancellationToken ct)
    {
        switch (requester)
        {
            case null:
                return CallerContext.Organization;
            case var r when r.StartsWith("Organization/", StringComparison.Ordinal):
                return r;
            case var r when r.StartsWith("PractitionerRole/", StringComparison.Ordinal):
                var stored = await session.ReadCurrentAsync("PractitionerRole", r["PractitionerRole/".Length..], ct);
                return stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is PractitionerRole { Organization.Reference: { } organization }
                    && organization.StartsWith("Organization/", StringComparison.Ordinal)
                    ? organization
                    : CallerContext.Organization;
            case var r when r.StartsWith("Practitioner/", StringComparison.Ordinal):
                // A doctor may work for several institutions of the community: the caller's, when it is one of them;
                // else the one institution the roles name; several others and no caller: not known.
                var employers = new HashSet<string>(StringComparer.Ordinal);
                foreach (var role in await session.FindAsync("PractitionerRole", Fhir.Search.SearchCriteria.ParseQueryString("PractitionerRole", $"practitioner={r}"), 20, ct))
                {
                    if (role.Current is { IsDeleted: false } current && serializers.ParseStored(current.Json) is PractitionerRole { Organization.Reference: { } employer }
                        && employer.StartsWith("Organization/", StringComparison.Ordinal))
                    {
                        employers.Add(employer);
                    }
                }

                return CallerContext.Organization is { } caller && (employers.Count == 0 || employers.Contains(caller)) ? caller
                    : employers.Count == 1 ? employers.First() : null;
            default:
                return CallerContext.Organization;
        }
    }

    private async System.Threading.Tasks.Task CheckReasonAsync(IWriteSession session, Extension reason, CancellationToken ct)
    {
        var coding = reason.Value switch
        {
            Coding c => c,
            CodeableConcept concept => concept.Coding.FirstOrDefault(c => c.System == ReasonSystem),
            _ => null,
        };
        var stored = await session.ReadCurrentAsync("CodeSystem", ReasonCodeSystemId, ct);
        var list = stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is CodeSystem codeSystem
            ? codeSystem.Concept.Select(c => c.Code).ToHashSet(StringComparer.Ordinal)
            : null;
        if (coding is null || coding.System != ReasonSystem || coding.Code is null || (list is not null && !list.Contains(coding.Code)))
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.CodeInvalid,
                $"[non-recognition-reason-code] The non-recognition reason must be a Coding from {ReasonSystem}" +
                (list is null ? "." : $" ({string.Join(", ", list)})."),
                "ServiceRequest.extension");
        }
    }
}
