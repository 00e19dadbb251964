using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary>
/// PATCH (http.html#patch) with JSON Patch (RFC 6902) and FHIRPath Patch (fhirpatch.html). The FHIRPath cases
/// follow the shapes of the HL7 fhir-test-cases patch suite (primitive, nested, complex, anonymous type, lists).
/// </summary>
public abstract class PatchTests(HubFactory hub)
{
    private const string IdSystem = "urn:oid:2.16.156.10011.1.3";
    private readonly HttpClient _client = hub.CreateClient();

    // JSON Patch

    [Fact]
    public async Task Json_patch_replaces_a_primitive_and_writes_the_next_version()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", """[{"op":"replace","path":"/birthDate","value":"1991-02-03"}]""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("W/\"2\"", response.Headers.ETag!.ToString());
        var patched = await Fhir.Read<Patient>(response);
        Assert.Equal("1991-02-03", patched.BirthDate);
        Assert.Equal("2", patched.Meta!.VersionId);
        Assert.Equal("1991-02-03", (await ReadAsync(id)).BirthDate);
        var history = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history"));
        Assert.Equal(Bundle.HTTPVerb.PATCH, history.Entry[0].Request!.Method);
    }

    [Fact]
    public async Task Json_patch_add_remove_move_copy_and_test_apply_in_order()
    {
        var patient = Fhir.Patient();
        patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "0731-1111"));
        var id = await CreateAsync(patient);

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", """
            [
              {"op":"test","path":"/name/0/family","value":"张"},
              {"op":"add","path":"/name/0/given/-","value":"小"},
              {"op":"add","path":"/name/0/given/0","value":"阿"},
              {"op":"add","path":"/active","value":true},
              {"op":"remove","path":"/address"},
              {"op":"copy","from":"/telecom/0","path":"/telecom/-"},
              {"op":"replace","path":"/telecom/1/value","value":"0731-2222"},
              {"op":"move","from":"/telecom/1","path":"/telecom/0"}
            ]
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await Fhir.Read<Patient>(response);
        Assert.Equal(["阿", "三", "小"], patched.Name[0].Given);
        Assert.True(patched.Active);
        Assert.Empty(patched.Address);
        Assert.Equal(["0731-2222", "0731-1111"], patched.Telecom.Select(t => t.Value));
    }

    [Fact]
    public async Task Json_patch_whose_test_fails_is_422_and_writes_nothing()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", """
            [{"op":"replace","path":"/birthDate","value":"2000-01-01"},{"op":"test","path":"/gender","value":"female"}]
            """);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("/gender", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
        var current = await ReadAsync(id);
        Assert.Equal("1", current.Meta!.VersionId);
        Assert.Equal("1990-01-01", current.BirthDate);
    }

    [Theory]
    [InlineData("""[{"op":"remove","path":"/maritalStatus"}]""")]
    [InlineData("""[{"op":"replace","path":"/name/5/family","value":"李"}]""")]
    [InlineData("""[{"op":"add","path":"/contact/0/gender","value":"male"}]""")]
    public async Task Json_patch_on_a_path_that_does_not_exist_is_422(string document)
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", document);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
    }

    [Theory]
    [InlineData("""{"op":"replace","path":"/birthDate","value":"2000-01-01"}""", "array")]
    [InlineData("""[{"op":"rename","path":"/birthDate"}]""", "rename")]
    [InlineData("""[{"op":"replace","path":"birthDate","value":"2000-01-01"}]""", "JSON Pointer")]
    [InlineData("""[{"op":"add","path":"/active"}]""", "value")]
    [InlineData("""[{"op":"move","from":"/name/0","path":"/name/0/given"}]""", "own child")]
    [InlineData("""[{"op":"replace","path":"/birthDate","value":""", "JSON")]
    public async Task A_malformed_json_patch_document_is_400_saying_what_is_wrong(string document, string expected)
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", document);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
    }

    [Theory]
    [InlineData("""[{"op":"replace","path":"/gender","value":"robot"}]""", "Patient.gender")]
    [InlineData("""[{"op":"add","path":"/nickname","value":"三儿"}]""", "Patient.nickname")]
    [InlineData("""[{"op":"replace","path":"/birthDate","value":"yesterday"}]""", "Patient.birthDate")]
    public async Task Json_patch_that_yields_an_invalid_resource_is_422_naming_the_element(string document, string element)
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", document);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Contains(outcome.Issue, i => i.Expression.Any(e => e!.StartsWith(element, StringComparison.Ordinal)));
        // No line or position of the hub's own serialisation of the result, which the client never saw.
        Assert.All(outcome.Issue, i => Assert.DoesNotContain("position", i.Diagnostics ?? "", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("1", (await ReadAsync(id)).Meta!.VersionId);
    }

    [Fact]
    public async Task Json_patch_that_misaligns_a_repeating_primitive_with_its_extensions_is_422_and_a_body_so_written_is_400()
    {
        // given[1] ("b") carries an extension in _given[1]; inserting a value before it without its placeholder in
        // _given would hand that extension to "a".
        const string patient = """
            {"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"extension":[{"url":"http://example.org/only-b","valueString":"b"}]}]}]}
            """;
        var id = (await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Raw(patient)))).Id;

        var patched = await JsonPatchAsync($"/fhir/Patient/{id}", """[{"op":"add","path":"/name/0/given/0","value":"new"}]""");
        var put = await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Raw($$"""
            {"resourceType":"Patient","id":"{{id}}","name":[{"given":["b"],"_given":[null,{"extension":[{"url":"http://example.org/only-b","valueString":"b"}]}]}]}
            """));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, patched.StatusCode);
        Assert.Equal("Patient.name[0].given", (await Fhir.Read<OperationOutcome>(patched)).Issue[0].Expression.Single());
        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        Assert.Contains("_given", (await Fhir.Read<OperationOutcome>(put)).Issue[0].Diagnostics, StringComparison.Ordinal);
        var stored = await ReadAsync(id!);
        Assert.Equal(("1", "http://example.org/only-b"), (stored.Meta!.VersionId, stored.Name[0].GivenElement[1].Extension.Single().Url));
    }

    [Fact]
    public async Task Json_patch_replacing_an_absent_element_says_to_add_it()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", """[{"op":"replace","path":"/multipleBirthBoolean","value":true}]""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("use 'add'", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"op":"replace","path":"/id","value":"someone-else"}]""", "id")]
    [InlineData("""[{"op":"remove","path":"/id"}]""", "id")]
    [InlineData("""[{"op":"replace","path":"/resourceType","value":"Practitioner"}]""", "resourceType")]
    public async Task Json_patch_may_not_change_the_id_or_the_resource_type(string document, string element)
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await JsonPatchAsync($"/fhir/Patient/{id}", document);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(element, (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single());
        Assert.Equal("1", (await ReadAsync(id)).Meta!.VersionId);
    }

    [Fact]
    public async Task Patch_honours_if_match()
    {
        var id = await CreateAsync(Fhir.Patient());
        const string document = """[{"op":"replace","path":"/birthDate","value":"1991-01-01"}]""";

        var stale = await JsonPatchAsync($"/fhir/Patient/{id}", document, ifMatch: "W/\"2\"");
        var current = await JsonPatchAsync($"/fhir/Patient/{id}", document, ifMatch: "W/\"1\"");

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
    }

    [Fact]
    public async Task Patch_of_an_unknown_resource_is_404_and_of_a_deleted_one_410()
    {
        var id = await CreateAsync(Fhir.Patient());
        await _client.DeleteAsync($"/fhir/Patient/{id}");
        const string document = """[{"op":"replace","path":"/birthDate","value":"1991-01-01"}]""";

        Assert.Equal(HttpStatusCode.NotFound, (await JsonPatchAsync("/fhir/Patient/never-was", document)).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await JsonPatchAsync($"/fhir/Patient/{id}", document)).StatusCode);
    }

    [Fact]
    public async Task Conditional_patch_changes_the_single_match_and_is_404_without_one_and_412_with_several()
    {
        var number = NewNumber();
        var id = await CreateAsync(Fhir.Patient(identifier: number));
        var twice = NewNumber();
        await CreateAsync(Fhir.Patient(identifier: twice));
        await CreateAsync(Fhir.Patient(identifier: twice));
        const string document = """[{"op":"add","path":"/active","value":false}]""";

        var one = await JsonPatchAsync($"/fhir/Patient?identifier={IdSystem}|{number}", document);
        var none = await JsonPatchAsync($"/fhir/Patient?identifier={IdSystem}|{NewNumber()}", document);
        var several = await JsonPatchAsync($"/fhir/Patient?identifier={IdSystem}|{twice}", document);

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(id, (await Fhir.Read<Patient>(one)).Id);
        Assert.False((await ReadAsync(id)).Active);
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, several.StatusCode);
    }

    [Fact]
    public async Task Patch_with_a_body_that_is_no_patch_is_400_and_with_an_unknown_media_type_415()
    {
        var id = await CreateAsync(Fhir.Patient());

        var resource = await _client.PatchAsync($"/fhir/Patient/{id}", Fhir.Content(Fhir.Patient()));
        var text = await _client.PatchAsync($"/fhir/Patient/{id}", Fhir.Raw("replace birthDate", "text/plain"));

        Assert.Equal(HttpStatusCode.BadRequest, resource.StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, text.StatusCode);
    }

    [Fact]
    public async Task A_patch_in_a_media_type_that_is_no_patch_format_is_415_naming_json_patch_and_fhirpath_patch()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await _client.PatchAsync($"/fhir/Patient/{id}", Fhir.Raw("replace birthDate", "text/plain"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/json-patch+json, application/fhir+json, application/fhir+xml", response.Headers.GetValues("Accept-Patch").Single());
        var diagnostics = (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics;
        Assert.Contains("application/json-patch+json (JSON Patch)", diagnostics, StringComparison.Ordinal);
        Assert.Contains("FHIRPath Patch", diagnostics, StringComparison.Ordinal);
    }

    // FHIRPath Patch

    [Fact]
    public async Task Fhirpath_patch_replaces_adds_and_deletes_primitives_also_nested_ones()
    {
        var patient = Fhir.Patient();
        patient.Contact.Add(new Patient.ContactComponent { Name = new HumanName { Text = "a name" }, Gender = AdministrativeGender.Male });
        var id = await CreateAsync(patient);

        var response = await FhirPathPatchAsync(id,
            Operation("replace", "Patient.birthDate", value: new Date("1930-01-01")),
            Operation("replace", "Patient.contact[0].gender", value: new Code("female")),
            Operation("delete", "Patient.contact[0].name.text"),
            Operation("add", "Patient", name: "active", value: new FhirBoolean(true)),
            Operation("delete", "Patient.gender"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await Fhir.Read<Patient>(response);
        Assert.Equal("1930-01-01", patched.BirthDate);
        Assert.Equal(AdministrativeGender.Female, patched.Contact[0].Gender);
        Assert.Null(patched.Contact[0].Name?.Text);
        Assert.True(patched.Active);
        Assert.Null(patched.Gender);
    }

    [Fact]
    public async Task Fhirpath_patch_takes_a_choice_part_by_its_json_name_and_says_how_to_name_a_choice_in_a_path()
    {
        var id = await CreateAsync(Fhir.Patient());
        var extension = new Parameters.ParameterComponent
        {
            Name = "value",
            Part = [new() { Name = "url", Value = new FhirUri("http://example.org/weight-at-birth") }, new() { Name = "valueQuantity", Value = new Quantity(3.2m, "kg") }],
        };

        var added = await FhirPathPatchAsync(id, Operation("add", "Patient", name: "extension", valuePart: extension));
        var typedPath = await FhirPathPatchAsync(id, Operation("replace", "Patient.extension[0].valueQuantity.value", value: new FhirDecimal(3.3m)));

        Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        Assert.Equal(3.2m, ((Quantity)(await Fhir.Read<Patient>(added)).Extension.Single().Value!).Value);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, typedPath.StatusCode);
        Assert.Contains("value.ofType(Quantity)", (await Fhir.Read<OperationOutcome>(typedPath)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fhirpath_patch_adds_replaces_and_deletes_complex_values_and_anonymous_types()
    {
        var id = await CreateAsync(Fhir.Patient());
        var contact = new Parameters.ParameterComponent
        {
            Name = "value",
            Part = [new() { Name = "name", Value = new HumanName { Text = "李四" } }, new() { Name = "gender", Value = new Code("male") }],
        };

        var response = await FhirPathPatchAsync(id,
            Operation("add", "Patient", name: "maritalStatus", value: new CodeableConcept { Text = "married" }),
            Operation("replace", "Patient.maritalStatus", value: new CodeableConcept { Text = "not married" }),
            Operation("add", "Patient", name: "contact", valuePart: contact),
            Operation("delete", "Patient.address[0]"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await Fhir.Read<Patient>(response);
        Assert.Equal("not married", patched.MaritalStatus!.Text);
        Assert.Equal("李四", patched.Contact.Single().Name!.Text);
        Assert.Equal(AdministrativeGender.Male, patched.Contact.Single().Gender);
        Assert.Empty(patched.Address);
    }

    [Fact]
    public async Task Fhirpath_patch_adds_inserts_moves_and_deletes_list_items()
    {
        var patient = new Patient { Identifier = [.. Enumerable.Range(1, 4).Select(i => new Identifier("http://example.org", $"value {i}"))] };
        var id = await CreateAsync(patient);

        var response = await FhirPathPatchAsync(id,
            Operation("add", "Patient", name: "identifier", value: new Identifier("http://example.org", "value 5")),
            Operation("insert", "Patient.identifier", index: 0, value: new Identifier("http://example.org", "value 0")),
            Operation("move", "Patient.identifier", source: 4, destination: 1),
            Operation("delete", "Patient.identifier.where(value = 'value 2')"),
            Operation("insert", "Patient.name.given", index: 0, value: new FhirString("never")));

        // The last operation inserts into a list that does not exist: it needs a single owner, and there is none.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);

        response = await FhirPathPatchAsync(id,
            Operation("add", "Patient", name: "identifier", value: new Identifier("http://example.org", "value 5")),
            Operation("insert", "Patient.identifier", index: 0, value: new Identifier("http://example.org", "value 0")),
            Operation("move", "Patient.identifier", source: 4, destination: 1),
            Operation("delete", "Patient.identifier.where(value = 'value 2')"),
            Operation("insert", "Patient.telecom", index: 0, value: new ContactPoint { Value = "0731-1111" }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await Fhir.Read<Patient>(response);
        Assert.Equal(["value 0", "value 4", "value 1", "value 3", "value 5"], patched.Identifier.Select(i => i.Value));
        Assert.Equal("0731-1111", patched.Telecom.Single().Value);
    }

    [Fact]
    public async Task Fhirpath_patch_delete_of_nothing_is_not_an_error()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await FhirPathPatchAsync(id, Operation("delete", "Patient.maritalStatus"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Fhirpath_patch_in_xml_is_accepted()
    {
        var id = await CreateAsync(Fhir.Patient());
        var patch = new Parameters { Parameter = [Operation("replace", "Patient.birthDate", value: new Date("1930-01-01"))] };

        var response = await _client.PatchAsync($"/fhir/Patient/{id}", Fhir.XmlContent(patch));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1930-01-01", (await ReadAsync(id)).BirthDate);
    }

    [Theory]
    [InlineData("rename", "Patient.birthDate", "rename")]
    [InlineData("replace", "Patient.birthDate..", "FHIRPath")]
    [InlineData("add", "Patient", "name")]
    public async Task A_malformed_fhirpath_patch_is_400_saying_what_is_wrong(string type, string path, string expected)
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await FhirPathPatchAsync(id, Operation(type, path, value: new Date("1930-01-01")));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue[0];
        Assert.Contains(expected, issue.Diagnostics);
        Assert.Equal("Parameters.parameter[0]", issue.Expression.Single());
    }

    [Theory]
    [InlineData("%foo.gender", "foo")]
    [InlineData("Patient.name.single()", "cannot be evaluated")]
    [InlineData("Patient.telecom.value.substring('a')", "cannot be evaluated")]
    public async Task A_fhirpath_patch_path_that_fails_when_run_is_400_naming_it_and_writes_nothing(string path, string expected)
    {
        var patient = Fhir.Patient();
        patient.Name.Add(new HumanName { Family = "王" });
        patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "0731-1111"));
        var id = await CreateAsync(patient);

        var response = await FhirPathPatchAsync(id, Operation("replace", path, value: new FhirString("x")));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue[0];
        Assert.Contains(expected, issue.Diagnostics);
        Assert.Equal("Parameters.parameter[0]", issue.Expression.Single());
        Assert.Equal("1", (await ReadAsync(id)).Meta!.VersionId);
    }

    [Fact]
    public async Task Fhirpath_patch_paths_may_start_at_the_resource_variables()
    {
        var id = await CreateAsync(Fhir.Patient());

        var response = await FhirPathPatchAsync(id,
            Operation("replace", "%resource.birthDate", value: new Date("1931-01-01")),
            Operation("add", "%rootResource", name: "active", value: new FhirBoolean(true)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await ReadAsync(id);
        Assert.Equal("1931-01-01", patched.BirthDate);
        Assert.True(patched.Active);
    }

    [Fact]
    public async Task Fhirpath_patch_errors_while_applying_are_422_and_write_nothing()
    {
        var id = await CreateAsync(Fhir.Patient());

        var cases = new[]
        {
            Operation("replace", "Patient.maritalStatus", value: new CodeableConcept { Text = "x" }),
            Operation("replace", "Patient.birthDate", value: new HumanName { Text = "x" }),
            Operation("add", "Patient", name: "gender", value: new Code("female")),
            Operation("add", "Patient", name: "nickname", value: new FhirString("x")),
            Operation("replace", "Patient.name.given | Patient.name.family", value: new FhirString("x")),
            Operation("move", "Patient.address", source: 0, destination: 3),
            Operation("delete", "Patient"),
            Operation("replace", "Patient.gender", value: new Code("robot")),
        };
        foreach (var operation in cases)
        {
            var response = await FhirPathPatchAsync(id, operation);
            Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity,
                $"{operation.Part[0].Value} {operation.Part[1].Value}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        Assert.Equal("1", (await ReadAsync(id)).Meta!.VersionId);
    }

    private async Task<string> CreateAsync(Patient patient)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await Fhir.Read<Patient>(response)).Id!;
    }

    private async Task<Patient> ReadAsync(string id) => await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}"));

    private Task<HttpResponseMessage> JsonPatchAsync(string url, string document, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Fhir.Raw(document, "application/json-patch+json") };
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return _client.SendAsync(request);
    }

    private Task<HttpResponseMessage> FhirPathPatchAsync(string id, params Parameters.ParameterComponent[] operations) =>
        _client.PatchAsync($"/fhir/Patient/{id}", Fhir.Content(new Parameters { Parameter = [.. operations] }));

    internal static Parameters.ParameterComponent Operation(string type, string path, string? name = null, DataType? value = null,
        int? index = null, int? source = null, int? destination = null, Parameters.ParameterComponent? valuePart = null)
    {
        var operation = new Parameters.ParameterComponent { Name = "operation" };
        operation.Part.Add(new() { Name = "type", Value = new Code(type) });
        operation.Part.Add(new() { Name = "path", Value = new FhirString(path) });
        if (name is not null)
        {
            operation.Part.Add(new() { Name = "name", Value = new FhirString(name) });
        }

        if (value is not null)
        {
            operation.Part.Add(new() { Name = "value", Value = value });
        }

        if (valuePart is not null)
        {
            operation.Part.Add(valuePart);
        }

        foreach (var (partName, number) in new[] { ("index", index), ("source", source), ("destination", destination) })
        {
            if (number is { } n)
            {
                operation.Part.Add(new() { Name = partName, Value = new Integer(n) });
            }
        }

        return operation;
    }

    private static string NewNumber() => "369921" + Random.Shared.NextInt64(100000000000, 999999999999).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public sealed class PatchTestsOnSqlite(SqliteHub hub) : PatchTests(hub), IClassFixture<SqliteHub>;

public sealed class PatchTestsOnPostgres(PostgresHub hub) : PatchTests(hub), IClassFixture<PostgresHub>;
