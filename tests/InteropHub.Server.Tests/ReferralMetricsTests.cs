using System.Globalization;
using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Referrals;
using InteropHub.Hub.ResultRecognition;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/referral-metrics/$evaluate-measure</c> over referrals with known states and ages.</summary>
public abstract class ReferralMetricsTests(HubFactory hub)
{
    private const string Partner = "https://interophub.dev/fhir/StructureDefinition/referral-partner";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Township => $"Organization/ts-{_suffix}";

    private string Hospital => $"Organization/hosp-{_suffix}";

    [Fact]
    public async Task The_report_counts_referrals_by_direction_and_gives_the_rates_and_the_median_time_to_accept()
    {
        await OrganisationsAsync();
        var now = DateTimeOffset.UtcNow;
        // Up: accepted after 10 h and completed; accepted after 4 h; rejected. Down: still waiting.
        var completed = await ReferAsync(Township, Hospital, "UP", now.AddHours(-10));
        await MoveAsync(completed, Hospital, FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Completed);
        var accepted = await ReferAsync(Township, Hospital, "UP", now.AddHours(-4));
        await MoveAsync(accepted, Hospital, FhirTask.TaskStatus.Accepted);
        var rejected = await ReferAsync(Township, Hospital, "UP", now.AddHours(-1));
        await MoveAsync(rejected, Hospital, FhirTask.TaskStatus.Rejected);
        await ReferAsync(Hospital, Township, "DOWN", now.AddHours(-2));
        await ReferAsync(Township, Hospital, "UP", now.AddDays(-40));
        await OrderAsync("emergency");
        await OrderAsync("emergency");
        await OrderAsync("patient-request");

        var report = await EvaluateAsync($"periodStart={Day(now.AddDays(-1))}&periodEnd={Day(now.AddDays(1))}&subject={Township}");

        var up = Group(report, "up");
        Assert.Equal(3, Count(up, "initial-population"));
        Assert.Equal(2, Count(up, "accepted"));
        Assert.Equal(1, Count(up, "completed"));
        Assert.Equal(1, Count(up, "rejected"));
        Assert.Equal([Township], up.Stratifier.Single(s => s.Code[0].Coding[0].Code == "requester").Stratum.Select(s => s.Value!.Text));
        Assert.Equal(1, Count(Group(report, "down"), "initial-population"));
        Assert.Equal(0.5m, Group(report, "acceptance-rate").MeasureScore!.Value);
        Assert.Equal(0.5m, Group(report, "completion-rate").MeasureScore!.Value);
        Assert.InRange(Group(report, "median-time-to-accept").MeasureScore!.Value!.Value, 6.98m, 7.05m);
        var reasons = Group(report, "non-recognition-reason");
        Assert.Equal(3, Count(reasons, "initial-population"));
        Assert.Equal([("emergency", 2), ("patient-request", 1)],
            reasons.Stratifier.Single(s => s.Code[0].Coding[0].Code == "reason").Stratum.Select(s => (s.Value!.Text, s.Population[0].Count ?? 0)));
    }

    [Fact]
    public async Task Time_to_accept_is_taken_from_when_the_change_happened_and_a_late_answer_counts_as_overdue()
    {
        await OrganisationsAsync();
        var now = DateTimeOffset.UtcNow;
        // Made 3 days ago; its acceptance happened 50 h after (Task.lastModified), though the hub hears of it only now.
        var late = await ReferAsync(Township, Hospital, "UP", now.AddDays(-3));
        late.Status = FhirTask.TaskStatus.Accepted;
        late.LastModifiedElement = new FhirDateTime(now.AddDays(-3).AddHours(50));
        var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Task/{late.Id}") { Content = Fhir.Content(late) };
        request.Headers.Add("X-Organization", Hospital);
        Assert.Equal(HttpStatusCode.OK, (await _client.SendAsync(request)).StatusCode);

        var report = await EvaluateAsync($"periodStart={Day(now.AddDays(-4))}&periodEnd={Day(now.AddDays(1))}&subject={Township}");

        Assert.InRange(Group(report, "median-time-to-accept").MeasureScore!.Value!.Value, 49.9m, 50.1m);
        Assert.Equal(1, Count(Group(report, "up"), OverdueReferrals.Overdue));
    }

