using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Referrals;
using Microsoft.Extensions.DependencyInjection;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Server.Tests;

/// <summary><c>ServiceRequest/$refer</c> and the overdue flag of referrals not accepted in time.</summary>
public abstract class ReferOperationTests(HubFactory hub)
{
    private const string Partner = "https://interophub.dev/fhir/StructureDefinition/referral-partner";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Township => $"Organization/ts-{_suffix}";

    private string Hospital => $"Organization/hosp-{_suffix}";

    private string Stranger => $"Organization/far-{_suffix}";

    [Fact]
    public async Task Refer_creates_the_referral_request_and_its_task_in_one_transaction()
    {
        await OrganisationsAsync();

        var response = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(Refer(Township, Hospital, "up",
            new Parameters.ParameterComponent { Name = "supportingInfo", Value = new ResourceReference("DiagnosticReport/dr-1") },
            new Parameters.ParameterComponent { Name = "note", Value = new FhirString("血压控制不佳") })));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(Bundle.BundleType.TransactionResponse, bundle.Type);
        var request = Assert.IsType<ServiceRequest>(bundle.Entry[0].Resource);
        var task = Assert.IsType<FhirTask>(bundle.Entry[1].Resource);
        Assert.Equal($"/fhir/Task/{task.Id}/_history/1", response.Headers.Location!.AbsolutePath);
        Assert.Equal($"ServiceRequest/{request.Id}", task.Focus!.Reference);
        Assert.Equal(FhirTask.TaskStatus.Requested, task.Status);
        Assert.Equal(Hospital, task.Owner!.Reference);
        Assert.Contains(request.Category.SelectMany(c => c.Coding), c => c.System == ReferralWriteRule.DirectionSystem && c.Code == "UP");
        Assert.Equal("DiagnosticReport/dr-1", request.SupportingInfo.Single().Reference);
        Assert.Equal("高血压控制不佳", request.ReasonCode.Single().Text);
        var inbox = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Task?owner={Hospital}&status=requested&_include=Task:focus"));
        Assert.Equal(2, inbox.Entry.Count);
    }

    [Fact]
    public async Task Refer_to_an_organisation_that_is_not_a_partner_writes_nothing_and_is_422()
    {
        await OrganisationsAsync();

        var response = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(Refer(Township, Stranger, "up")));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        // In the operation's terms: no entry of a bundle the caller never sent, and the parameter at fault.
        var outcome = await Fhir.Read<OperationOutcome>(response);
        var issue = outcome.Issue[0];
        Assert.True(issue.Diagnostics?.StartsWith("$refer: [referral-partner]", StringComparison.Ordinal), string.Join(" / ", outcome.Issue.Select(i => $"{i.Diagnostics} @ {string.Join(",", i.Expression)}")));
        Assert.True(issue.Expression.SequenceEqual(["to"]), string.Join(",", issue.Expression));
        Assert.Empty((await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Task?owner={Stranger}"))).Entry);
    }

    [Fact]
    public async Task Refer_by_a_caller_that_is_not_the_referring_organisation_is_409_naming_from()
    {
        await OrganisationsAsync();

        var response = await Send(HttpMethod.Post, "/fhir/ServiceRequest/$refer", Refer(Township, Hospital, "up"), Hospital);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal("from", issue.Expression.Single());
        Assert.Contains(Township, issue.Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("direction")]
    [InlineData("patient")]
    [InlineData("to")]
    [InlineData("reason")]
    public async Task Refer_without_a_required_parameter_is_400_naming_it(string missing)
    {
        var parameters = Refer(Township, Hospital, "up");
        parameters.Parameter.RemoveAll(p => p.Name == missing);

        var response = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(parameters));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(missing, (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single());
    }

    [Fact]
    public async Task Refer_with_a_wrong_direction_or_an_unknown_parameter_is_400_naming_it()
    {
        var sideways = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(Refer(Township, Hospital, "sideways")));
        var extra = Refer(Township, Hospital, "up");
        extra.Parameter.Add(new Parameters.ParameterComponent { Name = "priority", Value = new Code("urgent") });
        var unknown = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(extra));
        var wrongType = Refer(Township, "Patient/p-1", "up");
        var notAnOrganisation = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(wrongType));

        Assert.Equal("direction", (await Fhir.Read<OperationOutcome>(sideways)).Issue[0].Expression.Single());
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("priority", (await Fhir.Read<OperationOutcome>(unknown)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal("to", (await Fhir.Read<OperationOutcome>(notAnOrganisation)).Issue[0].Expression.Single());
    }

    [Fact]
    public async Task Refer_of_a_merged_record_is_400_naming_the_record_it_was_merged_into()
    {
        await OrganisationsAsync();
        var survivor = $"survivor-{Guid.NewGuid():N}";
        var retired = $"retired-{Guid.NewGuid():N}";
        await _client.PutAsync($"/fhir/Patient/{survivor}", Fhir.Content(new Patient { Id = survivor }));
        await _client.PutAsync($"/fhir/Patient/{retired}", Fhir.Content(new Patient
        {
            Id = retired, Active = false,
            Link = [new Patient.LinkComponent { Type = Patient.LinkType.ReplacedBy, Other = new ResourceReference($"Patient/{survivor}") }],
        }));
        var merged = Refer(Township, Hospital, "up");
        merged.Parameter.Single(p => p.Name == "patient").Value = new ResourceReference($"Patient/{retired}");
        var current = Refer(Township, Hospital, "up");
        current.Parameter.Single(p => p.Name == "patient").Value = new ResourceReference($"Patient/{survivor}");

        var refused = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(merged));
        var made = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(current));

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(refused)).Issue.Single();
        Assert.Equal("patient", issue.Expression.Single());
        Assert.Contains($"Patient/{survivor}", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, made.StatusCode);
    }

    [Fact]
    public async Task Refer_of_a_patient_or_with_a_summary_the_hub_does_not_have_is_400_naming_it()
    {
        await OrganisationsAsync();
        var nobody = Refer(Township, Hospital, "up");
        nobody.Parameter.Single(p => p.Name == "patient").Value = new ResourceReference($"Patient/nobody-{Guid.NewGuid():N}");
        var missingReport = Refer(Township, Hospital, "up", new Parameters.ParameterComponent { Name = "supportingInfo", Value = new ResourceReference("DiagnosticReport/not-there") });

        var first = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(nobody));
        var second = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(missingReport));

        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
        Assert.Equal("patient", (await Fhir.Read<OperationOutcome>(first)).Issue[0].Expression.Single());
        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        Assert.Equal("supportingInfo", (await Fhir.Read<OperationOutcome>(second)).Issue[0].Expression.Single());
    }

    [Fact]
    public async Task A_referral_not_accepted_in_time_is_flagged_overdue_in_a_new_version_and_found_by_business_status()
    {
        await OrganisationsAsync();
        var waiting = await ReferAsync();
        var accepted = await ReferAsync();
        accepted.Status = FhirTask.TaskStatus.Accepted;
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{accepted.Id}", accepted, Hospital)).StatusCode);
        var overdue = hub.Services.GetRequiredService<OverdueReferrals>();
        var made = waiting.AuthoredOnElement!.ToDateTimeOffset(TimeSpan.Zero);

        await overdue.RunOnceAsync(made.AddHours(47), CancellationToken.None);
        var early = await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{waiting.Id}"));
        await overdue.RunOnceAsync(made.AddHours(49), CancellationToken.None);
        var late = await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{waiting.Id}"));
        await overdue.RunOnceAsync(made.AddHours(72), CancellationToken.None);

        Assert.Null(early.BusinessStatus);
        Assert.Equal("2", late.Meta!.VersionId);
        Assert.Equal(FhirTask.TaskStatus.Requested, late.Status);
        Assert.Equal(OverdueReferrals.Overdue, late.BusinessStatus!.Coding.Single().Code);
        Assert.Equal("2", (await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{waiting.Id}"))).Meta!.VersionId);
        var found = await Fhir.Read<Bundle>(await _client.GetAsync(
            $"/fhir/Task?owner={Hospital}&business-status={OverdueReferrals.BusinessStatusSystem}|{OverdueReferrals.Overdue}"));
        Assert.Equal([waiting.Id], found.Entry.Select(e => e.Resource!.Id));

        // The receiver can still accept an overdue referral: the flag is no state of the machine, and an answered
        // referral is no longer overdue, though the client sends the flag back.
        late.Status = FhirTask.TaskStatus.Accepted;
        var answered = await Send(HttpMethod.Put, $"/fhir/Task/{late.Id}", late, Hospital);
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Null((await Fhir.Read<FhirTask>(answered)).BusinessStatus);
    }

    [Fact]
    public async Task A_cancelled_referral_is_no_longer_overdue()
    {
        await OrganisationsAsync();
        var waiting = await ReferAsync();
        await hub.Services.GetRequiredService<OverdueReferrals>().RunOnceAsync(waiting.AuthoredOnElement!.ToDateTimeOffset(TimeSpan.Zero).AddHours(49), CancellationToken.None);
        var flagged = await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{waiting.Id}"));
        Assert.Equal(OverdueReferrals.Overdue, flagged.BusinessStatus!.Coding.Single().Code);

        flagged.Status = FhirTask.TaskStatus.Cancelled;
        var cancelled = await Send(HttpMethod.Put, $"/fhir/Task/{flagged.Id}", flagged, Township);

        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Null((await Fhir.Read<FhirTask>(cancelled)).BusinessStatus);
        var found = await Fhir.Read<Bundle>(await _client.GetAsync(
            $"/fhir/Task?_id={flagged.Id}&business-status={OverdueReferrals.BusinessStatusSystem}|{OverdueReferrals.Overdue}"));
        Assert.Empty(found.Entry);
    }

    [Fact]
    public async Task The_overdue_flag_is_added_beside_the_business_status_already_there()
    {
        await OrganisationsAsync();
        var waiting = await ReferAsync();
        waiting.Status = FhirTask.TaskStatus.Received;
        waiting.BusinessStatus = new CodeableConcept("urn:interophub:cs:qxref-status", "RC", "已签收");
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{waiting.Id}", waiting, Hospital)).StatusCode);

        await hub.Services.GetRequiredService<OverdueReferrals>().RunOnceAsync(waiting.AuthoredOnElement!.ToDateTimeOffset(TimeSpan.Zero).AddHours(49), CancellationToken.None);

        var flagged = await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{waiting.Id}"));
        Assert.Equal(["RC", OverdueReferrals.Overdue], flagged.BusinessStatus!.Coding.Select(c => c.Code));
    }

    private async Task<FhirTask> ReferAsync()
    {
        var response = await _client.PostAsync("/fhir/ServiceRequest/$refer", Fhir.Content(Refer(Township, Hospital, "up")));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return Assert.IsType<FhirTask>((await Fhir.Read<Bundle>(response)).Entry[1].Resource);
    }

    private async Task OrganisationsAsync()
    {
        await PutAsync(new Organization { Id = Township.Split('/')[1], Name = "白沙镇卫生院", Extension = [new Extension(Partner, new ResourceReference(Hospital))] });
        await PutAsync(new Organization { Id = Hospital.Split('/')[1], Name = "清溪县人民医院", Extension = [new Extension(Partner, new ResourceReference(Township))] });
        await PutAsync(new Organization { Id = Stranger.Split('/')[1], Name = "湘源县医院" });
        await PutAsync(new Patient { Id = "p-referred", Name = [new HumanName { Text = "李德福" }] });
        await PutAsync(new DiagnosticReport { Id = "dr-1", Status = DiagnosticReport.DiagnosticReportStatus.Final, Code = new CodeableConcept { Text = "血常规" } });
    }

    private async Task PutAsync(Resource resource) =>
        Assert.True((await _client.PutAsync($"/fhir/{resource.TypeName}/{resource.Id}", Fhir.Content(resource))).IsSuccessStatusCode);

    private Task<HttpResponseMessage> Send(HttpMethod method, string url, Resource body, string caller)
    {
        var request = new HttpRequestMessage(method, url) { Content = Fhir.Content(body) };
        request.Headers.Add("X-Organization", caller);
        return _client.SendAsync(request);
    }

    private static Parameters Refer(string from, string to, string direction, params Parameters.ParameterComponent[] more)
    {
        var parameters = new Parameters();
        parameters.Add("patient", new ResourceReference("Patient/p-referred"));
        parameters.Add("from", new ResourceReference(from));
        parameters.Add("to", new ResourceReference(to));
        parameters.Add("direction", new Code(direction));
        parameters.Add("reason", new FhirString("高血压控制不佳"));
        parameters.Parameter.AddRange(more);
        return parameters;
    }
}

public sealed class ReferOperationTestsOnSqlite(SqliteHub hub) : ReferOperationTests(hub), IClassFixture<SqliteHub>;

public sealed class ReferOperationTestsOnPostgres(PostgresHub hub) : ReferOperationTests(hub), IClassFixture<PostgresHub>;
