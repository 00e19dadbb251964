using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>
/// Search over the typed index tables, on every store: each parameter type, modifier and prefix, chains, _has,
/// composites, sorting with keyset paging, counting and includes. The expected ids are worked out by hand from
/// the small clinical world <see cref="SeedWorldAsync"/> writes.
/// </summary>
public abstract partial class StoreConformanceTests
{
    private const string Loinc = "http://loinc.org";
    private const string Ucum = "http://unitsofmeasure.org";

    [Theory]
    // string: prefix, case- and accent-insensitive, CJK prefix on the whole name and on family/given
    [InlineData("Patient", "name=张", "p1")]
    [InlineData("Patient", "name=张三", "p1")]
    [InlineData("Patient", "family=张&given=三", "p1")]
    [InlineData("Patient", "name=三", "p1")]
    [InlineData("Patient", "family=muller", "p2")]
    [InlineData("Patient", "given=JOSE", "p2")]
    [InlineData("Patient", "name=ＭÜＬ", "p2")]
    [InlineData("Patient", "name:exact=Müller", "p2")]
    [InlineData("Patient", "name:exact=muller", "")]
    [InlineData("Patient", "name:contains=ll", "p2")]
    [InlineData("Patient", "name:contains=%", "")]
    [InlineData("Patient", "address-city=清溪", "p1,p3")]
    [InlineData("Patient", "name=李,müller", "p2,p3")]
    // token: code, system|code, |code, system|, :not, :text, :of-type, booleans
    [InlineData("Patient", "gender=male", "p1")]
    [InlineData("Patient", "gender:not=male", "p2,p3")]
    [InlineData("Observation", "code=http://loinc.org|8480-6", "o1")]
    [InlineData("Observation", "code=8480-6,8339-4", "o1,o2")]
    [InlineData("Observation", "code=http://loinc.org|", "o1,o2,o3")]
    [InlineData("Observation", "code=|local-1", "o4")]
    [InlineData("Observation", "code:text=systolic", "o1")]
    [InlineData("Observation", "code:text=血压", "o3")]
    [InlineData("Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|mrn-1", "p1")]
    [InlineData("Patient", "identifier=mrn-1", "p1")]
    [InlineData("Patient", "active=true", "p1,p2")]
    [InlineData("Patient", "telecom=phone|13800000000", "p1")]
    [InlineData("Patient", "phone=13800000000", "p1")]
    // date: precision as a range, every prefix
    [InlineData("Patient", "birthdate=1990", "p1")]
    [InlineData("Patient", "birthdate=1990-01-01", "p1")]
    [InlineData("Patient", "birthdate=1985", "p2")]
    [InlineData("Patient", "birthdate=1985-06-15", "")]
    [InlineData("Patient", "birthdate=ne1990", "p2")]
    [InlineData("Patient", "birthdate=lt1986", "p2")]
    [InlineData("Patient", "birthdate=gt1985-06-15", "p1,p2")]
    [InlineData("Patient", "birthdate=ge1985-06", "p1,p2")]
    [InlineData("Patient", "birthdate=le1985-06-30", "p2")]
    [InlineData("Patient", "birthdate=sa1985", "p1")]
    [InlineData("Patient", "birthdate=eb1990-01-01", "p2")]
    [InlineData("Patient", "birthdate=ap1990-01-02", "p1")]
    [InlineData("Encounter", "date=2024-01-03", "")]
    [InlineData("Encounter", "date=ge2024-01-03", "e1")]
    [InlineData("Encounter", "date=2024-01", "e1")]
    [InlineData("Observation", "date=2024-05-01T18:00:00%2B08:00", "o1")]
    [InlineData("Observation", "date=2024-05-01T10:00", "o1")]
    // :missing
    [InlineData("Patient", "birthdate:missing=true", "p3")]
    [InlineData("Patient", "birthdate:missing=false", "p1,p2")]
    // number: implied precision and comparisons
    [InlineData("RiskAssessment", "probability=0.5", "r1")]
    [InlineData("RiskAssessment", "probability=0.50", "r1")]
    [InlineData("RiskAssessment", "probability=gt0.4", "r1")]
    [InlineData("RiskAssessment", "probability=lt0.5", "")]
    [InlineData("RiskAssessment", "probability=ap0.52", "r1")]
    // quantity: value, system and code, UCUM canonical units
    [InlineData("Observation", "value-quantity=120|http://unitsofmeasure.org|mm[Hg]", "o1")]
    [InlineData("Observation", "value-quantity=gt100", "o1,o2")]
    [InlineData("Observation", "value-quantity=3500||g", "o2")]
    [InlineData("Observation", "value-quantity=3.5|http://unitsofmeasure.org|kg", "o2")]
    [InlineData("Observation", "value-quantity=le3.4|http://unitsofmeasure.org|kg", "")]
    // value||unit: the code or the stated unit (search.html#quantity); with a system, the code only
    [InlineData("Observation", "value-quantity=120||mmHg", "o1")]
    [InlineData("Observation", "value-quantity=120||mm[Hg]", "o1")]
    [InlineData("Observation", "value-quantity=120|http://unitsofmeasure.org|mmHg", "")]
    [InlineData("Observation", "code-value-quantity=http://loinc.org|8480-6$120||mmHg", "o1")]
    // composite
    [InlineData("Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt130", "o3")]
    [InlineData("Observation", "component-code-value-quantity=http://loinc.org|8480-6$lt100", "")]
    [InlineData("Observation", "component-code-value-quantity=http://loinc.org|8462-4$85", "o3")]
    [InlineData("Observation", "component-code-value-quantity=http://loinc.org|8462-4$140", "")]
    // Observation's combo parameters: the Observation's own values or its components'
    [InlineData("Observation", "combo-code=8480-6", "o1,o3")]
    [InlineData("Observation", "combo-code=8462-4,8339-4", "o2,o3")]
    [InlineData("Observation", "combo-code:not=8480-6", "o2,o4")]
    [InlineData("Observation", "combo-code-value-quantity=http://loinc.org|8480-6$gt130", "o3")]
    [InlineData("Observation", "combo-code-value-quantity=http://loinc.org|8480-6$gt100", "o1,o3")]
    [InlineData("Observation", "combo-code-value-quantity=http://loinc.org|8462-4$140", "")]
    [InlineData("Observation", "combo-value-quantity=gt100", "o1,o2,o3")]
    [InlineData("Observation", "combo-value-quantity=lt90|http://unitsofmeasure.org|mm[Hg]", "o3")]
    [InlineData("Observation", "combo-value-quantity:missing=true", "o4")]
    [InlineData("Observation", "combo-value-quantity:missing=false", "o1,o2,o3")]
    // uri
    [InlineData("Patient", "_profile=http://hub.example/StructureDefinition/cn-patient", "p1")]
    [InlineData("Patient", "_profile:below=http://hub.example/StructureDefinition", "p1")]
    [InlineData("Patient", "_profile:above=http://hub.example/StructureDefinition/cn-patient/v2", "p1")]
    [InlineData("Patient", "_source=urn:his:county-hospital", "p2")]
    // reference: type/id, id, :type, :identifier, absolute external URL
    [InlineData("Observation", "subject=Patient/p1", "o1,o3")]
    [InlineData("Observation", "subject=p2", "o2")]
    [InlineData("Observation", "subject:Patient=p1", "o1,o3")]
    [InlineData("Observation", "patient=p1", "o1,o3")]
    [InlineData("Observation", "subject:identifier=urn:oid:2.16.156.10011.1.3|110101", "o4")]
    [InlineData("Observation", "performer=http://other.example/fhir/Practitioner/9", "o4")]
    // :missing on a reference: o4's subject carries only an identifier, and is there all the same
    [InlineData("Observation", "subject:missing=false", "o1,o2,o3,o4")]
    [InlineData("Observation", "subject:missing=true", "")]
    [InlineData("Observation", "subject:missing=false&code=local-1", "o4")]
    // chains and _has
    [InlineData("Observation", "subject:Patient.name=张", "o1,o3")]
    [InlineData("Observation", "patient.birthdate=1985", "o2")]
    [InlineData("Observation", "subject:Patient.organization.name=清溪县", "o1,o3")]
    [InlineData("Patient", "_has:Observation:patient:code=8339-4", "p2")]
    [InlineData("Patient", "_has:Observation:subject:value-quantity=gt100", "p1,p2")]
    [InlineData("Organization", "_has:Patient:organization:_has:Observation:patient:code=8480-6", "org1")]
    // common parameters
    [InlineData("Patient", "_id=p1,p3", "p1,p3")]
    [InlineData("Patient", "_id:not=p1", "p2,p3")]
    [InlineData("Patient", "_tag=http://hub.example/tags|vip", "p2")]
    [InlineData("Patient", "_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R", "p3")]
    [InlineData("Patient", "_lastUpdated=gt2000-01-01", "p1,p2,p3")]
    [InlineData("Patient", "_lastUpdated=lt2000-01-01", "")]
    [InlineData("Observation", "subject:Patient._lastUpdated=gt2000-01-01", "o1,o2,o3")]
    [InlineData("Patient", "_has:Observation:patient:_lastUpdated=gt2000-01-01&gender=male", "p1")]
    [InlineData("Patient", "gender=male,female&birthdate=gt1980&name=张", "p1")]
    public async Task Search_finds_exactly_the_expected_resources(string type, string query, string expected)
    {
        await SeedWorldAsync();

        var ids = (await FindAsync(type, query)).Select(m => m.Id).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(expected.Split(',', StringSplitOptions.RemoveEmptyEntries), ids);
    }

