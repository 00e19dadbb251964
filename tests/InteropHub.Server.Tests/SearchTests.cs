using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary>Search over HTTP: errors and lenient handling, the searchset Bundle's shape, result parameters, system and compartment search.</summary>
public abstract class SearchTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task A_percent_escape_that_is_not_UTF_8_is_a_400_naming_its_parameter_in_the_query_and_in_a_form()
    {
        var family = "Müller" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(family, "Anna")))).StatusCode);
        var utf8 = Uri.EscapeDataString(family);
        var latin1 = utf8.Replace("%C3%BC", "%FC", StringComparison.Ordinal);
        HttpContent Form(string body, string mediaType = "application/x-www-form-urlencoded") =>
            new ByteArrayContent(System.Text.Encoding.Latin1.GetBytes(body)) { Headers = { { "Content-Type", mediaType } } };

        var found = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient?family={utf8}"));
        var query = await _client.GetAsync($"/fhir/Patient?_count=5&family={latin1}");
        var percent = await _client.GetAsync($"/fhir/Patient?family=100%25AB");
        var form = await _client.PostAsync("/fhir/Patient/_search", Form($"family={latin1}"));
        var rawByte = await _client.PostAsync("/fhir/Patient/_search", Form($"family={family}"));
        var charset = await _client.PostAsync("/fhir/Patient/_search", Form($"family={utf8}", "application/x-www-form-urlencoded; charset=ISO-8859-1"));
        var formOk = await Fhir.Read<Bundle>(await _client.PostAsync("/fhir/Patient/_search", Form($"family={utf8}")));

        Assert.Single(found.Entry);
        Assert.Single(formOk.Entry);
        Assert.Equal(HttpStatusCode.OK, percent.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, query.StatusCode);
        Assert.Equal("family", (await Fhir.Read<OperationOutcome>(query)).Issue.Single().Expression.Single());
        Assert.Equal(HttpStatusCode.BadRequest, form.StatusCode);
        Assert.Equal("family", (await Fhir.Read<OperationOutcome>(form)).Issue.Single().Expression.Single());
        Assert.Equal(HttpStatusCode.BadRequest, rawByte.StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, charset.StatusCode);
    }

    [Theory]
    [InlineData("nonsense=1", "nonsense")]
    [InlineData("name:fuzzy=x", "name:fuzzy")]
    [InlineData("birthdate=xx2020", "birthdate")]
    [InlineData("birthdate=2020-13", "birthdate")]
    [InlineData("organization.nonsense=x", "organization.nonsense")]
    [InlineData("_has:Observation:nonsense:code=1", "_has:Observation:nonsense:code")]
    [InlineData("_sort=nonsense", "_sort")]
    [InlineData("_include=Observation:nonsense", "_include")]
    [InlineData("_summary=maybe", "_summary")]
    [InlineData("_sort:desc=birthdate", "_sort:desc")]
    [InlineData("_count:exact=5", "_count:exact")]
    [InlineData("_sort=birthdate&_sort=gender", "_sort")]
    [InlineData("_count=1&_count=3", "_count")]
    [InlineData("gender:of-type=a|b|c", "gender:of-type")]
    [InlineData("_text=cough", "_text")]
    [InlineData("_elements=nonsense", "_elements")]
    [InlineData("_elements=Observation.code", "_elements")]
    [InlineData("active=maybe", "active")]
    [InlineData("active:not=TRUE", "active:not")]
    [InlineData("active=true,yes", "active")]
    public async Task A_parameter_modifier_or_prefix_the_hub_does_not_understand_is_400_naming_it(string query, string named)
    {
        var response = await _client.GetAsync($"/fhir/Patient?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal(named, issue.Expression.Single());
    }

    [Theory]
    [InlineData("birthdate=bad", "'bad' in 'birthdate' is not a date")]
    [InlineData("_text=cough", "not supported by this server")]
    [InlineData("_include=Foo:bar", "'Foo' in _include=Foo:bar is not a resource type")]
    [InlineData("_include=Observation:subject", "use _include:iterate")]
    public async Task Refusals_say_what_is_wrong_with_the_value_or_parameter(string query, string expected)
    {
        var response = await _client.GetAsync($"/fhir/Patient?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await Fhir.Read<OperationOutcome>(response)).Issue.Single().Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Elements_named_with_their_type_apply_to_that_type_only_in_a_search_of_several()
    {
        var family = await CreatePatientAsync();
        var practitioner = await CreateAsync(new Practitioner { Name = [new HumanName { Family = family }], Gender = AdministrativeGender.Female });

        var bundle = await SearchAsync($"?_type=Patient,Practitioner&_id={await IdOfAsync(family)},{practitioner.Split('/')[^1]}&_elements=Patient.name,gender");

        var patient = bundle.Entry.Select(e => e.Resource).OfType<Patient>().Single();
        var other = bundle.Entry.Select(e => e.Resource).OfType<Practitioner>().Single();
        Assert.Equal(family, patient.Name[0].Family);
        Assert.Empty(other.Name);
        Assert.Equal(AdministrativeGender.Female, other.Gender);
    }

    [Fact]
    public async Task Elements_may_name_an_element_with_its_type()
    {
        var family = await CreatePatientAsync();

        var bundle = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_elements=Patient.name");

        var patient = (Patient)bundle.Entry.Single().Resource!;
        Assert.Equal(family, patient.Name[0].Family);
        Assert.Null(patient.Gender);
    }

    [Fact]
    public async Task A_first_page_holding_every_match_states_the_total_unless_total_none_is_asked()
    {
        var family = await CreatePatientAsync();
        await CreatePatientAsync();

        var whole = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}");
        var none = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_total=none");
        var partial = await SearchAsync("Patient?_count=1");

        Assert.Equal(1, whole.Total);
        Assert.Null(none.Total);
        Assert.Null(partial.Total);
    }

    [Fact]
    public async Task Lenient_handling_ignores_what_it_does_not_understand_and_says_so_in_the_bundle()
    {
        var family = await CreatePatientAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?nonsense=1&family={Uri.EscapeDataString(family)}&name:fuzzy=x&_count=5");
        request.Headers.Add("Prefer", "handling=lenient");

        var (bundle, outcome) = await OneMatchWithOutcomeAsync(request);
        Assert.Equal(["nonsense", "name:fuzzy"], outcome.Issue.Select(i => i.Expression.Single()));
        Assert.All(outcome.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Warning, i.Severity));
        var self = Uri.UnescapeDataString(bundle.SelfLink!.Query);
        Assert.Equal($"?family={family}&_count=5", self);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_parameter_with_an_empty_value_is_ignored_and_said_so_however_the_client_prefers_handling(bool lenient)
    {
        // search.html#errors: "Empty parameters are not an error - they are just ignored by the server".
        var family = await CreatePatientAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?family={Uri.EscapeDataString(family)}&given=&_id=&subject.name=&_sort=");
        request.Headers.Add("Prefer", lenient ? "handling=lenient" : "handling=strict");

        var (bundle, outcome) = await OneMatchWithOutcomeAsync(request);
        Assert.Equal(["given", "_id", "subject.name", "_sort"], outcome.Issue.Select(i => i.Expression.Single()));
        Assert.All(outcome.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Warning, i.Severity));
        Assert.Equal($"?family={family}", Uri.UnescapeDataString(bundle.SelfLink!.Query));
    }

    [Fact]
    public async Task A_conditional_delete_whose_criterion_is_empty_is_still_refused()
    {
        // Ignoring it would widen what the delete acts on.
        var response = await _client.DeleteAsync("/fhir/Patient?identifier=");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Theory]
    [InlineData("_include=Observation:subject", "_include")]
    [InlineData("_revinclude=Encounter:service-provider", "_revinclude")]
    public async Task Lenient_handling_ignores_an_include_that_cannot_start_from_the_type_searched_and_says_so(string include, string named)
    {
        var family = await CreatePatientAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?family={Uri.EscapeDataString(family)}&{include}");
        request.Headers.Add("Prefer", "handling=lenient");

        var (bundle, outcome) = await OneMatchWithOutcomeAsync(request);
        Assert.Equal((named, OperationOutcome.IssueSeverity.Warning), (outcome.Issue.Single().Expression.Single(), outcome.Issue.Single().Severity));
        Assert.Equal($"?family={family}", Uri.UnescapeDataString(bundle.SelfLink!.Query));
    }

    [Theory]
    [InlineData("birthdate=2020-13", "birthdate")]
    [InlineData("birthdate=bad", "birthdate")]
    [InlineData("_summary=maybe", "_summary")]
    [InlineData("general-practitioner=a/b/c/d", "general-practitioner")]
    public async Task Lenient_handling_still_refuses_a_malformed_value_of_a_known_parameter(string query, string named)
    {
        // Ignoring it would widen the search to what the client did not ask for (search.html#errors: lenient is for
        // parameters the server does not know or support).
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?{query}");
        request.Headers.Add("Prefer", "handling=lenient");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal((named, OperationOutcome.IssueType.Invalid), (issue.Expression.Single(), issue.Code));
    }

    [Fact]
    public async Task Include_and_revinclude_add_the_related_resources_marked_include()
    {
        var family = await CreatePatientAsync();
        var patientId = await IdOfAsync(family);
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}"),
        });

        var included = await SearchAsync($"Observation?_id={observation}&_include=Observation:subject");
        var revIncluded = await SearchAsync($"Patient?_id={patientId}&_revinclude=Observation:subject");

        Assert.Equal([$"match Observation/{observation}", $"include Patient/{patientId}"], Modes(included));
        Assert.Equal([$"match Patient/{patientId}", $"include Observation/{observation}"], Modes(revIncluded));

        // STU3's :recurse reads as :iterate: the observation's patient, then what refers to that patient.
        var recursed = await SearchAsync($"Observation?_id={observation}&_include:recurse=Observation:subject&_revinclude:recurse=Observation:subject");
        Assert.Equal([$"match Observation/{observation}", $"include Patient/{patientId}"], Modes(recursed));
    }

    [Fact]
    public async Task Include_revinclude_and_chains_follow_a_canonical_reference_by_the_url_of_any_version()
    {
        var url = $"https://example.org/fhir/Measure/{Guid.NewGuid():N}";
        var measure = await CreateAsync(new Measure { Url = url, Version = "2", Status = PublicationStatus.Active });
        await CreateAsync(new Measure { Url = url + "-other", Status = PublicationStatus.Active });
        var report = await CreateAsync(new MeasureReport
        {
            Status = MeasureReport.MeasureReportStatus.Complete, Type = MeasureReport.MeasureReportType.Summary, Measure = $"{url}|2",
            Period = new Period(new FhirDateTime("2025-01-01"), new FhirDateTime("2025-12-31")),
        });

        var included = await SearchAsync($"MeasureReport?_id={report}&_include=MeasureReport:measure");
        var typed = await SearchAsync($"MeasureReport?_id={report}&_include=MeasureReport:measure:Measure");

        Assert.Equal([$"match MeasureReport/{report}", $"include Measure/{measure}"], Modes(included));
        Assert.Equal([$"match MeasureReport/{report}", $"include Measure/{measure}"], Modes(typed));

        // And back: the reports of a measure, which name it by its url.
        var reports = await SearchAsync($"Measure?_id={measure}&_revinclude=MeasureReport:measure");
        Assert.Equal([$"match Measure/{measure}", $"include MeasureReport/{report}"], Modes(reports));

        // A chain through the canonical reference: the reports of the measures with that version.
        Assert.Equal([$"match MeasureReport/{report}"], Modes(await SearchAsync($"MeasureReport?measure.version=2&_id={report}")));
        Assert.Empty((await SearchAsync($"MeasureReport?measure.version=3&_id={report}")).Entry);
    }

    [Fact]
    public async Task A_canonical_search_naming_a_version_finds_that_version_and_has_follows_canonical_references()
    {
        var url = $"https://example.org/fhir/Measure/{Guid.NewGuid():N}";
        var measure = await CreateAsync(new Measure { Url = url, Version = "1.0", Status = PublicationStatus.Active });
        MeasureReport Report(string canonical, MeasureReport.MeasureReportStatus status) => new()
        {
            Status = status, Type = MeasureReport.MeasureReportType.Summary, Measure = canonical,
            Period = new Period(new FhirDateTime("2025-01-01"), new FhirDateTime("2025-12-31")),
        };
        var first = await CreateAsync(Report($"{url}|1.0", MeasureReport.MeasureReportStatus.Complete));
        var unversioned = await CreateAsync(Report(url, MeasureReport.MeasureReportStatus.Pending));
        var second = await CreateAsync(Report($"{url}|2.0", MeasureReport.MeasureReportStatus.Complete));
        List<string> Ids(Bundle bundle) => [.. bundle.Entry.Select(e => e.Resource!.Id!).Order()];

        Assert.Equal(new[] { first, unversioned, second }.Order(), Ids(await SearchAsync($"MeasureReport?measure={url}")));
        Assert.Equal([first], Ids(await SearchAsync($"MeasureReport?measure={url}|1.0")));
        Assert.Empty((await SearchAsync($"MeasureReport?measure={url}|9.9")).Entry);
        Assert.Equal([measure], Ids(await SearchAsync($"Measure?url={url}|1.0")));
        Assert.Empty((await SearchAsync($"Measure?url={url}|2.0")).Entry);
        Assert.Equal([measure], Ids(await SearchAsync($"Measure?_id={measure}&_has:MeasureReport:measure:status=pending")));
        Assert.Equal([measure], Ids(await SearchAsync($"Measure?url={url}&_has:MeasureReport:measure:_id={second}")));
        Assert.Empty((await SearchAsync($"Measure?_id={measure}&_has:MeasureReport:measure:status=error")).Entry);
        // An include still finds the measure from the versioned report, once.
        Assert.Equal([$"match MeasureReport/{first}", $"include Measure/{measure}"], Modes(await SearchAsync($"MeasureReport?_id={first}&_include=MeasureReport:measure")));
    }

    [Fact]
    public async Task Revinclude_with_a_wildcard_adds_what_refers_through_any_parameter()
    {
        var patientId = await IdOfAsync(await CreatePatientAsync());
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}"),
        });
        var immunization = await CreateAsync(new Immunization
        {
            Status = Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = new CodeableConcept("urn:oid:2.16.156.10011.2.3.3.24", "0101"),
            Patient = new ResourceReference($"Patient/{patientId}"),
            Occurrence = new FhirDateTime("2025-04-30"),
        });
        var mother = await CreateAsync(new RelatedPerson { Patient = new ResourceReference($"Patient/{patientId}") });

        var all = await SearchAsync($"Patient?_id={patientId}&_revinclude=*");
        var observations = await SearchAsync($"Patient?_id={patientId}&_revinclude=Observation:*");

        Assert.Equal(new[] { $"include Immunization/{immunization}", $"include Observation/{observation}", $"include RelatedPerson/{mother}", $"match Patient/{patientId}" },
            Modes(all).Order(StringComparer.Ordinal));
        Assert.Equal([$"match Patient/{patientId}", $"include Observation/{observation}"], Modes(observations));
    }

    [Fact]
    public async Task Includes_past_the_configured_cap_stop_with_a_warning()
    {
        var family = await CreatePatientAsync();
        var patientId = await IdOfAsync(family);
        for (var i = 0; i < 7; i++)
        {
            await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}") });
        }

        var bundle = await SearchAsync($"Patient?_id={patientId}&_revinclude=Observation:subject");

        Assert.Equal(5, bundle.Entry.Count(e => e.Search?.Mode == Bundle.SearchEntryMode.Include));
        var outcome = Assert.IsType<OperationOutcome>(bundle.Entry.Single(e => e.Search?.Mode == Bundle.SearchEntryMode.Outcome).Resource);
        Assert.Equal(OperationOutcome.IssueType.TooCostly, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task Iterating_includes_follow_three_iterations_and_say_so_when_more_lie_beyond()
    {
        // A chain of departments, each part of the one before: the search's match, then one level per round.
        var chain = new List<string> { await CreateAsync(new Organization { Name = "县医院" + Guid.NewGuid().ToString("N")[..8] }) };
        for (var i = 1; i <= 5; i++)
        {
            chain.Add(await CreateAsync(new Organization { Name = $"科室{i}", PartOf = new ResourceReference($"Organization/{chain[^1]}") }));
        }

        var fromTop = await SearchAsync($"Organization?_id={chain[0]}&_revinclude:iterate=Organization:partof");
        var fromSecond = await SearchAsync($"Organization?_id={chain[1]}&_revinclude:iterate=Organization:partof");

        // The first round and three iterations: chain[1..4]; chain[5] is one iteration further.
        Assert.Equal(chain[1..5].Select(id => $"include Organization/{id}"), Modes(fromTop).Where(m => m.StartsWith("include Organization/", StringComparison.Ordinal)));
        var outcome = Assert.IsType<OperationOutcome>(Assert.Single(fromTop.Entry, e => e.Search?.Mode == Bundle.SearchEntryMode.Outcome).Resource);
        Assert.Contains("stopped after 3 iterations", outcome.Issue.Single().Diagnostics, StringComparison.Ordinal);
        // From one level down the whole chain is within reach: no warning.
        Assert.Equal(chain[2..].Select(id => $"include Organization/{id}"), Modes(fromSecond).Where(m => m.StartsWith("include Organization/", StringComparison.Ordinal)));
        Assert.DoesNotContain(fromSecond.Entry, e => e.Search?.Mode == Bundle.SearchEntryMode.Outcome);
    }

    [Fact]
    public async Task Wildcard_iterating_includes_add_everything_linked_within_reach_once()
    {
        var family = await CreatePatientAsync();
        var patientId = await IdOfAsync(family);
        var organization = await CreateAsync(new Organization { Name = "乡镇卫生院" + Guid.NewGuid().ToString("N")[..8] });
        await PatchManagingOrganizationAsync(patientId, organization);
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}"),
            Performer = [new ResourceReference($"Organization/{organization}")],
        });
        var encounter = await CreateAsync(new Encounter
        {
            Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            ServiceProvider = new ResourceReference($"Organization/{organization}"),
        });

        var bundle = await SearchAsync($"Observation?_id={observation}&_include:iterate=*&_revinclude:iterate=*");

        // The observation's patient and organisation, then what else refers to that organisation.
        Assert.Equal(new[] { $"include Encounter/{encounter}", $"include Organization/{organization}", $"include Patient/{patientId}", $"match Observation/{observation}" },
            Modes(bundle).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Summary_count_and_total_accurate_report_how_many_match()
    {
        var family = await CreatePatientAsync();
        await CreatePatientAsync(family);
        await CreatePatientAsync(family);

        var count = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_summary=count");
        var page = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_total=accurate&_count=1");
        var none = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_count=1");

        Assert.Equal(3, count.Total);
        Assert.Empty(count.Entry);
        Assert.Equal(3, page.Total);
        Assert.Single(page.Entry);
        Assert.NotNull(page.NextLink);
        Assert.Null(none.Total);
    }

    [Fact]
    public async Task A_code_bound_to_a_required_value_set_is_found_by_the_value_sets_system_and_not_as_a_code_without_one()
    {
        var family = await CreatePatientAsync();
        var woman = Fhir.Patient(family, "芳");
        woman.Gender = AdministrativeGender.Female;
        await CreateAsync(woman);
        const string genders = "http://hl7.org/fhir/administrative-gender";

        var male = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&gender={genders}|male");
        var anySystem = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&gender=male");
        var noSystem = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&gender=|male");
        var otherSystem = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&gender=urn:other|male");
        var notMale = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&gender:not={genders}|male");

        Assert.Equal(["明"], male.Entry.Select(e => ((Patient)e.Resource!).Name[0].Given.Single()));
        Assert.Single(anySystem.Entry);
        Assert.Empty(noSystem.Entry);
        Assert.Empty(otherSystem.Entry);
        Assert.Equal(["芳"], notMale.Entry.Select(e => ((Patient)e.Resource!).Name[0].Given.Single()));
    }

    [Fact]
    public async Task A_thousand_identifiers_in_one_search_are_looked_up_and_more_values_or_parameters_are_400()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var wanted = new[] { 17, 998 }.Select(n => $"{marker}-{n}").ToList();
        foreach (var value in wanted)
        {
            var patient = Fhir.Patient("批量", "查");
            patient.Identifier.Add(new Identifier("urn:test:batch", value));
            await CreateAsync(patient);
        }

        async Task<HttpResponseMessage> PostSearchAsync(string form) =>
            await _client.PostAsync("/fhir/Patient/_search", new StringContent(form, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
        string Identifiers(int count) => "identifier=" + string.Join(',', Enumerable.Range(0, count).Select(n => Uri.EscapeDataString($"urn:test:batch|{marker}-{n}")));
        string Families(int count) => string.Join('&', Enumerable.Repeat("family=%E6%89%B9%E9%87%8F", count));

        var thousand = await PostSearchAsync(Identifiers(1000));
        var tooMany = await PostSearchAsync(Identifiers(1001));
        var hundred = await PostSearchAsync(Families(100));
        var tooManyParameters = await PostSearchAsync(Families(101));

        Assert.Equal(HttpStatusCode.OK, thousand.StatusCode);
        Assert.Equal(wanted, (await Fhir.Read<Bundle>(thousand)).Entry.Select(e => ((Patient)e.Resource!).Identifier.Single().Value).Order());
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal("identifier", (await Fhir.Read<OperationOutcome>(tooMany)).Issue.Single().Expression.Single());
        Assert.Equal(HttpStatusCode.OK, hundred.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, tooManyParameters.StatusCode);
        // Conditional criteria are held to the same limits.
        var conditional = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient("批量", "建")) };
        conditional.Headers.TryAddWithoutValidation("If-None-Exist", Identifiers(1001));
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.SendAsync(conditional)).StatusCode);
    }

    [Fact]
    public async Task Previous_links_lead_back_through_the_same_pages_and_the_first_page_has_none()
    {
        var family = await CreatePatientAsync();
        for (var i = 0; i < 6; i++)
        {
            await CreatePatientAsync(family, $"19{80 + i}");
        }

        var forward = new List<Bundle> { await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_sort=-birthdate&_count=2") };
        while (forward[^1].NextLink is { } next)
        {
            forward.Add(await SearchAsync(next.PathAndQuery["/fhir/".Length..]));
        }

        var backward = new List<Bundle> { forward[^1] };
        while (backward[^1].PreviousLink is { } previous)
        {
            backward.Add(await SearchAsync(previous.PathAndQuery["/fhir/".Length..]));
        }

        Assert.Null(forward[0].PreviousLink);
        Assert.Equal(4, forward.Count);
        Assert.Equal(forward.Select(Ids), backward.AsEnumerable().Reverse().Select(Ids));
        Assert.NotNull(backward[^1].NextLink);

        static string Ids(Bundle page) => string.Join(',', page.Entry.Select(e => e.Resource!.Id));
    }

    [Fact]
    public async Task Total_estimate_reports_a_total_exact_when_the_first_page_holds_every_match()
    {
        var family = await CreatePatientAsync();
        await CreatePatientAsync(family);
        await CreatePatientAsync(family);

        var whole = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_total=estimate&_count=10");
        var first = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_total=estimate&_count=1");

        Assert.Equal(3, whole.Total);
        Assert.NotNull(first.Total);
        Assert.Contains("_total=estimate", first.SelfLink!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Elements_and_summary_return_a_subset_tagged_subsetted()
    {
        var family = await CreatePatientAsync();

        var elements = (Patient)(await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_elements=name")).Entry.Single().Resource!;
        var summary = (Patient)(await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_summary=true")).Entry.Single().Resource!;

        Assert.Equal(family, elements.Name.Single().Family);
        Assert.Null(elements.BirthDate);
        Assert.Empty(elements.Address);
        Assert.Single(elements.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.Equal("1990-01-01", summary.BirthDate);
        Assert.Single(summary.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.NotNull(elements.Id);
        Assert.Single(elements.Meta.Tag, t => t.System == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" && t.Code == "SUBSETTED");
    }

    [Fact]
    public async Task A_read_and_a_vread_take_summary_and_elements_like_a_search()
    {
        var id = await IdOfAsync(await CreatePatientAsync());

        var elements = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}?_elements=birthDate"));
        var summary = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}/_history/1?_summary=true"));
        var whole = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}?_summary=false"));
        var count = await _client.GetAsync($"/fhir/Patient/{id}?_summary=count");
        var bogus = await _client.GetAsync($"/fhir/Patient/{id}?_summary=bogus");

        Assert.Equal((id, "1990-01-01"), (elements.Id, elements.BirthDate));
        Assert.Empty(elements.Name);
        Assert.Single(elements.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.Equal("1990-01-01", summary.BirthDate);
        Assert.Single(summary.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.NotEmpty(whole.Name);
        Assert.DoesNotContain(whole.Meta!.Tag, t => t.Code == "SUBSETTED");
        Assert.Equal((HttpStatusCode.BadRequest, HttpStatusCode.BadRequest), (count.StatusCode, bogus.StatusCode));
    }

    [Fact]
    public async Task Sorted_results_page_through_next_links_in_order()
    {
        var family = await CreatePatientAsync(birthDate: "2001-01-01");
        await CreatePatientAsync(family, "1999-01-01");
        await CreatePatientAsync(family, "2003-01-01");
        await CreatePatientAsync(family, "2000-01-01");

        var dates = new List<string>();
        string? url = $"/fhir/Patient?family={Uri.EscapeDataString(family)}&_sort=-birthdate&_count=3";
        while (url is not null)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            dates.AddRange(bundle.Entry.Select(e => ((Patient)e.Resource!).BirthDate!));
            url = bundle.NextLink?.PathAndQuery;
        }

        Assert.Equal(["2003-01-01", "2001-01-01", "2000-01-01", "1999-01-01"], dates);
    }

    [Fact]
    public async Task A_reverse_chain_pages_through_next_links_without_repeating_a_page()
    {
        var code = Guid.NewGuid().ToString("N")[..10];
        var patients = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var patient = await CreateAsync(Fhir.Patient("反", $"{i}"));
            patients.Add(patient);
            await CreateAsync(new Observation
            {
                Status = ObservationStatus.Final,
                Code = new CodeableConcept("urn:test:has", code),
                Subject = new ResourceReference($"Patient/{patient}"),
            });
        }

        var seen = new List<string>();
        string? url = $"/fhir/Patient?_has:Observation:subject:code=urn:test:has|{code}&_count=2";
        while (url is not null && seen.Count < 20)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            seen.AddRange(bundle.Entry.Select(e => e.Resource!.Id!));
            url = bundle.NextLink?.PathAndQuery;
        }

        Assert.Equal(patients.Order(), seen.Order());
    }

    [Fact]
    public async Task A_search_by_post_form_answers_like_the_get_and_links_as_a_get()
    {
        var family = await CreatePatientAsync();

        var response = await _client.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("family", family)]));

        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Single(bundle.Entry);
        Assert.EndsWith("/fhir/Patient?family=" + Uri.EscapeDataString(family), bundle.SelfLink!.AbsoluteUri, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_search_by_post_takes_parameters_in_the_url_without_a_body_and_in_a_compartment()
    {
        var family = await CreatePatientAsync();
        var patientId = await IdOfAsync(family);
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}"),
        });

        var byUrl = await _client.PostAsync($"/fhir/Patient/_search?family={Uri.EscapeDataString(family)}", null);
        var inCompartment = await _client.PostAsync($"/fhir/Patient/{patientId}/Observation/_search", new FormUrlEncodedContent([new("code", "http://loinc.org|8480-6")]));
        var everyType = await _client.PostAsync($"/fhir/Patient/{patientId}/_search", new FormUrlEncodedContent([new("_type", "Observation")]));
        var withJson = await _client.PostAsync("/fhir/Patient/_search", Fhir.Content(new Parameters()));

        Assert.Equal([patientId], (await Fhir.Read<Bundle>(byUrl)).Entry.Select(e => e.Resource!.Id));
        Assert.Equal([observation], (await Fhir.Read<Bundle>(inCompartment)).Entry.Select(e => e.Resource!.Id));
        Assert.Equal([observation], (await Fhir.Read<Bundle>(everyType)).Entry.Select(e => e.Resource!.Id));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, withJson.StatusCode);
    }

    [Fact]
    public async Task System_search_finds_resources_of_the_types_named()
    {
        var family = await CreatePatientAsync();
        var patientId = await IdOfAsync(family);
        var organization = await CreateAsync(new Organization { Name = "白沙镇卫生院" });

        var bundle = await SearchAsync($"?_type=Patient,Organization&_id={patientId},{organization}");
        var refused = await _client.GetAsync("/fhir?family=x");

        Assert.Equal([$"Organization/{organization}", $"Patient/{patientId}"],
            bundle.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order(StringComparer.Ordinal));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);

        // The links carry _type once, page after page.
        var first = await SearchAsync($"?_type=Patient,Organization&_id={patientId},{organization}&_count=1");
        var second = await Fhir.Read<Bundle>(await _client.GetAsync(first.NextLink!.PathAndQuery));
        Assert.All(new[] { first.SelfLink!, first.NextLink!, second.SelfLink! },
            link => Assert.Single(Uri.UnescapeDataString(link.Query).Split('&'), p => p.TrimStart('?').StartsWith("_type=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_reference_absolute_on_the_hubs_own_base_is_stored_relative_and_searched_as_local()
    {
        var patientId = await IdOfAsync(await CreatePatientAsync());
        var absolute = new Uri(_client.BaseAddress!, $"/fhir/Patient/{patientId}").ToString();
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference(absolute),
        });
        var elsewhere = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"),
            Subject = new ResourceReference($"https://other.example/fhir/Patient/{patientId}"),
        });

        var stored = await Fhir.Read<Observation>(await _client.GetAsync($"/fhir/Observation/{observation}"));
        var found = await SearchAsync($"Observation?subject=Patient/{patientId}&_include=Observation:subject");

        Assert.Equal($"Patient/{patientId}", stored.Subject!.Reference);
        Assert.Equal([$"match Observation/{observation}", $"include Patient/{patientId}"], Modes(found));
        // A search value absolute on the hub's base is local too.
        var byAbsolute = await SearchAsync($"Observation?subject={Uri.EscapeDataString(absolute)}");
        Assert.Equal([$"match Observation/{observation}"], Modes(byAbsolute));

        // So is such a reference in a transaction entry.
        var transaction = new Bundle { Type = Bundle.BundleType.Transaction };
        transaction.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = $"urn:uuid:{Guid.NewGuid()}",
            Resource = new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8462-4"), Subject = new ResourceReference(absolute) },
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Observation" },
        });
        var response = await Fhir.Read<Bundle>(await _client.PostAsync("/fhir", Fhir.Content(transaction)));
        var inTransaction = response.Entry[0].Response!.Location!.Split('/')[1];
        Assert.Equal($"Patient/{patientId}", (await Fhir.Read<Observation>(await _client.GetAsync($"/fhir/Observation/{inTransaction}"))).Subject!.Reference);
        Assert.Equal($"https://other.example/fhir/Patient/{patientId}",
            (await Fhir.Read<Observation>(await _client.GetAsync($"/fhir/Observation/{elsewhere}"))).Subject!.Reference);
    }

    [Fact]
    public async Task Count_zero_answers_how_many_match_without_resources()
    {
        var family = await CreatePatientAsync();
        await CreatePatientAsync(family);

        var counted = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_count=0");
        var none = await SearchAsync($"Patient?family={Uri.EscapeDataString(family)}&_count=0&_total=none");

        Assert.Equal(2, counted.Total);
        Assert.Empty(counted.Entry);
        Assert.Null(counted.NextLink);
        Assert.Null(none.Total);
    }

    [Fact]
    public async Task A_count_above_the_maximum_is_shown_as_the_maximum_in_the_links()
    {
        var bundle = await SearchAsync($"Patient?family={Uri.EscapeDataString(await CreatePatientAsync())}&_count=5000");

        // The tests' hub allows 100 per page.
        Assert.Contains("_count=100", bundle.SelfLink!.Query, StringComparison.Ordinal);
        Assert.DoesNotContain("5000", bundle.SelfLink.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compartment_search_finds_the_resources_that_refer_to_the_patient()
    {
        var patientId = await IdOfAsync(await CreatePatientAsync());
        var otherId = await IdOfAsync(await CreatePatientAsync());
        var mine = await CreateAsync(new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"), Subject = new ResourceReference($"Patient/{patientId}") });
        await CreateAsync(new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"), Subject = new ResourceReference($"Patient/{otherId}") });

        var bundle = await SearchAsync($"Patient/{patientId}/Encounter");
        var filtered = await SearchAsync($"Patient/{patientId}/Encounter?status=planned");

        Assert.Equal([mine], bundle.Entry.Select(e => e.Resource!.Id));
        Assert.Empty(filtered.Entry);
    }

    [Fact]
    public async Task A_wildcard_compartment_search_finds_every_type_in_the_compartment_and_type_narrows_it()
    {
        var patientId = await IdOfAsync(await CreatePatientAsync());
        var otherId = await IdOfAsync(await CreatePatientAsync());
        var encounter = await CreateAsync(new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"), Subject = new ResourceReference($"Patient/{patientId}") });
        var observation = await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{patientId}") });
        await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "8480-6"), Subject = new ResourceReference($"Patient/{otherId}") });

        var all = await SearchAsync($"Patient/{patientId}/*");
        var observations = await SearchAsync($"Patient/{patientId}/*?_type=Observation");

        Assert.Equal(new[] { $"Encounter/{encounter}", $"Observation/{observation}", $"Patient/{patientId}" },
            all.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order(StringComparer.Ordinal));
        Assert.Equal([observation], observations.Entry.Select(e => e.Resource!.Id));
    }

    [Fact]
    public async Task A_patients_compartment_of_patients_is_the_patient_and_the_patients_linked_to_it()
    {
        var patientId = await IdOfAsync(await CreatePatientAsync());
        var stranger = await IdOfAsync(await CreatePatientAsync());
        await Task.Delay(1100);
        var since = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(1100);
        var linked = Fhir.Patient("欧阳" + Guid.NewGuid().ToString("N")[..8], "亮");
        linked.Link.Add(new Patient.LinkComponent { Other = new ResourceReference($"Patient/{patientId}"), Type = Patient.LinkType.Seealso });
        var linkedId = await CreateAsync(linked);

        var compartment = await SearchAsync($"Patient/{patientId}/Patient");
        var recent = await SearchAsync($"Patient/{patientId}/Patient?_lastUpdated=ge{since}");
        var byId = await SearchAsync($"Patient/{patientId}/Patient?_id={patientId}");

        Assert.Equal(new[] { patientId, linkedId }.Order(StringComparer.Ordinal), compartment.Entry.Select(e => e.Resource!.Id).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(stranger, compartment.Entry.Select(e => e.Resource!.Id));
        Assert.Equal([linkedId], recent.Entry.Select(e => e.Resource!.Id));
        Assert.Equal([patientId], byId.Entry.Select(e => e.Resource!.Id));
    }

    [Fact]
    public async Task Conditional_create_accepts_any_search_criteria()
    {
        var family = "卢" + Guid.NewGuid().ToString("N")[..8];
        var request = () =>
        {
            var message = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient(family, "一")) };
            message.Headers.Add("If-None-Exist", $"family:exact={family}&birthdate=1990-01-01&gender=male");
            return message;
        };

        var first = await _client.SendAsync(request());
        var second = await _client.SendAsync(request());

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
    }

    [Fact]
    public async Task A_number_with_more_digits_than_a_double_holds_finds_itself()
    {
        var marker = Guid.NewGuid().ToString("N");
        var observation = await CreateAsync(new Observation
        {
            Status = ObservationStatus.Final, Code = new CodeableConcept("urn:test:precision", marker),
            Value = new Quantity { Value = 12345678901234567890.123456789m, Unit = "1", System = "http://unitsofmeasure.org", Code = "1" },
        });
        string Search(string value) => $"Observation?code=urn:test:precision|{marker}&value-quantity={value}";

        var same = await SearchAsync(Search("12345678901234567890.123456789"));
        var withUnit = await SearchAsync(Search("12345678901234567890.123456789|http://unitsofmeasure.org|1"));

        Assert.Equal([observation], same.Entry.Select(e => e.Resource!.Id));
        Assert.Equal([observation], withUnit.Entry.Select(e => e.Resource!.Id));
    }

    [Theory]
    // Not FHIR decimals (datatypes.html#decimal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)
    [InlineData("RiskAssessment?probability=.8", "probability")]
    [InlineData("RiskAssessment?probability=1.", "probability")]
    [InlineData("RiskAssessment?probability=%2B1", "probability")]
    [InlineData("RiskAssessment?probability=00.8", "probability")]
    [InlineData("RiskAssessment?probability=ge.8", "probability")]
    [InlineData("RiskAssessment?probability=gt%200.8", "probability")]
    [InlineData("RiskAssessment?probability=1e", "probability")]
    [InlineData("Observation?value-quantity=.8||mg", "value-quantity")]
    // Beyond what System.Decimal holds with its range: read as 0 or as a double they would find other values
    [InlineData("Observation?value-quantity=1e-29", "value-quantity")]
    [InlineData("Observation?value-quantity=1e-400", "value-quantity")]
    [InlineData("Observation?value-quantity=0.0000000000000000000000000001", "value-quantity")]
    [InlineData("Observation?value-quantity=1e29", "value-quantity")]
    [InlineData("Observation?value-quantity=gt1e400", "value-quantity")]
    [InlineData("Observation?value-quantity=lt99999999999999999999999999999999999", "value-quantity")]
    [InlineData("Observation?value-quantity=123456789012345678901234567.891", "value-quantity")]
    // Dates with spaces
    [InlineData("Patient?birthdate=gt%201980", "birthdate")]
    [InlineData("Patient?birthdate=%201980-01-01%20", "birthdate")]
    public async Task A_number_or_date_that_is_malformed_or_beyond_what_the_hub_holds_exactly_is_400_naming_the_parameter(string query, string named)
    {
        var response = await _client.GetAsync($"/fhir/{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(named, (await Fhir.Read<OperationOutcome>(response)).Issue.Single().Expression.Single());
    }

    [Fact]
    public async Task Dates_at_the_ends_of_the_calendar_are_indexed_and_searched_without_overflowing()
    {
        var marker = Guid.NewGuid().ToString("N");
        Observation At(string effective) => new()
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("urn:test:calendar-ends", marker),
            Effective = new FhirDateTime(effective),
        };
        // 9999-12-31T23:59:59 is the HIS's "open-ended"; with a zone west of UTC it lies past the calendar's end in UTC.
        var lastSecond = await CreateAsync(At("9999-12-31T23:59:59Z"));
        var lastYear = await CreateAsync(At("9999"));
        var firstDay = await CreateAsync(At("0001-01-01"));

        var late = await SearchAsync($"Observation?code=urn:test:calendar-ends|{marker}&date=ge9999-12-31T00:00:00Z");
        var westOfTheEnd = await SearchAsync($"Observation?code=urn:test:calendar-ends|{marker}&date={Uri.EscapeDataString("9999-12-31T23:59:59-05:00")}");
        var eastOfTheStart = await SearchAsync($"Observation?code=urn:test:calendar-ends|{marker}&date={Uri.EscapeDataString("0001-01-01T00:00:00+14:00")}");
        var early = await SearchAsync($"Observation?code=urn:test:calendar-ends|{marker}&date=lt0001-01-02");
        var undated = await SearchAsync($"Observation?code=urn:test:calendar-ends|{marker}&date:missing=true");

        Assert.Equal(new[] { lastSecond, lastYear }.Order(), late.Entry.Select(e => e.Resource!.Id).Order());
        // Moments past the calendar's ends in UTC are searchable (a 200, not an overflow); no stored value lies inside them.
        Assert.Empty(westOfTheEnd.Entry.Concat(eastOfTheStart.Entry));
        Assert.Equal([firstDay], early.Entry.Select(e => e.Resource!.Id));
        Assert.Empty(undated.Entry);
    }

    /// <summary>A searchset answered 200 with one match and the outcome entry that says what was ignored.</summary>
    private async Task<(Bundle Bundle, OperationOutcome Outcome)> OneMatchWithOutcomeAsync(HttpRequestMessage request)
    {
        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Single(bundle.Entry, e => e.Search?.Mode == Bundle.SearchEntryMode.Match);
        return (bundle, Assert.IsType<OperationOutcome>(Assert.Single(bundle.Entry, e => e.Search?.Mode == Bundle.SearchEntryMode.Outcome).Resource));
    }

    private async Task<string> CreatePatientAsync(string? family = null, string birthDate = "1990-01-01")
    {
        family ??= "欧阳" + Guid.NewGuid().ToString("N")[..8];
        var patient = Fhir.Patient(family, "明");
        patient.BirthDate = birthDate;
        await CreateAsync(patient);
        return family;
    }

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return response.Headers.Location!.OriginalString.Split('/')[^3];
    }

    private async Task PatchManagingOrganizationAsync(string patientId, string organization)
    {
        var patient = (Patient)(await SearchAsync($"Patient?_id={patientId}")).Entry.Single().Resource!;
        patient.ManagingOrganization = new ResourceReference($"Organization/{organization}");
        var response = await _client.PutAsync($"/fhir/Patient/{patientId}", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task<string> IdOfAsync(string family) =>
        (await SearchAsync($"Patient?family:exact={Uri.EscapeDataString(family)}")).Entry.Single().Resource!.Id!;

    private async Task<Bundle> SearchAsync(string relative)
    {
        var response = await _client.GetAsync("/fhir/" + relative.TrimStart('/'));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<Bundle>(response);
    }

    /// <summary>Each entry of a searchset as "match Type/id" or "include Type/id".</summary>
    internal static List<string> Modes(Bundle bundle) =>
        bundle.Entry.Select(e => $"{(e.Search!.Mode == Bundle.SearchEntryMode.Match ? "match" : "include")} {e.Resource!.TypeName}/{e.Resource.Id}").ToList();
}

public sealed class SearchTestsOnSqlite(SqliteHub hub) : SearchTests(hub), IClassFixture<SqliteHub>;

public sealed class SearchTestsOnPostgres(PostgresHub hub) : SearchTests(hub), IClassFixture<PostgresHub>;
