using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Hub.Indicators;
using InteropHub.Hub.Referrals;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.EvaluateMeasure;

/// <summary>
/// <c>GET [base]/Measure/{id}/$evaluate-measure?periodStart=…&amp;periodEnd=…[&amp;subject=Organization/…]</c>: the plans'
/// indicators for the period as a summary MeasureReport, for the Measures the hub computes:
/// <list type="bullet">
/// <item><c>referral-metrics</c>: up/down counts, acceptance and completion rate, median time to accept, non-recognition
/// reasons; subject: the referring or receiving organisation;</item>
/// <item><c>contract-coverage</c>: family-doctor contract coverage of the residents, per township; subject: the township
/// centre;</item>
/// <item><c>nip-coverage</c>: coverage of each dose of the national immunization programme, per township, by the
/// schedule the stored Measure holds; subject: the township centre;</item>
/// <item><c>chronic-disease-management</c>: the standardised management rate of hypertension and diabetes patients (four
/// follow-ups a year), per township; subject: the township centre;</item>
/// <item><c>maternal-care</c>: early registration, five antenatal visits, the 42-day postpartum check and hospital
/// delivery among the period's deliveries, per township; subject: the township centre;</item>
/// <item><c>primary-care-share</c>: the share of the period's visits made at primary institutions, per township of the
/// patients; subject: the township centre (its residents' visits);</item>
/// <item><c>result-recognition</c>: the result recognition rate, orders closed on a prior recognisable result among
/// those for which one existed (the others carry a non-recognition reason), per ordering institution and by reason;
/// subject: the ordering institution.</item>
/// </list>
/// periodStart and periodEnd are dates of any precision (2025, 2025-05, 2025-05-31; both ends included, China Standard
/// Time) or dateTimes with an offset, in the query (GET) or a Parameters body (POST). Only the summary report is made
/// (reportType=population, R4's name for it, or summary, R5's); another parameter is a 400, another Measure or a subject
/// the hub does not hold a 404; a stored Measure the hub has no evaluation for is a 422 (not-supported).
/// </summary>
public static class EvaluateMeasureEndpoints
{
    private static readonly string[] Measures =
        ["referral-metrics", "contract-coverage", NipCoverage.MeasureId, ChronicDiseaseManagement.MeasureId, MaternalCare.MeasureId, PrimaryCareShare.MeasureId,
            ResultRecognitionRate.MeasureId];

