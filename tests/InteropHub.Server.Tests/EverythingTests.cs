using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class EverythingTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Everything_returns_the_patient_first_and_every_resource_that_points_to_them()
    {
        var (patient, mine) = await PatientWithRecordsAsync();
        var stranger = await CreateAsync(Fhir.Patient("陌", "生"));
        await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "718-7"), Subject = new ResourceReference($"Patient/{stranger}") });

        var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything"));

        Assert.Equal(Bundle.BundleType.Searchset, bundle.Type);
        Assert.Equal($"Patient/{patient}", $"{bundle.Entry[0].Resource!.TypeName}/{bundle.Entry[0].Resource!.Id}");
        Assert.Equal(mine.Order(), bundle.Entry.Skip(1).Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order());
        Assert.Equal(bundle.Entry.Count, bundle.Total);
        Assert.All(bundle.Entry, e => Assert.Equal(Bundle.SearchEntryMode.Match, e.Search!.Mode));
    }

    [Fact]
    public async Task Everything_pages_across_types_without_losing_or_repeating_a_resource()
    {
        var (patient, mine) = await PatientWithRecordsAsync();

        var seen = new List<string>();
        var url = $"/fhir/Patient/{patient}/$everything?_count=2";
        while (url is not null)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            Assert.InRange(bundle.Entry.Count, 1, 2);
            Assert.Null(bundle.Total);
            seen.AddRange(bundle.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
            url = bundle.NextLink?.PathAndQuery;
        }

        Assert.Equal(mine.Append($"Patient/{patient}").Order(), seen.Order());
    }

    [Fact]
    public async Task Type_and_since_narrow_everything()
    {
        var (patient, mine) = await PatientWithRecordsAsync();

        var encounters = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything?_type=Encounter"));
        var future = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything?_since=2999-01-01T00:00:00Z"));

        Assert.Equal(mine.Where(m => m.StartsWith("Encounter/", StringComparison.Ordinal)), encounters.Entry.Select(e => $"Encounter/{e.Resource!.Id}"));
        Assert.Empty(future.Entry);
    }

    [Fact]
    public async Task Since_keeps_what_changed_in_every_type_and_linked_patients_come_after_the_patient()
    {
        // The linked record is older than the patient (created first, linked later): the patient still comes first.
        var linked = Fhir.Patient("沈", "二");
        var linkedId = await CreateAsync(linked);
        var (patient, mine) = await PatientWithRecordsAsync();
        linked.Id = linkedId;
        linked.Link.Add(new Patient.LinkComponent { Other = new ResourceReference($"Patient/{patient}"), Type = Patient.LinkType.Seealso });
        Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync($"/fhir/Patient/{linkedId}", Fhir.Content(linked))).StatusCode);
        await Task.Delay(1100);
        var since = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(1100);
        var changed = mine.Where(m => m.StartsWith("Observation/", StringComparison.Ordinal)).First();
        var observation = await Fhir.Read<Observation>(await _client.GetAsync($"/fhir/{changed}"));
        observation.Status = ObservationStatus.Amended;
        Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync($"/fhir/{changed}", Fhir.Content(observation))).StatusCode);

        var all = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything"));
        var recent = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything?_since={Uri.EscapeDataString(since)}"));

        Assert.Equal([$"Patient/{patient}", $"Patient/{linkedId}"], all.Entry.Take(2).Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
        Assert.Equal(mine.Order(), all.Entry.Skip(2).Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order());
        Assert.Equal([changed], recent.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
    }

    [Fact]
    public async Task Everything_ends_with_what_the_record_refers_to_outside_the_compartment()
    {
        var organization = await CreateAsync(new Organization { Name = "白沙镇卫生院" });
        var practitioner = await CreateAsync(new Practitioner { Name = [new HumanName { Family = "许" }] });
        var unrelated = await CreateAsync(new Organization { Name = "龙泉镇卫生院" });
        var patient = Fhir.Patient("沈", "引");
        patient.ManagingOrganization = new ResourceReference($"Organization/{organization}");
        var patientId = await CreateAsync(patient);
        var encounter = await CreateAsync(new Encounter
        {
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            Subject = new ResourceReference($"Patient/{patientId}"),
            ServiceProvider = new ResourceReference($"Organization/{organization}"),
            Participant = [new Encounter.ParticipantComponent { Individual = new ResourceReference($"Practitioner/{practitioner}") }],
        });

        var all = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patientId}/$everything"));
        var organizations = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patientId}/$everything?_type=Organization"));

        Assert.Equal([$"Patient/{patientId}", $"Encounter/{encounter}", $"Organization/{organization}", $"Practitioner/{practitioner}"],
            all.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
        Assert.Equal([$"Organization/{organization}"], organizations.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
        Assert.DoesNotContain(all.Entry, e => e.Resource!.Id == unrelated);

        var paged = new List<string>();
        for (var url = $"/fhir/Patient/{patientId}/$everything?_count=1"; url is not null;)
        {
            var page = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            paged.AddRange(page.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
            url = page.NextLink?.PathAndQuery;
        }

        Assert.Equal(all.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"), paged);
    }

    [Fact]
    public async Task Everything_by_POST_takes_its_parameters_in_a_Parameters_body_and_pages_by_GET()
    {
        var (patient, mine) = await PatientWithRecordsAsync();
        var body = new Parameters();
        body.Add("_type", new FhirString("Observation"));
        body.Add("_type", new FhirString("Encounter"));
        body.Add("_since", new Instant(DateTimeOffset.UtcNow.AddHours(-1)));
        body.Add("_count", new Integer(2));
        var refused = new Parameters();
        refused.Add("_sort", new FhirString("date"));
        var coded = new Parameters();
        coded.Add("_type", new Coding("http://hl7.org/fhir/resource-types", "Observation"));

        var first = await Fhir.Read<Bundle>(await _client.PostAsync($"/fhir/Patient/{patient}/$everything", Fhir.Content(body)));
        var second = await Fhir.Read<Bundle>(await _client.GetAsync(first.NextLink!.PathAndQuery));
        var unsupported = await _client.PostAsync($"/fhir/Patient/{patient}/$everything", Fhir.Content(refused));
        var notAString = await _client.PostAsync($"/fhir/Patient/{patient}/$everything", Fhir.Content(coded));
        var inQuery = await _client.PostAsync($"/fhir/Patient/{patient}/$everything?_count=1", Fhir.Content(body));
        var noBody = await Fhir.Read<Bundle>(await _client.PostAsync($"/fhir/Patient/{patient}/$everything", null));

        Assert.Equal(mine.Where(m => !m.StartsWith("Immunization/", StringComparison.Ordinal)).Order(),
            first.Entry.Concat(second.Entry).Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order());
        Assert.Null(second.NextLink);
        Assert.Equal(HttpStatusCode.BadRequest, unsupported.StatusCode);
        Assert.Contains("_sort", (await Fhir.Read<OperationOutcome>(unsupported)).Issue[0].Diagnostics, StringComparison.Ordinal);
        // A _type it cannot read, or a parameter in the query, would widen or change the answer unseen: refused.
        Assert.Equal((HttpStatusCode.BadRequest, HttpStatusCode.BadRequest), (notAString.StatusCode, inQuery.StatusCode));
        Assert.Equal(mine.Append($"Patient/{patient}").Order(), noBody.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order());
    }

    [Fact]
    public async Task Start_and_end_keep_the_care_given_in_the_range_and_what_has_no_care_date()
    {
        var patient = await CreateAsync(Fhir.Patient("沈", "期"));
        var subject = new ResourceReference($"Patient/{patient}");
        Encounter Visit(string start, string end) => new()
        {
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP"),
            Subject = subject,
            Period = new Period(new FhirDateTime(start), new FhirDateTime(end)),
        };
        Observation Result(string? effective) => new()
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "718-7"),
            Subject = subject,
            Effective = effective is null ? null : new FhirDateTime(effective),
        };
        // A stay across new year overlaps 2020; a referral authored in 2019 does not.
        var acrossNewYear = "Encounter/" + await CreateAsync(Visit("2019-12-30", "2020-01-03"));
        var in2023 = "Encounter/" + await CreateAsync(Visit("2023-06-01", "2023-06-02"));
        var result2020 = "Observation/" + await CreateAsync(Result("2020-03-02T08:00:00+08:00"));
        var undatedResult = "Observation/" + await CreateAsync(Result(null));
        var referral2019 = "ServiceRequest/" + await CreateAsync(new ServiceRequest
        {
            Status = RequestStatus.Active, Intent = RequestIntent.Order, Subject = subject, AuthoredOnElement = new FhirDateTime("2019-05-01"),
        });
        // No care date: a family member and a possibly ongoing condition stay in whatever the range.
        var mother = "RelatedPerson/" + await CreateAsync(new RelatedPerson { Patient = subject, Name = [new HumanName { Family = "沈", Given = ["母"] }] });
        var condition = "Condition/" + await CreateAsync(new Condition { Subject = subject, Code = new CodeableConcept("http://hl7.org/fhir/sid/icd-10", "I10"), Onset = new FhirDateTime("2010") });

        var in2020 = await EverythingAsync($"/fhir/Patient/{patient}/$everything?start=2020-01-01&end=2020-12-31");
        var until2019 = await EverythingAsync($"/fhir/Patient/{patient}/$everything?end=2019-12-31&_count=1");
        var from2021 = await EverythingAsync($"/fhir/Patient/{patient}/$everything?start=2021");
        var body = new Parameters();
        body.Add("start", new Date("2020-01-01"));
        body.Add("end", new Date("2020-12-31"));
        var byPost = await Fhir.Read<Bundle>(await _client.PostAsync($"/fhir/Patient/{patient}/$everything", Fhir.Content(body)));

        // Nor can a result without an effective time be placed outside the range.
        string[] undated = [$"Patient/{patient}", mother, condition, undatedResult];
        Assert.Equal(undated.Concat([acrossNewYear, result2020]).Order(), in2020.Order());
        Assert.Equal(undated.Concat([acrossNewYear, referral2019]).Order(), until2019.Order());
        Assert.Equal(undated.Append(in2023).Order(), from2021.Order());
        Assert.Equal(in2020.Order(), byPost.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}").Order());
    }

    /// <summary>Every page of an $everything, following next links.</summary>
    private async Task<List<string>> EverythingAsync(string url)
    {
        var seen = new List<string>();
        for (var next = url; next is not null;)
        {
            var page = await Fhir.Read<Bundle>(await _client.GetAsync(next));
            seen.AddRange(page.Entry.Select(e => $"{e.Resource!.TypeName}/{e.Resource.Id}"));
            next = page.NextLink?.PathAndQuery;
        }

        return seen;
    }

    [Fact]
    public async Task A_start_and_end_on_the_same_day_or_at_different_precisions_are_not_a_reversed_period()
    {
        var (patient, _) = await PatientWithRecordsAsync();

        var sameDay = await _client.GetAsync($"/fhir/Patient/{patient}/$everything?start=2025-04-30&end=2025-04-30");
        var monthInYear = await _client.GetAsync($"/fhir/Patient/{patient}/$everything?start=2025-06&end=2025");

        Assert.Equal(HttpStatusCode.OK, sameDay.StatusCode);
        Assert.Equal(HttpStatusCode.OK, monthInYear.StatusCode);
    }

    [Fact]
    public async Task Everything_with_count_zero_is_an_empty_page_with_the_total_of_the_record()
    {
        var (patient, _) = await PatientWithRecordsAsync();
        var whole = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient}/$everything?_count=1000"));

        var response = await _client.GetAsync($"/fhir/Patient/{patient}/$everything?_count=0");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Empty(bundle.Entry);
        Assert.Null(bundle.NextLink);
        Assert.True(whole.Entry.Count > 1);
        Assert.Equal(whole.Entry.Count, bundle.Total);
    }

    [Theory]
    [InlineData("/fhir/Patient/nobody/$everything", HttpStatusCode.NotFound)]
    [InlineData("/fhir/Patient/{id}/$everything?_sort=date", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?start=last-spring", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?end=2020-13-01", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?_type=Nonsense", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?_cursor=zz", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?start=2025-01-01&end=2020-01-01", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/{id}/$everything?start=2025-06&end=2025-05-31", HttpStatusCode.BadRequest)]
    public async Task Everything_refuses_what_it_cannot_answer(string url, HttpStatusCode status)
    {
        var (patient, _) = await PatientWithRecordsAsync();

        var response = await _client.GetAsync(url.Replace("{id}", patient, StringComparison.Ordinal));

        Assert.Equal(status, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    private async Task<(string Patient, List<string> Records)> PatientWithRecordsAsync()
    {
        var patient = await CreateAsync(Fhir.Patient("沈", "万三"));
        var subject = new ResourceReference($"Patient/{patient}");
        var records = new List<string>
        {
            "Encounter/" + await CreateAsync(new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"), Subject = subject }),
            "Observation/" + await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "4548-4"), Subject = subject }),
            "Observation/" + await CreateAsync(new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept("http://loinc.org", "14771-0"), Subject = subject }),
            "Immunization/" + await CreateAsync(new Immunization
            {
                Status = Immunization.ImmunizationStatusCodes.Completed,
                VaccineCode = new CodeableConcept("urn:oid:2.16.156.10011.2.3.3.24", "0101"),
                Patient = subject,
                Occurrence = new FhirDateTime("2025-04-30"),
            }),
        };
        return (patient, records);
    }

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return response.Headers.Location!.AbsolutePath.Split('/')[3];
    }
}

public sealed class EverythingTestsOnSqlite(SqliteHub hub) : EverythingTests(hub), IClassFixture<SqliteHub>;

public sealed class EverythingTestsOnPostgres(PostgresHub hub) : EverythingTests(hub), IClassFixture<PostgresHub>;
