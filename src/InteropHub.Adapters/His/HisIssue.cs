using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.His;

public enum IssueSeverity
{
    Error,
    Warning,
}

/// <summary>
/// One problem found in a message: an error rejects it (AE/AR), a warning only accompanies AA. Each becomes one
/// ERR segment (his-hl7v2.md §4 MSA/ERR): <see cref="Location"/> is ERR-2, <see cref="Hl7ErrorCode"/> ERR-3,
/// <see cref="Reason"/> and <see cref="Summary"/> ERR-5, <see cref="Detail"/> ERR-8.
/// </summary>
public sealed record HisIssue(RejectionReason Reason, Hl7Location? Location, string Detail,
    IssueSeverity Severity = IssueSeverity.Error, int? ErrorCode = null, string? SummaryText = null)
{
    public int Hl7ErrorCode => ErrorCode ?? Reason.Hl7ErrorCode();

    public string Summary => SummaryText ?? Reason.Text();

    /// <summary>A warning: ERR-3 <c>0</c> (message accepted), ERR-4 <c>W</c>, ERR-5 <c>WARNING</c>; its reason is not reported.</summary>
    public static HisIssue Warning(Hl7Location? location, string detail, RejectionReason reason = RejectionReason.Malformed) =>
        new(reason, location, detail, IssueSeverity.Warning, 0, "警告");
}
