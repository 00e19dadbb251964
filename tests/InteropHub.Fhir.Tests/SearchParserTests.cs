using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Tests;

public sealed class SearchParserTests
{
    private static readonly SearchParser Parser = new(SearchParameterRegistry.Default, new HubOptions { PublicBaseUrl = "https://hub.example.cn/fhir" });

    private static Criterion One(string type, string query) =>
        Assert.Single(Parser.ParseCriteria(type, SearchParser.SplitQueryString(type, query)).Criteria);

    private static IndexCondition Condition(string type, string query) => Assert.Single(Assert.IsType<IndexCriterion>(One(type, query)).AnyOf);

    private static long Ticks(int y, int m, int d, int h = 0, int min = 0, int s = 0) => new DateTime(y, m, d, h, min, s, DateTimeKind.Utc).Ticks;

    [Theory]
    [InlineData("2020", 2020, 1, 1, 2021, 1, 1)]
    [InlineData("2020-02", 2020, 2, 1, 2020, 3, 1)]
    [InlineData("2020-12-31", 2020, 12, 31, 2021, 1, 1)]
    [InlineData("2024-02-29", 2024, 2, 29, 2024, 3, 1)]
    public void A_date_denotes_the_whole_interval_of_its_precision(string value, int y1, int m1, int d1, int y2, int m2, int d2)
    {
        var date = Assert.IsType<DateCondition>(Condition("Patient", $"birthdate={value}"));

        Assert.Equal((SearchPrefix.Eq, Ticks(y1, m1, d1), Ticks(y2, m2, d2)), (date.Prefix, date.Low, date.High));
    }

    [Fact]
    public void Times_with_zones_are_converted_to_utc_at_minute_second_or_fraction_precision()
    {
        var minute = Assert.IsType<DateCondition>(Condition("Observation", "date=lt2024-05-01T18:30%2B08:00"));
        var second = Assert.IsType<DateCondition>(Condition("Observation", "date=2024-05-01T10:30:15Z"));
        var fraction = Assert.IsType<DateCondition>(Condition("Observation", "date=2024-05-01T10:30:15.25Z"));

        Assert.Equal((SearchPrefix.Lt, Ticks(2024, 5, 1, 10, 30), Ticks(2024, 5, 1, 10, 31)), (minute.Prefix, minute.Low, minute.High));
        Assert.Equal(TimeSpan.TicksPerSecond, second.High - second.Low);
        Assert.Equal(Ticks(2024, 5, 1, 10, 30, 15) + (TimeSpan.TicksPerSecond / 4), fraction.Low);
        Assert.Equal(TimeSpan.TicksPerSecond / 100, fraction.High - fraction.Low);
    }

    [Theory]
    [InlineData("2020-13")]
    [InlineData("2023-02-29")]
    [InlineData("2020-01-01T25:00")]
    [InlineData("2020-01-01T10")]
    [InlineData("20200101")]
    [InlineData("xx2020")]
    public void Impossible_dates_and_unknown_prefixes_are_refused_naming_the_parameter(string value)
    {
        var error = Assert.ThrowsAny<InvalidInputException>(() => One("Patient", $"birthdate={value}"));

        Assert.Equal("birthdate", error.Outcome.Issue[0].Expression.Single());
    }

    [Theory]
    [InlineData("100", SearchPrefix.Eq, 99.5, 100.5)]
    [InlineData("100.00", SearchPrefix.Eq, 99.995, 100.005)]
    [InlineData("1e2", SearchPrefix.Eq, 50, 150)]
    [InlineData("ge0.5", SearchPrefix.Ge, 0.45, 0.55)]
    [InlineData("ap100", SearchPrefix.Ap, 90, 110)]
    public void A_number_implies_the_range_of_its_precision(string value, SearchPrefix prefix, double low, double high)
    {
        var number = Assert.IsType<NumberCondition>(Condition("RiskAssessment", $"probability={value}"));

        Assert.Equal(prefix, number.Prefix);
        Assert.Equal(low, number.Low, 9);
        Assert.Equal(high, number.High, 9);
    }

    [Fact]
    public void A_ucum_quantity_is_converted_to_canonical_units_and_others_are_kept_as_given()
    {
        var ucum = Assert.IsType<QuantityCondition>(Condition("Observation", "value-quantity=gt5.4|http://unitsofmeasure.org|mg"));
        var local = Assert.IsType<QuantityCondition>(Condition("Observation", "value-quantity=5||粒"));
        var bare = Assert.IsType<QuantityCondition>(Condition("Observation", "value-quantity=5"));

        Assert.True(ucum.Canonical);
        Assert.Equal(("g", SearchPrefix.Gt), (ucum.Code, ucum.Number.Prefix));
        Assert.Equal(0.0054, ucum.Number.Value, 10);
        Assert.Equal((null, "粒", false), (local.System, local.Code, local.Canonical));
        Assert.Equal((null, null), (bare.System, bare.Code));
    }

