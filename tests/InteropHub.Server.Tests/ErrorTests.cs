using System.Net;
using System.Text;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class ErrorTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Malformed_json_is_400_with_line_and_position()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\n  \"name\": [ {\"family\": } ]}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var diagnostics = (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics;
        Assert.Contains("line 2", diagnostics);
        Assert.Contains("position", diagnostics);
    }

    [Theory]
    [InlineData("GET", "/fhir/Patient/$foo", "$foo", "Patient type")]
    [InlineData("GET", "/fhir/Patient/p1/$foo", "$foo", "Patient instance")]
    [InlineData("GET", "/fhir/$validate", "$validate", "system level")]
    [InlineData("GET", "/fhir/Patient/p1/$meta-add", "$meta-add", "Patient instance")]
    [InlineData("DELETE", "/fhir/Patient/$everything", "$everything", "Patient type")]
    [InlineData("POST", "/fhir/Patient/p1/$meta-add", "$meta-add", "Patient instance")]
    [InlineData("POST", "/fhir/Patient/$merge", "$merge", "Patient type")]
    [InlineData("PUT", "/fhir/Patient/p1/$everything", "$everything", "Patient instance")]
    [InlineData("GET", "/fhir/ConceptMap/$Translate?system=urn:interophub:cs:qxvac&code=0101", "$Translate", "ConceptMap type")]
    [InlineData("POST", "/fhir/Patient/p1/$Everything", "$Everything", "Patient instance")]
    [InlineData("GET", "/fhir/$EXPORT", "$EXPORT", "system level")]
    public async Task An_operation_the_hub_does_not_have_is_400_naming_it_not_an_unknown_type_or_id(string method, string url, string operation, string level)
    {
        var response = await _client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
        Assert.Equal(OperationOutcome.IssueType.NotSupported, issue.Code);
        Assert.Contains($"'{operation}' is not supported at", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Contains(level, issue.Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"resourceType\":\"Patient\"}", "application/fhir+json")]
    [InlineData("<Patient xmlns=\"http://hl7.org/fhir\"/>", "application/fhir+xml")]
    public async Task A_resource_with_no_element_but_its_type_is_created_and_an_empty_element_inside_it_is_still_400(string body, string mediaType)
    {
        var created = await _client.PostAsync("/fhir/Patient", new StringContent(body, Encoding.UTF8, mediaType));
        var emptyName = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\"name\":[{}]}"));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, emptyName.StatusCode);
    }

    [Fact]
    public async Task A_resource_with_no_element_but_its_type_is_a_valid_bundle_entry_and_an_empty_entry_element_is_still_400()
    {
        const string Batch = """
            {"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}
            """;
        const string EmptyRequest = """
            {"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"},"request":{}}]}
            """;

        var batch = await _client.PostAsync("/fhir", Fhir.Raw(Batch));
        var emptyRequest = await _client.PostAsync("/fhir", Fhir.Raw(EmptyRequest));

        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        Assert.Equal("201 Created", (await Fhir.Read<Bundle>(batch)).Entry.Single().Response!.Status);
        Assert.Equal(HttpStatusCode.OK, emptyRequest.StatusCode);
        Assert.Equal("400 Bad Request", (await Fhir.Read<Bundle>(emptyRequest)).Entry.Single().Response!.Status);
    }

    [Theory]
    [InlineData("POST", "/fhir/Patient")]
    [InlineData("PUT", "/fhir/Patient/typed-1")]
    [InlineData("PUT", "/fhir/Patient?identifier=urn:test|typed-1")]
    public async Task A_body_of_another_type_than_the_url_is_400_saying_so_before_what_that_type_would_need(string method, string url)
    {
        var response = await _client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url)
        {
            Content = Fhir.Raw("{\"resourceType\":\"Observation\",\"id\":\"typed-1\"}"),
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue.Single();
        Assert.Equal("The body is a Observation but the request URL is for Patient.", issue.Diagnostics);
    }

    [Fact]
    public async Task A_conditional_reference_outside_a_transaction_is_400_naming_where_it_is()
    {
        var observation = new Observation
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "8867-4"),
            Subject = new ResourceReference("Patient?identifier=urn:oid:2.16.156.10011.1.3|330102199001010024"),
        };
        var update = new Observation
        {
            Id = "conditional-reference-1",
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "8867-4"),
            Performer = [new ResourceReference("Organization/o1"), new ResourceReference("Practitioner?identifier=x|1")],
        };

        var created = await _client.PostAsync("/fhir/Observation", Fhir.Content(observation));
        var updated = await _client.PutAsync("/fhir/Observation/conditional-reference-1", Fhir.Content(update));

        Assert.Equal((HttpStatusCode.BadRequest, HttpStatusCode.BadRequest), (created.StatusCode, updated.StatusCode));
        Assert.Equal("Observation.subject", Assert.Single((await Fhir.Read<OperationOutcome>(created)).Issue).Expression.Single());
        Assert.Equal("Observation.performer[1]", Assert.Single((await Fhir.Read<OperationOutcome>(updated)).Issue).Expression.Single());
    }

    [Fact]
    public async Task An_unknown_element_is_400_naming_the_element()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\n \"nmae\":[{\"family\":\"张\"}]}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issues = (await Fhir.Read<OperationOutcome>(response)).Issue;
        Assert.Contains(issues, i => i.Diagnostics!.Contains("unknown element 'nmae'", StringComparison.Ordinal)
            && i.Expression.Single()!.StartsWith("Patient.nmae", StringComparison.Ordinal)
            && i.Location.Single() == "line 2, position 9");
    }

    [Fact]
    public async Task An_invalid_value_is_400_naming_the_element()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\"birthDate\":\"1990-13-01\"}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Patient.birthDate", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single());
    }

    [Fact]
    public async Task A_missing_mandatory_element_is_400()
    {
        var response = await _client.PostAsync("/fhir/Observation", Fhir.Raw("{\"resourceType\":\"Observation\",\"status\":\"final\"}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains((await Fhir.Read<OperationOutcome>(response)).Issue, i => i.Diagnostics!.Contains("code", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Malformed_xml_is_400_with_its_position()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw("<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\">", Fhir.XmlType));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Line 1", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task Xml_with_a_dtd_is_refused()
    {
        var body = "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&x;\"/></Patient>";

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw(body, Fhir.XmlType));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_body_over_the_configured_limit_is_413()
    {
        var patient = Fhir.Patient();
        patient.Name[0].Text = new string('长', (int)HubFactory.MaxBodyBytes / 2);

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("MaxBodyBytes", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task An_unknown_resource_type_is_404()
    {
        var response = await _client.GetAsync("/fhir/Patientt/1");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Patientt", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Fact]
    public async Task An_unmapped_path_and_a_wrong_method_answer_with_outcomes()
    {
        var notFound = await _client.GetAsync("/fhir/Patient/1/_history/1/extra");
        var notAllowed = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient/1"));

        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        await Fhir.Read<OperationOutcome>(notFound);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, notAllowed.StatusCode);
        await Fhir.Read<OperationOutcome>(notAllowed);
    }

    [Theory]
    [InlineData("POST", "/fhir/metadata")]
    [InlineData("DELETE", "/fhir/metadata")]
    [InlineData("PUT", "/fhir/_history")]
    public async Task Another_method_on_the_capability_statement_or_system_history_is_405_allowing_get(string method, string url)
    {
        var response = await _client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = Fhir.Raw("""{"resourceType":"Patient"}""") });

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(["GET"], response.Content.Headers.Allow);
        Assert.Contains($"{method} is not allowed", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("{\"resourceType\":5}")]
    [InlineData("{\"resourceType\":\"Nope\"}")]
    [InlineData("{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}")]
    [InlineData("{\"resourceType\":\"Patient\",\"active\":\"yes\"}")]
    [InlineData("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Patient\",\"contained\":[]}]}")]
    [InlineData("{\"resourceType\":\"Patient\"")]
    [InlineData("\uFEFF{\"resourceType\":\"Patient\",\"active\":true}")]
    public async Task Hostile_json_bodies_get_a_4xx_outcome_never_a_500(string body)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw(body));

        Assert.InRange((int)response.StatusCode, 200, 499);
        if ((int)response.StatusCode >= 400)
        {
            await Fhir.Read<OperationOutcome>(response);
        }
    }

    [Theory]
    [InlineData("POST", "/fhir/Patient", """{"resourceType":"Patient"}{"resourceType":"Observation"}""")]
    [InlineData("POST", "/fhir/Patient", """{"resourceType":"Patient","active":true} ]]]""")]
    [InlineData("PUT", "/fhir/Patient/trailing-1", """{"resourceType":"Patient","id":"trailing-1"} {}""")]
    [InlineData("POST", "/fhir", """{"resourceType":"Bundle","type":"transaction"}{"resourceType":"Bundle","type":"batch"}""")]
    [InlineData("PATCH", "/fhir/Patient/trailing-1", """{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.active"}]}]}]""")]
    public async Task A_json_body_with_content_after_the_resource_is_400_rather_than_read_in_part(string method, string url, string body)
    {
        var response = await _client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = Fhir.Raw(body) });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("content after the resource", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_reports_content_after_the_resource_and_whitespace_after_a_resource_is_fine()
    {
        var validated = await _client.PostAsync("/fhir/Patient/$validate", Fhir.Raw("""{"resourceType":"Patient","active":true}{"resourceType":"Patient"}"""));
        var created = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\"active\":true} \r\n\t \n"));

        Assert.Contains((await Fhir.Read<OperationOutcome>(validated)).Issue,
            i => i.Severity == OperationOutcome.IssueSeverity.Error && i.Diagnostics!.Contains("content after the resource", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    [Fact]
    public async Task A_refused_value_is_quoted_in_the_outcome_cut_to_200_characters_with_its_length()
    {
        var value = new string('y', 100_000);

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw($$"""{"resourceType":"Patient","gender":"{{value}}"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.InRange(response.Content.Headers.ContentLength!.Value, 1, 2_000);
        var diagnostics = (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics;
        Assert.Contains($"'{value[..200]}…' (100000 characters)", diagnostics, StringComparison.Ordinal);
        Assert.Contains("Patient.gender", diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deeply_nested_json_is_refused_cleanly()
    {
        var body = "{\"resourceType\":\"Patient\",\"extension\":" + string.Concat(Enumerable.Repeat("[{\"url\":\"x\",\"extension\":", 300)) + "[]" + string.Concat(Enumerable.Repeat("}]", 300)) + "}";

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw(body));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Invalid_utf8_is_refused_cleanly()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"X\"}]}");
        bytes[bytes.Length - 6] = 0xC3;
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(Fhir.JsonType);

        var response = await _client.PostAsync("/fhir/Patient", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task An_unsupported_search_parameter_is_400_naming_it()
    {
        var response = await _client.GetAsync("/fhir/Patient?nonsense=1");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("nonsense", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single());
    }
}

public sealed class ErrorTestsOnSqlite(SqliteHub hub) : ErrorTests(hub), IClassFixture<SqliteHub>;

public sealed class ErrorTestsOnPostgres(PostgresHub hub) : ErrorTests(hub), IClassFixture<PostgresHub>;
