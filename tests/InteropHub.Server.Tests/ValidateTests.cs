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
    public async Task An_invalid_resource_gets_200_with_errors_that_say_where(string body, string where)
    {
        var outcome = await ValidateAsync("/fhir/Patient/$validate", new StringContent(body, System.Text.Encoding.UTF8, "application/fhir+json"));

        var error = Assert.Single(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Error);
        Assert.Contains(where, (error.Diagnostics ?? "") + string.Join(" ", error.Expression), StringComparison.Ordinal);
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

        Assert.Contains("the next version", Assert.Single(valid.Issue).Diagnostics, StringComparison.Ordinal);
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

        Assert.Equal(OperationOutcome.IssueSeverity.Information, Assert.Single(outcome.Issue).Severity);
        Assert.Equal(HttpStatusCode.BadRequest, search.StatusCode);
        Assert.Contains("not defined", Assert.Single((await Fhir.Read<OperationOutcome>(search)).Issue).Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/fhir/Patient/$validate?profile=http://example.org/StructureDefinition/x", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/Patient/$validate?mode=patch", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/NoSuchType/$validate", HttpStatusCode.NotFound)]
    public async Task What_cannot_be_validated_is_refused(string url, HttpStatusCode status)
    {
        var response = await _client.PostAsync(url, Fhir.Content(Fhir.Patient("验", "拒")));

        Assert.Equal(status, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
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

    private async Task<OperationOutcome> ValidateAsync(string url, HttpContent? content)
    {
        var response = await _client.PostAsync(url, content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<OperationOutcome>(response);
    }
}

public sealed class ValidateTestsOnSqlite(SqliteHub hub) : ValidateTests(hub), IClassFixture<SqliteHub>;

public sealed class ValidateTestsOnPostgres(PostgresHub hub) : ValidateTests(hub), IClassFixture<PostgresHub>;
