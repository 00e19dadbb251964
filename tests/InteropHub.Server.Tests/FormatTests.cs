using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Hosting;

namespace InteropHub.Server.Tests;

public abstract class FormatTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Bundles_without_entries_have_no_empty_entry_array()
    {
        var searchset = await _client.GetStringAsync("/fhir/Patient?identifier=urn:test|nobody-has-this");
        var history = await _client.GetStringAsync("/fhir/Patient/_history?_since=2999-01-01T00:00:00Z");
        var transaction = await (await _client.PostAsync("/fhir", Fhir.Content(new Bundle { Type = Bundle.BundleType.Transaction }))).Content.ReadAsStringAsync();

        Assert.All(new[] { searchset, history, transaction }, json =>
        {
            Assert.Contains("\"resourceType\":\"Bundle\"", json, StringComparison.Ordinal);
            Assert.DoesNotContain("\"entry\"", json, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Chinese_names_and_addresses_round_trip_byte_exact_in_json()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("欧阳", "娜娜")));
        var id = (await Fhir.Read<Patient>(response)).Id;

        var bytes = await (await _client.GetAsync($"/fhir/Patient/{id}")).Content.ReadAsByteArrayAsync();

        var text = Encoding.UTF8.GetString(bytes);
        Assert.Contains("\"family\":\"欧阳\"", text);
        Assert.Contains("\"given\":[\"娜娜\"]", text);
        Assert.Contains("\"line\":[\"白沙镇沙坪村3组\"]", text);
        Assert.DoesNotContain("\\u", text);
    }

    [Fact]
    public async Task Xml_bodies_are_accepted_and_xml_is_returned_with_chinese_text_intact()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.XmlContent(Fhir.Patient("赵", "建华")) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(Fhir.XmlType));

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Fhir.XmlType, response.Content.Headers.ContentType?.MediaType);
        var xml = await response.Content.ReadAsStringAsync();
        Assert.Contains("<family value=\"赵\" />", xml);
        Assert.Contains("<given value=\"建华\" />", xml);
        var id = (await Fhir.Read<Patient>(response)).Id;
        var json = await _client.GetStringAsync($"/fhir/Patient/{id}");
        Assert.Contains("\"family\":\"赵\"", json);
    }

    [Fact]
    public async Task Without_an_accept_header_an_xml_body_is_answered_in_xml()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.XmlContent(Fhir.Patient("钱", "小梅")));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Fhir.XmlType, response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<Patient xmlns=\"http://hl7.org/fhir\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("application/fhir+json; fhirVersion=4.0", HttpStatusCode.OK)]
    [InlineData("application/fhir+json; fhirVersion=4.0.1", HttpStatusCode.OK)]
    [InlineData("application/fhir+json; fhirVersion=3.0", HttpStatusCode.NotAcceptable)]
    [InlineData("application/fhir+xml; fhirVersion=5.0, application/fhir+json; q=0.5", HttpStatusCode.OK)]
    public async Task Accept_may_name_the_fhir_version_and_only_r4_is_served(string accept, HttpStatusCode expected)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");

        request.Headers.TryAddWithoutValidation("Accept", accept);

        var response = await _client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
        var outcome = await response.Content.ReadAsStringAsync();
        Assert.Equal(Fhir.JsonType, response.Content.Headers.ContentType?.MediaType);
        if (expected == HttpStatusCode.NotAcceptable)
        {
            Assert.Contains("fhirVersion=4.0", outcome, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_body_of_another_fhir_version_is_415()
    {
        var body = new StringContent("{\"resourceType\":\"Patient\"}");
        body.Headers.Remove("Content-Type");
        body.Headers.TryAddWithoutValidation("Content-Type", "application/fhir+json; fhirVersion=5.0");

        var response = await _client.PostAsync("/fhir/Patient", body);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("R4", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_configured_origins_no_browser_app_elsewhere_may_read_the_api()
    {
        await using var closed = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Cors:Origins:0", ""));
        var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
        request.Headers.Add("Origin", "https://portal.example.cn");

        var response = await closed.CreateClient().SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Browser_apps_on_other_origins_may_call_the_api_and_read_its_headers()
    {
        var preflight = new HttpRequestMessage(HttpMethod.Options, "/fhir/Patient/any");
        preflight.Headers.Add("Origin", "https://portal.example.cn");
        preflight.Headers.Add("Access-Control-Request-Method", "PUT");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type,if-match");
        var read = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        read.Headers.Add("Origin", "https://portal.example.cn");

        var allowed = await _client.SendAsync(preflight);
        var created = await _client.SendAsync(read);

        Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        Assert.Equal("*", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("PUT", allowed.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("*", created.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var exposed = created.Headers.GetValues("Access-Control-Expose-Headers").Single();
        Assert.Contains("Location", exposed, StringComparison.Ordinal);
        Assert.Contains("ETag", exposed, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("_format=xml", Fhir.XmlType)]
    [InlineData("_format=application/fhir%2Bxml", Fhir.XmlType)]
    [InlineData("_format=application/fhir+xml", Fhir.XmlType)]
    [InlineData("_format=application/fhir+json", Fhir.JsonType)]
    [InlineData("_format=json", Fhir.JsonType)]
    [InlineData("_format=application/json", "application/json")]
    [InlineData("_format=application/xml", "application/xml")]
    [InlineData("_format=application%2Ffhir%2Bjson%3BfhirVersion%3D4.0", Fhir.JsonType)]
    [InlineData("_format=application/fhir%2Bxml;%20fhirVersion=4.0.1", Fhir.XmlType)]
    public async Task The_format_parameter_chooses_the_representation(string query, string mediaType)
    {
        var response = await _client.GetAsync($"/fhir/metadata?{query}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        await Fhir.Read<CapabilityStatement>(response);
    }

    [Fact]
    public async Task Pretty_output_is_indented_and_means_the_same()
    {
        var compact = await _client.GetStringAsync("/fhir/metadata");
        var pretty = await _client.GetStringAsync("/fhir/metadata?_pretty=true");

        Assert.DoesNotContain("\n", compact);
        Assert.Contains("\n  \"resourceType\"", pretty);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(compact), System.Text.Json.Nodes.JsonNode.Parse(pretty)));
    }

    [Fact]
    public async Task The_format_parameter_may_name_the_fhir_version_and_text_wildcard_is_xml()
    {
        var other = await _client.GetAsync($"/fhir/metadata?_format={Uri.EscapeDataString("application/fhir+json;fhirVersion=3.0")}");
        var text = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
        text.Headers.TryAddWithoutValidation("Accept", "text/*");

        Assert.Equal(HttpStatusCode.NotAcceptable, other.StatusCode);
        Assert.Contains("fhirVersion=4.0", await other.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("text/xml", (await _client.SendAsync(text)).Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task An_accept_header_the_server_cannot_serve_is_406()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotAcceptable, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/fhir+json; charset=iso-8859-1")]
    public async Task A_body_in_an_unsupported_media_type_is_415(string contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("{\"resourceType\":\"Patient\"}"));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);

        var response = await _client.PostAsync("/fhir/Patient", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Theory]
    [InlineData("GBK")]
    [InlineData("ISO-8859-1")]
    [InlineData("UTF-16")]
    public async Task An_xml_body_declaring_an_encoding_other_than_utf8_is_415_naming_it_as_a_charset_would_be(string encoding)
    {
        var body = System.Text.Encoding.UTF8.GetBytes($"<?xml version=\"1.0\" encoding=\"{encoding}\"?><Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"term25\"/></name></Patient>");
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", Fhir.XmlType);

        var declared = await _client.PostAsync("/fhir/Patient", content);
        var utf8 = await _client.PostAsync("/fhir/Patient", Fhir.Raw(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"term25\"/></name></Patient>", Fhir.XmlType));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, declared.StatusCode);
        Assert.Contains($"'{encoding}'", (await Fhir.Read<OperationOutcome>(declared)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, utf8.StatusCode);
    }

    [Fact]
    public async Task A_body_without_content_type_is_415()
    {
        var response = await _client.PostAsync("/fhir/Patient", new ByteArrayContent(Encoding.UTF8.GetBytes("{}")));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task A_binary_posted_as_its_own_content_is_stored_as_a_binary_and_read_back_as_that_content()
    {
        byte[] pdf = [0x25, 0x50, 0x44, 0x46, 0x2D, 0x31, 0x2E, 0x37, 0x0A, 0x00, 0xFF, 0xFE, 0x80, 0x0D, 0x0A];
        var content = new ByteArrayContent(pdf);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/pdf");
        var post = new HttpRequestMessage(HttpMethod.Post, "/fhir/Binary") { Content = content };
        post.Headers.Add("X-Security-Context", "Patient/binary-native-884701");

        var created = await _client.SendAsync(post);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var binary = await Fhir.Read<Binary>(created);
        Assert.Equal("application/pdf", binary.ContentType);
        Assert.Equal(pdf, binary.Data);
        Assert.Equal("Patient/binary-native-884701", binary.SecurityContext?.Reference);

        var native = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Binary/{binary.Id}");
        native.Headers.Accept.ParseAdd("application/pdf, */*;q=0.8");
        var read = await _client.SendAsync(native);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("application/pdf", read.Content.Headers.ContentType?.MediaType);
        Assert.Equal(pdf, await read.Content.ReadAsByteArrayAsync());
        Assert.Equal("W/\"1\"", read.Headers.ETag?.ToString());
        Assert.Equal("Patient/binary-native-884701", read.Headers.GetValues("X-Security-Context").Single());

        // A client asking for FHIR (or asking nothing, or naming _format) gets the Binary resource.
        var asFhir = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Binary/{binary.Id}");
        asFhir.Headers.Accept.ParseAdd("application/fhir+json");
        Assert.Equal(pdf, (await Fhir.Read<Binary>(await _client.SendAsync(asFhir))).Data);
        Assert.Equal(pdf, (await Fhir.Read<Binary>(await _client.GetAsync($"/fhir/Binary/{binary.Id}"))).Data);
        var formatted = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Binary/{binary.Id}?_format=json");
        formatted.Headers.Accept.ParseAdd("*/*");
        Assert.Equal("application/pdf", (await Fhir.Read<Binary>(await _client.SendAsync(formatted))).ContentType);
    }

    [Fact]
    public async Task A_binary_updated_with_its_own_content_keeps_its_id_and_each_version_reads_back_as_its_content()
    {
        var first = new ByteArrayContent("第一版"u8.ToArray());
        first.Headers.TryAddWithoutValidation("Content-Type", "text/plain; charset=utf-8");
        var created = await _client.PutAsync("/fhir/Binary/binary-native-884702", first);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var second = new HttpRequestMessage(HttpMethod.Put, "/fhir/Binary/binary-native-884702") { Content = new ByteArrayContent("second"u8.ToArray()) };
        second.Content.Headers.TryAddWithoutValidation("Content-Type", "text/plain");
        second.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        var updated = await _client.SendAsync(second);
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal("binary-native-884702", (await Fhir.Read<Binary>(updated)).Id);

        async Task<(string? Type, byte[] Body)> NativeAsync(string path)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Accept.ParseAdd("*/*");
            var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (response.Content.Headers.ContentType?.ToString(), await response.Content.ReadAsByteArrayAsync());
        }

        var current = await NativeAsync("/fhir/Binary/binary-native-884702");
        Assert.Equal("text/plain", current.Type);
        Assert.Equal("second"u8.ToArray(), current.Body);
        var firstVersion = await NativeAsync("/fhir/Binary/binary-native-884702/_history/1");
        Assert.Equal("text/plain; charset=utf-8", firstVersion.Type);
        Assert.Equal("第一版"u8.ToArray(), firstVersion.Body);
    }

    [Fact]
    public async Task Only_a_binary_takes_a_body_that_is_not_fhir()
    {
        var response = await _client.PostAsync("/fhir/DocumentReference", Fhir.Raw("%PDF-1.7", "application/pdf"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Fact]
    public async Task Xml_nested_deeper_than_json_is_read_is_400_and_xml_within_it_is_served_again_in_every_form()
    {
        static string Nested(int levels) =>
            "<Patient xmlns=\"http://hl7.org/fhir\">" + string.Concat(Enumerable.Repeat("<extension url=\"http://example.org/nested\">", levels))
            + "<valueString value=\"deep\"/>" + string.Concat(Enumerable.Repeat("</extension>", levels))
            + "<identifier><system value=\"urn:test:nesting\"/><value value=\"884703\"/></identifier></Patient>";

        var tooDeep = await _client.PostAsync("/fhir/Patient", Fhir.Raw(Nested(40), Fhir.XmlType));
        var deepest = await _client.PostAsync("/fhir/Patient", Fhir.Raw(Nested(30), Fhir.XmlType));

        Assert.Equal(HttpStatusCode.BadRequest, tooDeep.StatusCode);
        Assert.Contains("more than 32 deep", (await Fhir.Read<OperationOutcome>(tooDeep)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, deepest.StatusCode);
        var id = (await Fhir.Read<Patient>(deepest)).Id;
        foreach (var path in new[]
                 {
                     $"/fhir/Patient/{id}?_format=xml", $"/fhir/Patient/{id}?_summary=true", $"/fhir/Patient/{id}?_elements=extension",
                     "/fhir/Patient?identifier=urn:test:nesting|884703&_format=xml", $"/fhir/Patient/{id}/_history?_format=xml",
                 })
        {
            Assert.Equal((path, HttpStatusCode.OK), (path, (await _client.GetAsync(path)).StatusCode));
        }

        var json = await _client.GetStringAsync($"/fhir/Patient/{id}");
        Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Raw(json))).StatusCode);
    }

    [Fact]
    public async Task Xml_with_a_document_type_declaration_is_400_saying_so_in_the_hubs_words()
    {
        var response = await _client.PostAsync("/fhir/Patient",
            Fhir.Raw("<?xml version=\"1.0\"?><!DOCTYPE Patient [<!ENTITY x \"y\">]><Patient xmlns=\"http://hl7.org/fhir\"/>", Fhir.XmlType));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var diagnostics = (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics;
        Assert.Contains("document type declaration (<!DOCTYPE …>)", diagnostics, StringComparison.Ordinal);
        Assert.DoesNotContain("XmlReaderSettings", diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_application_json_bodies_are_accepted()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Raw("{\"resourceType\":\"Patient\",\"active\":true}", "application/json"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task Prefer_return_minimal_answers_without_a_body()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        request.Headers.Add("Prefer", "return=minimal");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.NotNull(response.Headers.Location);
        Assert.Equal("W/\"1\"", response.Headers.ETag?.ToString());
    }

    [Fact]
    public async Task Prefer_return_OperationOutcome_answers_with_an_outcome()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        request.Headers.Add("Prefer", "return=OperationOutcome");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Equal(OperationOutcome.IssueSeverity.Information, outcome.Issue[0].Severity);
    }

    [Fact]
    public async Task Prefer_return_representation_is_the_default()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        request.Headers.Add("Prefer", "return=representation");

        var response = await _client.SendAsync(request);

        Assert.Equal("张", (await Fhir.Read<Patient>(response)).Name[0].Family);
    }
}

public sealed class FormatTestsOnSqlite(SqliteHub hub) : FormatTests(hub), IClassFixture<SqliteHub>;

public sealed class FormatTestsOnPostgres(PostgresHub hub) : FormatTests(hub), IClassFixture<PostgresHub>;
