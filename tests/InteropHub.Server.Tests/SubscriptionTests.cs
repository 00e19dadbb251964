using System.Net;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using static Hl7.Fhir.Model.Bundle;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Server.Tests;

/// <summary>R4 rest-hook Subscriptions (subscription.html) delivered from the outbox to a receiver on a local port.</summary>
public abstract class SubscriptionTests(HubFactory hub) : IAsyncLifetime
{
    private static readonly FhirJsonDeserializer Json = new(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable));

    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private readonly List<IAsyncDisposable> _hubs = [];
    private readonly List<Receiver> _receivers = [];
    private HttpClient? _client;

    private string OwnerX => $"Organization/x-{_suffix}";

    private string OwnerY => $"Organization/y-{_suffix}";

    /// <summary>The hub, started on first use with short retry delays.</summary>
    private HttpClient Client => _client ??= Start(hub, maxFailures: 5).CreateClient();

    [Fact]
    public async Task A_Task_is_delivered_to_the_subscriber_on_its_owner_and_not_to_the_one_on_another_owner()
    {
        var forX = await NewReceiverAsync();
        var forY = await NewReceiverAsync();
        var byIdAndStatus = await NewReceiverAsync();
        var subscription = await SubscribeAsync($"Task?owner={OwnerX}", forX, headers: ["Authorization: Bearer token-x"]);
        await SubscribeAsync($"Task?owner={OwnerY}", forY);
        await SubscribeAsync($"Task?owner=x-{_suffix}&status=requested", byIdAndStatus);

        Assert.Equal(Subscription.SubscriptionStatus.Active, subscription.Status);
        var taskX = await CreateTaskAsync(OwnerX);
        var taskY = await CreateTaskAsync(OwnerY);

        var toX = await forX.NextAsync();
        // With a payload, the endpoint is the receiver's FHIR base and the version comes as an update (R4 rest-hook).
        Assert.Equal("PUT", toX.Method);
        Assert.Equal($"/hook/Task/{taskX.Id}", toX.Path);
        Assert.Equal("Bearer token-x", toX.Headers["Authorization"]);
        Assert.StartsWith("application/fhir+json", toX.ContentType, StringComparison.Ordinal);
        Assert.Equal(taskX.Id, Parse<FhirTask>(toX).Id);
        // Each subscriber's notifications come in write order, so a wrong match of the earlier Task would come first.
        Assert.Equal(taskY.Id, Parse<FhirTask>(await forY.NextAsync()).Id);
        Assert.Equal(taskX.Id, Parse<FhirTask>(await byIdAndStatus.NextAsync()).Id);
    }

    [Fact]
    public async Task A_subscription_whose_end_has_passed_is_turned_off_and_gets_nothing()
    {
        var ended = await NewReceiverAsync();
        var running = await NewReceiverAsync();
        var past = NewSubscription($"Task?owner={OwnerX}", ended.Url, "application/fhir+json", []);
        past.End = DateTimeOffset.UtcNow.AddDays(-1);
        var response = await Client.PostAsync("/fhir/Subscription", Fhir.Content(past));
        await SubscribeAsync($"Task?owner={OwnerX}", running);

        var task = await CreateTaskAsync(OwnerX);

        Assert.Equal(Subscription.SubscriptionStatus.Off, (await Fhir.Read<Subscription>(response)).Status);
        // The running subscriber gets the Task; a while later the ended one still has had nothing.
        Assert.Equal(task.Id, Parse<FhirTask>(await running.NextAsync()).Id);
        await System.Threading.Tasks.Task.Delay(500);
        Assert.Equal(0, ended.Attempts);
    }

    [Fact]
    public async Task A_subscription_is_turned_off_once_its_end_passes()
    {
        var receiver = await NewReceiverAsync();
        // The hub is started first: a start on a loaded machine can take longer than the subscription lives.
        Assert.True((await Client.GetAsync("/fhir/metadata")).IsSuccessStatusCode);
        var soon = NewSubscription($"Task?owner={OwnerY}", receiver.Url, "application/fhir+json", []);
        soon.End = DateTimeOffset.UtcNow.AddSeconds(2);
        var created = await Fhir.Read<Subscription>(await Client.PostAsync("/fhir/Subscription", Fhir.Content(soon)));
        Assert.Equal(Subscription.SubscriptionStatus.Active, created.Status);

        Subscription current;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        do
        {
            await System.Threading.Tasks.Task.Delay(200);
            current = await Fhir.Read<Subscription>(await Client.GetAsync($"/fhir/Subscription/{created.Id}"));
        }
        while (current.Status == Subscription.SubscriptionStatus.Active && DateTime.UtcNow < deadline);

        Assert.Equal(Subscription.SubscriptionStatus.Off, current.Status);
        await CreateTaskAsync(OwnerY);
        await System.Threading.Tasks.Task.Delay(500);
        Assert.Equal(0, receiver.Attempts);
    }

    [Fact]
    public async Task A_subscription_on_a_narrowing_parameter_gets_the_Tasks_for_its_patient_only()
    {
        // Task's patient is for.where(resolve() is Patient): its local references are rows of subject (Task.for) only.
        var forP = await NewReceiverAsync();
        var forQ = await NewReceiverAsync();
        await SubscribeAsync($"Task?patient=Patient/p-{_suffix}", forP);
        await SubscribeAsync($"Task?patient=q-{_suffix}", forQ);

        var taskP = await CreateTaskForAsync($"Patient/p-{_suffix}");
        var taskQ = await CreateTaskForAsync($"Patient/q-{_suffix}");

        Assert.Equal(taskP.Id, Parse<FhirTask>(await forP.NextAsync()).Id);
        Assert.Equal(taskQ.Id, Parse<FhirTask>(await forQ.NextAsync()).Id);
    }

    [Fact]
    public async Task Several_updates_of_a_Task_are_delivered_once_each_in_order()
    {
        var receiver = await NewReceiverAsync();
        await SubscribeAsync($"Task?owner={OwnerX}", receiver);
        var task = await CreateTaskAsync(OwnerX);
        var statuses = new[] { FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Completed };
        foreach (var status in statuses)
        {
            task.Status = status;
            task = await Fhir.Read<FhirTask>(await Client.PutAsync($"/fhir/Task/{task.Id}", Fhir.Content(task)));
        }

        var delivered = (await receiver.NextAsync(5)).Select(Parse<FhirTask>).ToList();

        Assert.Equal(["1", "2", "3", "4", "5"], delivered.Select(t => t.Meta!.VersionId));
        Assert.Equal([FhirTask.TaskStatus.Requested, .. statuses], delivered.Select(t => t.Status!.Value));
    }

    [Fact]
    public async Task Two_hub_instances_on_one_database_deliver_each_update_once_and_in_order()
    {
        var receiver = await NewReceiverAsync();
        await SubscribeAsync($"Task?owner={OwnerX}", receiver);
        // Started after the Subscription was written, so it knows it from its start-up load.
        var other = Start(hub.Restarted(), maxFailures: 5).CreateClient();
        var task = await CreateTaskAsync(OwnerX);
        var statuses = new[] { FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Completed };
        for (var i = 0; i < statuses.Length; i++)
        {
            task.Status = statuses[i];
            var client = i % 2 == 0 ? other : Client;
            task = await Fhir.Read<FhirTask>(await client.PutAsync($"/fhir/Task/{task.Id}", Fhir.Content(task)));
        }

        var marker = await CreateTaskAsync(OwnerX, other);

        var delivered = (await receiver.NextAsync(6)).Select(Parse<FhirTask>).ToList();
        Assert.Equal([$"{task.Id}/1", $"{task.Id}/2", $"{task.Id}/3", $"{task.Id}/4", $"{task.Id}/5", $"{marker.Id}/1"],
            delivered.Select(t => $"{t.Id}/{t.Meta!.VersionId}"));
    }

    [Fact]
    public async Task A_Subscription_without_payload_gets_a_POST_without_body_and_one_with_xml_payload_gets_xml()
    {
        var bare = await NewReceiverAsync();
        var xml = await NewReceiverAsync();
        await SubscribeAsync($"Task?owner={OwnerX}", bare, payload: null);
        await SubscribeAsync($"Task?owner={OwnerX}", xml, payload: "application/fhir+xml");
        var task = await CreateTaskAsync(OwnerX);

        var notification = await bare.NextAsync();
        Assert.Equal("POST", notification.Method);
        Assert.Empty(notification.Body);
        var asXml = await xml.NextAsync();
        Assert.Equal(("PUT", $"/hook/Task/{task.Id}"), (asXml.Method, asXml.Path));
        Assert.StartsWith("application/fhir+xml", asXml.ContentType, StringComparison.Ordinal);
        var parsed = new FhirXmlDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable))
            .DeserializeResource(System.Text.Encoding.UTF8.GetString(asXml.Body));
        Assert.Equal(task.Id, Assert.IsType<FhirTask>(parsed).Id);
    }

    [Fact]
    public async Task A_receiver_that_fails_drops_the_connection_and_is_down_for_a_while_gets_the_notification_after_retries()
    {
        var receiver = await NewReceiverAsync();
        receiver.Answer = attempt => attempt switch { 1 => 500, 2 => -1, _ => 200 };
        var client = Start(hub, maxFailures: 1000).CreateClient();
        var subscription = await SubscribeAsync($"Task?owner={OwnerX}", receiver, client: client);

        var task = await CreateTaskAsync(OwnerX, client);
        await receiver.AttemptedAsync(2);
        await receiver.DownAsync();
        // Retries while nobody listens fail too (the outcome below does not depend on how many there were).
        await Task.Delay(300);
        await receiver.UpAsync();

        Assert.Equal(task.Id, Parse<FhirTask>(await receiver.NextAsync()).Id);
        var after = await Fhir.Read<Subscription>(await client.GetAsync($"/fhir/Subscription/{subscription.Id}"));
        Assert.Equal(Subscription.SubscriptionStatus.Active, after.Status);
    }

    [Fact]
    public async Task A_subscriber_that_keeps_failing_puts_the_Subscription_in_error_with_the_reason_and_its_notifications_wait()
    {
        var nobody = $"http://127.0.0.1:{Receiver.FreePort()}/hook";
        var subscription = await SubscribeAsync($"Task?owner={OwnerX}", endpoint: nobody);
        var task = await CreateTaskAsync(OwnerX);

        var failed = await WaitForStatusAsync(subscription.Id!, Subscription.SubscriptionStatus.Error);

        Assert.Contains("failed 5 times in a row", failed.Error, StringComparison.Ordinal);
        Assert.Contains("HttpRequestException", failed.Error, StringComparison.Ordinal);

        // Reactivated towards a working endpoint, it gets what was kept for it.
        var receiver = await NewReceiverAsync();
        failed.Status = Subscription.SubscriptionStatus.Requested;
        failed.Channel.Endpoint = receiver.Url;
        var reactivated = await Fhir.Read<Subscription>(await Client.PutAsync($"/fhir/Subscription/{failed.Id}", Fhir.Content(failed)));
        Assert.Equal(Subscription.SubscriptionStatus.Active, reactivated.Status);
        Assert.Null(reactivated.Error);
        Assert.Equal(task.Id, Parse<FhirTask>(await receiver.NextAsync()).Id);
    }

    [Fact]
    public async Task Notifications_not_delivered_before_a_restart_are_delivered_after_it()
    {
        var receiver = await NewReceiverAsync();
        receiver.Answer = _ => 503;
        var first = Start(hub, maxFailures: 1000);
        var client = first.CreateClient();
        await SubscribeAsync($"Task?owner={OwnerX}", receiver, client: client);
        var task = await CreateTaskAsync(OwnerX, client);
        await receiver.AttemptedAsync(1);
        await first.DisposeAsync();

        receiver.Answer = _ => 200;
        Start(hub.Restarted(), maxFailures: 1000).CreateClient();

        Assert.Equal(task.Id, Parse<FhirTask>(await receiver.NextAsync()).Id);
    }

    [Fact]
    public async Task A_rolled_back_transaction_notifies_nobody()
    {
        var receiver = await NewReceiverAsync();
        await SubscribeAsync($"Task?owner={OwnerX}", receiver);
        var missing = Guid.NewGuid().ToString("N");
        var transaction = new Bundle
        {
            Type = BundleType.Transaction,
            Entry =
            [
                new EntryComponent { Resource = NewTask(OwnerX), Request = new RequestComponent { Method = HTTPVerb.POST, Url = "Task" } },
                new EntryComponent
                {
                    Resource = new Patient { Id = missing },
                    Request = new RequestComponent { Method = HTTPVerb.PUT, Url = $"Patient/{missing}", IfMatch = "W/\"7\"" },
                },
            ],
        };

        var response = await Client.PostAsync("/fhir", Fhir.Content(transaction));
        Assert.False(response.IsSuccessStatusCode);
        var committed = await CreateTaskAsync(OwnerX);

        // Notifications come in write order: the rolled-back Task, had it been queued, would come first.
        Assert.Equal(committed.Id, Parse<FhirTask>(await receiver.NextAsync()).Id);
    }

    [Fact]
    public async Task A_Task_written_in_a_transaction_is_delivered()
    {
        var receiver = await NewReceiverAsync();
        await SubscribeAsync($"Task?owner={OwnerX}", receiver);
        var transaction = new Bundle
        {
            Type = BundleType.Transaction,
            Entry = [new EntryComponent { Resource = NewTask(OwnerX), Request = new RequestComponent { Method = HTTPVerb.POST, Url = "Task" } }],
        };

        var response = await Fhir.Read<Bundle>(await Client.PostAsync("/fhir", Fhir.Content(transaction)));

        Assert.Equal(response.Entry[0].Resource!.Id, Parse<FhirTask>(await receiver.NextAsync()).Id);
    }

    [Fact]
    public async Task Resources_an_import_creates_are_delivered_as_the_new_versions_it_writes_of_existing_ones_are()
    {
        var receiver = await NewReceiverAsync();
        await SubscribeAsync("Observation?code=http://loinc.org|29463-7", receiver);
        var (first, second) = ($"bulk25-{_suffix}-1", $"bulk25-{_suffix}-2");

        // A new Observation that matches, one that does not, another that matches: one batch, bulk-loaded.
        await ImportAsync(Weight(first, "final", "29463-7"), Weight($"bulk25-{_suffix}-0", "final", "8302-2"), Weight(second, "final", "29463-7"));
        var created = (await receiver.NextAsync(2)).Select(Parse<Observation>).ToList();
        // A changed version of an imported id is written by the normal path.
        await ImportAsync(Weight(first, "amended", "29463-7"));
        var changed = Parse<Observation>(await receiver.NextAsync());

        Assert.Equal([$"{first}/1", $"{second}/1"], created.Select(o => $"{o.Id}/{o.Meta!.VersionId}").Order());
        // Each subscriber's notifications come in write order: the one that did not match, had it been queued, would be here.
        Assert.Equal(($"{first}/2", ObservationStatus.Amended), ($"{changed.Id}/{changed.Meta!.VersionId}", changed.Status!.Value));
    }

    private static string Weight(string id, string status, string code) =>
        $$$"""{"resourceType":"Observation","id":"{{{id}}}","status":"{{{status}}}","code":{"coding":[{"system":"http://loinc.org","code":"{{{code}}}"}]}}""";

    private async Task ImportAsync(params string[] lines)
    {
        var folder = ImportTests.NewFolder();
        await File.WriteAllTextAsync(Path.Combine(folder, "Observation.ndjson"), string.Join("\n", lines));
        var result = await ImportTests.WaitAsync(await ImportTests.KickOffAsync(ImportTests.Input("Observation", folder), Client), Client);
        Assert.Empty(result.GetProperty("error").EnumerateArray());
    }

    [Theory]
    [InlineData("Task?no-such-parameter=1", "rest-hook", "http://127.0.0.1:1/hook", "application/fhir+json", "Subscription.criteria")]
    [InlineData("NoSuchType?owner=Organization/1", "rest-hook", "http://127.0.0.1:1/hook", "application/fhir+json", "Subscription.criteria")]
    [InlineData("Task?authored-on=not-a-date", "rest-hook", "http://127.0.0.1:1/hook", "application/fhir+json", "Subscription.criteria")]
    [InlineData("Task?owner=Organization/1", "websocket", "http://127.0.0.1:1/hook", "application/fhir+json", "Subscription.channel.type")]
    [InlineData("Task?owner=Organization/1", "rest-hook", "ftp://127.0.0.1/hook", "application/fhir+json", "Subscription.channel.endpoint")]
    [InlineData("Task?owner=Organization/1", "rest-hook", "http://127.0.0.1:1/hook", "text/csv", "Subscription.channel.payload")]
    public async Task A_Subscription_the_hub_cannot_deliver_is_refused_naming_what(string criteria, string channel, string endpoint, string payload, string where)
    {
        var subscription = NewSubscription(criteria, endpoint, payload, []);
        subscription.Channel.Type = Hl7.Fhir.Utility.EnumUtility.ParseLiteral<Subscription.SubscriptionChannelType>(channel);

        var response = await Client.PostAsync("/fhir/Subscription", Fhir.Content(subscription));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue[0];
        Assert.Equal([where], issue.Expression);
        Assert.Contains(where, issue.Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://localhost:1/hook")]
    [InlineData("http://127.0.0.1:1/elsewhere-than-listed/../../x")]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    public async Task With_an_allowlist_an_endpoint_outside_it_is_refused_naming_the_setting(string endpoint)
    {
        await using var listed = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Subscriptions:AllowedEndpoints:0", "http://127.0.0.1:*/hooks/"));

        var response = await listed.CreateClient().PostAsync("/fhir/Subscription", Fhir.Content(NewSubscription($"Task?owner={OwnerX}", endpoint, null, [])));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal(["Subscription.channel.endpoint"], issue.Expression);
        Assert.Contains("InteropHub:Subscriptions:AllowedEndpoints", issue.Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/hook", HttpStatusCode.UnprocessableEntity)]
    [InlineData("http://localhost/hook", HttpStatusCode.UnprocessableEntity)]
    [InlineData("http://[::1]:8080/hook", HttpStatusCode.UnprocessableEntity)]
    [InlineData("http://169.254.169.254/latest/meta-data", HttpStatusCode.UnprocessableEntity)]
    [InlineData("http://0.0.0.0:8080/hook", HttpStatusCode.UnprocessableEntity)]
    [InlineData("http://10.20.30.40:8080/fhir", HttpStatusCode.Created)]
    [InlineData("https://township.example/fhir", HttpStatusCode.Created)]
    public async Task Without_an_allowlist_an_endpoint_on_this_machine_or_link_local_is_refused_and_the_county_network_is_not(string endpoint, HttpStatusCode expected)
    {
        await using var open = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Subscriptions:AllowedEndpoints:0", ""));
        var subscription = NewSubscription($"Task?owner={OwnerX}", endpoint, null, []);
        subscription.Status = Subscription.SubscriptionStatus.Off;

        var response = await open.CreateClient().PostAsync("/fhir/Subscription", Fhir.Content(subscription));

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task A_stored_Subscription_whose_endpoint_the_allowlist_no_longer_covers_fails_delivery_saying_why()
    {
        var subscription = await SubscribeAsync($"Task?owner={OwnerX}", endpoint: $"http://127.0.0.1:{Receiver.FreePort()}/hook");
        foreach (var started in _hubs)
        {
            await started.DisposeAsync();
        }

        _hubs.Clear();
        await using var narrowed = hub.WithWebHostBuilder(b =>
        {
            b.UseSetting("InteropHub:Subscriptions:AllowedEndpoints:0", "https://township.example/");
            b.UseSetting("InteropHub:Subscriptions:RetryDelay", "00:00:00.020");
            b.UseSetting("InteropHub:Subscriptions:MaxRetryDelay", "00:00:00.050");
            b.UseSetting("InteropHub:Subscriptions:MaxFailures", "2");
            b.UseSetting("InteropHub:Subscriptions:PollInterval", "00:00:00.200");
        });
        var client = narrowed.CreateClient();

        await CreateTaskAsync(OwnerX, client);

        Subscription? stored = null;
        for (var attempt = 0; attempt < 300 && stored?.Status != Subscription.SubscriptionStatus.Error; attempt++)
        {
            await Task.Delay(50);
            stored = await Fhir.Read<Subscription>(await client.GetAsync($"/fhir/Subscription/{subscription.Id}"));
        }

        Assert.Equal(Subscription.SubscriptionStatus.Error, stored!.Status);
        Assert.Contains("InteropHub:Subscriptions:AllowedEndpoints", stored.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("X-A: b\r\nX-Injected: 1", "control character")]
    [InlineData("X-A: b\u0001", "control character")]
    [InlineData("X-A: 张三", "non-ASCII")]
    [InlineData("X A: b", "not an HTTP field name")]
    [InlineData("NoColonHere", "'Name: value'")]
    [InlineData("Content-Length: 5", "sets itself")]
    [InlineData("content-type: text/plain", "sets itself")]
    [InlineData("Host: term25.example", "sets itself")]
    public async Task A_channel_header_that_is_not_one_plain_HTTP_header_the_hub_leaves_to_the_Subscription_is_refused_naming_it(string header, string why)
    {
        var subscription = NewSubscription("Task?owner=Organization/term25", "http://127.0.0.1:1/hook", "application/fhir+json", ["Authorization: Bearer term25", header]);

        var response = await Client.PostAsync("/fhir/Subscription", Fhir.Content(subscription));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var issue = Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
        Assert.Equal(["Subscription.channel.header[1]"], issue.Expression);
        Assert.Contains(why, issue.Diagnostics, StringComparison.Ordinal);
        // What is refused is quoted on one line: a control character shows as \uXXXX.
        Assert.DoesNotContain(issue.Diagnostics ?? "", char.IsControl);
    }

    [Fact]
    public async Task A_channel_header_with_a_line_break_is_refused_by_update_patch_and_transaction_and_reported_by_validate()
    {
        const string Where = "Subscription.channel.header[0]";
        var stored = await SubscribeAsync("Task?owner=Organization/term25-paths", endpoint: "http://127.0.0.1:1/hook");
        var injecting = NewSubscription("Task?owner=Organization/term25-paths", "http://127.0.0.1:1/hook", "application/fhir+json", ["X-A: b\r\nX-Injected: 1"]);
        var transaction = new Bundle { Type = BundleType.Transaction };
        transaction.Entry.Add(new EntryComponent { Resource = injecting, Request = new RequestComponent { Method = HTTPVerb.POST, Url = "Subscription" } });
        var validated = await Client.PostAsync("/fhir/Subscription/$validate", Fhir.Content(injecting));
        injecting.Id = stored.Id;

        var put = await Client.PutAsync($"/fhir/Subscription/{stored.Id}", Fhir.Content(injecting));
        var patch = await Client.PatchAsync($"/fhir/Subscription/{stored.Id}",
            Fhir.Raw("""[{"op":"add","path":"/channel/header","value":["X-A: b\r\nX-Injected: 1"]}]""", "application/json-patch+json"));
        var inTransaction = await Client.PostAsync("/fhir", Fhir.Content(transaction));

        foreach (var refused in new[] { put, patch, inTransaction })
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Contains(Where, (await Fhir.Read<OperationOutcome>(refused)).Issue.SelectMany(i => i.Expression));
        }

        Assert.Equal(HttpStatusCode.OK, validated.StatusCode);
        var error = Assert.Single((await Fhir.Read<OperationOutcome>(validated)).Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(Where, error.Expression);
        Assert.Empty((await Fhir.Read<Subscription>(await Client.GetAsync($"/fhir/Subscription/{stored.Id}"))).Channel.Header);
    }

    [Fact]
    public async Task The_CapabilityStatement_lists_rest_hook_Subscriptions()
    {
        var capabilities = await Fhir.Read<CapabilityStatement>(await Client.GetAsync("/fhir/metadata"));

        var subscription = Assert.Single(capabilities.Rest[0].Resource, r => r.Type == "Subscription");
        Assert.Contains("rest-hook", subscription.Documentation, StringComparison.Ordinal);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var started in _hubs)
        {
            await started.DisposeAsync();
        }

        foreach (var receiver in _receivers)
        {
            await receiver.DisposeAsync();
        }
    }

    private WebApplicationFactory<Program> Start(HubFactory factory, int maxFailures)
    {
        var started = factory.WithWebHostBuilder(builder =>
        {
            builder.UseSetting("InteropHub:Subscriptions:RetryDelay", "00:00:00.020");
            builder.UseSetting("InteropHub:Subscriptions:MaxRetryDelay", "00:00:00.100");
            builder.UseSetting("InteropHub:Subscriptions:MaxFailures", maxFailures.ToString(System.Globalization.CultureInfo.InvariantCulture));
            builder.UseSetting("InteropHub:Subscriptions:PollInterval", "00:00:00.500");
            builder.UseSetting("InteropHub:Subscriptions:RequestTimeout", "00:00:05");
        });
        _hubs.Add(started);
        return started;
    }

    private async Task<Receiver> NewReceiverAsync()
    {
        var receiver = await Receiver.StartAsync();
        _receivers.Add(receiver);
        return receiver;
    }

    private async Task<Subscription> SubscribeAsync(string criteria, Receiver? receiver = null, string? endpoint = null,
        string? payload = "application/fhir+json", string[]? headers = null, HttpClient? client = null)
    {
        var response = await (client ?? Client).PostAsync("/fhir/Subscription",
            Fhir.Content(NewSubscription(criteria, endpoint ?? receiver!.Url, payload, headers ?? [])));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await Fhir.Read<Subscription>(response);
    }

    private static Subscription NewSubscription(string criteria, string endpoint, string? payload, string[] headers) => new()
    {
        Status = Subscription.SubscriptionStatus.Requested,
        Reason = "Referrals addressed to the hospital",
        Criteria = criteria,
        Channel = new Subscription.ChannelComponent
        {
            Type = Subscription.SubscriptionChannelType.RestHook,
            Endpoint = endpoint,
            Payload = payload,
            Header = [.. headers],
        },
    };

    private async Task<FhirTask> CreateTaskAsync(string owner, HttpClient? client = null)
    {
        var response = await (client ?? Client).PostAsync("/fhir/Task", Fhir.Content(NewTask(owner)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await Fhir.Read<FhirTask>(response);
    }

    private async Task<FhirTask> CreateTaskForAsync(string patient)
    {
        var task = NewTask(OwnerY);
        task.For = new ResourceReference(patient);
        var response = await Client.PostAsync("/fhir/Task", Fhir.Content(task));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await Fhir.Read<FhirTask>(response);
    }

    private static FhirTask NewTask(string owner) => new()
    {
        Status = FhirTask.TaskStatus.Requested,
        Intent = FhirTask.TaskIntent.Order,
        Owner = new ResourceReference(owner),
    };

    private async Task<Subscription> WaitForStatusAsync(string id, Subscription.SubscriptionStatus status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var subscription = await Fhir.Read<Subscription>(await Client.GetAsync($"/fhir/Subscription/{id}"));
            if (subscription.Status == status || DateTime.UtcNow > deadline)
            {
                Assert.Equal(status, subscription.Status);
                return subscription;
            }

            await Task.Delay(50);
        }
    }

    private static T Parse<T>(Notification notification) where T : Resource =>
        Assert.IsType<T>(Json.DeserializeResource(System.Text.Encoding.UTF8.GetString(notification.Body)));
}

public sealed class SubscriptionTestsOnSqlite(SqliteHub hub) : SubscriptionTests(hub), IClassFixture<SqliteHub>;

public sealed class SubscriptionTestsOnPostgres(PostgresHub hub) : SubscriptionTests(hub), IClassFixture<PostgresHub>;
