using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Validate;

public enum ValidationMode
{
    Create,
    Update,
    Delete,
}

/// <param name="Id">The id of <c>[type]/[id]/$validate</c>, or null at type level.</param>
/// <param name="Resource">The resource to check; null only for a delete.</param>
/// <param name="Profile">The canonical URL of a profile to check the resource against as well, or null.</param>
public sealed record ValidateRequest(string ResourceType, string? Id, Resource? Resource, ValidationMode Mode, string? Profile = null);

/// <summary>
/// <c>$validate</c> (resource-operation-validate.html): whether the hub would accept the resource as a create, as an
/// update of its id, or a delete, with nothing written. The checks are the write's own: the body parsed strictly
/// (the caller reports a body that does not parse), the type and id, the business rules (referral state machine,
/// SearchParameter and Subscription definitions…) against the stored version, and the index rows; then the
/// resource's conformance to the R4 definition of its type and to its profiles (<see cref="ProfileValidator"/>), which
/// the hub's writes do not check. The answer is an OperationOutcome whatever the verdict: its errors say what the
/// write would refuse or where the resource does not conform, and where.
/// </summary>
public sealed class ValidateResource(IResourceStore store, VersionWriter writer, ProfileValidator profiles)
{
    public async Task<OperationOutcome> HandleAsync(ValidateRequest request, CancellationToken ct)
    {
        OperationOutcome rules;
        try
        {
            rules = await store.RunAsync(session => CheckAsync(session, request, ct), ct);
        }
        catch (FhirException e) when (e is InvalidInputException or BusinessRuleException or UnprocessableResourceException)
        {
            rules = e.Outcome;
        }

        if (request.Mode == ValidationMode.Delete || request.Resource is not { } resource || resource.TypeName != request.ResourceType)
        {
            return rules;
        }

        var conformance = await profiles.ValidateAsync(resource, request.Profile, ct);
        var known = new List<string>();
        foreach (var profile in (resource.Meta?.Profile ?? []).Append(request.Profile).OfType<string>().Distinct())
        {
            if (await profiles.KnowsAsync(profile, ct))
            {
                known.Add(profile);
            }
        }

        // A profile the hub does not know is the validator's error (operation-resource-validate: it SHALL be one), not said to be checked.
        var checkedAgainst = $"Checked against the FHIR R4 definition of {resource.TypeName}" + string.Concat(known.Select(p => $", {p}")) + ".";
        if (conformance.Issue.Count == 0)
        {
            rules.Issue.Add(Valid(checkedAgainst).Issue[0]);
            return rules;
        }

        // The write's refusal first, then what does not conform, then the write's verdict when it would accept: a write
        // does not check conformance, so a resource can be stored as it is and still not conform (both are said).
        var accepted = rules.Issue.Where(i => i.Severity is OperationOutcome.IssueSeverity.Information).ToList();
        var notChecked = accepted.Count > 0 && conformance.Issue.Any(i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal)
            ? Valid("The hub does not check conformance when it writes: it would store the resource with the errors above.").Issue
            : [];
        return new OperationOutcome
        {
            Issue = [.. rules.Issue.Where(i => i.Severity is not OperationOutcome.IssueSeverity.Information), .. conformance.Issue,
                .. accepted, .. notChecked, .. Valid(checkedAgainst).Issue],
        };
    }

    private async Task<OperationOutcome> CheckAsync(IWriteSession session, ValidateRequest request, CancellationToken ct)
    {
        if (request.Mode == ValidationMode.Delete)
        {
            var id = request.Id ?? throw new InvalidInputException("A delete is validated on an instance: POST [base]/[type]/[id]/$validate?mode=delete.", "mode");
            ResourceTypes.EnsureValidId(id);
            var stored = await session.ReadCurrentAsync(request.ResourceType, id, ct);
            if (stored is null || stored.IsDeleted)
            {
                return Valid($"{request.ResourceType}/{id} is not stored; deleting it changes nothing.");
            }

            // A rule that refuses the delete (a referral's Task or request) answers as the DELETE would.
            await writer.CheckDeleteRulesAsync(session, stored, ct);
            return Valid($"{request.ResourceType}/{id} may be deleted: no rule of this hub refuses it.");
        }

        var resource = request.Resource ?? throw new InvalidInputException("$validate needs the resource, as the body or as the 'resource' parameter.", "resource");
        if (resource.TypeName != request.ResourceType)
        {
            throw new InvalidInputException($"The body is a {resource.TypeName} but the request URL is for {request.ResourceType}.", "resourceType");
        }

        StoredResource? previous = null;
        var newId = VersionWriter.NewId();
        if (request.Mode == ValidationMode.Update)
        {
            // At type level the body's id stands for the URL's.
            var urlId = request.Id ?? (string.IsNullOrEmpty(resource.Id)
                ? throw new InvalidInputException("The resource has no id; an update must carry the id of the resource it replaces.", "id")
                : resource.Id);
            newId = Update.UpdateResource.CheckBodyId(urlId, resource);
            previous = await session.ReadCurrentAsync(request.ResourceType, newId, ct);
        }

        await writer.ValidateRulesAsync(session, resource, previous, ct);
        writer.Prepare(resource, newId, (previous?.VersionId ?? 0) + 1, request.Mode == ValidationMode.Update ? "PUT" : "POST");
        return Valid(request.Mode == ValidationMode.Update
            ? $"The hub would accept the resource as {(previous is null ? "the first version" : previous.IsDeleted ? $"version {previous.VersionId + 1} (after the deletion)" : "the next version")} of {request.ResourceType}/{newId}."
            : $"The hub would accept the resource as a new {request.ResourceType}.");
    }

    private static OperationOutcome Valid(string diagnostics) =>
        FhirException.Issue(OperationOutcome.IssueType.Informational, diagnostics, severity: OperationOutcome.IssueSeverity.Information);
}
