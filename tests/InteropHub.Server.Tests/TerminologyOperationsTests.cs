using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary>
/// The terminology operations over the CodeSystems and ValueSets stored in the hub: <c>ValueSet/$expand</c>,
/// <c>CodeSystem/$lookup</c>, <c>ValueSet/$validate-code</c> and <c>CodeSystem/$validate-code</c>, <c>CodeSystem/$subsumes</c>.
/// Each test posts its own code system and value sets under fresh canonical URLs.
/// </summary>
public abstract class TerminologyOperationsTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    // $expand

    [Fact]
    public async Task Expand_lists_every_code_in_order_with_display_version_and_what_the_code_system_says_of_it()
    {
        var world = await SeedAsync();

        var valueSet = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={world.All}");

        var expansion = valueSet.Expansion!;
        Assert.Equal(world.All, valueSet.Url);
        Assert.StartsWith("urn:uuid:", expansion.Identifier, StringComparison.Ordinal);
        Assert.NotNull(expansion.Timestamp);
        Assert.Equal(5, expansion.Total);
        Assert.Equal(["respiratory", "pneumonia", "influenza", "cardiac", "hypertension"], expansion.Contains.Select(c => c.Code));
        Assert.All(expansion.Contains, c => Assert.Equal((world.System, "2"), (c.System, c.Version)));
        Assert.Equal("Respiratory disease", expansion.Contains[0].Display);
        Assert.True(expansion.Contains.Single(c => c.Code == "influenza").Inactive);
        Assert.True(expansion.Contains.Single(c => c.Code == "cardiac").Abstract);
        Assert.Null(expansion.Contains.Single(c => c.Code == "pneumonia").Abstract);
        Assert.Empty(expansion.Contains[0].Designation);
        Assert.Contains(expansion.Parameter, p => p.Name == "version" && ((FhirUri)p.Value!).Value == $"{world.System}|2");
    }

    [Fact]
    public async Task Expand_at_an_instance_filters_by_words_of_code_or_display_ignoring_case()
    {
        var world = await SeedAsync();

        var byDisplay = await OkAsync<ValueSet>($"/fhir/ValueSet/{world.AllId}/$expand?filter=DISEASE");
        var byWords = await OkAsync<ValueSet>($"/fhir/ValueSet/{world.AllId}/$expand?filter=resp%20dis");
        var byCode = await OkAsync<ValueSet>($"/fhir/ValueSet/{world.AllId}/$expand?filter=hyper");

        Assert.Equal(["respiratory", "cardiac"], byDisplay.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal("DISEASE", ((FhirString)byDisplay.Expansion.Parameter.Single(p => p.Name == "filter").Value!).Value);
        Assert.Equal(["respiratory"], byWords.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal(["hypertension"], byCode.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal(1, byCode.Expansion.Total);
    }

    [Fact]
    public async Task Expand_pages_with_offset_and_count_and_can_add_designations_or_leave_inactive_codes_out()
    {
        var world = await SeedAsync();

        var page = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={world.All}&offset=1&count=2");
        var sizeOnly = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={world.All}&count=0");
        var designations = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={world.All}&includeDesignations=true&count=1");
        var active = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={world.All}&activeOnly=true");

        Assert.Equal((5, 1), (page.Expansion!.Total, page.Expansion.Offset));
        Assert.Equal(["pneumonia", "influenza"], page.Expansion.Contains.Select(c => c.Code));
        Assert.Equal(["offset", "count"], page.Expansion.Parameter.Where(p => p.Name != "version").Select(p => p.Name));
        Assert.Equal(5, sizeOnly.Expansion!.Total);
        Assert.Empty(sizeOnly.Expansion.Contains);
        var designation = Assert.Single(designations.Expansion!.Contains.Single().Designation);
        Assert.Equal(("zh", "呼吸系统疾病"), (designation.Language, designation.Value));
        Assert.DoesNotContain(active.Expansion!.Contains, c => c.Code == "influenza");
        Assert.Equal(4, active.Expansion.Total);
    }

    [Fact]
    public async Task Expand_takes_nested_value_sets_filters_and_listed_codes_of_other_systems_in_a_posted_value_set()
    {
        var world = await SeedAsync();
        var body = new Parameters();
        body.Add("valueSet", new ValueSet
        {
            Status = PublicationStatus.Draft,
            Compose = new ValueSet.ComposeComponent
            {
                Include =
                [
                    new ValueSet.ConceptSetComponent { ValueSet = [world.Respiratory] },
                    new ValueSet.ConceptSetComponent { System = "urn:elsewhere", Concept = [new() { Code = "x1", Display = "Elsewhere one" }] },
                ],
                Exclude = [new ValueSet.ConceptSetComponent { System = world.System, Concept = [new() { Code = "influenza" }] }],
            },
        });
        body.Add("includeDesignations", new FhirBoolean(true));

        var expanded = await ReadOkAsync<ValueSet>(await _client.PostAsync("/fhir/ValueSet/$expand", Fhir.Content(body)));

        Assert.Equal([(world.System, "respiratory"), (world.System, "pneumonia"), ("urn:elsewhere", "x1")],
            expanded.Expansion!.Contains.Select(c => (c.System, c.Code)));
        Assert.Equal("Elsewhere one", expanded.Expansion.Contains[2].Display);
        Assert.Null(expanded.Expansion.Contains[2].Version);
    }

    [Fact]
    public async Task Expand_by_url_takes_the_version_asked_for_and_the_one_written_last_without()
    {
        var world = await SeedAsync();
        var url = $"{world.System}/ValueSet/versioned";
        await CreateAsync(Listed(url, "1", world.System, "pneumonia"));
        await CreateAsync(Listed(url, "2", world.System, "cardiac", "hypertension"));

        var latest = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={url}");
        var byParameter = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={url}&valueSetVersion=1");
        var byCanonical = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={url}%7C1");
        var none = await _client.GetAsync($"/fhir/ValueSet/$expand?url={url}&valueSetVersion=3");

        Assert.Equal(["cardiac", "hypertension"], latest.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal(["pneumonia"], byParameter.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal("Pneumonia", byParameter.Expansion.Contains[0].Display);
        Assert.Equal("1", byCanonical.Version);
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }

    [Fact]
    public async Task Expand_of_more_codes_than_one_answer_holds_needs_count_and_is_too_costly_without()
    {
        var system = $"http://hub.example/CodeSystem/{Guid.NewGuid():N}";
        await CreateAsync(new CodeSystem
        {
            Url = system, Status = PublicationStatus.Active, Content = CodeSystemContentMode.Complete,
            Concept = [.. Enumerable.Range(0, 1001).Select(i => new CodeSystem.ConceptDefinitionComponent { Code = $"c{i}", Display = $"Code {i}" })],
        });
        var valueSet = $"{system}/ValueSet/all";
        await CreateAsync(new ValueSet { Url = valueSet, Status = PublicationStatus.Active, Compose = new() { Include = [new() { System = system }] } });

        var unpaged = await _client.GetAsync($"/fhir/ValueSet/$expand?url={valueSet}");
        var paged = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={valueSet}&offset=1000&count=10");
        var filtered = await OkAsync<ValueSet>($"/fhir/ValueSet/$expand?url={valueSet}&filter=code%20100");
        var tooLarge = await _client.GetAsync($"/fhir/ValueSet/$expand?url={valueSet}&count=5000");

        var issue = await IssueAsync(unpaged, HttpStatusCode.BadRequest);
        Assert.Equal(OperationOutcome.IssueType.TooCostly, issue.Code);
        Assert.Contains("1001 codes", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(1001, paged.Expansion!.Total);
        Assert.Equal(["c1000"], paged.Expansion.Contains.Select(c => c.Code));
        Assert.Equal(["c100", "c1000"], filtered.Expansion!.Contains.Select(c => c.Code));
        Assert.Equal(OperationOutcome.IssueType.TooCostly, (await IssueAsync(tooLarge, HttpStatusCode.BadRequest)).Code);
    }

    [Theory]
    [InlineData("/fhir/ValueSet/$expand?url=http://hub.example/ValueSet/never-posted", HttpStatusCode.NotFound, "url", "is stored in the hub")]
    [InlineData("/fhir/ValueSet/no-such-value-set/$expand", HttpStatusCode.NotFound, null, "not known")]
    [InlineData("/fhir/ValueSet/$expand", HttpStatusCode.BadRequest, "url", "needs the ValueSet")]
    [InlineData("/fhir/ValueSet/$expand?url=urn:x&colour=red", HttpStatusCode.BadRequest, "colour", "no parameter 'colour'")]
    [InlineData("/fhir/ValueSet/$expand?url=urn:x&date=2020", HttpStatusCode.BadRequest, "date", "'date' is not supported")]
    [InlineData("/fhir/ValueSet/$expand?url=urn:x&count=ten", HttpStatusCode.BadRequest, "count", "must be an integer")]
    [InlineData("/fhir/ValueSet/$expand?url=urn:x&offset=-1", HttpStatusCode.BadRequest, "offset", "negative")]
    [InlineData("/fhir/ValueSet/$expand?url=urn:x&activeOnly=yes", HttpStatusCode.BadRequest, "activeOnly", "true or false")]
    public async Task Expand_refuses_what_it_cannot_answer_naming_the_parameter(string url, HttpStatusCode status, string? expression, string why)
    {
        var issue = await IssueAsync(await _client.GetAsync(url), status);

        Assert.Equal(expression is null ? [] : [expression], issue.Expression);
        Assert.Contains(why, issue.Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Expand_of_a_value_set_drawing_on_a_code_system_not_stored_here_is_400_saying_so()
    {
        var url = $"http://hub.example/ValueSet/{Guid.NewGuid():N}";
        await CreateAsync(new ValueSet { Url = url, Status = PublicationStatus.Active, Compose = new() { Include = [new() { System = "http://snomed.info/sct" }] } });
        var body = new Parameters();
        body.Add("url", new FhirUri(url));
        body.Add("valueSet", new ValueSet { Status = PublicationStatus.Draft });

        var issue = await IssueAsync(await _client.GetAsync($"/fhir/ValueSet/$expand?url={url}"), HttpStatusCode.BadRequest);
        var twice = await IssueAsync(await _client.PostAsync("/fhir/ValueSet/$expand", Fhir.Content(body)), HttpStatusCode.BadRequest);
        var inQuery = await IssueAsync(await _client.PostAsync($"/fhir/ValueSet/$expand?url={url}", Fhir.Content(new Parameters())), HttpStatusCode.BadRequest);

        Assert.Contains("http://snomed.info/sct, which is not stored in the hub", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(["url"], issue.Expression);
        Assert.Contains("named once", twice.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(["url"], inQuery.Expression);
    }

    // $lookup

    [Fact]
    public async Task Lookup_answers_name_version_display_designations_and_properties_from_the_hierarchy()
    {
        var world = await SeedAsync();

        var respiratory = await OkAsync<Parameters>($"/fhir/CodeSystem/$lookup?system={world.System}&code=respiratory");
        var pneumonia = await OkAsync<Parameters>($"/fhir/CodeSystem/$lookup?coding={world.System}%7Cpneumonia");
        var hypertension = await OkAsync<Parameters>($"/fhir/CodeSystem/$lookup?system={world.System}&code=hypertension&property=parent");

        Assert.Equal("Diagnoses", respiratory.GetSingleValue<FhirString>("name")!.Value);
        Assert.Equal("2", respiratory.GetSingleValue<FhirString>("version")!.Value);
        Assert.Equal("Respiratory disease", respiratory.GetSingleValue<FhirString>("display")!.Value);
        Assert.Equal("呼吸系统疾病", ((FhirString)Assert.Single(respiratory.Parameter, p => p.Name == "designation").Part.Single(p => p.Name == "value").Value!).Value);
        Assert.Equal([("child", "pneumonia"), ("child", "influenza"), ("inactive", "false")], Properties(respiratory));
        Assert.Equal([("definition", "Infection of the lung"), ("parent", "respiratory"), ("inactive", "false")], Properties(pneumonia));
        Assert.Equal("Respiratory disease", ((FhirString)pneumonia.Parameter.Single(p => p.Name == "property" && p.Part[0].Value is Code { Value: "parent" })
            .Part.Single(p => p.Name == "description").Value!).Value);
        Assert.Equal([("parent", "cardiac")], Properties(hypertension));
        Assert.DoesNotContain(hypertension.Parameter, p => p.Name == "designation");
    }

    [Fact]
    public async Task Lookup_posted_gives_the_concepts_own_properties_and_inactive()
    {
        var world = await SeedAsync();
        var body = new Parameters();
        body.Add("coding", new Coding(world.System, "influenza"));

        var influenza = await ReadOkAsync<Parameters>(await _client.PostAsync("/fhir/CodeSystem/$lookup", Fhir.Content(body)));
        var cardiac = await OkAsync<Parameters>($"/fhir/CodeSystem/$lookup?system={world.System}&code=cardiac&property=notSelectable&property=inactive");

        Assert.Contains(("inactive", "true"), Properties(influenza));
        Assert.Equal([("inactive", "false"), ("notSelectable", "true")], Properties(cardiac));
    }

    [Theory]
    [InlineData("system={system}&code=nonsense", HttpStatusCode.NotFound, "code", "'nonsense' is not a code of the code system")]
    [InlineData("coding={system}%7Cnonsense", HttpStatusCode.NotFound, "coding", "'nonsense' is not a code")]
    [InlineData("system=http://snomed.info/sct&code=22298006", HttpStatusCode.NotFound, "system", "http://snomed.info/sct is not stored in the hub")]
    [InlineData("system={system}&code=pneumonia&version=9", HttpStatusCode.NotFound, "system", "version 9 is not stored in the hub")]
    [InlineData("code=pneumonia", HttpStatusCode.BadRequest, "system", "needs a code and its system")]
    [InlineData("system={system}&code=pneumonia&coding={system}%7Cinfluenza", HttpStatusCode.BadRequest, "coding", "not both")]
    [InlineData("system={system}&code=pneumonia&displayLanguage=zh", HttpStatusCode.BadRequest, "displayLanguage", "not supported")]
    [InlineData("system={system}&code=pneumonia&flavour=x", HttpStatusCode.BadRequest, "flavour", "no parameter 'flavour'")]
    public async Task Lookup_refuses_an_unknown_code_or_system_and_bad_parameters_naming_them(string query, HttpStatusCode status, string expression, string why)
    {
        var world = await SeedAsync();

        var issue = await IssueAsync(await _client.GetAsync($"/fhir/CodeSystem/$lookup?{query.Replace("{system}", world.System, StringComparison.Ordinal)}"), status);

        Assert.Equal([expression], issue.Expression);
        Assert.Contains(why, issue.Diagnostics, StringComparison.Ordinal);
    }

    // $validate-code

    [Fact]
    public async Task Validate_code_in_a_value_set_says_whether_the_code_is_a_member_and_checks_its_display()
    {
        var world = await SeedAsync();
        var at = $"/fhir/ValueSet/$validate-code?url={world.Respiratory}&system={world.System}";

        var member = await OkAsync<Parameters>($"{at}&code=pneumonia");
        var outside = await OkAsync<Parameters>($"{at}&code=cardiac");
        var wrongDisplay = await OkAsync<Parameters>($"{at}&code=pneumonia&display=Lung%20thing");
        var designation = await OkAsync<Parameters>($"{at}&code=respiratory&display=%E5%91%BC%E5%90%B8%E7%B3%BB%E7%BB%9F%E7%96%BE%E7%97%85");
        var noSystem = await OkAsync<Parameters>($"/fhir/ValueSet/{world.RespiratoryId}/$validate-code?code=pneumonia&display=PNEUMONIA");

        Assert.Equal((true, null, "Pneumonia"), Verdict(member));
        Assert.False(Verdict(outside).Result);
        Assert.Contains($"'{world.System}|cardiac' is not in the value set {world.Respiratory}", Verdict(outside).Message, StringComparison.Ordinal);
        Assert.False(Verdict(wrongDisplay).Result);
        Assert.Contains("'Lung thing' is not a display", Verdict(wrongDisplay).Message, StringComparison.Ordinal);
        Assert.Equal("Pneumonia", Verdict(wrongDisplay).Display);
        Assert.True(Verdict(designation).Result);
        Assert.True(Verdict(noSystem).Result);
    }

    [Fact]
    public async Task Validate_code_of_a_codeable_concept_is_true_when_one_coding_is_valid_and_an_inactive_code_says_so()
    {
        var world = await SeedAsync();
        var body = new Parameters();
        body.Add("url", new FhirUri(world.All));
        body.Add("codeableConcept", new CodeableConcept { Coding = [new Coding("urn:elsewhere", "x1"), new Coding(world.System, "influenza")] });

        var answer = Verdict(await ReadOkAsync<Parameters>(await _client.PostAsync("/fhir/ValueSet/$validate-code", Fhir.Content(body))));

        Assert.True(answer.Result);
        Assert.Equal("Influenza", answer.Display);
        Assert.Contains("is not in the value set", answer.Message, StringComparison.Ordinal);
        Assert.Contains("is inactive", answer.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_code_in_a_code_system_by_url_or_instance_refuses_unknown_and_abstract_codes()
    {
        var world = await SeedAsync();

        var known = await OkAsync<Parameters>($"/fhir/CodeSystem/$validate-code?url={world.System}&code=hypertension");
        var byCoding = await OkAsync<Parameters>($"/fhir/CodeSystem/$validate-code?coding={world.System}%7Crespiratory&display=Respiratory%20disease");
        var unknown = await OkAsync<Parameters>($"/fhir/CodeSystem/{world.SystemId}/$validate-code?code=nonsense");
        var otherSystem = await OkAsync<Parameters>($"/fhir/CodeSystem/{world.SystemId}/$validate-code?coding=urn:elsewhere%7Cpneumonia");
        var abstractCode = await OkAsync<Parameters>($"/fhir/CodeSystem/{world.SystemId}/$validate-code?code=cardiac");
        var abstractAllowed = await OkAsync<Parameters>($"/fhir/CodeSystem/{world.SystemId}/$validate-code?code=cardiac&abstract=true");
        var versioned = await OkAsync<Parameters>($"/fhir/CodeSystem/$validate-code?url={world.System}&version=2&code=pneumonia");

        Assert.Equal((true, null, "Hypertension"), Verdict(known));
        Assert.True(Verdict(byCoding).Result);
        Assert.False(Verdict(unknown).Result);
        Assert.Contains("'nonsense' is not a code of the code system", Verdict(unknown).Message, StringComparison.Ordinal);
        Assert.False(Verdict(otherSystem).Result);
        Assert.False(Verdict(abstractCode).Result);
        Assert.Contains("abstract", Verdict(abstractCode).Message, StringComparison.Ordinal);
        Assert.True(Verdict(abstractAllowed).Result);
        Assert.True(Verdict(versioned).Result);
    }

    [Theory]
    [InlineData("/fhir/ValueSet/$validate-code?url=http://hub.example/ValueSet/never-posted&system=urn:x&code=a", HttpStatusCode.NotFound, "url")]
    [InlineData("/fhir/CodeSystem/$validate-code?url=http://snomed.info/sct&code=22298006", HttpStatusCode.NotFound, "url")]
    [InlineData("/fhir/ValueSet/$validate-code?url=urn:x&system=urn:x&code=a&flavour=x", HttpStatusCode.BadRequest, "flavour")]
    [InlineData("/fhir/ValueSet/$validate-code?url=urn:x&system=urn:x&code=a&context=Patient.gender", HttpStatusCode.BadRequest, "context")]
    [InlineData("/fhir/CodeSystem/$validate-code?url=urn:x&code=a&valueSetVersion=1", HttpStatusCode.BadRequest, "valueSetVersion")]
    [InlineData("/fhir/ValueSet/$validate-code?url=urn:x&display=A", HttpStatusCode.BadRequest, "display")]
    [InlineData("/fhir/ValueSet/$validate-code?url=urn:x", HttpStatusCode.BadRequest, "code")]
    public async Task Validate_code_refuses_what_is_not_stored_and_bad_parameters_naming_them(string url, HttpStatusCode status, string expression)
    {
        var issue = await IssueAsync(await _client.GetAsync(url), status);

        Assert.Equal([expression], issue.Expression);
    }

    // $subsumes

    [Theory]
    [InlineData("respiratory", "pneumonia", "subsumes")]
    [InlineData("pneumonia", "respiratory", "subsumed-by")]
    [InlineData("cardiac", "hypertension", "subsumes")]
    [InlineData("pneumonia", "influenza", "not-subsumed")]
    [InlineData("hypertension", "respiratory", "not-subsumed")]
    [InlineData("influenza", "influenza", "equivalent")]
    public async Task Subsumes_tells_how_two_codes_relate_in_the_stored_hierarchy(string a, string b, string outcome)
    {
        var world = await SeedAsync();
        var body = new Parameters();
        body.Add("codingA", new Coding(world.System, a));
        body.Add("codingB", new Coding(world.System, b));

        var byQuery = await OkAsync<Parameters>($"/fhir/CodeSystem/$subsumes?system={world.System}&codeA={a}&codeB={b}");
        var byInstance = await OkAsync<Parameters>($"/fhir/CodeSystem/{world.SystemId}/$subsumes?codeA={a}&codeB={b}");
        var posted = await ReadOkAsync<Parameters>(await _client.PostAsync("/fhir/CodeSystem/$subsumes", Fhir.Content(body)));

        Assert.Equal(outcome, byQuery.GetSingleValue<Code>("outcome")!.Value);
        Assert.Equal(outcome, byInstance.GetSingleValue<Code>("outcome")!.Value);
        Assert.Equal(outcome, posted.GetSingleValue<Code>("outcome")!.Value);
    }

    [Theory]
    [InlineData("system={system}&codeA=respiratory&codeB=nonsense", HttpStatusCode.NotFound, "codeB")]
    [InlineData("system=http://snomed.info/sct&codeA=1&codeB=2", HttpStatusCode.NotFound, "system")]
    [InlineData("codingA={system}%7Crespiratory&codingB=urn:elsewhere%7Cx1", HttpStatusCode.BadRequest, "codingB")]
    [InlineData("system={system}&codeA=respiratory", HttpStatusCode.BadRequest, "codeB")]
    [InlineData("codeA=respiratory&codeB=pneumonia", HttpStatusCode.BadRequest, "system")]
    [InlineData("system={system}&codeA=respiratory&codeB=pneumonia&codeC=x", HttpStatusCode.BadRequest, "codeC")]
    public async Task Subsumes_refuses_unknown_codes_and_systems_and_bad_parameters_naming_them(string query, HttpStatusCode status, string expression)
    {
        var world = await SeedAsync();

        var issue = await IssueAsync(await _client.GetAsync($"/fhir/CodeSystem/$subsumes?{query.Replace("{system}", world.System, StringComparison.Ordinal)}"), status);

        Assert.Equal([expression], issue.Expression);
    }

    // Conformance

    [Fact]
    public async Task Metadata_lists_the_terminology_operations_and_the_terminology_capabilities_describe_expansion()
    {
        var statement = await OkAsync<CapabilityStatement>("/fhir/metadata");
        var terminology = await OkAsync<TerminologyCapabilities>("/fhir/metadata?mode=terminology");

        string[] Operations(string type) => [.. statement.Rest[0].Resource.Single(r => r.Type == type).Operation.Select(o => $"{o.Name} {o.Definition}")];
        Assert.Contains("expand http://hl7.org/fhir/OperationDefinition/ValueSet-expand", Operations("ValueSet"));
        Assert.Contains("validate-code http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code", Operations("ValueSet"));
        Assert.Contains("lookup http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup", Operations("CodeSystem"));
        Assert.Contains("validate-code http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code", Operations("CodeSystem"));
        Assert.Contains("subsumes http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes", Operations("CodeSystem"));
        Assert.True(terminology.Expansion!.Paging);
        Assert.False(terminology.Expansion.Hierarchical);
        Assert.Contains(terminology.Expansion.Parameter, p => p.Name == "filter");
        Assert.NotNull(terminology.ValidateCode);
    }

    [Fact]
    public async Task An_operation_the_hub_does_not_route_at_that_level_is_still_refused_as_unknown()
    {
        var issue = await IssueAsync(await _client.GetAsync("/fhir/CodeSystem/some-id/$lookup?code=a"), HttpStatusCode.BadRequest);

        Assert.Equal(OperationOutcome.IssueType.NotSupported, issue.Code);
        Assert.Equal(["$lookup"], issue.Expression);
    }

    /// <summary>
    /// A fresh code system (version 2: respiratory > pneumonia, influenza (inactive); cardiac (not selectable) >
    /// hypertension by subsumedBy), a ValueSet of all of it and one of the respiratory codes by an is-a filter.
    /// </summary>
    private async Task<World> SeedAsync()
    {
        var system = $"http://hub.example/CodeSystem/{Guid.NewGuid():N}";
        var respiratory = new CodeSystem.ConceptDefinitionComponent
        {
            Code = "respiratory",
            Display = "Respiratory disease",
            Designation = [new CodeSystem.DesignationComponent { Language = "zh", Value = "呼吸系统疾病" }],
            Concept =
            [
                new CodeSystem.ConceptDefinitionComponent { Code = "pneumonia", Display = "Pneumonia", Definition = "Infection of the lung" },
                new CodeSystem.ConceptDefinitionComponent
                {
                    Code = "influenza", Display = "Influenza", Property = [new CodeSystem.ConceptPropertyComponent { Code = "inactive", Value = new FhirBoolean(true) }],
                },
            ],
        };
        var cardiac = new CodeSystem.ConceptDefinitionComponent
        {
            Code = "cardiac", Display = "Cardiac disease", Property = [new CodeSystem.ConceptPropertyComponent { Code = "notSelectable", Value = new FhirBoolean(true) }],
        };
        var hypertension = new CodeSystem.ConceptDefinitionComponent
        {
            Code = "hypertension", Display = "Hypertension", Property = [new CodeSystem.ConceptPropertyComponent { Code = "subsumedBy", Value = new Code("cardiac") }],
        };
        var systemId = await CreateAsync(new CodeSystem
        {
            Url = system, Version = "2", Name = "Diagnoses", Status = PublicationStatus.Active, Content = CodeSystemContentMode.Complete,
            Concept = [respiratory, cardiac, hypertension],
        });
        var all = $"{system}/ValueSet/all";
        var allId = await CreateAsync(new ValueSet { Url = all, Status = PublicationStatus.Active, Compose = new() { Include = [new() { System = system }] } });
        var respiratoryUrl = $"{system}/ValueSet/respiratory";
        var respiratoryId = await CreateAsync(new ValueSet
        {
            Url = respiratoryUrl,
            Status = PublicationStatus.Active,
            Compose = new()
            {
                Include = [new() { System = system, Filter = [new() { Property = "concept", Op = FilterOperator.IsA, Value = "respiratory" }] }],
            },
        });
        return new World(system, systemId, all, allId, respiratoryUrl, respiratoryId);
    }

    private sealed record World(string System, string SystemId, string All, string AllId, string Respiratory, string RespiratoryId);

    private static ValueSet Listed(string url, string version, string system, params string[] codes) => new()
    {
        Url = url,
        Version = version,
        Status = PublicationStatus.Active,
        Compose = new() { Include = [new() { System = system, Concept = [.. codes.Select(c => new ValueSet.ConceptReferenceComponent { Code = c })] }] },
    };

    private static List<(string, string)> Properties(Parameters parameters) =>
        [.. parameters.Parameter.Where(p => p.Name == "property")
            .Select(p => (((Code)p.Part.Single(x => x.Name == "code").Value!).Value!, p.Part.Single(x => x.Name == "value").Value!.ToString()!))];

    private static (bool Result, string? Message, string? Display) Verdict(Parameters answer) =>
        (answer.GetSingleValue<FhirBoolean>("result")!.Value!.Value, answer.GetSingleValue<FhirString>("message")?.Value, answer.GetSingleValue<FhirString>("display")?.Value);

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return response.Headers.Location!.OriginalString.Split('/')[^3];
    }

    private async Task<T> OkAsync<T>(string url) where T : Resource => await ReadOkAsync<T>(await _client.GetAsync(url));

    private static async Task<T> ReadOkAsync<T>(HttpResponseMessage response) where T : Resource
    {
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return await Fhir.Read<T>(response);
    }

    private static async Task<OperationOutcome.IssueComponent> IssueAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.True(response.StatusCode == status, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
    }
}

public sealed class TerminologyOperationsTestsOnSqlite(SqliteHub hub) : TerminologyOperationsTests(hub), IClassFixture<SqliteHub>;

public sealed class TerminologyOperationsTestsOnPostgres(PostgresHub hub) : TerminologyOperationsTests(hub), IClassFixture<PostgresHub>;
