using Hl7.Fhir.Model;
using InteropHub.Fhir;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Tests;

public sealed class SearchIndexerTests
{
    private static readonly SearchIndexer Indexer = new(SearchParameterRegistry.Default, new HubOptions { PublicBaseUrl = "https://hub.example.cn/fhir" });

    [Fact]
    public void A_chinese_name_is_indexed_by_family_given_and_the_whole_name_each_once()
    {
        var index = Indexer.Extract(new Patient { Name = [new HumanName { Family = "欧阳", Given = ["娜娜"] }] });

        // name reads family's and given's rows too (a union), so its own rows are only what they lack.
        Assert.Equal(["name:欧阳娜娜", "given:娜娜", "family:欧阳"],
            index.Strings.Select(s => $"{s.Param}:{s.Normalized}").OrderByDescending(s => s, StringComparer.Ordinal));
    }

    [Fact]
    public void An_address_writes_each_part_once_under_its_own_parameter_or_else_under_address()
    {
        var index = Indexer.Extract(new Patient
        {
            Address = [new Address { Text = "江西省清源市白沙镇沙坪村1组", Line = ["白沙镇", "沙坪村1组"], City = "清源市", District = "清溪县", State = "江西省", PostalCode = "331200", Country = "CHN" }],
        });

        Assert.Equal(
            ["address-city:清源市", "address-country:chn", "address-postalcode:331200", "address-state:江西省", "address:江西省清源市白沙镇沙坪村1组", "address:沙坪村1组", "address:清溪县", "address:白沙镇"],
            index.Strings.Select(s => $"{s.Param}:{s.Normalized}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_parameters_that_read_others_rows_are_unions_same_expressions_and_names_and_addresses()
    {
        var unions = Hl7.Fhir.Model.ModelInfo.SupportedResources
            .SelectMany(type => SearchParameterRegistry.Default.For(type).Values.Where(p => p.UnionOf is not null)
                .Select(p => $"{type}.{p.Name} = {string.Join(" + ", p.UnionOf!.Order(StringComparer.Ordinal))}"
                    + (p.PartsIndexedApart is { } apart ? $" (own rows without {string.Join(", ", apart.Order(StringComparer.Ordinal))})" : "")))
            .Order(StringComparer.Ordinal);

        const string address = "address + address-city + address-country + address-postalcode + address-state (own rows without city, country, postalCode, state)";
        Assert.Equal(
        [
            "CapabilityStatement.fhirversion = version",
            "CodeSystem.system = url",
            $"InsurancePlan.address = {address}",
            $"Location.address = {address}",
            "Observation.combo-code = code + component-code",
            "Observation.combo-code-value-concept = code-value-concept + component-code-value-concept",
            "Observation.combo-code-value-quantity = code-value-quantity + component-code-value-quantity",
            "Observation.combo-data-absent-reason = component-data-absent-reason + data-absent-reason",
            "Observation.combo-value-concept = component-value-concept + value-concept",
            "Observation.combo-value-quantity = component-value-quantity + value-quantity",
            $"Organization.address = {address}",
            $"Patient.address = {address}",
            "Patient.name = family + given + name (own rows without family, given)",
            "Patient.phonetic = family + given + name",
            $"Person.address = {address}",
            "Person.phonetic = name",
            $"Practitioner.address = {address}",
            "Practitioner.name = family + given + name (own rows without family, given)",
            "Practitioner.phonetic = family + given + name",
            $"RelatedPerson.address = {address}",
            "RelatedPerson.phonetic = name",
        ], unions);
    }

    [Fact]
    public void A_union_parameter_writes_no_rows_of_its_own()
    {
        var index = Indexer.Extract(new Observation
        {
            Code = new CodeableConcept("http://loinc.org", "85354-9"),
            Value = new Quantity(120, "mm[Hg]", "http://unitsofmeasure.org"),
            Component = [new Observation.ComponentComponent { Code = new CodeableConcept("http://loinc.org", "8480-6"), Value = new Quantity(140, "mm[Hg]", "http://unitsofmeasure.org") }],
        });

        var keys = index.Tokens.Select(t => t.Param).Concat(index.Quantities.Select(q => q.Param)).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(["code", "code-value-quantity$0", "code-value-quantity$1", "component-code", "component-code-value-quantity$0",
            "component-code-value-quantity$1", "component-value-quantity", "value-quantity"], keys);
    }

    [Fact]
    public void Strings_are_normalised_case_and_accent_insensitive_with_the_exact_text_kept()
    {
        var index = Indexer.Extract(new Patient { Name = [new HumanName { Family = "Müller-Lüdenscheidt", Given = ["ＪＯＳÉ"] }] });

        Assert.Contains(new StringIndexRow("family", "muller-ludenscheidt", "Müller-Lüdenscheidt"), index.Strings);
        Assert.Contains(new StringIndexRow("given", "jose", "ＪＯＳÉ"), index.Strings);
    }

    [Fact]
    public void Tokens_keep_system_code_and_normalised_display()
    {
        var observation = new Observation
        {
            Code = new CodeableConcept("http://loinc.org", "8480-6", "Systolic BP", "收缩压"),
            Subject = new ResourceReference("https://hub.example.cn/fhir/Patient/42/_history/3"),
            Performer = [new ResourceReference("http://other.example/fhir/Practitioner/9"), new ResourceReference { Identifier = new Identifier("urn:x", "7") }],
        };

        var index = Indexer.Extract(observation);

        Assert.Contains(new TokenIndexRow("code", "http://loinc.org", "8480-6", "systolic bp"), index.Tokens);
        Assert.Contains(new TokenIndexRow("code", "", "", "收缩压"), index.Tokens);
        Assert.Contains(new ReferenceIndexRow("subject", "Patient", "42", ""), index.References);
        // patient narrows subject to Patients: a reference stored here is subject's row only (SearchParam.SubsetOf).
        Assert.DoesNotContain(index.References, r => r.Param == "patient");
        Assert.Contains(new ReferenceIndexRow("performer", "", "", "http://other.example/fhir/Practitioner/9"), index.References);
        Assert.Contains(new TokenIndexRow("performer:identifier", "urn:x", "7"), index.Tokens);
    }

    [Fact]
    public void A_parameter_narrowing_another_to_a_type_keeps_rows_only_for_references_to_other_servers()
    {
        Assert.Equal(new ReferenceSubset("subject", "Patient"), SearchParameterRegistry.Default.Find("Encounter", "patient")!.SubsetOf);
        Assert.Equal(new ReferenceSubset("participant", "Practitioner"), SearchParameterRegistry.Default.Find("Encounter", "practitioner")!.SubsetOf);
        Assert.Equal(new ReferenceSubset("target", "Patient"), SearchParameterRegistry.Default.Find("Provenance", "patient")!.SubsetOf);
        Assert.Null(SearchParameterRegistry.Default.Find("Encounter", "subject")!.SubsetOf);

        var local = Indexer.Extract(new Encounter
        {
            Subject = new ResourceReference("Patient/1"),
            Participant = [new Encounter.ParticipantComponent { Individual = new ResourceReference("Practitioner/2") }],
        });
        Assert.Equal(["participant:Practitioner/2", "subject:Patient/1"],
            local.References.Select(r => $"{r.Param}:{r.TargetType}/{r.TargetId}").Order(StringComparer.Ordinal));

        var external = Indexer.Extract(new Encounter { Subject = new ResourceReference("http://other.example/fhir/Patient/9") });
        Assert.Equal(["patient", "subject"], external.References.Select(r => r.Param).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Where_resolve_is_keeps_only_references_to_that_type()
    {
        var index = Indexer.Extract(new Observation { Code = new CodeableConcept("http://loinc.org", "1"), Subject = new ResourceReference("Group/g1") });

        Assert.Contains(new ReferenceIndexRow("subject", "Group", "g1", ""), index.References);
        Assert.DoesNotContain(index.References, r => r.Param == "patient");
    }

    [Fact]
    public void Dates_are_indexed_as_the_interval_their_precision_denotes()
    {
        var index = Indexer.Extract(new Patient { BirthDate = "1990-02", Deceased = new FhirDateTime("2020-03-01T10:00:00+08:00") });

        var birth = index.Dates.Single(d => d.Param == "birthdate");
        Assert.Equal(new DateTime(1990, 2, 1, 0, 0, 0, DateTimeKind.Utc).Ticks, birth.Low);
        Assert.Equal(new DateTime(1990, 3, 1, 0, 0, 0, DateTimeKind.Utc).Ticks, birth.High);
        var death = index.Dates.Single(d => d.Param == "death-date");
        Assert.Equal(new DateTime(2020, 3, 1, 2, 0, 0, DateTimeKind.Utc).Ticks, death.Low);
        Assert.Equal(TimeSpan.TicksPerSecond, death.High - death.Low);
        Assert.Contains(new TokenIndexRow("deceased", "", "true"), index.Tokens);
    }

    [Fact]
    public void A_period_open_at_one_end_extends_to_the_end_of_time()
    {
        var index = Indexer.Extract(new Encounter { Period = new Period { Start = "2024-01-01" } });

        var date = index.Dates.Single(d => d.Param == "date");
        Assert.Equal(new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks, date.Low);
        Assert.Equal(DateRange.Max, date.High);
    }

    [Fact]
    public void A_period_ending_before_it_starts_is_indexed_as_its_start_so_every_range_has_low_below_high()
    {
        var index = Indexer.Extract(new Encounter { Period = new Period { Start = "2024-03-05", End = "2024-03-01" } });

        var date = index.Dates.Single(d => d.Param == "date");
        Assert.Equal(new DateTime(2024, 3, 5, 0, 0, 0, DateTimeKind.Utc).Ticks, date.Low);
        Assert.Equal(new DateTime(2024, 3, 6, 0, 0, 0, DateTimeKind.Utc).Ticks, date.High);
    }

    [Fact]
    public void Quantities_carry_ucum_canonical_units_and_composites_share_a_group_per_element()
    {
        var observation = new Observation
        {
            Code = new CodeableConcept("http://loinc.org", "85354-9"),
            Value = new Quantity(5.4m, "mg", "http://unitsofmeasure.org"),
            Component =
            [
                new Observation.ComponentComponent { Code = new CodeableConcept("http://loinc.org", "8480-6"), Value = new Quantity(140, "mm[Hg]", "http://unitsofmeasure.org") },
                new Observation.ComponentComponent { Code = new CodeableConcept("http://loinc.org", "8462-4"), Value = new Quantity(85, "mm[Hg]", "http://unitsofmeasure.org") },
            ],
        };

        var index = Indexer.Extract(observation);

        var value = index.Quantities.Single(q => q.Param == "value-quantity");
        Assert.Equal(("mg", 5.4, "g"), (value.Code, value.Value, value.CanonicalCode));
        Assert.Equal(0.0054, value.CanonicalValue, 10);
        var codes = index.Tokens.Where(t => t.Param == "component-code-value-quantity$0").ToDictionary(t => t.Code, t => t.Group);
        var values = index.Quantities.Where(q => q.Param == "component-code-value-quantity$1").ToDictionary(q => q.Value, q => q.Group);
        Assert.Equal(codes["8480-6"], values[140]);
        Assert.Equal(codes["8462-4"], values[85]);
        Assert.NotEqual(codes["8480-6"], codes["8462-4"]);
    }

    [Fact]
    public void A_composite_whose_value_component_is_absent_writes_no_rows()
    {
        var observation = new Observation
        {
            Code = new CodeableConcept("http://loinc.org", "8480-6"),
            Value = new Quantity(140, "mm[Hg]", "http://unitsofmeasure.org"),
        };

        var index = Indexer.Extract(observation);

        Assert.Contains(index.Tokens, t => t.Param == "code-value-quantity$0" && t.Code == "8480-6");
        Assert.Contains(index.Quantities, q => q.Param == "code-value-quantity$1" && q.Value == 140);
        Assert.DoesNotContain(index.Tokens, t => t.Param is "code-value-concept$0" or "code-value-date$0" or "code-value-string$0");
        Assert.DoesNotContain(index.Tokens, t => t.Param.StartsWith("component-", StringComparison.Ordinal));
    }

    [Fact]
    public void Identifier_types_are_indexed_for_of_type_and_common_parameters_for_every_resource()
    {
        var patient = new Patient
        {
            Identifier = [new Identifier("urn:mrn", "123") { Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR") }],
            Meta = new Meta
            {
                LastUpdated = new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero),
                Tag = [new Coding("urn:tags", "vip")],
                Profile = ["http://hub.example/StructureDefinition/p"],
                Source = "urn:his",
            },
            Id = "x1",
        };

        var index = Indexer.Extract(patient);

        Assert.Contains(new TokenIndexRow("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MR|123"), index.Tokens);
        Assert.Contains(new TokenIndexRow("_tag", "urn:tags", "vip"), index.Tokens);
        Assert.DoesNotContain(index.Tokens, t => t.Param == "_id"); // searched on the resource row
        Assert.Contains(new UriIndexRow("_profile", "http://hub.example/StructureDefinition/p"), index.Uris);
        Assert.Contains(new UriIndexRow("_source", "urn:his"), index.Uris);
        Assert.DoesNotContain(index.Dates, d => d.Param == "_lastUpdated"); // searched on the resource row's version key
    }

    [Fact]
    public void Every_expression_of_the_specification_compiles_and_nearly_all_run_without_the_fhirpath_engine()
    {
        var slow = new List<string>();
        foreach (var type in Resources.ResourceTypes.All)
        {
            foreach (var param in SearchParameterRegistry.Default.For(type).Values)
            {
                if (!ElementPath.Compile(param.Expression, type).IsFastPath)
                {
                    slow.Add($"{type}.{param.Name}");
                }
            }
        }

        Assert.Equal(new[] { "Patient.deceased", "Person.deceased", "Practitioner.deceased", "RelatedPerson.deceased" }.Intersect(slow), slow);
    }
}
