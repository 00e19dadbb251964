using Hl7.Fhir.Model;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Hub.Referrals;

/// <param name="Patient">The patient referred, <c>Patient/{id}</c>.</param>
/// <param name="From">The referring organisation, <c>Organization/{id}</c>.</param>
/// <param name="To">The receiving organisation, <c>Organization/{id}</c>.</param>
/// <param name="SupportingInfo">References to results and documents sent with the patient.</param>
public sealed record ReferRequest(
    string Patient,
    string From,
    string To,
    ReferralDirection Direction,
    CodeableConcept Reason,
    IReadOnlyList<string> SupportingInfo,
    string? Note);

/// <param name="Result">The transaction-response of the ServiceRequest and Task.</param>
/// <param name="TaskLocation">Where the Task was written, <c>Task/{id}/_history/1</c>.</param>
public sealed record ReferOutcome(BundleResult Result, string TaskLocation);

/// <summary>
/// <c>POST [base]/ServiceRequest/$refer</c>: the convenience form of creating a referral (DOMAIN.md §2). The
/// referral ServiceRequest and its Task are built from the parameters and written as one transaction through the
/// normal transaction path, so the partner rule and the Task state machine apply exactly as for a client's bundle.
/// </summary>
public sealed class ReferPatient(ProcessBundle bundles, IResourceStore store, FhirSerializers serializers, TimeProvider clock)
{
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "patient", "from", "to", "direction", "reason", "supportingInfo", "note",
    };

    /// <summary>Reads the operation's parameters; a missing, repeated, unknown or mistyped one is refused by name.</summary>
    public static ReferRequest Parse(Parameters parameters)
    {
        for (var i = 0; i < parameters.Parameter.Count; i++)
        {
            if (!Known.Contains(parameters.Parameter[i].Name ?? ""))
            {
                throw new InvalidInputException(
                    $"$refer has no parameter '{parameters.Parameter[i].Name}'; it takes {string.Join(", ", Known)}.", $"Parameters.parameter[{i}]");
            }
        }

        var direction = (Single(parameters, "direction") as PrimitiveType)?.ToString() switch
        {
            "up" or "UP" => ReferralDirection.Up,
            "down" or "DOWN" => ReferralDirection.Down,
            _ => throw new InvalidInputException("$refer needs direction = up (上转) or down (下转) as valueCode.", "direction"),
        };
        var reason = Single(parameters, "reason") switch
        {
            CodeableConcept concept when concept.Coding.Count > 0 || !string.IsNullOrWhiteSpace(concept.Text) => concept,
            FhirString { Value: { } text } when !string.IsNullOrWhiteSpace(text) => new CodeableConcept { Text = text },
            _ => throw new InvalidInputException("$refer needs reason as valueCodeableConcept or valueString.", "reason"),
        };
        var supportingInfo = parameters.Parameter.Where(p => p.Name == "supportingInfo")
            .Select(p => (p.Value as ResourceReference)?.Reference is { Length: > 0 } reference && reference.Contains('/', StringComparison.Ordinal)
                ? reference
                : throw new InvalidInputException("Each supportingInfo is a valueReference to a result or document (Type/id).", "supportingInfo"))
            .ToList();
        var note = Single(parameters, "note", optional: true) switch
        {
            null => null,
            FhirString { Value: var text } => text,
            _ => throw new InvalidInputException("note is a valueString.", "note"),
        };

        return new ReferRequest(Reference(parameters, "patient", "Patient"), Reference(parameters, "from", "Organization"),
            Reference(parameters, "to", "Organization"), direction, reason, supportingInfo, note);
    }

    public async Task<ReferOutcome> HandleAsync(ReferRequest request, string baseUrl, CancellationToken ct)
    {
        // What the referral names must exist: a referral of nobody, or with a summary that is not there, helps no one.
        foreach (var (name, reference) in request.SupportingInfo.Select(r => ("supportingInfo", r)).Prepend(("patient", request.Patient)))
        {
            var slash = reference.IndexOf('/', StringComparison.Ordinal);
            if (!ResourceTypes.IsKnown(reference[..slash]) || await store.ReadAsync(reference[..slash], reference[(slash + 1)..], ct) is not { IsDeleted: false } stored)
            {
                throw new InvalidInputException($"$refer: {name} {reference} is not known to the hub.", name);
            }

            if (name == "patient" && serializers.ParseStored(stored.Json) is Patient { Active: false } retired
                && retired.Link.FirstOrDefault(l => l.Type == Patient.LinkType.ReplacedBy)?.Other?.Reference is { } survivor)
            {
                // A merged record: the referral would sit where the patient's record no longer is ($everything of the survivor).
                throw new InvalidInputException($"$refer: {reference} was merged into {survivor} (Patient.link replaced-by); refer {survivor}.", name);
            }
        }

        var requestUrl = $"urn:uuid:{Guid.NewGuid()}";
        var now = new FhirDateTime(clock.GetUtcNow());
        var serviceRequest = new ServiceRequest
        {
            Status = RequestStatus.Active,
            Intent = RequestIntent.Order,
            Category =
            [
                new CodeableConcept(ReferralWriteRule.ReferralCategorySystem, ReferralWriteRule.ReferralCategoryCode, "Patient referral"),
                new CodeableConcept(ReferralWriteRule.DirectionSystem, request.Direction == ReferralDirection.Up ? "UP" : "DOWN",
                    request.Direction == ReferralDirection.Up ? "上转" : "下转"),
            ],
            Subject = new ResourceReference(request.Patient),
            AuthoredOnElement = now,
            Requester = new ResourceReference(request.From),
            Performer = [new ResourceReference(request.To)],
            ReasonCode = [request.Reason],
            SupportingInfo = request.SupportingInfo.Select(r => new ResourceReference(r)).ToList(),
        };
        if (request.Note is { } note)
        {
            serviceRequest.Note.Add(new Annotation { Text = new Markdown(note) });
        }

        var task = new FhirTask
        {
            Status = FhirTask.TaskStatus.Requested,
            Intent = FhirTask.TaskIntent.Order,
            Focus = new ResourceReference(requestUrl),
            For = new ResourceReference(request.Patient),
            AuthoredOnElement = now,
            Requester = new ResourceReference(request.From),
            Owner = new ResourceReference(request.To),
        };
        var bundle = new Bundle
        {
            Type = Bundle.BundleType.Transaction,
            Entry =
            [
                new Bundle.EntryComponent
                {
                    FullUrl = requestUrl,
                    Resource = serviceRequest,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
                },
                new Bundle.EntryComponent
                {
                    FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                    Resource = task,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Task" },
                },
            ],
        };

        if (CallerContext.Organization is { } caller && caller != request.From)
        {
            // Only the referring organisation makes a referral: say so in the operation's terms, not the Task's.
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"$refer: the caller (X-Organization: {caller}) is not the referring organisation {request.From}; only it makes the referral.", "from");
        }

        BundleResult result;
        try
        {
            result = await bundles.HandleAsync(new BundleRequest(bundle, baseUrl), ct);
        }
        catch (FhirException e)
        {
            // The transaction names its own entries ("Bundle.entry[0] (POST ServiceRequest): …"), which the caller never
            // sent: the refusal is given with the rule's words and the parameter it concerns.
            foreach (var issue in e.Outcome.Issue)
            {
                if (issue.Diagnostics is { } diagnostics && diagnostics.StartsWith("Bundle.entry[", StringComparison.Ordinal)
                    && diagnostics.IndexOf("): ", StringComparison.Ordinal) is var cut and > 0)
                {
                    issue.Diagnostics = "$refer: " + diagnostics[(cut + 3)..];
                }

                issue.Expression = [.. issue.Expression.Where(x => x?.StartsWith("Bundle.entry[", StringComparison.Ordinal) == false).Select(ParameterOf)];
            }

            throw;
        }

        return new ReferOutcome(result, result.Entries[1].Location ?? $"Task/{result.Entries[1].Resource!.Id}");
    }

    /// <summary>The operation's parameter an element of the request or Task it writes stands for.</summary>
    private static string? ParameterOf(string? element) => element switch
    {
        null => null,
        _ when element.Contains("performer", StringComparison.Ordinal) || element.Contains("owner", StringComparison.Ordinal) => "to",
        _ when element.Contains("requester", StringComparison.Ordinal) => "from",
        _ when element.Contains("subject", StringComparison.Ordinal) || element.EndsWith(".for", StringComparison.Ordinal) => "patient",
        _ when element.Contains("category", StringComparison.Ordinal) => "direction",
        _ => element,
    };

    private static DataType? Single(Parameters parameters, string name, bool optional = false)
    {
        var found = parameters.Parameter.Where(p => p.Name == name).ToList();
        return found.Count switch
        {
            0 when optional => null,
            0 => throw new InvalidInputException($"$refer needs the parameter '{name}'.", name),
            1 => found[0].Value,
            _ => throw new InvalidInputException($"$refer takes one '{name}', not {found.Count}.", name),
        };
    }

    private static string Reference(Parameters parameters, string name, string type) =>
        Single(parameters, name) is ResourceReference { Reference: { } reference } && reference.StartsWith(type + "/", StringComparison.Ordinal)
            && reference.Length > type.Length + 1 && !reference[(type.Length + 1)..].Contains('/', StringComparison.Ordinal)
            ? reference
            : throw new InvalidInputException($"$refer needs {name} as a valueReference to {type}/{{id}}.", name);
}
