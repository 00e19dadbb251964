using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Adapters;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Adapters.Ingest;
using InteropHub.Adapters.Township;
using InteropHub.Fhir;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Adapters;

/// <summary><c>InteropHub:His</c>: the HL7 v2 HTTP interface.</summary>
public sealed class HisHttpOptions
{
    /// <summary>
    /// The HTTP status of an answer holding an AE or AR: 400 (issue 5's contract), or 200 for HIS instances that read
    /// every non-200 as a transport failure and resend (his-hl7v2.md §1: "200 with the ACK as the body, for AA, AE and AR
    /// alike"). A body without an MSH is a 400 either way.
    /// </summary>
    public int RejectStatus { get; set; } = StatusCodes.Status400BadRequest;
}

/// <summary>
/// The legacy systems' HTTP interface (issue 5, "Interface contract"): HL7 v2 over HTTP, township batch upload,
/// birth certificates, and the inbox's status and dead letters. Every body is stored in the inbox before it is
/// answered (<see cref="IngestPipeline"/>).
/// </summary>
public static class AdapterEndpoints
{
    private static readonly string[] Hl7MediaTypes = ["x-application/hl7-v2+er7", "application/hl7-v2", "text/plain"];

    private static readonly string[] ZipMediaTypes = ["application/zip", "application/x-zip-compressed", "application/octet-stream"];