    [Fact]
    public async Task Sorting_by_a_quantity_compares_its_converted_value_whatever_unit_it_states()
    {
        // 2 kg stated as 公斤 (indexed by the stated unit too) against 500 g: 500 g comes first.
        await PutAsync(new Observation
        {
            Id = "qkg", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "29463-7"),
            Value = new Quantity { Value = 2, Unit = "公斤", System = Ucum, Code = "kg" },
        });
        await PutAsync(new Observation { Id = "qg", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "29463-7"), Value = new Quantity(500, "g", Ucum) });

        Assert.Equal(["qg", "qkg"], await PagedIdsAsync("Observation", "_sort=value-quantity&code=29463-7", pageSize: 1));
        Assert.Equal(["qkg", "qg"], await PagedIdsAsync("Observation", "_sort=-value-quantity&code=29463-7", pageSize: 1));
        Assert.Equal(["qkg"], await FindIdsAsync("Observation", "value-quantity=2||公斤"));
    }

    [Fact]
    public async Task A_number_on_the_boundary_of_a_search_values_precision_is_in_the_half_open_range_by_its_decimal_value()
    {
        // search.html#number: 0.8 means [0.75, 0.85), on decimal values; 0.8 + 0.05 in doubles is 0.8500000000000001.
        foreach (var (id, value) in new[] { ("n085", 0.85m), ("n075", 0.75m), ("n035", 0.35m), ("n115", 1.15m), ("n0", 0m) })
        {
            await PutAsync(new Observation
            {
                Id = id, Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "2339-0"), Value = new Quantity(value, "1", Ucum),
            });
        }

        await PutAsync(new RiskAssessment
        {
            Id = "r085", Status = ObservationStatus.Final, Subject = new ResourceReference("Patient/p1"),
            Prediction = [new RiskAssessment.PredictionComponent { Probability = new FhirDecimal(0.85m) }],
        });

        Assert.Equal(["n075"], await FindIdsAsync("Observation", "value-quantity=0.8"));
        Assert.Equal(["n035"], await FindIdsAsync("Observation", "value-quantity=0.4"));
        Assert.Empty(await FindIdsAsync("Observation", "value-quantity=1.1"));
        Assert.Equal(["n0", "n035", "n085", "n115"], (await FindIdsAsync("Observation", "value-quantity=ne0.8")).Order(StringComparer.Ordinal));
        Assert.Equal(["n0"], await FindIdsAsync("Observation", "value-quantity=0.0"));
        Assert.Empty(await FindIdsAsync("RiskAssessment", "probability=0.8"));
        Assert.Equal(["r085"], await FindIdsAsync("RiskAssessment", "probability=0.9"));
    }

    [Fact]
    public async Task A_quantity_converted_to_canonical_units_is_equal_to_the_same_amount_in_other_units_and_not_beyond_it()
    {
        // 0.1 mg is exactly 100 ug: eq, le and ge all hold, lt and gt do not, whichever unit the search states.
        await PutAsync(new Observation { Id = "mg01", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "2339-0"), Value = new Quantity(0.1m, "mg", Ucum) });

        var wrong = new List<string>();
        foreach (var (value, unit) in new[] { ("100", "ug"), ("0.1", "mg"), ("0.0001", "g"), ("100000", "ng") })
        {
            foreach (var (prefix, finds) in new[] { ("eq", true), ("le", true), ("ge", true), ("lt", false), ("gt", false), ("ne", false) })
            {
                var ids = await FindIdsAsync("Observation", $"value-quantity={prefix}{value}|{Ucum}|{unit}");
                if (ids.Contains("mg01") != finds)
                {
                    wrong.Add($"{prefix}{value} {unit}");
                }
            }
        }

        Assert.Empty(wrong);
    }

    [Fact]
    public async Task Code_value_date_finds_a_value_given_as_a_dateTime_as_well_as_a_period()
    {
        // R4 writes this composite's value as value.as(DateTime): the FHIRPath system type of a FHIR dateTime.
        await PutAsync(new Observation
        {
            Id = "vdt", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "11111-1"), Value = new FhirDateTime("2019-07-04T10:00:00Z"),
        });
        await PutAsync(new Observation
        {
            Id = "vper", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "11111-1"),
            Value = new Period(new FhirDateTime("2017-12-01"), new FhirDateTime("2018-01-10")),
        });

        Assert.Equal(["vdt"], await FindIdsAsync("Observation", "code-value-date=11111-1$2019"));
        Assert.Equal(["vper"], await FindIdsAsync("Observation", "code-value-date=11111-1$le2018-01-15"));
        Assert.Equal(["vdt"], await FindIdsAsync("Observation", "value-date=2019-07-04"));
        Assert.Empty(await FindIdsAsync("Observation", "code-value-date:missing=true&code=11111-1"));
    }

    [Fact]
    public async Task A_parameter_narrowing_another_to_a_type_matches_only_references_to_that_type()
    {
        // Observation's patient is subject.where(resolve() is Patient): a local subject is kept once, as a subject
        // row, and patient reads those of type Patient; a reference to another server stays a row of its own.
        await SeedWorldAsync();
        await PutAsync(new Group { Id = "g1", Type = Group.GroupType.Person, Actual = true });
        await PutAsync(new Observation
        {
            Id = "og", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6"), Subject = new ResourceReference("Group/g1"),
        });
        await PutAsync(new Observation
        {
            Id = "ox", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6"),
            Subject = new ResourceReference("http://other.example/fhir/Patient/9"),
        });

        Assert.Equal(["o1", "o3"], await FindIdsAsync("Observation", "patient=p1"));
        Assert.Empty(await FindIdsAsync("Observation", "patient=g1"));
        Assert.Equal(["og"], await FindIdsAsync("Observation", "subject=g1"));
        Assert.Equal(["ox"], await FindIdsAsync("Observation", "patient=http://other.example/fhir/Patient/9"));
        Assert.Equal(["o4", "og"], await FindIdsAsync("Observation", "patient:missing=true"));
        Assert.Equal(["o1", "o2", "o3", "ox"], await FindIdsAsync("Observation", "patient:missing=false"));
        Assert.Equal(["o1", "o3"], await FindIdsAsync("Observation", "patient.name=张"));
        Assert.Equal(["p1"], await FindIdsAsync("Patient", "_has:Observation:patient:code=8480-6"));
        Assert.Empty(await FindIdsAsync("Group", "_has:Observation:patient:code=8480-6"));
        Assert.Equal(["g1"], await FindIdsAsync("Group", "_has:Observation:subject:code=8480-6"));
        // By the reference's sort text ('/' + URL for another server's, before Patient/p1 and Patient/p2); the Group's
        // subject is no patient, so og sorts last.
        Assert.Equal(["ox", "o1", "o2", "og"], await PagedIdsAsync("Observation", "_sort=patient,_id&code=8480-6,8339-4", pageSize: 3));
    }

    [Fact]
    public async Task A_chain_through_a_reference_to_several_types_finds_the_matches_of_each_type_and_pages_through_them()
    {
        // Observation's subject may be a Patient, Group, Device or Location; Patient and Location have a name.
        await SeedWorldAsync();
        await PutAsync(new Location { Id = "l1", Name = "张家村卫生室" });
        await PutAsync(new Location { Id = "l2", Name = "李家村卫生室" });
        foreach (var (id, location) in new[] { ("ol1", "l1"), ("ol2", "l2") })
        {
            await PutAsync(new Observation
            {
                Id = id, Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6"), Subject = new ResourceReference($"Location/{location}"),
            });
        }

        Assert.Equal(["o1", "o3", "ol1"], await FindIdsAsync("Observation", "subject.name=张"));
        Assert.Equal(["o1", "o3", "ol1"], (await PagedIdsAsync("Observation", "subject.name=张", pageSize: 1)).Order(StringComparer.Ordinal));
        Assert.Equal(["ol1"], await FindIdsAsync("Observation", "subject:Location.name=张"));
        Assert.Equal(["ol1", "ol2"], await FindIdsAsync("Observation", "subject.name=张,李家&code=8480-6&subject:Location.name:missing=false"));
        Assert.Empty(await FindIdsAsync("Observation", "subject.name=无此人"));
    }

    [Fact]
    public async Task An_update_replaces_the_index_rows_and_a_delete_removes_them()
    {
        await SeedWorldAsync();
        var patient = World().OfType<Patient>().Single(p => p.Id == "p3");
        patient.BirthDate = "2001-02-03";
        patient.Name = [new HumanName { Family = "王", Given = ["五"] }];
        await PutAsync(patient);

        Assert.Equal(["p3"], await FindIdsAsync("Patient", "birthdate=2001"));
        Assert.Empty(await FindIdsAsync("Patient", "name=李"));
        Assert.Equal(["p3"], await FindIdsAsync("Patient", "name=王五"));

        await DeleteAsync("Patient", "p3");
        await DeleteAsync("Observation", "o2");

        Assert.Empty(await FindIdsAsync("Patient", "name=王"));
        Assert.Equal(["p1", "p2"], await FindIdsAsync("Patient", "birthdate:missing=false"));
        Assert.Empty(await FindIdsAsync("Patient", "_has:Observation:patient:code=8339-4"));
    }

    [Fact]
    public async Task Sorting_orders_by_several_keys_and_keyset_pages_through_every_match()
    {
        await SeedWorldAsync();
        for (var i = 0; i < 6; i++)
        {
            await PutAsync(new Patient { Id = $"s{i}", Gender = i % 2 == 0 ? AdministrativeGender.Female : AdministrativeGender.Male, BirthDate = $"200{i % 3}" });
        }

        var all = await PagedIdsAsync("Patient", "_sort=-birthdate,gender,_id", pageSize: 2);
        var byName = await PagedIdsAsync("Patient", "_sort=name&_id=p1,p2,p3", pageSize: 1);

        // 2002: s2 (female), s5 (male); 2001: s4 (female), s1 (male); 2000: s0 (female), s3 (male); then p1 1990,
        // p2 1985; p3 has no birth date and sorts last.
        Assert.Equal(["s2", "s5", "s4", "s1", "s0", "s3", "p1", "p2", "p3"], all);
        // By the lowest normalised name value, compared by code point: 'jose' (p2), 三 U+4E09 (p1), 李四 U+674E (p3).
        Assert.Equal(["p2", "p1", "p3"], byName);
    }

    [Fact]
    public async Task Sorting_by_a_union_parameter_orders_by_the_lowest_value_of_the_parameters_it_unites()
    {
        await SeedWorldAsync();

        // combo-code: o2 8339-4; o3 8462-4 (a component; its own code is 85354-9); o1 8480-6; o4 local-1.
        Assert.Equal(["o2", "o3", "o1", "o4"], await PagedIdsAsync("Observation", "_sort=combo-code", pageSize: 3));
        // The codes alone: a concept's text (o1 to o3 have one) is no code to sort by.
        Assert.Equal(["o2", "o1", "o3", "o4"], await PagedIdsAsync("Observation", "_sort=code", pageSize: 3));
    }

    [Theory]
    [InlineData("_sort=-birthdate,gender,_id")]
    [InlineData("_sort=birthdate")]
    [InlineData("gender=male,female")]
    [InlineData("_id=s0,s1,s2,s3,s4,s5,p1,p2,p3")]
    public async Task Paging_back_from_the_last_page_before_each_first_match_gives_the_same_pages_in_reverse(string queryString)
    {
        await SeedWorldAsync();
        for (var i = 0; i < 6; i++)
        {
            await PutAsync(new Patient { Id = $"s{i}", Gender = i % 2 == 0 ? AdministrativeGender.Female : AdministrativeGender.Male, BirthDate = $"200{i % 3}" });
        }

        var query = SearchParser.Default.ParseQuery(["Patient"], SearchParser.SplitQueryString("Patient", queryString), lenient: false);
        var forward = new List<IReadOnlyList<ResourceMatch>>();
        SearchCursor? cursor = null;
        do
        {
            var page = await Store.FindAsync(query.Criteria, query.Sort, cursor, 2, Ct);
            forward.Add(page);
            cursor = page.Count == 2 ? new SearchCursor(page[^1].SortValues!, page[^1].Rid) : null;
        }
        while (cursor is not null);

        forward.RemoveAll(p => p.Count == 0);
        var backward = new List<IReadOnlyList<ResourceMatch>> { forward[^1] };
        while (true)
        {
            var first = backward[^1][0];
            var page = (await Store.FindAsync(query.Criteria, query.Sort, new SearchCursor(first.SortValues!, first.Rid, Before: true), 2, Ct)).Reverse().ToList();
            if (page.Count == 0)
            {
                break;
            }

            backward.Add(page);
        }

        Assert.True(forward.Count >= 4);
        Assert.Equal(forward.Select(p => string.Join(',', p.Select(m => m.Id))), backward.AsEnumerable().Reverse().Select(p => string.Join(',', p.Select(m => m.Id))));
    }

    [Fact]
    public async Task Count_and_references_serve_total_and_include()
    {
        await SeedWorldAsync();

        var count = await Store.CountAsync(Criteria("Observation", "subject=Patient/p1"), Ct);
        var observations = await FindAsync("Observation", "code=http://loinc.org|");
        var subjects = await Store.FindReferencesAsync(observations.Select(o => o.Rid).ToList(), "subject", null, 10, Ct);
        var anything = await Store.FindReferencesAsync(observations.Select(o => o.Rid).ToList(), null, "Patient", 10, Ct);

        Assert.Equal(2, count);
        Assert.Equal(3, await Store.CountAsync(Criteria("Patient", "name:missing=false"), Ct));
        Assert.Equal(0, await Store.CountAsync(Criteria("Patient", "_id=nobody"), Ct));
        Assert.Equal(["Patient/p1", "Patient/p2"], subjects.Select(k => $"{k.ResourceType}/{k.Id}").Order(StringComparer.Ordinal));
        Assert.Equal(["Patient/p1", "Patient/p2"], anything.Select(k => $"{k.ResourceType}/{k.Id}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Referring_resources_are_found_through_the_links_asked_for_each_for_targets_of_its_type()
    {
        await SeedWorldAsync();
        ReferenceLink[] links = [new("Observation", "subject", "Patient"), new("Encounter", "subject", "Patient"), new("Patient", "organization", "Organization")];

        // The risk assessment refers to p1 too, through a link not asked for; o2 refers to Patient/p2, not to Group/p2.
        var found = await Store.FindReferringAsync(links, [new("Patient", "p1"), new("Organization", "org1"), new("Group", "p2")], [], 10, Ct);
        var first = await Store.FindReferringAsync(links, [new("Patient", "p1"), new("Organization", "org1")], [], 2, Ct);

        Assert.Equal(["Encounter/e1", "Observation/o1", "Observation/o3", "Patient/p1"], found.Select(m => $"{m.ResourceType}/{m.Id}").Order(StringComparer.Ordinal));
        Assert.Equal(found.OrderBy(m => m.Rid).Take(2).Select(m => m.Id), first.Select(m => m.Id));
    }

    [Fact]
    public async Task A_system_search_spans_the_types_named()
    {
        await SeedWorldAsync();
        var query = SearchParser.Default.ParseQuery(["Patient", "Observation"], [new("_id", "p1,o1,org1")], lenient: false);

        var matches = await Store.FindAsync(query.Criteria, [], null, 10, Ct);

        Assert.Equal(["Observation/o1", "Patient/p1"], matches.Select(m => $"{m.ResourceType}/{m.Id}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_search_over_several_types_reads_each_types_rows_as_that_type_defines_the_parameter()
    {
        // Immunization's patient has rows of its own; Encounter's and RiskAssessment's are subject's of type Patient;
        // Patient's name reads given's rows too, Person's only its own.
        await SeedWorldAsync();
        await PutAsync(new Immunization
        {
            Id = "im1", Status = Immunization.ImmunizationStatusCodes.Completed, VaccineCode = new CodeableConcept("http://hl7.org/fhir/sid/cvx", "08"),
            Patient = new ResourceReference("Patient/p1"), Occurrence = new FhirDateTime("2024-03-01"),
        });

        var byPatient = SearchParser.Default.ParseQuery(["Immunization", "Encounter", "RiskAssessment"], [new("patient", "p1")], lenient: false);
        var byName = SearchParser.Default.ParseQuery(["Person", "Patient"], [new("name", "三")], lenient: false);

        Assert.Equal(["Encounter/e1", "Immunization/im1", "RiskAssessment/r1"],
            (await Store.FindAsync(byPatient.Criteria, [], null, 10, Ct)).Select(m => $"{m.ResourceType}/{m.Id}").Order(StringComparer.Ordinal));
        Assert.Equal(["Patient/p1"], (await Store.FindAsync(byName.Criteria, [], null, 10, Ct)).Select(m => $"{m.ResourceType}/{m.Id}"));
    }

    [Fact]
    public async Task A_session_sorts_pages_counts_includes_and_reads_through_its_own_uncommitted_writes()
    {
        await SeedWorldAsync();
        const string measureUrl = "https://example.org/fhir/Measure/txget25";
        await using var session = await Store.BeginWriteAsync(Ct);
        foreach (var resource in new Resource[]
        {
            new Patient { Id = "s1", BirthDate = "2005-01-01", ManagingOrganization = new ResourceReference("Organization/org1") },
            new Patient { Id = "s2", BirthDate = "1988-01-01" },
            new Observation { Id = "n1", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6"), Subject = new ResourceReference("Patient/s1") },
            new Observation { Id = "n2", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6"), Subject = new ResourceReference("Patient/p1") },
            new Measure { Id = "m1", Url = measureUrl, Status = PublicationStatus.Active },
            new MeasureReport
            {
                Id = "mr1", Status = MeasureReport.MeasureReportStatus.Complete, Type = MeasureReport.MeasureReportType.Summary, Measure = measureUrl,
                Period = new Period(new FhirDateTime("2025-01-01"), new FhirDateTime("2025-12-31")),
            },
        })
        {
            var (row, index) = _writer.Prepare(resource, resource.Id!, 1, "PUT");
            await session.WriteAsync(row, index, Ct);
        }

        var query = SearchParser.Default.ParseQuery(["Patient"], SearchParser.SplitQueryString("Patient", "_sort=-birthdate&birthdate:missing=false"), lenient: false);
        var first = await session.FindAsync(query.Criteria, query.Sort, null, 2, Ct);
        var rest = await session.FindAsync(query.Criteria, query.Sort, new SearchCursor(first[^1].SortValues!, first[^1].Rid), 10, Ct);
        var rids = (await session.FindAsync(Criteria("Observation", "_id=n1"), [], null, 1, Ct)).Select(m => m.Rid).ToList();
        var reportRids = (await session.FindAsync(Criteria("MeasureReport", "_id=mr1"), [], null, 1, Ct)).Select(m => m.Rid).ToList();
        ReferenceLink[] subject = [new("Observation", "subject", "Patient")];
        var referring = await session.FindReferringAsync(subject, [new("Patient", "s1"), new("Patient", "p1")], [], 10, Ct);
        var read = await session.ReadManyAsync("Patient", ["s2", "nobody", "s1", "p1"], Ct);

        // 2005 s1 and 1990 p1, then 1988 s2 and 1985 p2: the session's patients among the stored ones.
        Assert.Equal(["s1", "p1", "s2", "p2"], first.Concat(rest).Select(m => m.Id));
        Assert.Equal(3, await session.CountAsync(Criteria("Observation", "subject=Patient/p1"), Ct));
        Assert.Equal(["Patient/s1"], (await session.FindReferencesAsync(rids, "subject", null, 10, Ct)).Select(m => $"{m.ResourceType}/{m.Id}"));
        Assert.Equal(["n1", "n2", "o1", "o3"], referring.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.Equal([measureUrl], await session.FindCanonicalReferencesAsync(reportRids, "measure", 10, Ct));
        Assert.Equal(["s2", "s1", "p1"], read.Select(r => r.Id));
        // The store reads committed data only: none of it until the session commits.
        Assert.Equal(["o1", "o3"], (await Store.FindReferringAsync(subject, [new("Patient", "s1"), new("Patient", "p1")], [], 10, Ct)).Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.Empty(await Store.ReadManyAsync("Patient", ["s1", "s2"], Ct));
    }

    private async Task<List<string>> PagedIdsAsync(string type, string queryString, int pageSize)
    {
        var pairs = SearchParser.SplitQueryString(type, queryString);
        var query = SearchParser.Default.ParseQuery([type], pairs, lenient: false);
        var ids = new List<string>();
        SearchCursor? cursor = null;
        while (true)
        {
            var page = await Store.FindAsync(query.Criteria, query.Sort, cursor, pageSize, Ct);
            ids.AddRange(page.Select(m => m.Id));
            if (page.Count < pageSize)
            {
                return ids;
            }

            cursor = new SearchCursor(page[^1].SortValues!, page[^1].Rid);
        }
    }

    private async Task SeedWorldAsync()
    {
        foreach (var resource in World())
        {
            await new UpdateResource(Store, _writer).HandleAsync(new UpdateRequest(resource.TypeName, resource.Id, null, resource, null), Ct);
        }
    }

    private static List<Resource> World()
    {
        var mr = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR");
        return
        [
            new Organization { Id = "org1", Name = "清溪县人民医院" },
            new Patient
            {
                Id = "p1", Active = true, Gender = AdministrativeGender.Male, BirthDate = "1990-01-01",
                Name = [new HumanName { Family = "张", Given = ["三"] }],
                Identifier = [new Identifier(Mrn, "mrn-1") { Type = mr }],
                Telecom = [new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "13800000000")],
                Address = [new Address { City = "清溪县" }],
                ManagingOrganization = new ResourceReference("Organization/org1"),
                Meta = new Meta { Profile = ["http://hub.example/StructureDefinition/cn-patient"] },
            },
            new Patient
            {
                Id = "p2", Active = true, Gender = AdministrativeGender.Female, BirthDate = "1985-06",
                Name = [new HumanName { Family = "Müller", Given = ["José"] }],
                Meta = new Meta { Tag = [new Coding("http://hub.example/tags", "vip")], Source = "urn:his:county-hospital" },
            },
            new Patient
            {
                Id = "p3", Active = false,
                Name = [new HumanName { Text = "李四" }],
                Address = [new Address { City = "清溪县" }],
                Meta = new Meta { Security = [new Coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")] },
            },
            new Observation
            {
                Id = "o1", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8480-6", "Systolic blood pressure"),
                Subject = new ResourceReference("Patient/p1"), Effective = new FhirDateTime("2024-05-01T10:00:00Z"),
                Value = new Quantity { Value = 120, Unit = "mmHg", System = Ucum, Code = "mm[Hg]" },
            },
            new Observation
            {
                Id = "o2", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "8339-4", "Birth weight"),
                Subject = new ResourceReference("Patient/p2"), Value = new Quantity(3500, "g", Ucum),
            },
            new Observation
            {
                Id = "o3", Status = ObservationStatus.Final, Code = new CodeableConcept(Loinc, "85354-9") { Text = "血压" },
                Subject = new ResourceReference("Patient/p1"),
                Component =
                [
                    new Observation.ComponentComponent { Code = new CodeableConcept(Loinc, "8480-6"), Value = new Quantity(140, "mm[Hg]", Ucum) },
                    new Observation.ComponentComponent { Code = new CodeableConcept(Loinc, "8462-4"), Value = new Quantity(85, "mm[Hg]", Ucum) },
                ],
            },
            new Observation
            {
                Id = "o4", Status = ObservationStatus.Final, Code = new CodeableConcept { Coding = [new Coding { Code = "local-1" }] },
                Subject = new ResourceReference { Identifier = new Identifier("urn:oid:2.16.156.10011.1.3", "110101") },
                Performer = [new ResourceReference("http://other.example/fhir/Practitioner/9")],
            },
            new Encounter
            {
                Id = "e1", Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
                Subject = new ResourceReference("Patient/p1"), Period = new Period(new FhirDateTime("2024-01-01"), new FhirDateTime("2024-01-05")),
            },
            new RiskAssessment
            {
                Id = "r1", Status = ObservationStatus.Final, Subject = new ResourceReference("Patient/p1"),
                Prediction = [new RiskAssessment.PredictionComponent { Probability = new FhirDecimal(0.5m) }],
            },
        ];
    }
}