    [Fact]
    public async Task The_period_and_the_subject_select_the_referrals_counted()
    {
        await OrganisationsAsync();
        var now = DateTimeOffset.UtcNow;
        await ReferAsync(Township, Hospital, "UP", now.AddDays(-40));

        var earlier = await EvaluateAsync($"periodStart={Day(now.AddDays(-41))}&periodEnd={Day(now.AddDays(-39))}&subject={Township}");
        var later = await EvaluateAsync($"periodStart={Day(now.AddDays(-30))}&periodEnd={Day(now)}&subject={Township}");
        var quiet = new Organization { Id = $"quiet-{_suffix}", Name = "没有转诊的卫生院" };
        Assert.True((await _client.PutAsync($"/fhir/Organization/{quiet.Id}", Fhir.Content(quiet))).IsSuccessStatusCode);
        var elsewhere = await EvaluateAsync($"periodStart={Day(now.AddDays(-41))}&periodEnd={Day(now)}&subject=Organization/{quiet.Id}");
        var unknown = await _client.GetAsync($"/fhir/Measure/referral-metrics/$evaluate-measure?periodStart={Day(now.AddDays(-41))}&periodEnd={Day(now)}&subject=Organization/nobody-{_suffix}");

        Assert.Equal(1, Count(Group(earlier, "up"), "initial-population"));
        Assert.Equal(0, Count(Group(later, "up"), "initial-population"));
        Assert.Equal(0, Count(Group(elsewhere, "up"), "initial-population"));
        Assert.Null(Group(elsewhere, "acceptance-rate").MeasureScore);
        // An organisation the hub does not hold is no subject, as for the other measures.
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal($"Organization/nobody-{_suffix} is not known.", (await Fhir.Read<OperationOutcome>(unknown)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task A_period_may_be_a_year_or_a_month_and_another_measure_is_404()
    {
        await OrganisationsAsync();
        var now = DateTimeOffset.UtcNow.ToOffset(TimeSpan.FromHours(8));
        await ReferAsync(Township, Hospital, "UP", now.AddHours(-1));
        var year = now.AddHours(-1).Year.ToString(CultureInfo.InvariantCulture);
        var month = now.AddHours(-1).ToString("yyyy-MM", CultureInfo.InvariantCulture);

        var byYear = await EvaluateAsync($"periodStart={year}&periodEnd={year}&subject={Township}");
        var byMonth = await EvaluateAsync($"periodStart={month}&periodEnd={month}&subject={Township}");
        // R4 names the summary report "population"; R5's "summary" is taken too.
        var population = await EvaluateAsync($"periodStart={year}&periodEnd={year}&subject={Township}&reportType=population");
        var summary = await EvaluateAsync($"periodStart={year}&periodEnd={year}&subject={Township}&reportType=summary");
        var other = await _client.GetAsync("/fhir/Measure/immunization-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025");

        Assert.Equal(1, Count(Group(byYear, "up"), "initial-population"));
        Assert.Equal(1, Count(Group(byMonth, "up"), "initial-population"));
        Assert.Equal(1, Count(Group(population, "up"), "initial-population"));
        Assert.Equal(1, Count(Group(summary, "up"), "initial-population"));
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task A_stored_Measure_the_hub_has_no_evaluation_for_is_422_not_supported_rather_than_404()
    {
        var measure = new Measure { Id = "term25-measure", Status = PublicationStatus.Active, Url = "http://example.org/Measure/term25" };
        Assert.True((await _client.PutAsync($"/fhir/Measure/{measure.Id}", Fhir.Content(measure))).IsSuccessStatusCode);

        var response = await _client.GetAsync($"/fhir/Measure/{measure.Id}/$evaluate-measure?periodStart=2025&periodEnd=2025");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
        Assert.Equal(OperationOutcome.IssueType.NotSupported, issue.Code);
        Assert.Contains("not evaluated by this hub", issue.Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Referrals_are_also_counted_for_the_township_a_village_clinic_belongs_to()
    {
        // The township centre (WS 218 C220) and its village clinic (D600), both partners of the hospital.
        var clinic = $"Organization/clinic-{_suffix}";
        foreach (var (self, type, partOf) in new[] { (Township, "C220", (string?)null), (clinic, "D600", Township), (Hospital, "A100", null) })
        {
            var organization = new Organization
            {
                Id = self.Split('/')[1],
                Type = [new CodeableConcept(InteropHub.Hub.Indicators.TownshipResidents.Ws218System, type)],
                PartOf = partOf is null ? null : new ResourceReference(partOf),
                Extension = [.. (self == Hospital ? new[] { Township, clinic } : [Hospital]).Select(p => new Extension(Partner, new ResourceReference(p)))],
            };
            Assert.True((await _client.PutAsync($"/fhir/{self}", Fhir.Content(organization))).IsSuccessStatusCode);
        }

        var now = DateTimeOffset.UtcNow;
        await ReferAsync(clinic, Hospital, "UP", now.AddHours(-3));
        await ReferAsync(Township, Hospital, "UP", now.AddHours(-2));
        await ReferAsync(Hospital, clinic, "DOWN", now.AddHours(-1));

        var report = await EvaluateAsync($"periodStart={Day(now.AddDays(-1))}&periodEnd={Day(now.AddDays(1))}");

        static IEnumerable<(string?, int?)> ByTownship(MeasureReport.GroupComponent group) =>
            group.Stratifier.Single(s => s.Code[0].Coding[0].Code == "township").Stratum.Select(s => (s.Value!.Text, s.Population[0].Count));
        Assert.Contains((Township, 2), ByTownship(Group(report, "up")));
        Assert.Contains((Township, 1), ByTownship(Group(report, "down")));
        Assert.DoesNotContain(ByTownship(Group(report, "up")), s => s.Item1 == clinic || s.Item1 == Hospital);
    }

    [Theory]
    [InlineData("periodEnd=2025-12-31", "periodStart")]
    [InlineData("periodStart=2025-01-01&periodEnd=soon", "periodEnd")]
    [InlineData("periodStart=2025-02-01&periodEnd=2025-01-01", "periodEnd")]
    [InlineData("periodStart=2025-01-01&periodEnd=2025-12-31&subject=Patient/1", "subject")]
    [InlineData("periodStart=2025&periodEnd=2025&reportType=subject-list", "reportType")]
    [InlineData("periodStart=2025&periodEnd=2025&practitioner=Practitioner/1", "practitioner")]
    [InlineData("periodStart=2025&periodStart=2024&periodEnd=2025", "periodStart")]
    [InlineData("periodStart=0001&periodEnd=2025", "periodStart")]
    [InlineData("periodStart=2025&periodEnd=9999", "periodEnd")]
    public async Task A_bad_period_or_subject_is_400_naming_it(string query, string parameter)
    {
        var response = await _client.GetAsync($"/fhir/Measure/referral-metrics/$evaluate-measure?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(parameter, (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single());
    }

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/referral-metrics/$evaluate-measure?{query.Replace("+", "%2B", StringComparison.Ordinal)}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var report = await Fhir.Read<MeasureReport>(response);
        Assert.Equal(ReferralMetrics.MeasureUrl, report.Measure);
        return report;
    }

    private static MeasureReport.GroupComponent Group(MeasureReport report, string code) =>
        report.Group.Single(g => g.Code!.Coding[0].Code == code);

    private static int Count(MeasureReport.GroupComponent group, string population) =>
        group.Population.Single(p => p.Code!.Coding[0].Code == population).Count ?? -1;

    private static string Day(DateTimeOffset instant) => instant.ToOffset(TimeSpan.FromHours(8)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>A referral made at <paramref name="made"/> (Task.authoredOn), written as one transaction.</summary>
    private async Task<FhirTask> ReferAsync(string from, string to, string direction, DateTimeOffset made)
    {
        var requestUrl = $"urn:uuid:{Guid.NewGuid()}";
        var bundle = new Bundle
        {
            Type = Bundle.BundleType.Transaction,
            Entry =
            [
                new Bundle.EntryComponent
                {
                    FullUrl = requestUrl,
                    Resource = new ServiceRequest
                    {
                        Status = RequestStatus.Active,
                        Intent = RequestIntent.Order,
                        Category = [new CodeableConcept("http://snomed.info/sct", "3457005"), new CodeableConcept(ReferralWriteRule.DirectionSystem, direction)],
                        Subject = new ResourceReference("Patient/p-metrics"),
                        Requester = new ResourceReference(from),
                        Performer = [new ResourceReference(to)],
                    },
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
                },
                new Bundle.EntryComponent
                {
                    Resource = new FhirTask
                    {
                        Status = FhirTask.TaskStatus.Requested,
                        Intent = FhirTask.TaskIntent.Order,
                        Focus = new ResourceReference(requestUrl),
                        For = new ResourceReference("Patient/p-metrics"),
                        AuthoredOnElement = new FhirDateTime(made),
                        Requester = new ResourceReference(from),
                        Owner = new ResourceReference(to),
                    },
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Task" },
                },
            ],
        };
        var response = await _client.PostAsync("/fhir", Fhir.Content(bundle));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Assert.IsType<FhirTask>((await Fhir.Read<Bundle>(response)).Entry[1].Resource);
    }

    private async Task MoveAsync(FhirTask task, string by, params FhirTask.TaskStatus[] statuses)
    {
        foreach (var status in statuses)
        {
            task.Status = status;
            if (status == FhirTask.TaskStatus.Rejected)
            {
                task.StatusReason = new CodeableConcept { Text = "床位已满" };
            }

            if (status == FhirTask.TaskStatus.Completed)
            {
                // The treatment's Encounter as the summary: it must exist.
                var encounter = new Encounter { Id = $"e-{task.Id}", Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP") };
                Assert.True((await _client.PutAsync($"/fhir/Encounter/{encounter.Id}", Fhir.Content(encounter))).IsSuccessStatusCode);
                task.Output.Add(new FhirTask.OutputComponent { Type = new CodeableConcept { Text = "summary" }, Value = new ResourceReference($"Encounter/{encounter.Id}") });
            }

            var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Task/{task.Id}") { Content = Fhir.Content(task) };
            request.Headers.Add("X-Organization", by);
            var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            task = await Fhir.Read<FhirTask>(response);
        }
    }

    private async Task OrderAsync(string reason)
    {
        var order = new ServiceRequest
        {
            Status = RequestStatus.Active,
            Intent = RequestIntent.Order,
            Code = new CodeableConcept("http://loinc.org", "14771-0"),
            Subject = new ResourceReference("Patient/p-metrics"),
            Requester = new ResourceReference(Township),
            AuthoredOnElement = new FhirDateTime(DateTimeOffset.UtcNow),
            Extension = [new Extension(NonRecognitionReasonRule.ReasonExtension, new Coding(NonRecognitionReasonRule.ReasonSystem, reason))],
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(order))).StatusCode);
    }

    private async Task OrganisationsAsync()
    {
        foreach (var (self, partner) in new[] { (Township, Hospital), (Hospital, Township) })
        {
            var organization = new Organization { Id = self.Split('/')[1], Name = self, Extension = [new Extension(Partner, new ResourceReference(partner))] };
            Assert.True((await _client.PutAsync($"/fhir/{self}", Fhir.Content(organization))).IsSuccessStatusCode);
        }
    }
}

public sealed class ReferralMetricsTestsOnSqlite(SqliteHub hub) : ReferralMetricsTests(hub), IClassFixture<SqliteHub>;

public sealed class ReferralMetricsTestsOnPostgres(PostgresHub hub) : ReferralMetricsTests(hub), IClassFixture<PostgresHub>;
