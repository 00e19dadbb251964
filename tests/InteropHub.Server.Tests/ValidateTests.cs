using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class ValidateTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task A_valid_resource_gets_an_outcome_without_errors_and_nothing_is_written()
    {
        var family = "验" + Guid.NewGuid().ToString("N")[..8];

        var outcome = await ValidateAsync("/fhir/Patient/$validate", Fhir.Content(Fhir.Patient(family, "证")));
        var stored = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient?family:exact={Uri.EscapeDataString(family)}"));

        Assert.All(outcome.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Information, i.Severity));
        Assert.Empty(stored.Entry);
    }

    [Theory]
    [InlineData("""{"resourceType":"Patient","birthDate":"1990-13-45"}""", "birthDate")]
    [InlineData("""{"resourceType":"Patient","nickname":"x"}""", "nickname")]
    [InlineData("""{"resourceType":"Observation","status":"final","code":{"text":"x"}}""", "Observation")]
    [InlineData("""{"resourceType":"Patient",""", "")]
    [InlineData("""{"resourceType":"Encounter","status":"finished"}""", "Encounter.class")]
    [InlineData("""{"resourceType":"Patient","managingOrganization":{"reference":"Organization?identifier=x|1"}}""", "Patient.managingOrganization")]
    public async Task An_invalid_resource_gets_200_with_errors_that_say_where(string body, string where)
    {
        var type = body.Contains("Encounter", StringComparison.Ordinal) ? "Encounter" : "Patient";
        var outcome = await ValidateAsync($"/fhir/{type}/$validate", new StringContent(body, System.Text.Encoding.UTF8, "application/fhir+json"));

        var error = Assert.Single(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(where, (error.Diagnostics ?? "") + string.Join(" ", error.Expression), StringComparison.Ordinal);
        Assert.DoesNotContain("$this", (error.Diagnostics ?? "") + string.Join(" ", error.Expression), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Update_mode_checks_the_id_and_the_stored_version_and_a_parameters_body_is_unwrapped()
    {
        var created = await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("验", "更新")));
        var id = created.Headers.Location!.AbsolutePath.Split('/')[3];
        var patient = Fhir.Patient("验", "更新");
        patient.Id = id;
        var parameters = new Parameters();
        parameters.Add("resource", patient);
        parameters.Add("mode", new Code("update"));

        var valid = await ValidateAsync($"/fhir/Patient/{id}/$validate", Fhir.Content(parameters));
        var otherId = await ValidateAsync("/fhir/Patient/someone-else/$validate?mode=update", Fhir.Content(patient));
        patient.Id = null;
        var noId = await ValidateAsync("/fhir/Patient/$validate?mode=update", Fhir.Content(patient));
        var delete = await ValidateAsync($"/fhir/Patient/{id}/$validate?mode=delete", null);

        Assert.Contains(valid.Issue, i => (i.Diagnostics ?? "").Contains("the next version", StringComparison.Ordinal));
        Assert.All(valid.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Information, i.Severity));
        Assert.Equal("id", Assert.Single(Assert.Single(otherId.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Expression));
        Assert.Equal("id", Assert.Single(Assert.Single(noId.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Expression));
        Assert.Equal(OperationOutcome.IssueSeverity.Information, Assert.Single(delete.Issue).Severity);
    }

    [Fact]
    public async Task A_business_rule_the_write_would_refuse_is_an_error_of_the_outcome()
    {
        // The hub cannot index a custom parameter whose code the specification already gives the base type: a create is 422.
        var parameter = new SearchParameter
        {
            Url = "https://interophub.dev/fhir/SearchParameter/validate-gender-" + Guid.NewGuid().ToString("N")[..8],
            Name = "gender",
            Status = PublicationStatus.Active,
            Description = "x",
            Code = "gender",
            Base = [ResourceType.Patient],
            Type = SearchParamType.Token,
            Expression = "Patient.gender",
        };

        var created = await _client.PostAsync("/fhir/SearchParameter", Fhir.Content(parameter));
        var outcome = await ValidateAsync("/fhir/SearchParameter/$validate", Fhir.Content(parameter));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, created.StatusCode);
        Assert.Single(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
    }

    [Fact]
    public async Task A_valid_search_parameter_is_not_registered_by_validating_it()
    {
        var code = "validated-" + Guid.NewGuid().ToString("N")[..8];
        var parameter = new SearchParameter
        {
            Url = $"https://interophub.dev/fhir/SearchParameter/{code}",
            Name = code,
            Status = PublicationStatus.Active,
            Description = "x",
            Code = code,
            Base = [ResourceType.Patient],
            Type = SearchParamType.Token,
            Expression = "Patient.maritalStatus",
        };

        var outcome = await ValidateAsync("/fhir/SearchParameter/$validate", Fhir.Content(parameter));
        var search = await _client.GetAsync($"/fhir/Patient?{code}=M");

        // A warning remains: spd-0 asks for a name usable as an identifier, which "validated-…" is not.
        Assert.DoesNotContain(outcome.Issue, i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal);
        Assert.Equal(HttpStatusCode.BadRequest, search.StatusCode);
        Assert.Contains("not defined", Assert.Single((await Fhir.Read<OperationOutcome>(search)).Issue).Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/fhir/Patient/$validate?mode=patch", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/NoSuchType/$validate", HttpStatusCode.NotFound)]
    [InlineData("/fhir/Patient/$validate?mode=delete", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/$validate?profile=http://example.org/a&profile=http://example.org/b", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/$validate?mode=create&mode=update", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/$validate?strict=true", HttpStatusCode.BadRequest)]
    public async Task What_cannot_be_validated_is_refused(string url, HttpStatusCode status)
    {
        var response = await _client.PostAsync(url, Fhir.Content(Fhir.Patient("验", "拒")));

        Assert.Equal(status, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Theory]
    [InlineData("""{"resourceType":"Patient","contact":[{"gender":"male"}]}""", "Patient", "pat-1", "Patient.contact[0]")]
    [InlineData("""{"resourceType":"Observation","status":"final","code":{"text":"体温"},"valueString":"36.5","dataAbsentReason":{"text":"未测"}}""", "Observation", "obs-6", "Observation")]
    public async Task What_the_hub_would_store_but_does_not_conform_to_the_R4_definition_is_an_error_that_says_where(string body, string type,
        string rule, string where)
    {
        var outcome = await ValidateAsync($"/fhir/{type}/$validate", new StringContent(body, System.Text.Encoding.UTF8, "application/fhir+json"));

        var error = Assert.Single(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(rule, error.Details?.Text ?? error.Diagnostics, StringComparison.Ordinal);
        Assert.StartsWith(where, Assert.Single(error.Expression), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_profile_of_the_specification_is_checked_when_asked_for_or_claimed()
    {
        var heartRate = new Observation
        {
            Status = ObservationStatus.Final,
            Category = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")],
            Code = new CodeableConcept("http://loinc.org", "8867-4", "心率"),
            Subject = new ResourceReference("Patient/p1"),
            Effective = new FhirDateTime("2025-05-06T08:15:00+08:00"),
            Value = new Quantity(72, "/min") { System = "http://unitsofmeasure.org", Code = "/min" },
        };
        const string profile = "http://hl7.org/fhir/StructureDefinition/heartrate";

        var conforming = await ValidateAsync($"/fhir/Observation/$validate?profile={profile}", Fhir.Content(heartRate));
        heartRate.Value = new Quantity(72, "次/分") { System = "http://unitsofmeasure.org", Code = "{beats}/min" };
        var asked = await ValidateAsync($"/fhir/Observation/$validate?profile={profile}", Fhir.Content(heartRate));
        var plain = await ValidateAsync("/fhir/Observation/$validate", Fhir.Content(heartRate));
        heartRate.Meta = new Meta { Profile = [profile] };
        var claimed = await ValidateAsync("/fhir/Observation/$validate", Fhir.Content(heartRate));

        Assert.All(conforming.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Information, i.Severity));
        Assert.Contains(conforming.Issue, i => (i.Diagnostics ?? "").Contains(profile, StringComparison.Ordinal));
        // The heart-rate profile fixes the unit to /min; the base Observation does not.
        Assert.Contains(asked.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error && (i.Details?.Text ?? "").Contains("/min", StringComparison.Ordinal));
        Assert.DoesNotContain(plain.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(claimed.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error && (i.Details?.Text ?? "").Contains("/min", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_profile_stored_in_the_hub_is_checked_from_its_differential_and_an_unknown_one_is_an_error()
    {
        var url = "https://county.example/fhir/StructureDefinition/county-patient-" + Guid.NewGuid().ToString("N")[..8];
        var profile = new StructureDefinition
        {
            Url = url,
            Name = "CountyPatient",
            Status = PublicationStatus.Active,
            FhirVersion = FHIRVersion.N4_0_1,
            Kind = StructureDefinition.StructureDefinitionKind.Resource,
            Abstract = false,
            Type = "Patient",
            BaseDefinition = "http://hl7.org/fhir/StructureDefinition/Patient",
            Derivation = StructureDefinition.TypeDerivationRule.Constraint,
            // Only a differential: the hub generates the snapshot. The county requires an identifier and the sex.
            Differential = new StructureDefinition.DifferentialComponent
            {
                Element =
                [
                    new ElementDefinition("Patient") { ElementId = "Patient" },
                    new ElementDefinition("Patient.identifier") { ElementId = "Patient.identifier", Min = 1 },
                    new ElementDefinition("Patient.gender") { ElementId = "Patient.gender", Min = 1 },
                ],
            },
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/StructureDefinition", Fhir.Content(profile))).StatusCode);
        var patient = Fhir.Patient("验", "档");
        patient.Gender = AdministrativeGender.Female;

        var asked = await ValidateAsync($"/fhir/Patient/$validate?profile={Uri.EscapeDataString(url)}", Fhir.Content(patient));
        patient.Meta = new Meta { Profile = [url] };
        var claimed = await ValidateAsync("/fhir/Patient/$validate", Fhir.Content(patient));
        patient.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", "330102199001010024"));
        var conforming = await ValidateAsync("/fhir/Patient/$validate", Fhir.Content(patient));
        var unknown = await ValidateAsync("/fhir/Patient/$validate?profile=https://county.example/fhir/StructureDefinition/nobody-wrote-this", Fhir.Content(patient));

        Assert.Contains("identifier", Assert.Single(asked.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Details!.Text, StringComparison.Ordinal);
        Assert.Contains("identifier", Assert.Single(claimed.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Details!.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(conforming.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains("nobody-wrote-this", Assert.Single(unknown.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Details!.Text, StringComparison.Ordinal);
        // What was checked names the profiles the hub knows, not the one it could not check against.
        var checkedAgainst = Assert.Single(unknown.Issue, i => i.Diagnostics?.StartsWith("Checked against", StringComparison.Ordinal) == true).Diagnostics;
        Assert.DoesNotContain("nobody-wrote-this", checkedAgainst, StringComparison.Ordinal);
        Assert.Contains(url, Assert.Single(claimed.Issue, i => i.Diagnostics?.StartsWith("Checked against", StringComparison.Ordinal) == true).Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_parameter_given_twice_is_refused()
    {
        var parameters = new Parameters();
        parameters.Add("resource", Fhir.Patient("验", "一"));
        parameters.Add("resource", Fhir.Patient("验", "二"));

        var response = await _client.PostAsync("/fhir/Patient/$validate", Fhir.Content(parameters));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("resource", Assert.Single(Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue).Expression));
    }

    [Fact]
    public async Task A_parameters_body_with_an_unknown_parameter_is_refused_and_an_empty_resource_in_it_is_validated_as_a_bare_one_is()
    {
        const string Unknown = """{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient"}},{"name":"foo","valueString":"x"}]}""";
        const string Empty = """{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient"}}]}""";

        var unknown = await _client.PostAsync("/fhir/Patient/$validate", Fhir.Raw(Unknown));
        var wrapped = await ValidateAsync("/fhir/Patient/$validate", Fhir.Raw(Empty));
        var bare = await ValidateAsync("/fhir/Patient/$validate", Fhir.Raw("""{"resourceType":"Patient"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal("foo", Assert.Single(Assert.Single((await Fhir.Read<OperationOutcome>(unknown)).Issue).Expression));
        Assert.DoesNotContain(wrapped.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Equal(bare.Issue.Select(i => i.Diagnostics), wrapped.Issue.Select(i => i.Diagnostics));
    }

    [Fact]
    public async Task An_instance_is_validated_as_its_update_and_a_stored_one_by_get_and_a_deleted_one_names_the_version_a_put_would_write()
    {
        var created = await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("验", "实例")));
        var id = (await Fhir.Read<Patient>(created)).Id;
        var other = Fhir.Patient("验", "实例");
        other.Id = "someone-else-884704";

        var mismatch = await ValidateAsync($"/fhir/Patient/{id}/$validate", Fhir.Content(other));
        var stored = await _client.GetAsync($"/fhir/Patient/{id}/$validate");
        await _client.DeleteAsync($"/fhir/Patient/{id}");
        other.Id = id;
        var afterDeletion = await ValidateAsync($"/fhir/Patient/{id}/$validate", Fhir.Content(other));
        var storedDeleted = await _client.GetAsync($"/fhir/Patient/{id}/$validate");
        var put = await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Content(other));

        Assert.Equal("id", Assert.Single(Assert.Single(mismatch.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error).Expression));
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        var storedOutcome = await Fhir.Read<OperationOutcome>(stored);
        Assert.All(storedOutcome.Issue, i => Assert.Equal(OperationOutcome.IssueSeverity.Information, i.Severity));
        Assert.Contains(storedOutcome.Issue, i => (i.Diagnostics ?? "").Contains("the next version", StringComparison.Ordinal));
        Assert.Contains(afterDeletion.Issue, i => (i.Diagnostics ?? "").Contains("version 3 (after the deletion)", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Gone, storedDeleted.StatusCode);
        Assert.Equal("3", (await Fhir.Read<Patient>(put)).Meta!.VersionId);
    }

    [Fact]
    public async Task A_resource_the_hub_would_store_with_conformance_errors_gets_both_the_errors_and_the_writes_verdict()
    {
        const string Body = """{"resourceType":"Patient","contact":[{"gender":"male"}]}""";

        var outcome = await ValidateAsync("/fhir/Patient/$validate", Fhir.Raw(Body));
        var created = await _client.PostAsync("/fhir/Patient", Fhir.Raw(Body));

        Assert.Contains(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(outcome.Issue, i => (i.Diagnostics ?? "").StartsWith("The hub would accept the resource as a new Patient", StringComparison.Ordinal));
        Assert.Contains(outcome.Issue, i => (i.Diagnostics ?? "").Contains("does not check conformance", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    private async Task<OperationOutcome> ValidateAsync(string url, HttpContent? content)
    {
        var response = await _client.PostAsync(url, content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<OperationOutcome>(response);
    }
}

public sealed class ValidateTestsOnSqlite(SqliteHub hub) : ValidateTests(hub), IClassFixture<SqliteHub>;

public sealed class ValidateTestsOnPostgres(PostgresHub hub) : ValidateTests(hub), IClassFixture<PostgresHub>;
