using System.Net;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;

namespace InteropHub.Fhir.Errors;

/// <summary>
/// A failure the client caused or must know about. The server maps every one of these to its HTTP status and
/// an OperationOutcome in one place (the error middleware); nothing else turns exceptions into responses.
/// </summary>
public partial class FhirException : Exception
{
    /// <summary>The longest quoted value an outcome's diagnostics repeat whole (see <see cref="Shortened"/>).</summary>
    private const int MaxQuotedLength = 200;

    /// <summary>Diagnostics longer than this once their quoted values are shortened are cut too.</summary>
    private const int MaxDiagnosticsLength = 10 * MaxQuotedLength;

    public FhirException(HttpStatusCode status, OperationOutcome outcome)
    {
        Status = status;
        Outcome = Shortened(outcome);
    }

    public FhirException(HttpStatusCode status, OperationOutcome.IssueType code, string diagnostics, string? expression = null)
        : this(status, Issue(code, diagnostics, expression))
    {
    }

    public HttpStatusCode Status { get; }

    public OperationOutcome Outcome { get; }

    public override string Message => Outcome.Issue.FirstOrDefault()?.Diagnostics ?? Status.ToString();

    public static OperationOutcome Issue(OperationOutcome.IssueType code, string diagnostics, string? expression = null,
        OperationOutcome.IssueSeverity severity = OperationOutcome.IssueSeverity.Error)
    {
        var issue = new OperationOutcome.IssueComponent { Severity = severity, Code = code, Diagnostics = diagnostics };
        if (expression is not null)
        {
            issue.Expression = [expression];
        }

        return new OperationOutcome { Issue = [issue] };
    }

    /// <summary>
    /// The outcome with each quoted value of its diagnostics (<c>'…'</c> or <c>"…"</c>, as the SDK's parser and this
    /// hub quote what they refuse) cut to <see cref="MaxQuotedLength"/> characters, with an ellipsis and its length:
    /// a 20 MB string refused is not sent back whole, nor logged whole.
    /// </summary>
    private static OperationOutcome Shortened(OperationOutcome outcome)
    {
        foreach (var issue in outcome.Issue)
        {
            if (issue.Diagnostics is { Length: > MaxQuotedLength } diagnostics)
            {
                diagnostics = LongQuotedValue().Replace(diagnostics, m =>
                    $"{m.ValueSpan[..(MaxQuotedLength + 1)]}…{m.ValueSpan[0]} ({m.Length - 2} characters)");
                issue.Diagnostics = diagnostics.Length > MaxDiagnosticsLength
                    ? $"{diagnostics[..MaxDiagnosticsLength]}… ({diagnostics.Length} characters)"
                    : diagnostics;
            }
        }

        return outcome;
    }

    /// <summary>
    /// A value in single or double quotes longer than <see cref="MaxQuotedLength"/>; a quote between letters (the
    /// apostrophe of "entry's") opens or closes none.
    /// </summary>
    [GeneratedRegex("""(?<![\p{L}\p{N}\]])('[^']{201,}'|"[^"]{201,}")(?![\p{L}\p{N}])""", RegexOptions.CultureInvariant)]
    private static partial Regex LongQuotedValue();
}

public sealed class ResourceNotFoundException(string diagnostics, string? expression = null)
    : FhirException(HttpStatusCode.NotFound, OperationOutcome.IssueType.NotFound, diagnostics, expression);

public sealed class ResourceGoneException(string diagnostics)
    : FhirException(HttpStatusCode.Gone, OperationOutcome.IssueType.Deleted, diagnostics);

public class InvalidInputException : FhirException
{
    public InvalidInputException(string diagnostics, string? expression = null)
        : base(HttpStatusCode.BadRequest, OperationOutcome.IssueType.Invalid, diagnostics, expression)
    {
    }

    protected InvalidInputException(OperationOutcome.IssueType code, string diagnostics, string? expression)
        : base(HttpStatusCode.BadRequest, code, diagnostics, expression)
    {
    }

    public InvalidInputException(OperationOutcome outcome)
        : base(HttpStatusCode.BadRequest, outcome)
    {
    }
}

/// <summary>
/// A search parameter or modifier the server does not know or support (400, <c>not-supported</c>): what
/// <c>Prefer: handling=lenient</c> ignores. A malformed value of a known parameter stays an
/// <see cref="InvalidInputException"/>, refused however the client prefers (search.html#errors).
/// </summary>
public sealed class UnsupportedSearchException(string diagnostics, string? expression = null)
    : InvalidInputException(OperationOutcome.IssueType.NotSupported, diagnostics, expression);

/// <summary>A request whose answer would cost more than the hub gives one request (400, <c>too-costly</c>), e.g. an unpaged expansion of a large ValueSet.</summary>
public sealed class TooCostlyException(string diagnostics, string? expression = null)
    : InvalidInputException(OperationOutcome.IssueType.TooCostly, diagnostics, expression);

/// <summary>A well-formed request that a business rule refuses (HTTP 422).</summary>
public sealed class BusinessRuleException(string diagnostics, string? expression = null)
    : FhirException(HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule, diagnostics, expression);

public sealed class PreconditionFailedException(string diagnostics)
    : FhirException(HttpStatusCode.PreconditionFailed, OperationOutcome.IssueType.Conflict, diagnostics);

public sealed class UnsupportedMediaTypeException(string diagnostics)
    : FhirException(HttpStatusCode.UnsupportedMediaType, OperationOutcome.IssueType.NotSupported, diagnostics);

public sealed class NotAcceptableException(string diagnostics)
    : FhirException(HttpStatusCode.NotAcceptable, OperationOutcome.IssueType.NotSupported, diagnostics);

public sealed class PayloadTooLargeException(long limit)
    : FhirException(HttpStatusCode.RequestEntityTooLarge, OperationOutcome.IssueType.TooCostly,
        $"The request body is larger than the configured limit of {limit} bytes (InteropHub:MaxBodyBytes).");

/// <summary>The request conflicts with the state of what it acts on (HTTP 409).</summary>
public sealed class ConflictException(string diagnostics)
    : FhirException(HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict, diagnostics);

/// <summary>A write that kept colliding with concurrent writes and was rolled back (HTTP 409); the client may retry.</summary>
public sealed class WriteConflictException(string diagnostics)
    : FhirException(HttpStatusCode.Conflict, OperationOutcome.IssueType.Transient, diagnostics);

/// <summary>A request whose result would be an invalid resource, e.g. a patch that breaks the resource (HTTP 422).</summary>
public sealed class UnprocessableResourceException(OperationOutcome outcome)
    : FhirException(HttpStatusCode.UnprocessableEntity, outcome);
