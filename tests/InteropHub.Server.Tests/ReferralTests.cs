using System.Net;
using Hl7.Fhir.Model;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Server.Tests;

/// <summary>Two-way referral rules on the REST path: partner organisations and the Task state machine, by the right party.</summary>
public abstract class ReferralTests(HubFactory hub)
{
    private const string Partner = "https://interophub.dev/fhir/StructureDefinition/referral-partner";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Township => $"Organization/ts-{_suffix}";

    private string Hospital => $"Organization/hosp-{_suffix}";

    private string Stranger => $"Organization/far-{_suffix}";

    [Fact]
    public async Task A_referral_to_an_organisation_that_is_not_a_partner_is_422()
    {
        await OrganisationsAsync();

        var response = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Township, Stranger, "UP")));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.StartsWith("[referral-partner]", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_referral_whose_direction_contradicts_the_institutions_classes_is_422()
    {
        CodeableConcept Class(string code) => new("urn:interophub:cs:ws218", code);
        await PutAsync(new Organization { Id = Township.Split('/')[1], Type = [Class("C110")], Extension = [new Extension(Partner, new ResourceReference(Hospital))] });
        await PutAsync(new Organization { Id = Hospital.Split('/')[1], Type = [Class("A100")], Extension = [new Extension(Partner, new ResourceReference(Township))] });

        var upFromTownship = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Township, Hospital, "UP")));
        var downFromTownship = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Township, Hospital, "DOWN")));
        var upFromHospital = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Hospital, Township, "UP")));
        var downFromHospital = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Hospital, Township, "DOWN")));

        Assert.Equal(HttpStatusCode.Created, upFromTownship.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, downFromTownship.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(downFromTownship)).Issue.Single();
        Assert.StartsWith("[referral-direction]", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal("ServiceRequest.category", issue.Expression.Single());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, upFromHospital.StatusCode);
        Assert.Equal(HttpStatusCode.Created, downFromHospital.StatusCode);
    }

    [Fact]
    public async Task A_referral_under_way_can_be_completed_after_the_agreement_is_withdrawn_but_not_sent_elsewhere()
    {
        await OrganisationsAsync();
        var request = await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{await CreateAsync(Referral(Township, Hospital, "UP"))}"));
        // The township withdraws its agreement with the hospital.
        await PutAsync(new Organization { Id = Township.Split('/')[1], Name = "白沙镇卫生院" });

        request.Status = RequestStatus.Completed;
        var completed = await _client.PutAsync($"/fhir/ServiceRequest/{request.Id}", Fhir.Content(request));
        request.Performer = [new ResourceReference(Stranger)];
        var redirected = await _client.PutAsync($"/fhir/ServiceRequest/{request.Id}", Fhir.Content(request));

        Assert.Equal(HttpStatusCode.OK, completed.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, redirected.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity,
            (await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Referral(Township, Hospital, "UP")))).StatusCode);
    }

    [Fact]
    public async Task A_down_referral_runs_through_its_states_moved_by_the_receiver_and_keeps_each_in_history()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Hospital, Township, "DOWN"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Hospital, Township), Hospital));

        foreach (var status in new[] { FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress })
        {
            task.Status = status;
            var moved = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);
            Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
            task = await Fhir.Read<FhirTask>(moved);
        }

        task.Status = FhirTask.TaskStatus.Completed;
        task.Output.Add(Output($"DocumentReference/summary-{_suffix}"));
        var unwritten = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unwritten.StatusCode);
        Assert.Equal("Task.output", (await Fhir.Read<OperationOutcome>(unwritten)).Issue[0].Expression.Single());
        await PutAsync(new DocumentReference
        {
            Id = $"summary-{_suffix}", Status = DocumentReferenceStatus.Current,
            Content = [new DocumentReference.ContentComponent { Attachment = new Attachment { ContentType = "text/plain", Data = "出院小结"u8.ToArray() } }],
        });
        var withoutCarePlan = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, withoutCarePlan.StatusCode);
        task.Output.Add(Output($"CarePlan/nowhere-{_suffix}"));
        var missing = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, missing.StatusCode);
        Assert.Contains("does not exist", (await Fhir.Read<OperationOutcome>(missing)).Issue[0].Diagnostics, StringComparison.Ordinal);

        // The follow-up plan must name a team of the receiving township: the hospital's own team does not do.
        var hospitalTeam = await CreateAsync(new CareTeam { ManagingOrganization = [new ResourceReference(Hospital)] });
        var familyDoctors = await CreateAsync(new CareTeam { ManagingOrganization = [new ResourceReference(Township)] });
        var plan = new CarePlan
        {
            Status = RequestStatus.Active,
            Intent = CarePlan.CarePlanIntent.Plan,
            Subject = new ResourceReference("Patient/p-referred"),
            CareTeam = [new ResourceReference(hospitalTeam)],
        };
        var hospitalPlan = await CreateAsync(plan);
        task.Output[^1] = Output(hospitalPlan);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township)).StatusCode);
        plan.CareTeam = [new ResourceReference(familyDoctors)];
        var followUp = await CreateAsync(plan);
        task.Output[^1] = Output(followUp);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township)).StatusCode);
        var seen = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/CarePlan?care-team={familyDoctors}"));
        Assert.Equal(followUp, $"CarePlan/{Assert.Single(seen.Entry).Resource!.Id}");

        var history = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Task/{task.Id}/_history"));
        Assert.Equal(["completed", "in-progress", "accepted", "received", "requested"],
            history.Entry.Select(e => Hl7.Fhir.Utility.EnumUtility.GetLiteral(((FhirTask)e.Resource!).Status)));
        // The request follows its Task: the activity it asked for was performed.
        Assert.Equal(RequestStatus.Completed, (await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{request}"))).Status);

        // The completed referral keeps its summary and follow-up plan: neither dropped nor swapped for one that is not there.
        var completed = await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{task.Id}"));
        var stripped = (FhirTask)completed.DeepCopy();
        stripped.Output.Clear();
        var noSummary = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", stripped, Township);
        var swapped = (FhirTask)completed.DeepCopy();
        swapped.Output[0] = Output($"DocumentReference/elsewhere-{_suffix}");
        var missingSummary = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", swapped, Township);
        var noted = (FhirTask)completed.DeepCopy();
        noted.Note.Add(new Annotation { Text = "已随访" });
        var withNote = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", noted, Township);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, noSummary.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, missingSummary.StatusCode);
        Assert.Equal(HttpStatusCode.OK, withNote.StatusCode);
    }

    [Fact]
    public async Task Cancelling_a_referral_task_revokes_its_request_in_the_same_write()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));

        task.Status = FhirTask.TaskStatus.Cancelled;
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township)).StatusCode);

        var revoked = await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{request}"));
        Assert.Equal(RequestStatus.Revoked, revoked.Status);
        Assert.Equal("2", revoked.Meta!.VersionId);
        var active = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/ServiceRequest?_id={request.Split('/')[1]}&status=active"));
        Assert.Empty(active.Entry);
        // Sent again, the cancelled Task writes nothing more.
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township)).StatusCode);
        Assert.Equal("2", (await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{request}"))).Meta!.VersionId);
    }

    [Fact]
    public async Task A_referrals_request_keeps_its_referral_patient_and_parties_its_status_follows_the_task_and_only_the_parties_change_it()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township);
        var stored = await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{request}"));
        async Task<(HttpStatusCode Status, string? Diagnostics)> ChangeAsync(Action<ServiceRequest> change, string? caller)
        {
            var next = (ServiceRequest)stored.DeepCopy();
            change(next);
            var response = caller is null ? await _client.PutAsync($"/fhir/{request}", Fhir.Content(next)) : await Send(HttpMethod.Put, $"/fhir/{request}", next, caller);
            return (response.StatusCode, response.IsSuccessStatusCode ? null : (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
        }

        var unmarked = await ChangeAsync(r => r.Category.RemoveAt(0), Township);
        var turned = await ChangeAsync(r => r.Category[1] = new CodeableConcept("urn:interophub:cs:qxref", "DOWN"), Township);
        var undirected = await ChangeAsync(r => r.Category.RemoveAt(1), Township);
        var replanned = await ChangeAsync(r => r.Intent = RequestIntent.Plan, Township);
        var otherPatient = await ChangeAsync(r => r.Subject = new ResourceReference("Patient/p-other"), Township);
        var elsewhere = await ChangeAsync(r => r.Performer = [new ResourceReference(Stranger)], Hospital);
        var revoked = await ChangeAsync(r => r.Status = RequestStatus.Revoked, Township);
        var anonymous = await ChangeAsync(r => r.Note.Add(new Annotation { Text = "请带既往检查" }), null);
        var byStranger = await ChangeAsync(r => r.Note.Add(new Annotation { Text = "请带既往检查" }), Stranger);
        var noted = await ChangeAsync(r => r.Note.Add(new Annotation { Text = "请带既往检查" }), Township);

        Assert.Equal((HttpStatusCode.Conflict, "[referral-parties]"), (unmarked.Status, unmarked.Diagnostics?[..18]));
        Assert.Equal(HttpStatusCode.Conflict, turned.Status);
        Assert.Equal(HttpStatusCode.Conflict, undirected.Status);
        Assert.Contains("ServiceRequest.category", undirected.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, replanned.Status);
        Assert.Contains("ServiceRequest.intent", replanned.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, otherPatient.Status);
        Assert.Contains("ServiceRequest.subject", otherPatient.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, elsewhere.Status);
        Assert.Equal(HttpStatusCode.Conflict, revoked.Status);
        Assert.StartsWith("[referral-request-status]", revoked.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, anonymous.Status);
        Assert.Equal(HttpStatusCode.Conflict, byStranger.Status);
        Assert.Equal(HttpStatusCode.OK, noted.Status);
        var now = await Fhir.Read<ServiceRequest>(await _client.GetAsync($"/fhir/{request}"));
        Assert.Equal(("2", RequestStatus.Active, "Patient/p-referred"), (now.Meta!.VersionId, now.Status, now.Subject.Reference));

        // Sent again unchanged (a nightly sync), it writes nothing and is not refused, whoever sends it.
        Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync($"/fhir/{request}", Fhir.Content(now))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/{request}", now, Stranger)).StatusCode);

        // Once the receiver has refused the referral, the referring organisation may withdraw its request.
        var task = (await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Task?focus={request}"))).Entry.Select(e => e.Resource).OfType<FhirTask>().Single();
        task.Status = FhirTask.TaskStatus.Rejected;
        task.StatusReason = new CodeableConcept { Text = "床位已满" };
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital)).StatusCode);
        now.Status = RequestStatus.Revoked;
        var revokedByReceiver = await Send(HttpMethod.Put, $"/fhir/{request}", now, Hospital);
        Assert.Equal(HttpStatusCode.Conflict, revokedByReceiver.StatusCode);
        Assert.StartsWith("[referral-request-status] Only the referring organisation", (await Fhir.Read<OperationOutcome>(revokedByReceiver)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/{request}", now, Township)).StatusCode);
    }

    [Fact]
    public async Task A_referral_task_is_for_its_requests_patient_and_changed_over_the_API_only_by_a_named_party()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var forAnother = NewTask(request, Township, Hospital);
        forAnother.For = new ResourceReference("Patient/p-other");
        var forNobody = NewTask(request, Township, Hospital);
        forNobody.For = null;

        var another = await Send(HttpMethod.Post, "/fhir/Task", forAnother, Township);
        var nobody = await Send(HttpMethod.Post, "/fhir/Task", forNobody, Township);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, another.StatusCode);
        Assert.Equal("[referral-parties] The Task of " + request + " is for Patient/p-referred, the referral's patient, not Patient/p-other.",
            (await Fhir.Read<OperationOutcome>(another)).Issue[0].Diagnostics);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, nobody.StatusCode);

        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));
        task.Note.Add(new Annotation { Text = "已电话通知患者" });
        var anonymous = await _client.PutAsync($"/fhir/Task/{task.Id}", Fhir.Content(task));
        using var patch = new HttpRequestMessage(HttpMethod.Patch, $"/fhir/Task/{task.Id}")
        {
            Content = new StringContent("""[{"op":"add","path":"/businessStatus","value":{"text":"已联系"}}]""", System.Text.Encoding.UTF8, "application/json-patch+json"),
        };
        var anonymousPatch = await _client.SendAsync(patch);

        Assert.Equal(HttpStatusCode.Forbidden, anonymous.StatusCode);
        Assert.StartsWith("[referral-caller] Changing a referral Task needs", (await Fhir.Read<OperationOutcome>(anonymous)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, anonymousPatch.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital)).StatusCode);
        Assert.Equal("2", (await Fhir.Read<FhirTask>(await _client.GetAsync($"/fhir/Task/{task.Id}"))).Meta!.VersionId);
    }

    [Fact]
    public async Task Validate_in_delete_mode_refuses_a_referrals_task_and_request_as_the_delete_does()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));
        var other = await CreateAsync(new Basic { Code = new CodeableConcept { Text = "note" } });

        var taskCheck = await _client.PostAsync($"/fhir/Task/{task.Id}/$validate?mode=delete", null);
        var requestCheck = await _client.PostAsync($"/fhir/{request}/$validate?mode=delete", null);
        var otherCheck = await _client.PostAsync($"/fhir/{other}/$validate?mode=delete", null);

        Assert.Equal(HttpStatusCode.Conflict, taskCheck.StatusCode);
        Assert.StartsWith("[referral-delete]", (await Fhir.Read<OperationOutcome>(taskCheck)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, requestCheck.StatusCode);
        Assert.Equal(HttpStatusCode.OK, otherCheck.StatusCode);
        Assert.Contains("may be deleted", (await Fhir.Read<OperationOutcome>(otherCheck)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_the_receiver_accepts_and_only_the_requester_cancels()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));

        task.Status = FhirTask.TaskStatus.Accepted;
        var byRequester = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);
        task.Status = FhirTask.TaskStatus.Cancelled;
        var cancelByReceiver = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital);
        var cancelByRequester = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);

        Assert.Equal(HttpStatusCode.Conflict, byRequester.StatusCode);
        Assert.StartsWith("[referral-party]", (await Fhir.Read<OperationOutcome>(byRequester)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, cancelByReceiver.StatusCode);
        Assert.Equal(HttpStatusCode.OK, cancelByRequester.StatusCode);
    }

    [Fact]
    public async Task An_illegal_transition_and_a_rejection_without_reason_are_refused()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));

        task.Status = FhirTask.TaskStatus.Completed;
        var skipAhead = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital);
        task.Status = FhirTask.TaskStatus.Rejected;
        var noReason = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital);

        Assert.Equal(HttpStatusCode.Conflict, skipAhead.StatusCode);
        Assert.StartsWith("[referral-transition]", (await Fhir.Read<OperationOutcome>(skipAhead)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noReason.StatusCode);
        Assert.Equal("W/\"1\"", (await _client.GetAsync($"/fhir/Task/{task.Id}")).Headers.ETag?.ToString());
    }

    [Fact]
    public async Task The_parties_are_those_of_the_stored_task_and_a_third_organisation_can_neither_take_over_nor_delete_it()
    {
        await OrganisationsAsync();
        var request = await CreateAsync(Referral(Township, Hospital, "UP"));
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township));

        // The stranger names itself the owner and accepts: judged by the stored Task, it is neither party.
        var takeover = (FhirTask)task.DeepCopy();
        takeover.Owner = new ResourceReference(Stranger);
        takeover.Status = FhirTask.TaskStatus.Accepted;
        var byStranger = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", takeover, Stranger);
        // The receiver itself may not hand the referral to someone else either, nor may anyone unfocus it.
        var rerouted = (FhirTask)task.DeepCopy();
        rerouted.Owner = new ResourceReference(Stranger);
        var byReceiver = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", rerouted, Hospital);
        var unfocused = (FhirTask)task.DeepCopy();
        unfocused.Focus = new ResourceReference("Patient/p-referred");
        unfocused.Status = FhirTask.TaskStatus.Cancelled;
        var escaped = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", unfocused, Township);
        var second = await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, Township, Hospital), Township);
        var deleted = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Task/{task.Id}") { Headers = { { "X-Organization", Township } } });
        var requestDeleted = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/{request}") { Headers = { { "X-Organization", Township } } });
        task.Status = FhirTask.TaskStatus.Accepted;
        var anonymous = await _client.PutAsync($"/fhir/Task/{task.Id}", Fhir.Content(task));

        Assert.Equal(HttpStatusCode.Conflict, byStranger.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, byReceiver.StatusCode);
        Assert.Equal("Task.owner", (await Fhir.Read<OperationOutcome>(byReceiver)).Issue[0].Expression.Single());
        Assert.Equal(HttpStatusCode.Conflict, escaped.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.StartsWith("[referral-one-task]", (await Fhir.Read<OperationOutcome>(second)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, requestDeleted.StatusCode);
        Assert.StartsWith("[referral-delete]", (await Fhir.Read<OperationOutcome>(requestDeleted)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/{request}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, anonymous.StatusCode);
        Assert.Equal("W/\"1\"", (await _client.GetAsync($"/fhir/Task/{task.Id}")).Headers.ETag?.ToString());
    }

    [Fact]
    public async Task A_referral_whose_task_names_the_referring_doctor_is_moved_by_the_doctors_institution()
    {
        // As the HIS adapter wrote referral Tasks before they named the institution: the doctor, staff of the township.
        await OrganisationsAsync();
        await PutAsync(new Organization
        {
            Id = Township.Split('/')[1], Name = "白沙镇卫生院", Identifier = [new Identifier("urn:interophub:sid:org-code", $"TS{_suffix}")],
            Extension = [new Extension(Partner, new ResourceReference(Hospital))],
        });
        var doctor = await CreateAsync(new Practitioner { Identifier = [new Identifier($"urn:interophub:sid:staff:TS{_suffix}", "W0107")] });
        var referral = Referral(Township, Hospital, "UP");
        referral.Requester = new ResourceReference(doctor);
        var request = await CreateAsync(referral);
        var task = await Fhir.Read<FhirTask>(await Send(HttpMethod.Post, "/fhir/Task", NewTask(request, doctor, Hospital), Township));

        task.Status = FhirTask.TaskStatus.Cancelled;
        var byReceiver = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Hospital);
        var byTownship = await Send(HttpMethod.Put, $"/fhir/Task/{task.Id}", task, Township);

        Assert.Equal(HttpStatusCode.Conflict, byReceiver.StatusCode);
        Assert.Equal(HttpStatusCode.OK, byTownship.StatusCode);
    }

    [Fact]
    public async Task A_malformed_caller_header_is_400()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
        request.Headers.Add("X-Organization", "QX2100012");

        Assert.Equal(HttpStatusCode.BadRequest, (await _client.SendAsync(request)).StatusCode);
    }

    private async System.Threading.Tasks.Task OrganisationsAsync()
    {
        await PutAsync(new Organization { Id = Township.Split('/')[1], Name = "白沙镇卫生院", Extension = [new Extension(Partner, new ResourceReference(Hospital))] });
        await PutAsync(new Organization { Id = Hospital.Split('/')[1], Name = "清溪县人民医院", Extension = [new Extension(Partner, new ResourceReference(Township))] });
        await PutAsync(new Organization { Id = Stranger.Split('/')[1], Name = "湘源县医院" });
    }

    private async System.Threading.Tasks.Task PutAsync(Resource resource) =>
        Assert.True((await _client.PutAsync($"/fhir/{resource.TypeName}/{resource.Id}", Fhir.Content(resource))).IsSuccessStatusCode);

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"{resource.TypeName}/{response.Headers.Location!.AbsolutePath.Split('/')[3]}";
    }

    private Task<HttpResponseMessage> Send(HttpMethod method, string url, Resource body, string caller)
    {
        var request = new HttpRequestMessage(method, url) { Content = Fhir.Content(body) };
        request.Headers.Add("X-Organization", caller);
        return _client.SendAsync(request);
    }

    private static ServiceRequest Referral(string from, string to, string direction) => new()
    {
        Status = RequestStatus.Active,
        Intent = RequestIntent.Order,
        Category =
        [
            new CodeableConcept("http://snomed.info/sct", "3457005", "Patient referral"),
            new CodeableConcept("urn:interophub:cs:qxref", direction),
        ],
        Subject = new ResourceReference("Patient/p-referred"),
        Requester = new ResourceReference(from),
        Performer = [new ResourceReference(to)],
    };

    private static FhirTask NewTask(string request, string from, string to) => new()
    {
        Status = FhirTask.TaskStatus.Requested,
        Intent = FhirTask.TaskIntent.Order,
        Focus = new ResourceReference(request),
        For = new ResourceReference("Patient/p-referred"),
        Requester = new ResourceReference(from),
        Owner = new ResourceReference(to),
    };

    private static FhirTask.OutputComponent Output(string reference) => new()
    {
        Type = new CodeableConcept { Text = "referral output" },
        Value = new ResourceReference(reference),
    };
}

public sealed class ReferralTestsOnSqlite(SqliteHub hub) : ReferralTests(hub), IClassFixture<SqliteHub>;

public sealed class ReferralTestsOnPostgres(PostgresHub hub) : ReferralTests(hub), IClassFixture<PostgresHub>;