    [Theory]
    [InlineData("identifier=a|b", "a", "b")]
    [InlineData("identifier=|b", "", "b")]
    [InlineData("identifier=a|", "a", null)]
    [InlineData("identifier=b", null, "b")]
    [InlineData(@"identifier=a\|x|b\,c", "a|x", "b,c")]
    public void Token_values_split_system_and_code_on_the_unescaped_bar(string query, string? system, string? code)
    {
        Assert.Equal(new TokenCondition(system, code), Condition("Patient", query));
    }

    [Fact]
    public void Commas_or_values_and_repetition_ands_criteria_and_escaped_commas_stay_in_the_value()
    {
        var criteria = Parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", @"family=a,b\,c&family=d")).Criteria;

        Assert.Equal(2, criteria.Count);
        var first = Assert.IsType<IndexCriterion>(criteria[0]);
        Assert.Equal([new StringCondition(StringMatch.Prefix, "a"), new StringCondition(StringMatch.Prefix, "b,c")], first.AnyOf);
    }

    [Fact]
    public void String_modifiers_choose_the_comparison_and_chinese_text_is_kept()
    {
        Assert.Equal(new StringCondition(StringMatch.Prefix, "张三"), Condition("Patient", "family=张三"));
        Assert.Equal(new StringCondition(StringMatch.Exact, "Müller"), Condition("Patient", "family:exact=Müller"));
        Assert.Equal(new StringCondition(StringMatch.Contains, "uller"), Condition("Patient", "family:contains=ULLER"));
        Assert.Equal(new TokenTextCondition("收缩压"), Condition("Observation", "code:text=收缩压"));
    }

