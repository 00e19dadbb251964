using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Subscriptions;

/// <summary>
/// A Subscription the hub can deliver (subscription.html): a <c>rest-hook</c> channel to an http(s) endpoint, a
/// payload of a FHIR mime type or none, and criteria the hub's search evaluates.
/// </summary>
public sealed record RestHookSubscription(
    string Id,
    string ResourceType,
    SearchCriteria Criteria,
    Uri Endpoint,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    string? Payload,
    DateTimeOffset? End = null)
{
    /// <summary>Past <c>Subscription.end</c> the server turns it off (subscription.html): nothing more is sent.</summary>
    public bool EndedBy(DateTimeOffset now) => End is { } end && end <= now;

    /// <summary>The payload mime types the hub can send; empty payload: a notification without body.</summary>
    public static readonly IReadOnlyList<string> PayloadTypes = ["application/fhir+json", "application/json", "application/fhir+xml", "application/xml"];

    /// <summary>Headers the hub sets on each notification itself, from the endpoint and the payload: a channel header cannot replace them.</summary>
    private static readonly string[] HubHeaders = ["Host", "Content-Type", "Content-Length", "Transfer-Encoding"];

    /// <summary>
    /// Why a channel header cannot be sent as one HTTP header, or null. A CR or LF in a value would end the header and
    /// start another (header injection); .NET sends no non-ASCII value (RFC 9110 §5.5: visible ASCII, spaces, tabs).
    /// </summary>
    public static string? HeaderProblem(string name, string value)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal)))
        {
            return $"has the name '{Printable(name)}', which is not an HTTP field name (RFC 9110 §5.1: ASCII letters, digits and !#$%&'*+-.^_`|~)";
        }

        if (HubHeaders.Contains(name, StringComparer.OrdinalIgnoreCase))
        {
            return $"names {name}, which the hub sets itself on each notification (from channel.endpoint and channel.payload); a channel header cannot replace it";
        }

        return value.Any(c => c is (< ' ' and not '\t') or > '~')
            ? "has a control character (such as CR or LF) or a non-ASCII character in its value; an HTTP field value holds visible ASCII characters, spaces and tabs only (RFC 9110 §5.5)"
            : null;
    }

    /// <summary>The text with its control characters as <c>\uXXXX</c>, so that an outcome or a log line quoting it stays one line.</summary>
    private static string Printable(string text) =>
        string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    public bool IsXml => Payload is not null && Payload.EndsWith("xml", StringComparison.Ordinal);

    /// <summary>The criteria narrowed to some resources: run in the write session, it tells which of their versions match.</summary>
    public SearchCriteria For(IReadOnlyList<string> ids) =>
        new(Criteria.ResourceTypes, [.. Criteria.Criteria, new IdCriterion(ids)], Criteria.Applied, []);

    /// <summary>Reads a Subscription, or refuses it (422 naming the element) when the hub cannot deliver it.</summary>
    public static RestHookSubscription From(Subscription subscription, SearchParser parser)
    {
        var channel = subscription.Channel;
        if (channel?.Type != Subscription.SubscriptionChannelType.RestHook)
        {
            throw new BusinessRuleException(
                $"Subscription.channel.type '{(channel?.Type is { } type ? Hl7.Fhir.Utility.EnumUtility.GetLiteral(type) : "")}' is not supported: this hub delivers rest-hook channels only.",
                "Subscription.channel.type");
        }

        if (!Uri.TryCreate(channel.Endpoint, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new BusinessRuleException($"Subscription.channel.endpoint '{channel.Endpoint}' is not an absolute http or https URL.", "Subscription.channel.endpoint");
        }

        var payload = string.IsNullOrWhiteSpace(channel.Payload) ? null : channel.Payload.Split(';')[0].Trim().ToLowerInvariant();
        if (payload is not null && !PayloadTypes.Contains(payload))
        {
            throw new BusinessRuleException(
                $"Subscription.channel.payload '{channel.Payload}' is not supported; use one of {string.Join(", ", PayloadTypes)}, or none for notifications without body.",
                "Subscription.channel.payload");
        }

        var headers = new List<KeyValuePair<string, string>>();
        foreach (var (given, i) in channel.Header.Select((h, i) => (h, i)))
        {
            var where = $"Subscription.channel.header[{i}]";
            var header = given ?? "";
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new BusinessRuleException($"{where} '{Printable(header)}' is not of the form 'Name: value'.", where);
            }

            var (name, value) = (header[..colon].Trim(), header[(colon + 1)..].Trim());
            if (HeaderProblem(name, value) is { } problem)
            {
                throw new BusinessRuleException($"{where} '{Printable(header)}' {problem}.", where);
            }

            headers.Add(new(name, value));
        }

        var criteria = subscription.Criteria ?? "";
        var mark = criteria.IndexOf('?', StringComparison.Ordinal);
        var resourceType = mark < 0 ? criteria : criteria[..mark];
        if (!ResourceTypes.IsKnown(resourceType))
        {
            throw new BusinessRuleException($"Subscription.criteria '{criteria}' does not start with a resource type this hub supports.", "Subscription.criteria");
        }

        SearchCriteria parsed;
        try
        {
            parsed = parser.ParseCriteria(resourceType, mark < 0 ? [] : SearchParser.SplitQueryString(resourceType, criteria[(mark + 1)..]));
        }
        catch (FhirException e)
        {
            throw new BusinessRuleException($"Subscription.criteria '{criteria}' cannot be evaluated: {e.Message}", "Subscription.criteria");
        }

        return new RestHookSubscription(subscription.Id ?? "", resourceType, parsed, endpoint, headers, payload,
            subscription.End);
    }
}