    public static IEndpointRouteBuilder MapAdapterEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/adapters/his/hl7v2", PostHl7);
        app.MapPost("/adapters/township/batches", PostTownshipBatch);
        app.MapGet("/adapters/township/batches/{id:long}", GetTownshipBatch);
        app.MapPost("/adapters/birth-certificates", PostCertificates);
        app.MapGet("/adapters/status", Status);
        app.MapGet("/adapters/dead-letters", DeadLetters);
        app.MapPost("/adapters/dead-letters/{id:long}/replay", Replay);
        app.MapPost("/adapters/dead-letters/replay", ReplayAll);
        return app;
    }

    /// <summary>
    /// One or several ER7 messages → their ACKs, concatenated; 200 when every one is AA, else <see cref="HisHttpOptions.RejectStatus"/>
    /// (400 when none could be read).
    /// </summary>
    private static async Task<IResult> PostHl7(HttpRequest request, IngestPipeline pipeline, HubOptions options, HisHttpOptions his, TimeProvider clock,
        CancellationToken ct)
    {
        var mediaType = request.ContentType?.Split(';')[0].Trim() ?? "";
        if (!Hl7MediaTypes.Contains(mediaType, StringComparer.OrdinalIgnoreCase))
        {
            throw new UnsupportedMediaTypeException(
                $"An HL7 v2 message is sent as x-application/hl7-v2+er7, application/hl7-v2 or text/plain, not '{request.ContentType}'.");
        }

        var body = await ReadBodyAsync(request, options, ct);
        var maxMessageBytes = checked((int)Math.Min(options.MaxBodyBytes, int.MaxValue));
        var messages = Hl7Body.Split(body, maxMessageBytes);
        if (messages.Count == 0)
        {
            throw new InvalidInputException("The body holds no HL7 v2 message (it must start with MSH).");
        }

        var acks = new List<byte>();
        var allAccepted = true;
        for (var i = 0; i < messages.Count; i++)
        {
            var frame = messages[i];
            if (frame.Kind != MllpFrameKind.Message)
            {
                // A frame cut short or over the limit, or bytes outside any frame, are refused whole, as on the MLLP
                // port, and never stored or applied (a cut frame may parse as a message without its end); the body's
                // other messages still go.
                acks.AddRange(MllpRefusal.Ack(MllpRefusal.Refuse(frame, maxMessageBytes, messages.Count > 1 ? i + 1 : null), clock.GetLocalNow()));
                allAccepted = false;
                continue;
            }

            if (!StartsWithMsh(frame.Bytes.Span))
            {
                // Bytes that are no HL7 message at all have no key to store them under, nor anything a replay could
                // apply: refused, not kept, so a body of junk frames cannot fill the dead letters.
                acks.AddRange(MllpRefusal.Ack(MllpRefusal.NotAMessage(messages.Count > 1 ? i + 1 : null), clock.GetLocalNow()));
                allAccepted = false;
                continue;
            }

            var reply = await pipeline.ReceiveHl7Async(frame.Bytes.ToArray(), ct);
            allAccepted &= reply.Code == AckCode.AA;
            acks.AddRange(reply.Ack);
        }

        // his-hl7v2.md §1: a body in which no message could be read is a 400 whatever the setting.
        return new Hl7Result(acks.ToArray(), allAccepted ? StatusCodes.Status200OK
            : messages.Any(m => m.Kind == MllpFrameKind.Message && StartsWithMsh(m.Bytes.Span)) ? his.RejectStatus : StatusCodes.Status400BadRequest);
    }

    private static bool StartsWithMsh(ReadOnlySpan<byte> message)
    {
        message = message.TrimStart("\r\n \t"u8);
        return (message.StartsWith("\uFEFF"u8) ? message[3..] : message).StartsWith("MSH"u8);
    }

    /// <summary>
    /// A batch is a zip (township-export.md): another media type is 415, and bytes that are no zip at all (no local file
    /// or end-of-directory signature) or no readable one (no central directory: cut short; a manifest whose data does not
    /// inflate or fails its CRC-32: damaged) are 400, neither stored. A batch with another damaged file, or files that
    /// disagree with its manifest, is stored and reported (INTEGRITY, that file alone).
    /// </summary>
    private static async Task<IResult> PostTownshipBatch(HttpRequest request, IngestPipeline pipeline, HubOptions options, CancellationToken ct)
    {
        var mediaType = request.ContentType?.Split(';')[0].Trim() ?? "";
        if (!ZipMediaTypes.Contains(mediaType, StringComparer.OrdinalIgnoreCase))
        {
            throw new UnsupportedMediaTypeException(
                $"A township batch is sent as a zip (application/zip, application/x-zip-compressed or application/octet-stream), not '{request.ContentType}'.");
        }

        var body = await ReadBodyAsync(request, options, ct);
        if (body.Length > 0)
        {
            if (!body.AsSpan().StartsWith("PK\u0003\u0004"u8) && !body.AsSpan().StartsWith("PK\u0005\u0006"u8))
            {
                throw new InvalidInputException("The body is not a zip archive (it does not begin with the PK signature of a zip): a township batch is its folder zipped.");
            }

            try
            {
                // The directory and the manifest must read: a zip cut short, or whose manifest was damaged in transit,
                // could never be applied, on replay either. Another damaged file is refused alone in the batch's report
                // (township-export.md §1: a file that fails its check is rejected, the others are processed).
                TownshipBatchReader.FileFromZip(body, "manifest.json");
            }
            catch (InvalidDataException e)
            {
                throw new InvalidInputException($"The body is not a readable zip archive ({e.Message}): was it cut short or damaged? Send the batch again.");
            }
        }

        var result = await pipeline.ReceiveTownshipAsync(body, ct);
        var location = $"/adapters/township/batches/{result.Message.Id.ToString(CultureInfo.InvariantCulture)}";
        return new LocatedResult(Results.Json(Describe(result.Message), statusCode: StatusCodes.Status202Accepted), location);
    }

    private static async Task<IResult> GetTownshipBatch(long id, IInboxStore inbox, CancellationToken ct) =>
        await inbox.GetAsync(id, ct) is { Source: IngestSources.Township } message
            ? Results.Json(Describe(message))
            : throw new ResourceNotFoundException($"There is no township batch {id}.");

    /// <summary>
    /// One outcome per certificate; 200 when none was refused, 207-style partial success when some were and others not,
    /// 400 when every one was (issue 5). A certificate the hub has already (UNCHANGED) or has a later version of (STALE)
    /// is handled as the spec says, not refused (birth-certificate.md §1 "Idempotency"): it counts with the applied ones.
    /// </summary>
    private static async Task<IResult> PostCertificates(HttpRequest request, IngestPipeline pipeline, HubOptions options, CancellationToken ct)
    {
        // birth-certificate.md: "POST with Content-Type: application/xml" (text/xml is its older name). Anything else is
        // refused before it is stored, as a township upload that is no zip is.
        var mediaType = request.ContentType?.Split(';')[0].Trim() ?? "";
        if (!mediaType.Equals("application/xml", StringComparison.OrdinalIgnoreCase) && !mediaType.Equals("text/xml", StringComparison.OrdinalIgnoreCase))
        {
            throw new UnsupportedMediaTypeException($"Birth certificates are sent as application/xml, not '{request.ContentType}'.");
        }

        var result = await pipeline.ReceiveCertificatesAsync(await ReadBodyAsync(request, options, ct), ct);
        var handled = result.Outcome.Issue.Any(i => i.Details?.Coding.FirstOrDefault()?.Code is "APPLIED" or "UNCHANGED" or "STALE");
        var status = result.Processed ? StatusCodes.Status200OK : handled ? StatusCodes.Status207MultiStatus : StatusCodes.Status400BadRequest;
        return FhirResults.Outcome(result.Outcome, status);
    }

    private static async Task<IResult> Status(IInboxStore inbox, IngestPipeline pipeline, CancellationToken ct)
    {
        var counts = await inbox.CountsAsync(ct);
        return Results.Json(new
        {
            sources = counts.Select(c => new { source = c.Source, received = c.Received, processed = c.Processed, failed = c.Failed }),
            unmappedCodes = (await pipeline.UnmappedCodesAsync(ct)).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new { code = p.Key, count = p.Value }),
            hisSharedTransactions = pipeline.HisGroups,
        });
    }

    /// <summary>The dead letters, oldest first, a page of <c>count</c> (100, at most 1,000) after id <c>after</c>, of one <c>source</c> when given.</summary>
    private static async Task<IResult> DeadLetters(IInboxStore inbox, long? after, int? count, string? source, CancellationToken ct)
    {
        CheckSource(source);
        var page = await inbox.ListAsync(InboxStatus.Failed, source, after, Math.Clamp(count ?? 100, 1, 1000), ct);
        return Results.Json(page.Select(Describe));
    }

    private static void CheckSource(string? source)
    {
        if (source is not (null or IngestSources.His or IngestSources.Township or IngestSources.BirthCertificate))
        {
            throw new InvalidInputException($"source '{source}' is not one of {IngestSources.His}, {IngestSources.Township}, {IngestSources.BirthCertificate}.", "source");
        }
    }

    private static async Task<IResult> Replay(long id, IngestPipeline pipeline, CancellationToken ct)
    {
        var result = await pipeline.ReplayAsync(id, ct) ?? throw new ResourceNotFoundException($"There is no inbox message {id}.");
        return Results.Json(Describe(result.Message));
    }

    /// <summary>Replays every dead letter, or those of one <c>source</c>, or those refused for one <c>reason</c> (a code of the README's table).</summary>
    private static async Task<IResult> ReplayAll(IngestPipeline pipeline, string? source, string? reason, CancellationToken ct)
    {
        CheckSource(source);

        var reasons = Enum.GetValues<RejectionReason>().Select(r => r.Code()).ToList();
        if (reason is not null && !reasons.Contains(reason, StringComparer.Ordinal))
        {
            throw new InvalidInputException($"reason '{reason}' is not one of {string.Join(", ", reasons)}.", "reason");
        }

        var results = await pipeline.ReplayAllAsync(source, reason, ct);
        return Results.Json(new
        {
            replayed = results.Count,
            processed = results.Count(r => r.Processed),
            messages = results.Select(r => Describe(r.Message)),
        });
    }

    private static object Describe(InboxMessage message) => new
    {
        id = message.Id,
        source = message.Source,
        messageId = message.MessageId,
        receivedAt = message.ReceivedAt,
        status = message.Status.ToString(),
        attempts = message.Attempts,
        processedAt = message.ProcessedAt,
        outcome = message.Outcome is { } json ? JsonDocument.Parse(json).RootElement.Clone() : (JsonElement?)null,
    };

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, HubOptions options, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > options.MaxBodyBytes)
            {
                throw new PayloadTooLargeException(options.MaxBodyBytes);
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0)
        {
            throw new InvalidInputException("The request body is empty.");
        }

        return buffer.ToArray();
    }

    /// <summary>Adds the Location of the created batch resource to the 202.</summary>
    private sealed class LocatedResult(IResult inner, string location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.Location = location;
            return inner.ExecuteAsync(httpContext);
        }
    }

    /// <summary>The ACK/NAK(s) as the body, in the character set of the messages answered.</summary>
    private sealed class Hl7Result(byte[] body, int status) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            httpContext.Response.ContentType = "x-application/hl7-v2+er7";
            return httpContext.Response.Body.WriteAsync(body).AsTask();
        }
    }
}