    [Fact]
    public void A_name_or_address_search_reads_the_rows_of_its_parts_parameters_too()
    {
        var name = Assert.IsType<AnyCriterion>(One("Patient", "name=张三"));
        Assert.Equal(["family", "given", "name"], name.Any.Cast<IndexCriterion>().Select(c => c.Param).Order(StringComparer.Ordinal));
        Assert.All(name.Any.Cast<IndexCriterion>(), c => Assert.Equal([new StringCondition(StringMatch.Prefix, "张三")], c.AnyOf));

        var missing = Assert.IsType<AllCriterion>(One("Patient", "address:missing=true"));
        Assert.Equal(["address", "address-city", "address-country", "address-postalcode", "address-state"],
            missing.All.Cast<MissingCriterion>().Select(c => c.Param).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Over_several_types_a_parameter_is_read_and_sorted_as_each_type_defines_it()
    {
        var query = Parser.ParseQuery(["Organization", "Patient"], SearchParser.SplitQueryString("Organization", "name=x&_sort=name"), lenient: false);

        var each = Assert.IsType<AnyCriterion>(Assert.Single(query.Criteria.Criteria)).Any.Cast<OfTypeCriterion>().ToList();
        Assert.Equal(["Organization", "Patient"], each.Select(c => Assert.Single(c.ResourceTypes)));
        Assert.IsType<IndexCriterion>(each[0].Inner);
        Assert.IsType<AnyCriterion>(each[1].Inner);
        Assert.Equal(["family", "given", "name"], Assert.Single(query.Sort).RowsOf!.Order(StringComparer.Ordinal));

        var sort = Assert.Single(Parser.ParseQuery(["Immunization", "Encounter"], [new("_sort", "patient")], lenient: false).Sort);
        Assert.Equal(new ReferenceSubset("subject", "Patient"), sort.Subset);
    }

    [Fact]
    public void Reference_values_are_local_by_type_and_id_or_kept_as_url()
    {
        Assert.Equal(new ReferenceCondition("Patient", "1", null), Condition("Observation", "subject=Patient/1"));
        Assert.Equal(new ReferenceCondition("Patient", "1", null), Condition("Observation", "subject=https://hub.example.cn/fhir/Patient/1"));
        Assert.Equal(new ReferenceCondition("Patient", "1", null), Condition("Observation", "subject:Patient=1"));
        Assert.Equal(new ReferenceCondition(null, "1", null), Condition("Observation", "subject=1"));
        Assert.Equal(new ReferenceCondition(null, null, "http://other.example/fhir/Patient/1"), Condition("Observation", "subject=http://other.example/fhir/Patient/1"));
        Assert.Equal("subject:identifier", Assert.IsType<IndexCriterion>(One("Observation", "subject:identifier=urn:x|1")).Param);
    }

    [Fact]
    public void Chains_resolve_each_step_on_the_target_type_and_has_nests()
    {
        var chain = Assert.IsType<ChainCriterion>(One("Observation", "subject:Patient.organization.name=清溪"));
        var has = Assert.IsType<HasCriterion>(One("Organization", "_has:Patient:organization:_has:Observation:patient:code=1"));

        var patient = Assert.Single(chain.Targets);
        Assert.Equal("Patient", patient.ResourceType);
        var organization = Assert.Single(Assert.IsType<ChainCriterion>(patient.Inner).Targets);
        Assert.Equal("Organization", organization.ResourceType);
        Assert.Equal(("Patient", "organization"), (has.SourceType, has.Param));
        // Observation's patient narrows subject to Patients: the _has reads both parameters' rows.
        var inner = Assert.IsType<AnyCriterion>(has.Inner).Any.Cast<HasCriterion>().Select(h => (h.SourceType, h.Param));
        Assert.Equal([("Observation", "patient"), ("Observation", "subject")], inner);
    }

    [Fact]
    public void A_parameter_narrowing_another_to_a_type_also_searches_the_wider_ones_references_of_that_type()
    {
        var value = Assert.IsType<AnyCriterion>(One("Encounter", "patient=123,Patient/7"));
        Assert.Equal(["patient: (, 123) (Patient, 7)", "subject: (Patient, 123) (Patient, 7)"],
            value.Any.Cast<IndexCriterion>().Select(c => $"{c.Param}: " + string.Join(" ", c.AnyOf.Cast<ReferenceCondition>().Select(r => $"({r.TargetType}, {r.TargetId})"))));

        // Another server's URL is only ever a row of the parameter itself.
        Assert.Equal("patient", Assert.IsType<IndexCriterion>(One("Encounter", "patient=http://other.example/fhir/Patient/1")).Param);

        var missing = Assert.IsType<AllCriterion>(One("Encounter", "practitioner:missing=true"));
        Assert.Equal([("practitioner", null), ("participant", "Practitioner"), ("practitioner:identifier", null)],
            missing.All.Cast<MissingCriterion>().Select(m => (m.Param, m.TargetType)));

        var chain = Assert.IsType<AnyCriterion>(One("Provenance", "patient.name=张"));
        Assert.Equal(["patient", "target"], chain.Any.Cast<ChainCriterion>().Select(c => c.Param));
        Assert.Equal(["Patient"], chain.Any.Cast<ChainCriterion>().Last().Targets.Select(t => t.ResourceType));
    }

    [Fact]
    public void A_chain_without_type_through_a_parameter_with_several_targets_tries_each_type_that_has_the_parameter()
    {
        var chain = Assert.IsType<ChainCriterion>(One("Observation", "subject.name=x"));

        // Observation.subject may be a Patient, Group, Device or Location; only Location and Patient have a name parameter.
        Assert.Equal(["Location", "Patient"], chain.Targets.Select(t => t.ResourceType).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("gender:exact=male", "gender")]
    [InlineData("name:text=x", "name")]
    [InlineData("birthdate:above=2020", "birthdate")]
    [InlineData("code:below=8480-6", "system|code")]
    [InlineData("code:above=http://loinc.org|", "system|code")]
    [InlineData("gender:in=", "empty value")]
    [InlineData("subject:Medication=1", "subject")]
    [InlineData("_has:Observation:code:code=1", "code")]
    [InlineData("component-code-value-quantity=http://loinc.org|1", "component-code-value-quantity")]
    public void Modifiers_and_values_a_parameter_does_not_take_are_refused_with_the_reason(string query, string mentioned)
    {
        var type = query.StartsWith("_has", StringComparison.Ordinal) ? "Patient" : query.StartsWith("gender", StringComparison.Ordinal) || query.StartsWith("name", StringComparison.Ordinal) || query.StartsWith("birth", StringComparison.Ordinal) ? "Patient" : "Observation";

        var error = Assert.ThrowsAny<InvalidInputException>(() => One(type, query));

        Assert.Contains(mentioned, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Patient", "_has:Observation:subject:foo=x")]
    [InlineData("Patient", "_has:Observation:subject:code:foo=x")]
    [InlineData("Patient", "_has:Observation:subject:date=bad")]
    [InlineData("Patient", "_has:Observation:subject:_has:Provenance:target:recorded=bad")]
    [InlineData("Observation", "subject:Patient.birthdate=bad")]
    [InlineData("Observation", "subject:Patient._has:Observation:subject:foo=x")]
    public void A_refusal_inside_a_chain_or_has_names_the_parameter_as_sent(string type, string query)
    {
        var error = Assert.ThrowsAny<InvalidInputException>(() => One(type, query));

        Assert.Equal(query[..query.IndexOf('=', StringComparison.Ordinal)], Assert.Single(error.Outcome.Issue).Expression.Single());
    }

    [Fact]
    public void Token_in_not_in_above_and_below_name_the_value_sets_and_codes_the_hub_terminology_expands()
    {
        var @in = Assert.IsType<ValueSetCriterion>(One("Observation", "code:in=http://hub.example/ValueSet/a|2,ValueSet/b"));
        var notIn = Assert.IsType<ValueSetCriterion>(One("Observation", "code:not-in=http://hub.example/ValueSet/a"));
        var below = Assert.IsType<SubsumptionCriterion>(One("Observation", "code:below=http://hub.example/cs|x,http://hub.example/cs|y"));
        var above = Assert.IsType<SubsumptionCriterion>(One("Observation", "code:above=http://hub.example/cs|x"));
        var chained = Assert.IsType<ChainCriterion>(One("Observation", "subject:Patient.language:in=ValueSet/languages"));

        Assert.Equal(("code", "code:in", false), (@in.Param, @in.Name, @in.Negated));
        Assert.Equal(["http://hub.example/ValueSet/a|2", "ValueSet/b"], @in.ValueSets);
        Assert.True(notIn.Negated);
        Assert.Equal([new TokenCondition("http://hub.example/cs", "x"), new TokenCondition("http://hub.example/cs", "y")], below.Codes);
        Assert.False(below.Above);
        Assert.True(above.Above);
        Assert.Equal("language:in", Assert.IsType<ValueSetCriterion>(Assert.Single(chained.Targets).Inner).Name);
    }

    [Fact]
    public void Lenient_parsing_drops_what_it_cannot_apply_and_lists_it_as_warnings()
    {
        var query = Parser.ParseQuery(["Patient"], SearchParser.SplitQueryString("Patient", "foo=1&family=张&_sort=bar&_count=10"), lenient: true);

        Assert.Equal([new KeyValuePair<string, string>("family", "张")], query.Criteria.Applied);
        Assert.Equal(["foo", "_sort"], query.Criteria.Ignored.Select(i => i.Expression.Single()));
        Assert.Equal(10, query.Count);
    }

    [Fact]
    public void The_canonical_text_of_criteria_ignores_their_order()
    {
        var a = SearchCriteria.ParseQueryString("Patient", "family=张&birthdate=1990");
        var b = SearchCriteria.ParseQueryString("Patient", "birthdate=1990&family=张");

        Assert.Equal(a.Canonical("Patient"), b.Canonical("Patient"));
    }

    [Fact]
    public void Sort_and_includes_are_validated_against_the_parameters()
    {
        var query = Parser.ParseQuery(["Observation"],
            SearchParser.SplitQueryString("Observation", "_sort=-date,_id&_include=Observation:subject:Patient&_revinclude=Provenance:target&_include:iterate=Patient:organization"),
            lenient: false);

        Assert.Equal([new SortClause("date", IndexTable.Dates, true), new SortClause("_id", IndexTable.None, false)], query.Sort);
        Assert.Equal([new IncludeSpec("Observation", "subject", "Patient", false), new IncludeSpec("Patient", "organization", null, true)], query.Includes);
        Assert.Equal([new IncludeSpec("Provenance", "target", null, false)], query.RevIncludes);
    }

    [Fact]
    public void Text_normalisation_folds_case_accents_and_full_width_forms_but_keeps_chinese()
    {
        Assert.Equal("jose muller", TextNormalizer.Normalize("  JOSÉ   Müller "));
        Assert.Equal("abc123", TextNormalizer.Normalize("ＡＢＣ１２３"));
        Assert.Equal("张三", TextNormalizer.Normalize("张三"));
        Assert.Equal("strasse", TextNormalizer.Normalize("Straße"));
        Assert.Equal(TextNormalizer.Normalize("STRASSE"), TextNormalizer.Normalize("straẞe"));
    }
}
