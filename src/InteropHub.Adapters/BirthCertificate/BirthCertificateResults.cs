using Hl7.Fhir.Model;
using InteropHub.Adapters.His;

namespace InteropHub.Adapters.BirthCertificate;

/// <summary>A problem in a certificate document, located by line and position in the XML.</summary>
public sealed record CertificateIssue(string Code, string Detail, int Line, int Position, IssueSeverity Severity = IssueSeverity.Error);

/// <summary>The outcome for one certificate of a document or batch.</summary>
public abstract record CertificateOutcome(string? CertificateNo, int RecordVersion, IReadOnlyList<CertificateIssue> Issues);

/// <summary>
/// The certificate maps to <see cref="Transaction"/> (last entry: its Provenance). The idempotency key is
/// (<see cref="CertificateOutcome.CertificateNo"/>, <see cref="CertificateOutcome.RecordVersion"/>) (birth-certificate.md
/// §1); the ingest ignores a pair it has applied and a lower version. <see cref="Supersedes"/> is the certificate a
/// 补发/换发 replaces: its stored DocumentReference is to be marked superseded (the mapper cannot rewrite a
/// document it has not seen).
/// </summary>
public sealed record CertificateAccepted(string Number, int Version, Bundle Transaction, string? Supersedes, IReadOnlyList<CertificateIssue> Warnings)
    : CertificateOutcome(Number, Version, Warnings);

public sealed record CertificateRejected(string? Number, int Version, IReadOnlyList<CertificateIssue> Errors)
    : CertificateOutcome(Number, Version, Errors);

/// <summary>
/// A document: one certificate, or a batch of them. <see cref="DocumentIssues"/> reject the whole document
/// (not well-formed, DTD present, wrong batch count); otherwise each certificate has its own outcome.
/// </summary>
public sealed record BirthCertificateResult(IReadOnlyList<CertificateIssue> DocumentIssues, IReadOnlyList<CertificateOutcome> Certificates)
{
    public bool DocumentRejected => DocumentIssues.Count > 0;
}

/// <summary>
/// On a certificate's transaction: a correction of the father leaves no father declared, and <paramref name="Id"/> is the
/// RelatedPerson the father it declared before is. The ingest withdraws a stored one (active false) with the certificate.
/// </summary>
public sealed record UndeclaredFather(string Id);