    private const string Operation = "$evaluate-measure";
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal) { "periodStart", "periodEnd", "subject", "reportType", "_format", "_pretty" };

    public static IEndpointRouteBuilder MapEvaluateMeasureEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/Measure/{id}/$evaluate-measure", (string id, HttpRequest request, IServiceProvider services, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(id, FromQuery(request), services, serializers, ct));
        app.MapPost("/fhir/Measure/{id}/$evaluate-measure", async (string id, HttpRequest request, FhirRequestReader reader, IServiceProvider services,
            FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(id, await reader.ReadResourceAsync(request, ct) as Parameters
                ?? throw new InvalidInputException($"POST {Operation} takes a Parameters resource.", "Parameters"), services, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string id, Parameters parameters, IServiceProvider services, FhirSerializers serializers, CancellationToken ct)
    {
        if (!Measures.Contains(id))
        {
            var evaluated = $"this hub evaluates {string.Join(", ", Measures.Select(m => $"Measure/{m}"))}";
            throw await services.GetRequiredService<IResourceStore>().ReadAsync("Measure", id, ct) switch
            {
                null => new ResourceNotFoundException($"Measure/{id} is not known; {evaluated}."),
                { IsDeleted: true } => new ResourceGoneException($"Measure/{id} was deleted; {evaluated}."),
                // The Measure is there, its evaluation is what the hub does not have.
                _ => new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.NotSupported,
                    $"Measure/{id} is stored here but not evaluated by this hub: {evaluated}."),
            };
        }

        foreach (var unknown in parameters.Parameter.Select(p => p.Name ?? "").Where(n => !Known.Contains(n)))
        {
            throw new InvalidInputException($"{Operation} has no parameter '{unknown}' here (it takes periodStart, periodEnd, subject and reportType=population).", unknown);
        }

        if (parameters.Text("reportType", Operation) is { } reportType && reportType is not ("population" or "summary"))
        {
            throw new InvalidInputException($"reportType '{reportType}' is not supported; the hub makes the population (summary) report.", "reportType");
        }

        var start = Instant(parameters, "periodStart", endOfDay: false);
        var end = Instant(parameters, "periodEnd", endOfDay: true);
        if (end <= start)
        {
            throw new InvalidInputException("periodEnd is before periodStart.", "periodEnd");
        }

        var subject = parameters.Text("subject", Operation) ?? "";
        if (subject.Length > 0 && !(subject.StartsWith("Organization/", StringComparison.Ordinal) && subject.Length > "Organization/".Length))
        {
            throw new InvalidInputException($"subject must be Organization/{{id}}, not '{subject}'.", "subject");
        }

        var organization = subject.Length > 0 ? subject : null;
        if (organization is not null
            && await services.GetRequiredService<Fhir.Storage.IResourceStore>().ReadAsync("Organization", organization["Organization/".Length..], ct) is not { IsDeleted: false })
        {
            throw new ResourceNotFoundException($"{organization} is not known.");
        }

        var indicator = new IndicatorRequest(start, end, organization);
        var report = id switch
        {
            "referral-metrics" => await services.GetRequiredService<ReferralMetrics>().HandleAsync(new ReferralMetricsRequest(start, end, organization), ct),
            "contract-coverage" => await services.GetRequiredService<ContractCoverage>().HandleAsync(indicator, ct),
            NipCoverage.MeasureId => await services.GetRequiredService<NipCoverage>().HandleAsync(indicator, ct),
            ChronicDiseaseManagement.MeasureId => await services.GetRequiredService<ChronicDiseaseManagement>().HandleAsync(indicator, ct),
            MaternalCare.MeasureId => await services.GetRequiredService<MaternalCare>().HandleAsync(indicator, ct),
            PrimaryCareShare.MeasureId => await services.GetRequiredService<PrimaryCareShare>().HandleAsync(indicator, ct),
            _ => await services.GetRequiredService<ResultRecognitionRate>().HandleAsync(indicator, ct),
        };
        return FhirResults.Json(serializers.ToJsonBytes(report));
    }

    /// <summary>The query as Parameters, every value a string (a parameter given twice is refused when read).</summary>
    private static Parameters FromQuery(HttpRequest request)
    {
        var parameters = new Parameters();
        foreach (var (name, values) in request.Query)
        {
            foreach (var value in values.OfType<string>())
            {
                parameters.Add(name, new FhirString(value));
            }
        }

        return parameters;
    }

    /// <summary>The period bound as an instant; for periodEnd, the first instant after it.</summary>
    private static DateTimeOffset Instant(Parameters parameters, string name, bool endOfDay)
    {
        var text = parameters.Text(name, Operation) ?? "";
        try
        {
            return Instant(text, name, endOfDay);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new InvalidInputException($"{name} {text} is outside the dates the hub reckons with.", name);
        }
    }

    private static DateTimeOffset Instant(string text, string name, bool endOfDay)
    {
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            return new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.FromHours(8)).AddDays(endOfDay ? 1 : 0);
        }

        // A year or a month: the whole of it.
        if (DateOnly.TryParseExact(text, "yyyy-MM", CultureInfo.InvariantCulture, DateTimeStyles.None, out var month))
        {
            return new DateTimeOffset(month.ToDateTime(TimeOnly.MinValue), TimeSpan.FromHours(8)).AddMonths(endOfDay ? 1 : 0);
        }

        if (text.Length == 4 && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var year) && year >= 1)
        {
            return new DateTimeOffset(year, 1, 1, 0, 0, 0, TimeSpan.FromHours(8)).AddYears(endOfDay ? 1 : 0);
        }

        if (text.Length > 10 && FhirDateTime.IsValidValue(text))
        {
            var instant = new FhirDateTime(text).ToDateTimeOffset(TimeSpan.FromHours(8));
            return endOfDay ? instant.AddTicks(1) : instant;
        }

        throw new InvalidInputException($"$evaluate-measure needs {name} as a date (2025, 2025-01 or 2025-01-31) or a dateTime with offset, not '{text}'.", name);
    }
}
