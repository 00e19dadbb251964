using System.Net;
using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using static Hl7.Fhir.Model.Bundle;

namespace InteropHub.Server.Tests;

/// <summary><c>POST /fhir</c> with transaction and batch Bundles (http.html#transaction).</summary>
public abstract class TransactionTests(HubFactory hub)
{
    private const string IdSystem = "urn:oid:2.16.156.10011.1.3";

    /// <summary>Identifiers of the observations and organisations the transaction search tests create.</summary>
    private const string ObservationIds = "http://qingxi-hospital.example/txget25";
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task A_transaction_creates_every_entry_and_answers_each_with_status_location_and_etag()
    {
        var id = NewId();

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("李", "四")),
            Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient("王", "五"), id)),
            Entry(HTTPVerb.POST, "Organization", new Organization { Name = "清溪县人民医院" }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(BundleType.TransactionResponse, bundle.Type);
        Assert.Equal(3, bundle.Entry.Count);
        foreach (var entry in bundle.Entry)
        {
            Assert.Equal("201 Created", entry.Response!.Status);
            Assert.Equal("W/\"1\"", entry.Response!.Etag);
            Assert.NotNull(entry.Response!.LastModified);
            Assert.Equal($"{entry.Resource!.TypeName}/{entry.Resource.Id}/_history/1", entry.Response!.Location);
            Assert.EndsWith($"/fhir/{entry.Resource.TypeName}/{entry.Resource.Id}", entry.FullUrl, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/{entry.Response!.Location}")).StatusCode);
        }

        Assert.Equal("李", ((Patient)bundle.Entry[0].Resource!).Name[0].Family);
    }

    [Fact]
    public async Task Placeholders_are_replaced_in_every_reference_also_nested_in_extensions_and_backbone_elements_and_circular()
    {
        const string patientUrl = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
        const string otherUrl = "urn:oid:1.2.156.999.1";
        const string encounterUrl = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059";
        var patient = Fhir.Patient();
        patient.Link.Add(new Patient.LinkComponent { Other = new ResourceReference(otherUrl), Type = Patient.LinkType.Seealso });
        var other = Fhir.Patient("李", "四");
        other.Link.Add(new Patient.LinkComponent { Other = new ResourceReference(patientUrl), Type = Patient.LinkType.Seealso });
        var encounter = new Encounter
        {
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            Subject = new ResourceReference(patientUrl),
            Participant = [new Encounter.ParticipantComponent { Individual = new ResourceReference(otherUrl) }],
            Text = new Narrative
            {
                Status = Narrative.NarrativeStatus.Generated,
                Div = $"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"{patientUrl}\">患者</a></div>",
            },
        };
        encounter.Extension.Add(new Extension("http://example.org/fhir/StructureDefinition/referrer", new ResourceReference(otherUrl)));
        encounter.Extension.Add(new Extension("http://example.org/fhir/StructureDefinition/source", new FhirUri(patientUrl)));
        encounter.Extension.Add(new Extension("http://example.org/fhir/StructureDefinition/profile", new Canonical(patientUrl)));
        var observation = new Observation
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "8339-4"),
            Subject = new ResourceReference(patientUrl),
            Encounter = new ResourceReference(encounterUrl),
        };

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Observation", observation),
            Entry(HTTPVerb.POST, "Encounter", encounter, encounterUrl),
            Entry(HTTPVerb.POST, "Patient", patient, patientUrl),
            Entry(HTTPVerb.POST, "Patient", other, otherUrl));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        var patientRef = $"Patient/{bundle.Entry[2].Resource!.Id}";
        var otherRef = $"Patient/{bundle.Entry[3].Resource!.Id}";
        var storedObservation = await ReadAsync<Observation>($"Observation/{bundle.Entry[0].Resource!.Id}");
        Assert.Equal(patientRef, storedObservation.Subject!.Reference);
        Assert.Equal($"Encounter/{bundle.Entry[1].Resource!.Id}", storedObservation.Encounter!.Reference);
        var storedEncounter = await ReadAsync<Encounter>($"Encounter/{bundle.Entry[1].Resource!.Id}");
        Assert.Equal(patientRef, storedEncounter.Subject!.Reference);
        Assert.Equal(otherRef, storedEncounter.Participant[0].Individual!.Reference);
        Assert.Equal(otherRef, ((ResourceReference)storedEncounter.Extension[0].Value!).Reference);
        Assert.Equal(patientRef, ((FhirUri)storedEncounter.Extension[1].Value!).Value);
        Assert.Equal(patientUrl, ((Canonical)storedEncounter.Extension[2].Value!).Value);
        Assert.Contains($"href=\"{patientRef}\"", storedEncounter.Text!.Div, StringComparison.Ordinal);
        Assert.Equal(otherRef, (await ReadAsync<Patient>(patientRef)).Link[0].Other!.Reference);
        Assert.Equal(patientRef, (await ReadAsync<Patient>(otherRef)).Link[0].Other!.Reference);
    }

    [Fact]
    public async Task A_relative_reference_from_an_entry_on_the_same_absolute_base_follows_the_id_the_target_is_given()
    {
        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("外", "院"), "http://other.example/fhir/Patient/ext1"),
            Entry(HTTPVerb.POST, "Observation", Observation("Patient/ext1"), "http://other.example/fhir/Observation/o1"),
            Entry(HTTPVerb.POST, "Observation", Observation("http://other.example/fhir/Patient/ext1")),
            Entry(HTTPVerb.PUT, "Patient/ext1", WithId(Fhir.Patient("本", "院"), "ext1")),
            Entry(HTTPVerb.POST, "Observation", Observation("Patient/ext1")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        var patient = $"Patient/{bundle.Entry[0].Resource!.Id}";
        Assert.NotEqual("Patient/ext1", patient);
        Assert.Equal(patient, ((Observation)bundle.Entry[1].Resource!).Subject!.Reference);
        Assert.Equal(patient, ((Observation)bundle.Entry[2].Resource!).Subject!.Reference);
        // Without an absolute fullUrl of its own, Patient/ext1 is this server's (bundle.html#references).
        Assert.Equal("Patient/ext1", ((Observation)bundle.Entry[4].Resource!).Subject!.Reference);
    }

    [Fact]
    public async Task A_batch_entry_referring_to_a_placeholder_fails_alone_since_batch_entries_resolve_none()
    {
        const string Placeholder = "urn:uuid:c0000000-0000-0000-0000-000000000001";

        var response = await PostAsync(BundleType.Batch,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(), Placeholder),
            Entry(HTTPVerb.POST, "Observation", Observation(Placeholder)));

        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(["201 Created", "400 Bad Request"], bundle.Entry.Select(e => e.Response!.Status));
        Assert.Contains("transaction", ((OperationOutcome)bundle.Entry[1].Response!.Outcome!).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_restful_full_url_that_disagrees_with_the_resource_id_is_400_naming_it_alone_in_a_batch()
    {
        var (named, actual, agreeing, placeholder) = (NewId(), NewId(), NewId(), NewId());
        EntryComponent Disagreeing() => Entry(HTTPVerb.PUT, $"Patient/{actual}", WithId(Fhir.Patient(), actual), $"http://localhost/fhir/Patient/{named}");

        var transaction = await PostAsync(BundleType.Transaction, Disagreeing());
        var batch = await PostAsync(BundleType.Batch,
            Disagreeing(),
            Entry(HTTPVerb.PUT, $"Patient/{agreeing}", WithId(Fhir.Patient(), agreeing), $"http://localhost/fhir/Patient/{agreeing}"),
            Entry(HTTPVerb.PUT, $"Patient/{placeholder}", WithId(Fhir.Patient(), placeholder), $"urn:uuid:{Guid.NewGuid()}"));

        Assert.Equal(HttpStatusCode.BadRequest, transaction.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(transaction)).Issue.Single();
        Assert.Equal("Bundle.entry[0].fullUrl", issue.Expression.Single());
        Assert.Contains($"Patient/{named}", issue.Diagnostics, StringComparison.Ordinal);
        var entries = (await Fhir.Read<Bundle>(batch)).Entry;
        Assert.Equal(["400 Bad Request", "201 Created", "201 Created"], entries.Select(e => e.Response!.Status));
        Assert.Equal("Bundle.entry[0].fullUrl", ((OperationOutcome)entries[0].Response!.Outcome!).Issue.Single().Expression.Single());
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{actual}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{named}")).StatusCode);
    }

    [Fact]
    public async Task A_failing_entry_rolls_the_whole_transaction_back_including_history_and_index()
    {
        var number = NewNumber();
        var existing = await CreateAsync(Fhir.Patient(identifier: NewNumber()));
        var putId = NewId();
        var newestBefore = (await Fhir.Read<Bundle>(await _client.GetAsync("/fhir/_history?_count=1"))).Entry.Single().FullUrl;

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number)),
            Entry(HTTPVerb.PUT, $"Patient/{putId}", WithId(Fhir.Patient(), putId)),
            Entry(HTTPVerb.PUT, $"Patient/{existing}", WithId(Fhir.Patient("改", "名"), existing), ifMatch: "W/\"7\""));

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal("Bundle.entry[2]", issue.Expression.First());
        Assert.StartsWith($"Bundle.entry[2] (PUT Patient/{existing}): If-Match", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(number));
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{putId}")).StatusCode);
        Assert.Equal("1", (await ReadAsync<Patient>($"Patient/{existing}")).Meta!.VersionId);
        Assert.Single((await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{existing}/_history"))).Entry);
        Assert.Equal(newestBefore, (await Fhir.Read<Bundle>(await _client.GetAsync("/fhir/_history?_count=1"))).Entry.Single().FullUrl);
    }

    [Fact]
    public async Task If_match_is_checked_per_entry()
    {
        var id = await CreateAsync(Fhir.Patient());

        var stale = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient(), id), ifMatch: "W/\"2\""));
        var current = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient(), id), ifMatch: "W/\"1\""));
        var malformed = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.DELETE, $"Patient/{id}", ifMatch: "version two"));

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Contains("Bundle.entry[0]", (await Fhir.Read<OperationOutcome>(stale)).Issue[0].Expression);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
        Assert.Equal("200 OK", (await Fhir.Read<Bundle>(current)).Entry[0].Response!.Status);
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Contains("Bundle.entry[0].request.ifMatch", (await Fhir.Read<OperationOutcome>(malformed)).Issue[0].Expression);
    }

    [Fact]
    public async Task Conditional_references_resolve_to_the_single_match_and_fail_the_transaction_on_none_or_several()
    {
        var one = NewNumber();
        var oneId = await CreateAsync(Fhir.Patient(identifier: one));
        var twice = NewNumber();
        await CreateAsync(Fhir.Patient(identifier: twice));
        await CreateAsync(Fhir.Patient(identifier: twice));
        var none = NewNumber();

        var resolved = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{one}")));
        var ambiguous = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{one}")),
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{twice}")));
        var missing = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{none}")));
        var unsearchable = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.POST, "Observation", Observation("Patient?nonsense=张")));

        Assert.Equal(HttpStatusCode.OK, resolved.StatusCode);
        var observation = (Observation)(await Fhir.Read<Bundle>(resolved)).Entry[0].Resource!;
        Assert.Equal($"Patient/{oneId}", observation.Subject!.Reference);
        Assert.Equal(HttpStatusCode.PreconditionFailed, ambiguous.StatusCode);
        Assert.Contains("Bundle.entry[1]", (await Fhir.Read<OperationOutcome>(ambiguous)).Issue[0].Expression);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("matches no resource", (await Fhir.Read<OperationOutcome>(missing)).Issue[0].Diagnostics);
        Assert.Equal(HttpStatusCode.BadRequest, unsearchable.StatusCode);
        Assert.Contains("nonsense", (await Fhir.Read<OperationOutcome>(unsearchable)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task Criteria_may_name_a_system_url_unencoded_in_entry_urls_and_conditional_references()
    {
        const string System = "http://hospital.example/mrn";
        var number = NewNumber();
        var patient = Fhir.Patient();
        patient.Identifier = [new Identifier(System, number)];

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.PUT, $"Patient?identifier={System}|{number}", patient),
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={System}|{number}")));
        var read = await PostAsync(BundleType.Batch, Entry(HTTPVerb.GET, $"Patient?identifier={System}|{number}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal("201 Created", bundle.Entry[0].Response!.Status);
        Assert.Equal($"Patient/{bundle.Entry[0].Resource!.Id}", ((Observation)bundle.Entry[1].Resource!).Subject!.Reference);
        var found = (Bundle)(await Fhir.Read<Bundle>(read)).Entry[0].Resource!;
        Assert.Equal(bundle.Entry[0].Resource!.Id, Assert.Single(found.Entry).Resource!.Id);
    }

    [Fact]
    public async Task Conditional_create_inside_a_transaction_reuses_a_match_and_references_to_it_follow()
    {
        var known = NewNumber();
        var knownId = await CreateAsync(Fhir.Patient(identifier: known));
        var fresh = NewNumber();

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: known), "urn:uuid:11111111-1111-1111-1111-111111111111", ifNoneExist: $"identifier={IdSystem}|{known}"),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: fresh), "urn:uuid:22222222-2222-2222-2222-222222222222", ifNoneExist: $"identifier={IdSystem}|{fresh}"),
            Entry(HTTPVerb.POST, "Observation", Observation("urn:uuid:11111111-1111-1111-1111-111111111111")),
            Entry(HTTPVerb.POST, "Observation", Observation("urn:uuid:22222222-2222-2222-2222-222222222222")),
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{fresh}")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal("200 OK", bundle.Entry[0].Response!.Status);
        Assert.Equal(knownId, bundle.Entry[0].Resource!.Id);
        Assert.Equal("201 Created", bundle.Entry[1].Response!.Status);
        var freshId = bundle.Entry[1].Resource!.Id;
        Assert.Equal($"Patient/{knownId}", ((Observation)bundle.Entry[2].Resource!).Subject!.Reference);
        Assert.Equal($"Patient/{freshId}", ((Observation)bundle.Entry[3].Resource!).Subject!.Reference);
        Assert.Equal($"Patient/{freshId}", ((Observation)bundle.Entry[4].Resource!).Subject!.Reference);
        Assert.Equal(1, await CountAsync(known));
        Assert.Equal(1, await CountAsync(fresh));
    }

    [Fact]
    public async Task Conditional_update_and_delete_inside_a_transaction_resolve_their_match()
    {
        var updateNumber = NewNumber();
        var updateId = await CreateAsync(Fhir.Patient(identifier: updateNumber));
        var deleteNumber = NewNumber();
        var deleteId = await CreateAsync(Fhir.Patient(identifier: deleteNumber));
        var createNumber = NewNumber();

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.PUT, $"Patient?identifier={IdSystem}|{updateNumber}", Fhir.Patient("新", "名", updateNumber)),
            Entry(HTTPVerb.PUT, $"Patient?identifier={IdSystem}|{createNumber}", Fhir.Patient("建", "档", createNumber)),
            Entry(HTTPVerb.DELETE, $"Patient?identifier={IdSystem}|{deleteNumber}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(["200 OK", "201 Created", "204 No Content"], bundle.Entry.Select(e => e.Response!.Status));
        Assert.Equal(updateId, bundle.Entry[0].Resource!.Id);
        Assert.Equal("新", (await ReadAsync<Patient>($"Patient/{updateId}")).Name[0].Family);
        Assert.Equal(1, await CountAsync(createNumber));
        Assert.Equal(HttpStatusCode.Gone, (await _client.GetAsync($"/fhir/Patient/{deleteId}")).StatusCode);
    }

    [Fact]
    public async Task The_same_resource_twice_in_one_transaction_is_400()
    {
        var id = await CreateAsync(Fhir.Patient());
        var number = NewNumber();

        var twicePut = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient(), id)),
            Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient(), id)));
        var deleteAndPatch = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.DELETE, $"Patient/{id}"),
            Entry(HTTPVerb.PATCH, $"Patient/{id}", JsonPatch("""[{"op":"add","path":"/active","value":true}]""")));
        var twiceConditional = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number), ifNoneExist: $"identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number), ifNoneExist: $"identifier={IdSystem}|{number}"));
        var sameFullUrl = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(), "urn:uuid:33333333-3333-3333-3333-333333333333"),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(), "urn:uuid:33333333-3333-3333-3333-333333333333"));

        foreach (var response in new[] { twicePut, deleteAndPatch, twiceConditional, sameFullUrl })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("Bundle.entry[1]", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.First());
        }

        Assert.Equal("1", (await ReadAsync<Patient>($"Patient/{id}")).Meta!.VersionId);
        Assert.Equal(0, await CountAsync(number));
    }

    [Fact]
    public async Task Entries_run_delete_then_post_then_put_and_patch_then_get_and_answer_in_request_order()
    {
        var number = NewNumber();
        var oldId = await CreateAsync(Fhir.Patient(identifier: number));
        var putId = await CreateAsync(Fhir.Patient());

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.GET, $"Patient?identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.GET, $"Patient/{putId}"),
            Entry(HTTPVerb.PUT, $"Patient/{putId}", WithId(Fhir.Patient("后", "改"), putId)),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("新", "建", number), ifNoneExist: $"identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.DELETE, $"Patient?identifier={IdSystem}|{number}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(["200 OK", "200 OK", "200 OK", "201 Created", "204 No Content"], bundle.Entry.Select(e => e.Response!.Status));

        // The DELETE ran before the conditional POST, which therefore found nothing and created.
        var created = bundle.Entry[3].Resource!.Id;
        Assert.NotEqual(oldId, created);
        Assert.Equal(HttpStatusCode.Gone, (await _client.GetAsync($"/fhir/Patient/{oldId}")).StatusCode);

        // The GETs ran last and saw the writes.
        var search = (Bundle)bundle.Entry[0].Resource!;
        Assert.Equal(BundleType.Searchset, search.Type);
        Assert.Equal([created], search.Entry.Select(e => e.Resource!.Id));
        var read = (Patient)bundle.Entry[1].Resource!;
        Assert.Equal("2", read.Meta!.VersionId);
        Assert.Equal("后", read.Name[0].Family);
    }

    [Fact]
    public async Task Patch_entries_take_a_fhirpath_patch_or_a_json_patch_in_a_binary()
    {
        var first = await CreateAsync(Fhir.Patient());
        var second = await CreateAsync(Fhir.Patient());
        var fhirPathPatch = new Parameters { Parameter = [PatchTests.Operation("replace", "Patient.birthDate", value: new Date("1955-05-05"))] };

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.PATCH, $"Patient/{first}", fhirPathPatch, ifMatch: "W/\"1\""),
            Entry(HTTPVerb.PATCH, $"Patient/{second}", JsonPatch("""[{"op":"replace","path":"/birthDate","value":"1966-06-06"}]""")));
        var wrongBody = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.PATCH, $"Patient/{first}", Fhir.Patient()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1955-05-05", (await ReadAsync<Patient>($"Patient/{first}")).BirthDate);
        Assert.Equal("1966-06-06", (await ReadAsync<Patient>($"Patient/{second}")).BirthDate);
        Assert.Equal(HttpStatusCode.BadRequest, wrongBody.StatusCode);
    }

    [Fact]
    public async Task A_json_patch_entry_may_refer_to_another_entry_by_its_placeholder()
    {
        var patient = await CreateAsync(Fhir.Patient());
        const string Placeholder = "urn:uuid:a0000000-0000-0000-0000-000000000001";

        var response = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Organization", new Organization { Name = "白沙镇卫生院" }, Placeholder),
            Entry(HTTPVerb.PATCH, $"Patient/{patient}", JsonPatch($$$"""[{"op":"add","path":"/managingOrganization","value":{"reference":"{{{Placeholder}}}"}}]""")));
        var dangling = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.PATCH, $"Patient/{patient}", JsonPatch("""[{"op":"add","path":"/generalPractitioner","value":[{"reference":"urn:uuid:b0000000-0000-0000-0000-000000000009"}]}]""")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var organization = (await Fhir.Read<Bundle>(response)).Entry[0].Resource!.Id;
        Assert.Equal($"Organization/{organization}", (await ReadAsync<Patient>($"Patient/{patient}")).ManagingOrganization!.Reference);

        // The value may be the reference string itself.
        var bare = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Organization", new Organization { Name = "龙泉镇卫生院" }, "urn:uuid:a0000000-0000-0000-0000-000000000002"),
            Entry(HTTPVerb.PATCH, $"Patient/{patient}", JsonPatch("""[{"op":"replace","path":"/managingOrganization/reference","value":"urn:uuid:a0000000-0000-0000-0000-000000000002"}]""")));
        Assert.Equal(HttpStatusCode.OK, bare.StatusCode);
        var second = (await Fhir.Read<Bundle>(bare)).Entry[0].Resource!.Id;
        Assert.Equal($"Organization/{second}", (await ReadAsync<Patient>($"Patient/{patient}")).ManagingOrganization!.Reference);
        Assert.Equal(HttpStatusCode.BadRequest, dangling.StatusCode);
        Assert.Contains("Bundle.entry[0]", (await Fhir.Read<OperationOutcome>(dangling)).Issue[0].Expression.First());
    }

    [Fact]
    public async Task A_batch_answers_every_entry_and_keeps_what_succeeded()
    {
        var id = await CreateAsync(Fhir.Patient());
        var number = NewNumber();

        var response = await PostAsync(BundleType.Batch,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number)),
            Entry(HTTPVerb.DELETE, "Patient/never-was"),
            Entry(HTTPVerb.PUT, $"Patient/{id}", WithId(Fhir.Patient(), id), ifMatch: "W/\"9\""),
            Entry(HTTPVerb.GET, $"Patient/{id}"),
            Entry(HTTPVerb.GET, "Unknown/1"),
            Entry(HTTPVerb.GET, $"Patient/{id}/_history"),
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={IdSystem}|{number}x")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(BundleType.BatchResponse, bundle.Type);
        Assert.Equal(["201 Created", "204 No Content", "412 Precondition Failed", "200 OK", "404 Not Found", "200 OK", "400 Bad Request"],
            bundle.Entry.Select(e => e.Response!.Status));
        Assert.All(new[] { 2, 4, 6 }, i => Assert.Contains($"Bundle.entry[{i}]", ((OperationOutcome)bundle.Entry[i].Response!.Outcome!).Issue[0].Expression.First()));
        Assert.Equal(1, await CountAsync(number));
        Assert.Equal(BundleType.History, ((Bundle)bundle.Entry[5].Resource!).Type);
    }

    [Fact]
    public async Task A_batch_entry_that_does_not_parse_is_answered_400_alone_and_the_other_entries_are_processed()
    {
        var id = await CreateAsync(Fhir.Patient());
        var number = NewNumber();
        var entries = $$$"""
            {"resource":{"resourceType":"Patient","identifier":[{"system":"{{{IdSystem}}}","value":"{{{number}}}"}]},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Observation","code":{"text":"x"}},"request":{"method":"POST","url":"Observation"}},
            {"resource":{"resourceType":"Patient","nickname":"x"},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Patient","gender":"bogus"},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Patient"},"request":{"method":"FOO","url":"Patient"}},
            {"request":{"method":"GET","url":"Patient/{{{id}}}"}}
            """;

        var batch = await _client.PostAsync("/fhir", Fhir.Raw($$"""{"resourceType":"Bundle","type":"batch","entry":[{{entries}}]}"""));
        var transaction = await _client.PostAsync("/fhir", Fhir.Raw($$"""{"resourceType":"Bundle","type":"transaction","entry":[{{entries}}]}"""));
        var unknownOnTheBundle = await _client.PostAsync("/fhir", Fhir.Raw($$"""{"resourceType":"Bundle","type":"batch","nickname":"x","entry":[{{entries}}]}"""));

        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        var bundle = await Fhir.Read<Bundle>(batch);
        Assert.Equal(BundleType.BatchResponse, bundle.Type);
        Assert.Equal(["201 Created", "400 Bad Request", "400 Bad Request", "400 Bad Request", "400 Bad Request", "200 OK"],
            bundle.Entry.Select(e => e.Response!.Status));
        Assert.Equal(["Bundle.entry[1].resource.status", "Bundle.entry[2].resource.nickname", "Bundle.entry[3].resource.gender", "Bundle.entry[4].request.method"],
            bundle.Entry.Skip(1).Take(4).Select(e => Assert.Single(((OperationOutcome)e.Response!.Outcome!).Issue).Expression.Single()));
        Assert.Contains("bogus", ((OperationOutcome)bundle.Entry[3].Response!.Outcome!).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(id, bundle.Entry[5].Resource!.Id);
        Assert.Equal(1, await CountAsync(number));

        Assert.Equal(HttpStatusCode.BadRequest, transaction.StatusCode);
        var whole = (await Fhir.Read<OperationOutcome>(transaction)).Issue.SelectMany(i => i.Expression).ToList();
        Assert.All(new[] { 1, 2, 3, 4 }, i => Assert.Contains(whole, x => x!.StartsWith($"Bundle.entry[{i}].", StringComparison.Ordinal)));
        Assert.Equal(HttpStatusCode.BadRequest, unknownOnTheBundle.StatusCode);
        Assert.Contains("Bundle.nickname", (await Fhir.Read<OperationOutcome>(unknownOnTheBundle)).Issue.SelectMany(i => i.Expression));
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task Misaligned_repeating_primitives_refuse_their_batch_entry_alone_and_a_whole_transaction()
    {
        // entry[1]'s given[1] carries an extension in _given, which has one place only: kept, it would belong to "a".
        var number = NewNumber();
        var entries = $$$"""
            "entry":[
              {"resource":{"resourceType":"Patient","gender":"bogus"},"request":{"method":"POST","url":"Patient"}},
              {"resource":{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{"extension":[{"url":"http://example.org/only-b","valueString":"b"}]}]}]},"request":{"method":"POST","url":"Patient"}},
              {"resource":{"resourceType":"Patient","identifier":[{"system":"{{{IdSystem}}}","value":"{{{number}}}"}],"name":[{"given":["c"],"_given":[{"id":"c1"}]}]},"request":{"method":"POST","url":"Patient"}}]
            """;

        var batch = await _client.PostAsync("/fhir", Fhir.Raw($$$"""{"resourceType":"Bundle","type":"batch",{{{entries}}}}"""));
        var transaction = await _client.PostAsync("/fhir", Fhir.Raw($$$"""{"resourceType":"Bundle","type":"transaction",{{{entries}}}}"""));

        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        var bundle = await Fhir.Read<Bundle>(batch);
        Assert.Equal(["400 Bad Request", "400 Bad Request", "201 Created"], bundle.Entry.Select(e => e.Response!.Status));
        var misaligned = ((OperationOutcome)bundle.Entry[1].Response!.Outcome!).Issue.Single();
        Assert.Equal("Bundle.entry[1].resource.name[0].given", misaligned.Expression.Single());
        Assert.Contains("_given", misaligned.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(1, await CountAsync(number));
        Assert.Equal(HttpStatusCode.BadRequest, transaction.StatusCode);
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task An_xml_batch_entry_that_does_not_parse_is_answered_400_alone()
    {
        var number = NewNumber();
        var body = $"""
            <Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>
              <entry><resource><Patient><gender value="bogus"/></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry>
              <entry><resource><Patient><identifier><system value="{IdSystem}"/><value value="{number}"/></identifier></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry>
            </Bundle>
            """;

        var response = await _client.PostAsync("/fhir", Fhir.Raw(body, Fhir.XmlType));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(["400 Bad Request", "201 Created"], bundle.Entry.Select(e => e.Response!.Status));
        Assert.Equal("Bundle.entry[0].resource.gender", ((OperationOutcome)bundle.Entry[0].Response!.Outcome!).Issue[0].Expression.Single());
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task A_batch_entry_that_fails_unexpectedly_is_a_500_entry_and_the_other_entries_are_still_answered()
    {
        await using var failing = hub.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IWriteRule, FailsOnFamilyName>()));
        var client = failing.CreateClient();
        var number = NewNumber();
        var bundle = NewBundle(BundleType.Batch,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number)),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(FailsOnFamilyName.Family, "三")),
            Entry(HTTPVerb.GET, $"Patient?identifier={IdSystem}|{number}"));

        var response = await client.PostAsync("/fhir", Fhir.Content(bundle));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await Fhir.Read<Bundle>(response);
        Assert.Equal(["201 Created", "500 Internal Server Error", "200 OK"], answer.Entry.Select(e => e.Response!.Status));
        Assert.Equal("Bundle.entry[1]", ((OperationOutcome)answer.Entry[1].Response!.Outcome!).Issue[0].Expression.Single());
        Assert.Single(((Bundle)answer.Entry[2].Resource!).Entry);
    }

    /// <summary>A rule that breaks (as a bug would) on one family name.</summary>
    private sealed class FailsOnFamilyName : IWriteRule
    {
        public const string Family = "故障";

        public Task CheckAsync(InteropHub.Fhir.Storage.IWriteSession session, Resource next, InteropHub.Fhir.Storage.StoredResource? previous,
            CancellationToken ct) =>
            next is Patient { Name: [{ Family: Family }, ..] } ? throw new InvalidOperationException("A broken rule.") : Task.CompletedTask;
    }

    [Fact]
    public async Task A_response_of_many_large_resources_carries_each_of_them_whole()
    {
        // About 200 kB of response (under the tests' body limit as a request): the body outgrows the writer's first buffer many times over.
        var entries = Enumerable.Range(0, 40).Select(i =>
        {
            var patient = Fhir.Patient($"张{i}", "三");
            patient.Name[0].Text = new string((char)('a' + i % 26), 5000);
            return Entry(HTTPVerb.POST, "Patient", patient);
        }).ToArray();

        var response = await PostAsync(BundleType.Transaction, entries);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(40, bundle.Entry.Count);
        for (var i = 0; i < 40; i++)
        {
            var name = ((Patient)bundle.Entry[i].Resource!).Name[0];
            Assert.Equal($"张{i}", name.Family);
            Assert.Equal(new string((char)('a' + i % 26), 5000), name.Text);
        }
    }

    [Fact]
    public async Task Prefer_return_minimal_leaves_the_written_resources_out_but_not_what_was_read()
    {
        var id = await CreateAsync(Fhir.Patient());
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir")
        {
            Content = Fhir.Content(NewBundle(BundleType.Transaction, Entry(HTTPVerb.POST, "Patient", Fhir.Patient()), Entry(HTTPVerb.GET, $"Patient/{id}"))),
        };
        request.Headers.Add("Prefer", "return=minimal");

        var bundle = await Fhir.Read<Bundle>(await _client.SendAsync(request));

        Assert.Null(bundle.Entry[0].Resource);
        Assert.Equal("201 Created", bundle.Entry[0].Response!.Status);
        Assert.NotNull(bundle.Entry[0].Response!.Location);
        Assert.Equal(id, bundle.Entry[1].Resource!.Id);
    }

    [Fact]
    public async Task Read_entries_honour_if_none_match_and_vread_and_head_return_no_body()
    {
        var id = await CreateAsync(Fhir.Patient());
        var notModified = Entry(HTTPVerb.GET, $"Patient/{id}");
        notModified.Request!.IfNoneMatch = "W/\"1\"";

        var response = await PostAsync(BundleType.Transaction,
            notModified,
            Entry(HTTPVerb.GET, $"Patient/{id}/_history/1"),
            Entry(HTTPVerb.HEAD, $"Patient/{id}"));

        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(["304 Not Modified", "200 OK", "200 OK"], bundle.Entry.Select(e => e.Response!.Status));
        Assert.Null(bundle.Entry[0].Resource);
        Assert.Equal(id, bundle.Entry[1].Resource!.Id);
        Assert.Null(bundle.Entry[2].Resource);
        Assert.Equal("W/\"1\"", bundle.Entry[2].Response!.Etag);
    }

    [Fact]
    public async Task A_search_in_a_transaction_sees_its_writes_and_has_total_summary_and_elements_and_a_batch_search_also_sorts()
    {
        var number = NewNumber();
        await CreateAsync(Fhir.Patient("Li", "Yi", number));
        await CreateAsync(Fhir.Patient("Wang", "Er", number));
        var url = $"Patient?identifier={IdSystem}|{number}";

        var transaction = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Zhao", "San", number)),
            Entry(HTTPVerb.GET, $"{url}&_count=1&_total=accurate"),
            Entry(HTTPVerb.GET, url),
            Entry(HTTPVerb.GET, $"{url}&_summary=count"),
            Entry(HTTPVerb.GET, $"{url}&_elements=gender"));
        var batch = await PostAsync(BundleType.Batch, Entry(HTTPVerb.GET, $"{url}&_sort=-family&_total=accurate"));

        Assert.Equal(HttpStatusCode.OK, transaction.StatusCode);
        var pages = (await Fhir.Read<Bundle>(transaction)).Entry.Skip(1).Select(e => (Bundle)e.Resource!).ToList();
        Assert.Single(pages[0].Entry);
        Assert.NotNull(pages[0].NextLink);
        Assert.Equal([3, 3, 3, 3], pages.Select(p => p.Total));
        Assert.Equal(3, pages[1].Entry.Count);
        Assert.Empty(pages[2].Entry);
        Assert.All(pages[3].Entry, e =>
        {
            Assert.Empty(((Patient)e.Resource!).Name);
            Assert.Equal(AdministrativeGender.Male, ((Patient)e.Resource!).Gender);
            Assert.Contains(e.Resource!.Meta!.Tag, t => t.Code == "SUBSETTED");
        });
        var all = (Bundle)(await Fhir.Read<Bundle>(batch)).Entry[0].Resource!;
        Assert.Equal(3, all.Total);
        Assert.Equal(["Zhao", "Wang", "Li"], all.Entry.Select(e => ((Patient)e.Resource!).Name[0].Family));
    }

    [Fact]
    public async Task A_search_in_a_transaction_sorts_by_several_keys_with_the_patients_the_transaction_creates_in_their_places()
    {
        var number = "txget25" + NewNumber();
        await CreateAsync(Born(Fhir.Patient("Li", "Yi", number), "1980-01-01"));
        await CreateAsync(Born(Fhir.Patient("Zhao", "Er", number), "1990-01-01"));
        var url = $"Patient?identifier={IdSystem}|{number}&_sort=family,-birthdate";

        // The GET entry comes first but runs after the writes (http.html#trules).
        var transaction = await TransactionAsync(
            Entry(HTTPVerb.GET, url),
            Entry(HTTPVerb.POST, "Patient", Born(Fhir.Patient("Li", "San", number), "2000-01-01")),
            Entry(HTTPVerb.POST, "Patient", Born(Fhir.Patient("Qian", "Si", number), "1970-01-01")));
        var committed = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/{url}"));

        var page = Assert.IsType<Bundle>(transaction.Entry[0].Resource);
        Assert.Equal(["Li San", "Li Yi", "Qian Si", "Zhao Er"], page.Entry.Select(e => ((Patient)e.Resource!).Name[0].Family + " " + ((Patient)e.Resource!).Name[0].Given.Single()));
        Assert.Equal(4, page.Total);
        Assert.Equal(committed.Entry.Select(e => e.Resource!.Id), page.Entry.Select(e => e.Resource!.Id));
    }

    [Fact]
    public async Task A_sorted_search_in_a_transaction_has_a_next_link_that_a_later_transaction_follows_over_its_own_writes()
    {
        var number = "txget25" + NewNumber();
        var url = $"Patient?identifier={IdSystem}|{number}&_sort=-family&_count=2";

        var first = await TransactionAsync(
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Wu", "Yi", number)),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Sun", "Er", number)),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Qian", "San", number)),
            Entry(HTTPVerb.GET, url));
        var next = Assert.IsType<Bundle>(first.Entry[3].Resource).NextLink!.OriginalString;
        var second = await TransactionAsync(
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Li", "Si", number)),
            Entry(HTTPVerb.GET, next[(next.IndexOf("/fhir/", StringComparison.Ordinal) + "/fhir/".Length)..]));

        static IEnumerable<string?> Families(EntryComponent entry) => ((Bundle)entry.Resource!).Entry.Select(e => ((Patient)e.Resource!).Name[0].Family);
        Assert.Equal(["Wu", "Sun"], Families(first.Entry[3]));
        Assert.Equal(["Qian", "Li"], Families(second.Entry[1]));
        Assert.NotNull(((Bundle)second.Entry[1].Resource!).PreviousLink);
    }

    [Fact]
    public async Task A_search_in_a_transaction_includes_and_revincludes_what_the_transaction_creates_marked_include()
    {
        var number = "txget25" + NewNumber();
        const string patientUrl = "urn:uuid:2b5d7c1e-25a0-4c3e-9f61-7e0f5b1d2a25";

        var transaction = await TransactionAsync(
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Zhou", "Yi", number), patientUrl),
            Entry(HTTPVerb.POST, "Observation", Observation(patientUrl, number)),
            Entry(HTTPVerb.GET, $"Observation?identifier={ObservationIds}|{number}&_include=Observation:subject"),
            Entry(HTTPVerb.GET, $"Patient?identifier={IdSystem}|{number}&_revinclude=Observation:subject"));
        var patient = transaction.Entry[0].Resource!.Id;
        var observation = transaction.Entry[1].Resource!.Id;
        var included = await SearchAsync($"Observation?identifier={ObservationIds}|{number}&_include=Observation:subject");
        var revIncluded = await SearchAsync($"Patient?identifier={IdSystem}|{number}&_revinclude=Observation:subject");

        Assert.Equal([$"match Observation/{observation}", $"include Patient/{patient}"], Modes(transaction, 2));
        Assert.Equal([$"match Patient/{patient}", $"include Observation/{observation}"], Modes(transaction, 3));
        Assert.Equal(SearchTests.Modes(included), Modes(transaction, 2));
        Assert.Equal(SearchTests.Modes(revIncluded), Modes(transaction, 3));
    }

    [Fact]
    public async Task A_search_in_a_transaction_iterates_includes_with_typed_targets_and_wildcards_through_what_the_transaction_creates()
    {
        var number = "txget25" + NewNumber();
        const string organizationUrl = "urn:uuid:5c0e2a4b-25f1-4d7e-8a93-1b6c4e0f7a25";
        const string patientUrl = "urn:uuid:9e3a1f6d-25c2-4b8e-a074-3d5f2c8b1e25";
        var organization = new Organization { Name = "白沙镇卫生院", Identifier = [new Identifier(ObservationIds, number)] };
        var patient = Fhir.Patient("Zheng", "Yi", number);
        patient.ManagingOrganization = new ResourceReference(organizationUrl);

        var transaction = await TransactionAsync(
            Entry(HTTPVerb.POST, "Organization", organization, organizationUrl),
            Entry(HTTPVerb.POST, "Patient", patient, patientUrl),
            Entry(HTTPVerb.POST, "Observation", Observation(patientUrl, number)),
            Entry(HTTPVerb.GET, $"Observation?identifier={ObservationIds}|{number}&_include=Observation:subject:Patient&_include:iterate=Patient:organization"),
            Entry(HTTPVerb.GET, $"Organization?identifier={ObservationIds}|{number}&_revinclude:iterate=Patient:organization&_revinclude:iterate=Observation:subject"),
            Entry(HTTPVerb.GET, $"Patient?identifier={IdSystem}|{number}&_revinclude=*&_include=Patient:*"));
        var (o, p, x) = (transaction.Entry[0].Resource!.Id, transaction.Entry[1].Resource!.Id, transaction.Entry[2].Resource!.Id);

        Assert.Equal([$"match Observation/{x}", $"include Patient/{p}", $"include Organization/{o}"], Modes(transaction, 3));
        Assert.Equal([$"match Organization/{o}", $"include Patient/{p}", $"include Observation/{x}"], Modes(transaction, 4));
        Assert.Equal(new[] { $"include Observation/{x}", $"include Organization/{o}", $"match Patient/{p}" },
            Modes(transaction, 5).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Includes_in_a_transaction_stop_at_the_configured_cap_with_a_warning()
    {
        var number = "txget25" + NewNumber();
        var patient = Entry(HTTPVerb.POST, "Patient", Fhir.Patient("Wang", "Qi", number), "urn:uuid:7a1c3e5f-25d4-4f6a-b8c0-2e4a6c8e0a25");
        var observations = Enumerable.Range(0, 7).Select(_ => Entry(HTTPVerb.POST, "Observation", Observation(patient.FullUrl!)));

        var transaction = await TransactionAsync([patient, .. observations, Entry(HTTPVerb.GET, $"Patient?identifier={IdSystem}|{number}&_revinclude=Observation:subject")]);

        var page = Assert.IsType<Bundle>(transaction.Entry[^1].Resource);
        Assert.Equal(5, page.Entry.Count(e => e.Search?.Mode == SearchEntryMode.Include));
        var outcome = Assert.IsType<OperationOutcome>(page.Entry.Single(e => e.Search?.Mode == SearchEntryMode.Outcome).Resource);
        Assert.Equal(OperationOutcome.IssueType.TooCostly, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task A_batch_runs_operations_and_reads_the_capability_statement_as_entries_and_a_transaction_refuses_them()
    {
        var number = NewNumber();
        var patient = await CreateAsync(Fhir.Patient("Qian", "Li", number));
        await _client.PostAsync("/fhir/Observation", Fhir.Content(Observation($"Patient/{patient}")));
        var validate = new Parameters();
        validate.Add("resource", Fhir.Patient("Sun", "Wu", NewNumber()));

        var batch = await Fhir.Read<Bundle>(await PostAsync(BundleType.Batch,
            Entry(HTTPVerb.GET, "metadata"),
            Entry(HTTPVerb.GET, $"Patient/{patient}/$everything?_format=xml"),
            Entry(HTTPVerb.POST, "Patient/$validate", validate),
            Entry(HTTPVerb.GET, "Patient/$nonsense"),
            Entry(HTTPVerb.GET, "$export"),
            Entry(HTTPVerb.GET, $"Patient/{patient}")));
        var transaction = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.GET, $"Patient/{patient}/$everything"));

        Assert.Equal(["200 OK", "200 OK", "200 OK", "400 Bad Request", "400 Bad Request", "200 OK"], batch.Entry.Select(e => e.Response!.Status));
        Assert.Equal(CapabilityStatementKind.Instance, Assert.IsType<CapabilityStatement>(batch.Entry[0].Resource).Kind);
        var record = Assert.IsType<Bundle>(batch.Entry[1].Resource);
        Assert.Equal(["Observation", "Patient"], record.Entry.Select(e => e.Resource!.TypeName).Order());
        Assert.All(Assert.IsType<OperationOutcome>(batch.Entry[2].Resource).Issue, i => Assert.NotEqual(OperationOutcome.IssueSeverity.Error, i.Severity));
        Assert.Contains("$nonsense", ((OperationOutcome)batch.Entry[3].Response!.Outcome!).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Contains("bulk-data", ((OperationOutcome)batch.Entry[4].Response!.Outcome!).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(patient, Assert.IsType<Patient>(batch.Entry[5].Resource).Id);
        Assert.Equal(HttpStatusCode.BadRequest, transaction.StatusCode);
        Assert.Contains("batch", (await Fhir.Read<OperationOutcome>(transaction)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_reads_with_parameters_as_alone_and_HEAD_answers_without_the_body_and_lenient_applies_to_its_searches()
    {
        var number = NewNumber();
        var patient = await CreateAsync(Fhir.Patient("Zhao", "Li", number));
        await _client.PostAsync("/fhir/Observation", Fhir.Content(Observation($"Patient/{patient}")));
        var bundle = NewBundle(BundleType.Batch,
            Entry(HTTPVerb.GET, $"Patient/{patient}?_elements=gender"),
            Entry(HTTPVerb.GET, $"Patient/{patient}/_history/1?_summary=true"),
            Entry(HTTPVerb.GET, $"Patient/{patient}/*?_count=10"),
            Entry(HTTPVerb.HEAD, "metadata"),
            Entry(HTTPVerb.GET, "$export-status/nonsense"),
            Entry(HTTPVerb.GET, $"Patient?bogus=1&identifier={IdSystem}|{number}"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = Fhir.Content(bundle) };
        request.Headers.Add("Prefer", "handling=lenient");

        var batch = await Fhir.Read<Bundle>(await _client.SendAsync(request));

        Assert.Equal(["200 OK", "200 OK", "200 OK", "200 OK", "400 Bad Request", "200 OK"], batch.Entry.Select(e => e.Response!.Status));
        var subset = Assert.IsType<Patient>(batch.Entry[0].Resource);
        Assert.Empty(subset.Name);
        Assert.Contains(subset.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.Contains(Assert.IsType<Patient>(batch.Entry[1].Resource).Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.Contains(Assert.IsType<Bundle>(batch.Entry[2].Resource).Entry, e => e.Resource is Observation);
        Assert.Null(batch.Entry[3].Resource);
        Assert.Equal([patient], Assert.IsType<Bundle>(batch.Entry[5].Resource).Entry.Where(e => e.Resource is Patient).Select(e => e.Resource!.Id));
    }

    [Fact]
    public async Task Compartment_and_system_searches_run_as_entries_and_a_transaction_sees_its_own_writes_in_a_compartment()
    {
        var number = NewNumber();
        var patient = await CreateAsync(Fhir.Patient("Zhou", "Wu", number));
        var other = await CreateAsync(Fhir.Patient());
        await _client.PostAsync("/fhir/Observation", Fhir.Content(Observation($"Patient/{patient}")));
        await _client.PostAsync("/fhir/Observation", Fhir.Content(Observation($"Patient/{other}")));

        var batch = await Fhir.Read<Bundle>(await PostAsync(BundleType.Batch,
            Entry(HTTPVerb.GET, $"Patient/{patient}/Observation?_total=accurate"),
            Entry(HTTPVerb.GET, $"?_type=Patient&identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.GET, $"Patient/{patient}/Nonsense")));
        var transaction = await Fhir.Read<Bundle>(await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient/{patient}")),
            Entry(HTTPVerb.GET, $"Patient/{patient}/Observation?_count=10")));
        var everyType = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.GET, "?_type=Patient"));

        var inCompartment = (Bundle)batch.Entry[0].Resource!;
        Assert.Equal(1, inCompartment.Total);
        Assert.Equal($"Patient/{patient}", ((Observation)inCompartment.Entry[0].Resource!).Subject!.Reference);
        var system = (Bundle)batch.Entry[1].Resource!;
        Assert.Equal([number], system.Entry.Select(e => ((Patient)e.Resource!).Identifier[0].Value));
        Assert.StartsWith("400", batch.Entry[2].Response!.Status);
        Assert.Equal(2, ((Bundle)transaction.Entry[1].Resource!).Entry.Count);
        Assert.Equal(HttpStatusCode.BadRequest, everyType.StatusCode);
        Assert.Contains("every type", (await Fhir.Read<OperationOutcome>(everyType)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task A_conditional_url_naming_another_entrys_placeholder_searches_for_what_that_entry_resolves_to()
    {
        var number = NewNumber();
        const string patient = "urn:uuid:5b0c8a52-1f3e-4a8e-9d7c-0a1b2c3d4e5f";
        Task<HttpResponseMessage> Send(decimal length) => PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Observation", Observation(patient), ifNoneExist: $"subject={patient}&code=http://loinc.org|8339-4"),
            Entry(HTTPVerb.PUT, $"Observation?subject={Uri.EscapeDataString(patient)}&code=http://loinc.org|8302-2",
                new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8302-2"), Subject = new ResourceReference(patient), Value = new Quantity(length, "cm") }),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient("严", "一", number), patient, ifNoneExist: $"identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.POST, "DiagnosticReport", new DiagnosticReport
            {
                Status = DiagnosticReport.DiagnosticReportStatus.Final,
                Code = new CodeableConcept("http://loinc.org", "8339-4"),
                Result = [new ResourceReference($"Observation?subject={patient}&code=http://loinc.org|8339-4")],
            }));

        var first = await Fhir.Read<Bundle>(await Send(50));
        var second = await Fhir.Read<Bundle>(await Send(51));

        Assert.Equal(["201 Created", "201 Created", "201 Created", "201 Created"], first.Entry.Select(e => e.Response!.Status));
        Assert.Equal(["200 OK", "200 OK", "200 OK", "201 Created"], second.Entry.Select(e => e.Response!.Status));
        Assert.Equal(first.Entry.Take(3).Select(e => e.Response!.Location!.Split("/_history")[0]),
            second.Entry.Take(3).Select(e => e.Response!.Location!.Split("/_history")[0]));
        // A conditional reference naming the placeholder finds the observation of this bundle, then the stored one.
        foreach (var sent in new[] { first, second })
        {
            var report = await ReadAsync<DiagnosticReport>(sent.Entry[3].Response!.Location!.Split("/_history")[0]);
            Assert.Equal(sent.Entry[0].Response!.Location!.Split("/_history")[0], report.Result[0].Reference);
        }

        var id = first.Entry[2].Response!.Location!.Split('/')[1];
        var observations = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Observation?subject=Patient/{id}"));
        Assert.Equal(2, observations.Entry.Count);
        Assert.Contains(observations.Entry, e => ((Observation)e.Resource!).Value is Quantity { Value: 51m });
    }

    [Fact]
    public async Task A_placeholder_in_a_conditional_url_is_refused_in_a_batch_and_when_its_entry_resolves_later_and_other_urns_are_plain_values()
    {
        const string patient = "urn:uuid:7d1e2f30-4a5b-4c6d-8e9f-a0b1c2d3e4f5";
        var inBatch = await Fhir.Read<Bundle>(await PostAsync(BundleType.Batch,
            Entry(HTTPVerb.POST, "Observation", Observation("Patient/x"), ifNoneExist: $"subject={patient}"),
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(), patient)));
        var later = await PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Observation", Observation(patient), ifNoneExist: $"subject={patient}"),
            Entry(HTTPVerb.PUT, $"Patient?identifier={IdSystem}|{NewNumber()}", Fhir.Patient(), patient));
        // Outside a reference parameter a urn:uuid is searched for as it is, even an entry's fullUrl: here, an identifier
        // value that is also the patient's fullUrl, named by the patient's ifNoneExist and the observation's reference.
        var value = $"urn:uuid:{Guid.NewGuid()}";
        var named = Fhir.Patient();
        named.Identifier = [new Identifier("urn:ietf:rfc:3986", value)];
        Task<HttpResponseMessage> Send() => PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", named, value, ifNoneExist: $"identifier={value}"),
            Entry(HTTPVerb.POST, "Observation", Observation($"Patient?identifier={value}")));

        var created = await Fhir.Read<Bundle>(await Send());
        var found = await Fhir.Read<Bundle>(await Send());

        Assert.StartsWith("400", inBatch.Entry[0].Response!.Status);
        Assert.Contains("batch", ((OperationOutcome)inBatch.Entry[0].Response!.Outcome!).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.StartsWith("201", inBatch.Entry[1].Response!.Status);
        Assert.Equal(HttpStatusCode.BadRequest, later.StatusCode);
        Assert.Contains("only after this one", (await Fhir.Read<OperationOutcome>(later)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(("201 Created", "200 OK"), (created.Entry[0].Response!.Status, found.Entry[0].Response!.Status));
        foreach (var sent in new[] { created, found })
        {
            var observation = await ReadAsync<Observation>(sent.Entry[1].Response!.Location!.Split("/_history")[0]);
            Assert.Equal(created.Entry[0].Response!.Location!.Split("/_history")[0], observation.Subject!.Reference);
        }
    }

    [Fact]
    public async Task Prefer_return_operation_outcome_puts_an_outcome_in_every_entry()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = Fhir.Content(NewBundle(BundleType.Batch, Entry(HTTPVerb.POST, "Patient", Fhir.Patient()))) };
        request.Headers.Add("Prefer", "return=OperationOutcome");

        var bundle = await Fhir.Read<Bundle>(await _client.SendAsync(request));

        Assert.Null(bundle.Entry[0].Resource);
        Assert.Equal(OperationOutcome.IssueSeverity.Information, ((OperationOutcome)bundle.Entry[0].Response!.Outcome!).Issue[0].Severity);
    }

    [Fact]
    public async Task A_transaction_in_xml_is_answered_in_xml()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = Fhir.XmlContent(NewBundle(BundleType.Transaction, Entry(HTTPVerb.POST, "Patient", Fhir.Patient()))) };
        request.Headers.Add("Accept", Fhir.XmlType);

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Fhir.XmlType, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("201 Created", (await Fhir.Read<Bundle>(response)).Entry[0].Response!.Status);
    }

    [Theory]
    [InlineData("""{"resourceType":"Patient","active":true}""", "Bundle")]
    [InlineData("""{"resourceType":"Bundle","type":"collection"}""", "collection")]
    [InlineData("""{"resourceType":"Bundle","type":"batch-response"}""", "not batch-response")]
    [InlineData("""{"resourceType":"Bundle"}""", "type")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true}}]}""", "no request")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"url":"Patient"}}]}""", "method")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET"}}]}""", "url")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient//1"}}]}""", "empty path segment")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"http://elsewhere.example/fhir/Patient/1"}}]}""", "this server")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient/$validate"}}]}""", "operations")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient/1"}}]}""", "POST")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true},"request":{"method":"PUT","url":"Patient"}}]}""", "PUT")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Patient/1"}}]}""", "no resource")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true},"request":{"method":"PUT","url":"Observation/1"}}]}""", "Observation")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Patient/not an id!"}}]}""", "valid resource id")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient?nonsense=x"}}]}""", "nonsense")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/1/_history"}}]}""", "History")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient?"}}]}""", "criteria")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0f0f0f0f-0000-0000-0000-000000000000"}},"request":{"method":"POST","url":"Observation"}}]}""", "fullUrl")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Nonsense?identifier=1"}},"request":{"method":"POST","url":"Observation"}}]}""", "Nonsense")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Binary","contentType":"text/plain","data":"W10="},"request":{"method":"PATCH","url":"Patient/1"}}]}""", "json-patch")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient","ifNoneExist":"nonsense=x"}}]}""", "nonsense")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/1","ifNoneExist":"identifier=x"}}]}""", "ifNoneExist")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":[""", "JSON")]
    [InlineData("""{"resourceType":"Bundle","type":"transaction","entry":{"request":{"method":"GET","url":"Patient/1"}}}""", "collection")]
    public async Task Hostile_bundles_are_400_naming_what_is_wrong(string body, string expected)
    {
        var response = await _client.PostAsync("/fhir", Fhir.Raw(body));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Contains(outcome.Issue, i => i.Diagnostics!.Contains(expected, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task An_unknown_type_in_an_entry_is_404_and_an_empty_transaction_is_answered_empty()
    {
        var unknown = await PostAsync(BundleType.Transaction, Entry(HTTPVerb.GET, "Patientt/1"));
        var empty = await PostAsync(BundleType.Transaction);

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
        Assert.Empty((await Fhir.Read<Bundle>(empty)).Entry);
    }

    [Fact]
    public async Task Concurrent_transactions_over_the_same_resources_in_opposite_orders_all_commit()
    {
        var a = await CreateAsync(Fhir.Patient("甲", "一"));
        var b = await CreateAsync(Fhir.Patient("乙", "二"));
        const int transactions = 12;

        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, transactions).Select(i =>
        {
            var (first, second) = i % 2 == 0 ? (a, b) : (b, a);
            return PostAsync(BundleType.Transaction,
                Entry(HTTPVerb.PUT, $"Patient/{first}", WithId(Fhir.Patient("改", $"{i}"), first)),
                Entry(HTTPVerb.PATCH, $"Patient/{second}", JsonPatch($$"""[{"op":"replace","path":"/name/0/given/0","value":"{{i}}"}]""")),
                Entry(HTTPVerb.POST, "Observation", Observation($"Patient/{first}")));
        }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal($"{1 + transactions}", (await ReadAsync<Patient>($"Patient/{a}")).Meta!.VersionId);
        Assert.Equal($"{1 + transactions}", (await ReadAsync<Patient>($"Patient/{b}")).Meta!.VersionId);
    }

    [Fact]
    public async Task Concurrent_transactions_with_if_match_on_the_same_version_let_one_win_and_fail_the_others_with_412()
    {
        var a = await CreateAsync(Fhir.Patient());
        var b = await CreateAsync(Fhir.Patient());

        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
        {
            var (first, second) = i % 2 == 0 ? (a, b) : (b, a);
            return PostAsync(BundleType.Transaction,
                Entry(HTTPVerb.PUT, $"Patient/{first}", WithId(Fhir.Patient("改", $"{i}"), first), ifMatch: "W/\"1\""),
                Entry(HTTPVerb.PUT, $"Patient/{second}", WithId(Fhir.Patient("改", $"{i}"), second), ifMatch: "W/\"1\""));
        }));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.Equal(7, responses.Count(r => r.StatusCode == HttpStatusCode.PreconditionFailed));
        Assert.Equal("2", (await ReadAsync<Patient>($"Patient/{a}")).Meta!.VersionId);
        Assert.Equal("2", (await ReadAsync<Patient>($"Patient/{b}")).Meta!.VersionId);
    }

    [Fact]
    public async Task Concurrent_transactions_that_each_conditionally_update_what_the_other_conditionally_creates_all_commit_with_one_resource_each()
    {
        // The conditional updates' criteria are locked before the conditional creates', so these two kinds wait on each
        // other crosswise; the store ends the cycle (PostgreSQL: deadlock_detected) and the transaction is retried.
        var x = NewNumber();
        var y = NewNumber();
        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
        {
            var (updated, created) = i % 2 == 0 ? (x, y) : (y, x);
            return PostAsync(BundleType.Transaction,
                Entry(HTTPVerb.PUT, $"Patient?identifier={IdSystem}|{updated}", Fhir.Patient("改", $"{i}", updated)),
                Entry(HTTPVerb.POST, "Patient", Fhir.Patient("建", $"{i}", created), ifNoneExist: $"identifier={IdSystem}|{created}"));
        }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await CountAsync(x));
        Assert.Equal(1, await CountAsync(y));
    }

    [Fact]
    public async Task Parallel_transactions_with_the_same_conditional_create_produce_exactly_one_resource()
    {
        var number = NewNumber();
        const string patientUrl = "urn:uuid:44444444-4444-4444-4444-444444444444";

        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 10).Select(_ => PostAsync(BundleType.Transaction,
            Entry(HTTPVerb.POST, "Patient", Fhir.Patient(identifier: number), patientUrl, ifNoneExist: $"identifier={IdSystem}|{number}"),
            Entry(HTTPVerb.POST, "Observation", Observation(patientUrl)))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await CountAsync(number));
        var bundles = await System.Threading.Tasks.Task.WhenAll(responses.Select(Fhir.Read<Bundle>));
        Assert.Single(bundles, b => b.Entry[0].Response!.Status == "201 Created");
        var patientId = bundles[0].Entry[0].Resource!.Id;
        Assert.All(bundles, b => Assert.Equal($"Patient/{patientId}", ((Observation)b.Entry[1].Resource!).Subject!.Reference));
    }

    private static Bundle NewBundle(BundleType type, params EntryComponent[] entries) => new() { Type = type, Entry = [.. entries] };

    private Task<HttpResponseMessage> PostAsync(BundleType type, params EntryComponent[] entries) =>
        _client.PostAsync("/fhir", Fhir.Content(NewBundle(type, entries)));

    private async Task<Bundle> TransactionAsync(params EntryComponent[] entries)
    {
        var response = await PostAsync(BundleType.Transaction, entries);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<Bundle>(response);
    }

    /// <summary>The searchset a transaction answered its entry <paramref name="index"/> with, as <see cref="SearchTests.Modes"/>.</summary>
    private static List<string> Modes(Bundle transaction, int index) => SearchTests.Modes((Bundle)transaction.Entry[index].Resource!);

    private static EntryComponent Entry(HTTPVerb method, string url, Resource? resource = null, string? fullUrl = null,
        string? ifNoneExist = null, string? ifMatch = null) => new()
    {
        FullUrl = fullUrl,
        Resource = resource,
        Request = new RequestComponent { Method = method, Url = url, IfNoneExist = ifNoneExist, IfMatch = ifMatch },
    };

    private static Binary JsonPatch(string document) => new() { ContentType = "application/json-patch+json", Data = Encoding.UTF8.GetBytes(document) };

    private static Observation Observation(string subject, string? identifier = null) => new()
    {
        Identifier = identifier is null ? [] : [new Identifier(ObservationIds, identifier)],
        Status = ObservationStatus.Final,
        Code = new CodeableConcept("http://loinc.org", "8339-4", "Birth weight"),
        Subject = new ResourceReference(subject),
    };

    private static Patient Born(Patient patient, string birthDate)
    {
        patient.BirthDate = birthDate;
        return patient;
    }

    private async Task<Bundle> SearchAsync(string url)
    {
        var response = await _client.GetAsync($"/fhir/{url}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<Bundle>(response);
    }

    private static Patient WithId(Patient patient, string? id = null)
    {
        patient.Id = id ?? NewId();
        return patient;
    }

    private async Task<string> CreateAsync(Patient patient)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await Fhir.Read<Patient>(response)).Id!;
    }

    private async Task<T> ReadAsync<T>(string reference) where T : Resource
    {
        var response = await _client.GetAsync($"/fhir/{reference}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<T>(response);
    }

    private async Task<int> CountAsync(string number)
    {
        var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient?identifier={IdSystem}|{number}&_count=100"));
        return bundle.Entry.Count;
    }

    private static string NewId() => Guid.NewGuid().ToString("N");

    private static string NewNumber() => "369921" + Random.Shared.NextInt64(100000000000, 999999999999).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public sealed class TransactionTestsOnSqlite(SqliteHub hub) : TransactionTests(hub), IClassFixture<SqliteHub>;

public sealed class TransactionTestsOnPostgres(PostgresHub hub) : TransactionTests(hub), IClassFixture<PostgresHub>;
