using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using InteropHub.Fhir;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using InteropHub.Testing;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>
/// The search conformance suite over real data (ConformanceData/: 8 Synthea patients with their 1,000-odd
/// resources, and a US Core bundle with Observations that carry quantities and components), loaded once per store
/// through the update handler. Each query runs through the hub's search handler (paging through every page) and
/// its answer is compared with what a brute-force evaluation of the parsed resources expects. The evaluator does
/// not use the hub's indexer or parser: it walks the POCOs and implements the comparison semantics of search.html
/// on its own (date ranges by precision and prefix, accent- and case-insensitive string prefixes, implied
/// precision of quantities, sort keys), so the two can only agree by both being right.
/// </summary>
public abstract class SyntheaSearchTests(SyntheaWorld world)
{
    private const string Sct = "http://snomed.info/sct";
    private const string Cvx = "http://hl7.org/fhir/sid/cvx";
    private const string Loinc = "http://loinc.org";
    private const string Ucum = "http://unitsofmeasure.org";
    private const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    private const string Cole = "3af3708d-41f1-cd80-f3dd-ec5ac76072bf";
    private const string Schmitt = "63ee2253-bdd5-da55-2ad2-b4984d0ad700";
    private const string Cummings = "6a4160eb-a793-2f86-2302-378626f46cce";

    public static TheoryData<string> Queries()
    {
        var data = new TheoryData<string>();
        foreach (var query in Cases.Keys)
        {
            data.Add(query);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task A_search_over_synthea_data_finds_what_a_brute_force_evaluation_of_the_resources_finds(string query)
    {
        var expected = Cases[query];
        var type = query[..query.IndexOf('?', StringComparison.Ordinal)];
        var matches = expected.Matches(world).ToList();
        var included = expected.Included?.Invoke(world, matches).Except(matches).Distinct().ToList() ?? [];

        var (foundMatches, foundIncluded) = await world.SearchAsync(type, query[(type.Length + 1)..].Replace("{between}", world.Between, StringComparison.Ordinal));

        Assert.True(matches.Count > 0 || expected.MayBeEmpty, "The brute-force evaluation found nothing: the case tests too little.");
        if (expected.Ordered)
        {
            Assert.Equal(matches.Select(Key), foundMatches);
        }
        else
        {
            Assert.Equal(matches.Select(Key).Order(StringComparer.Ordinal), foundMatches.Order(StringComparer.Ordinal));
        }

        Assert.Equal(included.Select(Key).Order(StringComparer.Ordinal), foundIncluded.Order(StringComparer.Ordinal));
    }

    private static string Key(Resource resource) => $"{resource.TypeName}/{resource.Id}";

    /// <param name="Matches">The expected matches, in the expected order when <paramref name="Ordered"/>.</param>
    /// <param name="Included">Given the matches, the resources _include/_revinclude add (matches are taken out).</param>
    private sealed record Case(
        Func<SyntheaWorld, IEnumerable<Resource>> Matches,
        Func<SyntheaWorld, IReadOnlyList<Resource>, IEnumerable<Resource>>? Included = null,
        bool Ordered = false,
        bool MayBeEmpty = false);

    private static Case Where<T>(Func<T, bool> predicate, bool mayBeEmpty = false) where T : Resource =>
        new(w => w.Of<T>().Where(predicate), MayBeEmpty: mayBeEmpty);

    private static Case Where<T>(Func<SyntheaWorld, T, bool> predicate) where T : Resource => new(w => w.Of<T>().Where(r => predicate(w, r)));

    /// <summary>Sorted by the keys in turn (missing values last either way), ties in load order as the store keeps them.</summary>
    private static Case Sorted<T>(Func<T, bool> predicate, params (Func<T, IComparable?> Key, bool Descending)[] keys) where T : Resource =>
        new(w =>
        {
            var all = w.Of<T>().Where(predicate).ToList();
            all.Sort((a, b) =>
            {
                foreach (var (key, descending) in keys)
                {
                    var (x, y) = (key(a), key(b));
                    var order = x is null ? (y is null ? 0 : 1) : y is null ? -1 : descending ? Compare(y, x) : Compare(x, y);
                    if (order != 0)
                    {
                        return order;
                    }
                }

                return w.LoadIndex(a).CompareTo(w.LoadIndex(b));
            });
            return all;
        }, Ordered: true);

    private static int Compare(IComparable x, IComparable y) =>
        x is string a && y is string b ? string.CompareOrdinal(a, b) : x.CompareTo(y);

    private static readonly Dictionary<string, Case> Cases = new(StringComparer.Ordinal)
    {
        // token: system|code, code alone, system| , :not, :text, :of-type, identifiers, telecom
        ["Condition?code=http://snomed.info/sct|195662009"] = Where<Condition>(c => Brute.Coded(c.Code, Sct, "195662009")),
        ["Immunization?vaccine-code=140"] = Where<Immunization>(i => Brute.Coded(i.VaccineCode, null, "140")),
        ["Procedure?code=http://snomed.info/sct|"] = Where<Procedure>(p => Brute.Coded(p.Code, Sct, null)),
        ["Encounter?class:not=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB"] = Where<Encounter>(e => !(e.Class?.System == ActCode && e.Class.Code == "AMB")),
        ["Condition?clinical-status:not=resolved"] = Where<Condition>(c => !Brute.Coded(c.ClinicalStatus, null, "resolved")),
        ["Condition?code:text=stress"] = Where<Condition>(c => Brute.TextStartsWith(c.Code, "stress")),
        ["MedicationRequest?code=http://www.nlm.nih.gov/research/umls/rxnorm|314076,http://www.nlm.nih.gov/research/umls/rxnorm|351109"] =
            Where<MedicationRequest>(m => Brute.Coded(m.Medication as CodeableConcept, "http://www.nlm.nih.gov/research/umls/rxnorm", "314076")
                || Brute.Coded(m.Medication as CodeableConcept, "http://www.nlm.nih.gov/research/umls/rxnorm", "351109")),
        ["Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-28-8122"] = Where<Patient>(p => p.Identifier.Any(i => i.System == "http://hl7.org/fhir/sid/us-ssn" && i.Value == "999-28-8122")),
        ["Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SS|999-75-6358"] =
            Where<Patient>(p => p.Identifier.Any(i => Brute.Coded(i.Type, "http://terminology.hl7.org/CodeSystem/v2-0203", "SS") && i.Value == "999-75-6358")),
        ["Patient?gender=female&language=urn:ietf:bcp:47|en-US"] =
            Where<Patient>(p => p.Gender == AdministrativeGender.Female && p.Communication.Any(c => Brute.Coded(c.Language, "urn:ietf:bcp:47", "en-US"))),
        ["Patient?phone=555-245-8374"] = Where<Patient>(p => p.Telecom.Any(t => t.System == ContactPoint.ContactPointSystem.Phone && t.Value == "555-245-8374")),
        ["AllergyIntolerance?criticality=low&category=food"] =
            Where<AllergyIntolerance>(a => a.Criticality == AllergyIntolerance.AllergyIntoleranceCriticality.Low
                && a.Category.Contains(AllergyIntolerance.AllergyIntoleranceCategory.Food)),

        // string: prefix, case and accent insensitive, :exact, :contains, several name parts
        ["Patient?family=SCHMITT"] = Where<Patient>(p => Brute.StartsWith(p.Name.Select(n => n.Family), "schmitt")),
        ["Patient?given=an"] = Where<Patient>(p => Brute.StartsWith(p.Name.SelectMany(n => n.Given), "an")),
        ["Patient?name=mrs"] = Where<Patient>(p => Brute.StartsWith(p.Name.SelectMany(Brute.Parts), "mrs")),
        ["Patient?family:exact=O'Keefe54"] = Where<Patient>(p => p.Name.Any(n => n.Family == "O'Keefe54")),
        ["Patient?family:exact=o'keefe54"] = Where<Patient>(p => p.Name.Any(n => n.Family == "o'keefe54"), mayBeEmpty: true),
        ["Patient?name:contains=EEF"] = Where<Patient>(p => p.Name.SelectMany(Brute.Parts).OfType<string>().Any(s => Brute.Norm(s).Contains("eef", StringComparison.Ordinal))),
        ["Patient?address-city=hays&address-postalcode=6706"] =
            Where<Patient>(p => Brute.StartsWith(p.Address.Select(a => a.City), "hays") && Brute.StartsWith(p.Address.Select(a => a.PostalCode), "6706")),
        // address and phonetic read the rows of the part parameters (address-city, family, …) as well as their own
        ["Patient?address=ma"] = Where<Patient>(p => Brute.StartsWith(p.Address.SelectMany(Brute.Parts), "ma")),
        ["Patient?address:exact=US"] = Where<Patient>(p => p.Address.SelectMany(Brute.Parts).Contains("US")),
        ["Patient?address:missing=true"] = Where<Patient>(p => !p.Address.SelectMany(Brute.Parts).Any(s => !string.IsNullOrWhiteSpace(s)), mayBeEmpty: true),
        ["Patient?phonetic=mrs"] = Where<Patient>(p => Brute.StartsWith(p.Name.SelectMany(Brute.Parts), "mrs")),
        ["Device?device-name=manual"] = Where<Device>(d => Brute.StartsWith(d.DeviceName.Select(n => n.Name), "manual")),

        // date: every prefix, at year, month, day, minute and second precision, with offsets, on dates, dateTimes and periods
        ["Patient?birthdate=1960-04-13"] = Where<Patient>(p => Brute.Date("1960-04-13", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=1960"] = Where<Patient>(p => Brute.Date("1960", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=ge2002-07-30"] = Where<Patient>(p => Brute.Date("ge2002-07-30", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=lt1970-01"] = Where<Patient>(p => Brute.Date("lt1970-01", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=sa1995-12-30"] = Where<Patient>(p => Brute.Date("sa1995-12-30", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=eb1963-07-15"] = Where<Patient>(p => Brute.Date("eb1963-07-15", [Brute.Range(p.BirthDate!)])),
        ["Patient?birthdate=ne1960"] = Where<Patient>(p => Brute.Date("ne1960", [Brute.Range(p.BirthDate!)])),
        ["Patient?death-date=le1971-10-01T13:44:40-04:00"] = Where<Patient>(p => p.Deceased is FhirDateTime d && Brute.Date("le1971-10-01T13:44:40-04:00", [Brute.Range(d.Value)])),
        ["Encounter?date=2016"] = Where<Encounter>(e => Brute.Date("2016", [Brute.Range(e.Period)])),
        ["Encounter?date=ge2020-03-01T00:00:00Z"] = Where<Encounter>(e => Brute.Date("ge2020-03-01T00:00:00Z", [Brute.Range(e.Period)])),
        ["Encounter?date=lt2000-01-01T00:00Z"] = Where<Encounter>(e => Brute.Date("lt2000-01-01T00:00Z", [Brute.Range(e.Period)])),
        ["Encounter?date=sa2021-06"] = Where<Encounter>(e => Brute.Date("sa2021-06", [Brute.Range(e.Period)])),
        ["Encounter?date=eb1995"] = Where<Encounter>(e => Brute.Date("eb1995", [Brute.Range(e.Period)])),
        ["Encounter?date=ne2019"] = Where<Encounter>(e => Brute.Date("ne2019", [Brute.Range(e.Period)])),
        ["Encounter?date=le2010-05-05"] = Where<Encounter>(e => Brute.Date("le2010-05-05", [Brute.Range(e.Period)])),
        ["Encounter?date=gt2022-01-01T10:00:00-05:00"] = Where<Encounter>(e => Brute.Date("gt2022-01-01T10:00:00-05:00", [Brute.Range(e.Period)])),
        ["Condition?onset-date=ge2015&onset-date=lt2016-07"] =
            Where<Condition>(c => Brute.Date("ge2015", Brute.Ranges(c.Onset)) && Brute.Date("lt2016-07", Brute.Ranges(c.Onset))),
        ["Condition?abatement-date=2015"] = Where<Condition>(c => Brute.Date("2015", Brute.Ranges(c.Abatement))),
        ["Procedure?date=2018-03"] = Where<Procedure>(p => Brute.Date("2018-03", Brute.Ranges(p.Performed))),
        ["Procedure?date=sa1971-09-20T12:00:00-04:00&date=eb1971-09-26"] =
            Where<Procedure>(p => Brute.Date("sa1971-09-20T12:00:00-04:00", Brute.Ranges(p.Performed)) && Brute.Date("eb1971-09-26", Brute.Ranges(p.Performed))),
        ["MedicationRequest?authoredon=ge2015-01-01T00:00:00-05:00&authoredon=lt2016"] =
            Where<MedicationRequest>(m => Brute.Date("ge2015-01-01T00:00:00-05:00", [Brute.Range(m.AuthoredOn)]) && Brute.Date("lt2016", [Brute.Range(m.AuthoredOn)])),
        ["Immunization?date=2019&vaccine-code=http://hl7.org/fhir/sid/cvx|140"] =
            Where<Immunization>(i => Brute.Date("2019", Brute.Ranges(i.Occurrence)) && Brute.Coded(i.VaccineCode, Cvx, "140")),

        // :missing
        ["Condition?abatement-date:missing=true"] = Where<Condition>(c => c.Abatement is null),
        ["Encounter?reason-code:missing=false"] = Where<Encounter>(e => e.ReasonCode.Count > 0),
        ["Patient?death-date:missing=false"] = Where<Patient>(p => p.Deceased is FhirDateTime),

        // quantity (implied precision, UCUM canonical units) and composite
        ["Observation?value-quantity=gt100"] = Where<Observation>(o => Brute.Quantity(o.Value, "gt", 100m, 0.5m)),
        ["Observation?value-quantity=16.2|http://unitsofmeasure.org|kg/m2"] = Where<Observation>(o => Brute.Quantity(o.Value, "eq", 16.2m, 0.05m, "kg/m2")),
        ["Observation?value-quantity=le65||%"] = Where<Observation>(o => Brute.Quantity(o.Value, "le", 65m, 0.5m, "%")),
        ["Observation?value-quantity=20094.14|http://unitsofmeasure.org|g"] =
            Where<Observation>(o => o.Value is Quantity { Code: "kg" } q && Math.Abs(q.Value!.Value * 1000m - 20094.14m) < 0.005m),
        ["Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100"] =
            Where<Observation>(o => o.Component.Any(c => Brute.Coded(c.Code, Loinc, "8480-6") && Brute.Quantity(c.Value, "gt", 100m, 0.5m))),
        ["Observation?component-code-value-quantity=http://loinc.org|8462-4$gt50"] =
            Where<Observation>(o => o.Component.Any(c => Brute.Coded(c.Code, Loinc, "8462-4") && Brute.Quantity(c.Value, "gt", 50m, 0.5m)), mayBeEmpty: true),

        // references, chains and _has
        ["Condition?subject=Patient/6a4160eb-a793-2f86-2302-378626f46cce"] = Where<Condition>(c => c.Subject?.Reference == $"Patient/{Cummings}"),
        ["Immunization?patient=63ee2253-bdd5-da55-2ad2-b4984d0ad700"] = Where<Immunization>(i => i.Patient?.Reference == $"Patient/{Schmitt}"),
        ["Condition?subject:Patient.birthdate=1960-04-13"] =
            Where<Condition>((w, c) => w.Resolve<Patient>(c.Subject) is { } p && Brute.Date("1960-04-13", [Brute.Range(p.BirthDate!)])),
        ["Procedure?encounter.class=http://terminology.hl7.org/CodeSystem/v3-ActCode|EMER"] =
            Where<Procedure>((w, p) => w.Resolve<Encounter>(p.Encounter) is { Class: { System: ActCode, Code: "EMER" } }),
        ["Condition?encounter.patient.family=cole"] =
            Where<Condition>((w, c) => w.Resolve<Encounter>(c.Encounter) is { } e && w.Resolve<Patient>(e.Subject) is { } p && Brute.StartsWith(p.Name.Select(n => n.Family), "cole")),
        ["Patient?_has:Condition:subject:code=http://snomed.info/sct|195662009"] =
            Where<Patient>((w, p) => w.Of<Condition>().Any(c => c.Subject?.Reference == $"Patient/{p.Id}" && Brute.Coded(c.Code, Sct, "195662009"))),
        ["Patient?_has:Immunization:patient:vaccine-code=208&gender=female"] =
            Where<Patient>((w, p) => p.Gender == AdministrativeGender.Female
                && w.Of<Immunization>().Any(i => i.Patient?.Reference == $"Patient/{p.Id}" && Brute.Coded(i.VaccineCode, null, "208"))),
        ["Patient?_has:Encounter:patient:_has:Procedure:encounter:code=http://snomed.info/sct|385763009"] =
            Where<Patient>((w, p) => w.Of<Encounter>().Any(e => e.Subject?.Reference == $"Patient/{p.Id}"
                && w.Of<Procedure>().Any(x => x.Encounter?.Reference == $"Encounter/{e.Id}" && Brute.Coded(x.Code, Sct, "385763009")))),

        // _include / _revinclude
        ["Condition?code=http://snomed.info/sct|195662009&_include=Condition:subject"] = new(
            w => w.Of<Condition>().Where(c => Brute.Coded(c.Code, Sct, "195662009")),
            (w, matches) => matches.OfType<Condition>().Select(c => w.Resolve<Patient>(c.Subject)).OfType<Patient>()),
        ["Encounter?class=EMER&_include=Encounter:subject&_revinclude=Condition:encounter"] = new(
            w => w.Of<Encounter>().Where(e => e.Class?.Code == "EMER"),
            (w, matches) => matches.OfType<Encounter>().Select(e => (Resource?)w.Resolve<Patient>(e.Subject)).OfType<Resource>()
                .Concat(w.Of<Condition>().Where(c => matches.Any(m => c.Encounter?.Reference == $"Encounter/{m.Id}")))),
        ["Patient?_id=63ee2253-bdd5-da55-2ad2-b4984d0ad700&_revinclude=Immunization:patient"] = new(
            w => w.Of<Patient>().Where(p => p.Id == Schmitt),
            (w, _) => w.Of<Immunization>().Where(i => i.Patient?.Reference == $"Patient/{Schmitt}")),

        // a parameter narrowing another to a type (Encounter's patient is subject.where(resolve() is Patient)) keeps no
        // rows for references stored here: it reads the wider one's, in searches, chains, _has, sorts and includes
        ["Encounter?class=EMER&_include=Encounter:patient"] = new(
            w => w.Of<Encounter>().Where(e => e.Class?.Code == "EMER"),
            (w, matches) => matches.OfType<Encounter>().Select(e => w.Resolve<Patient>(e.Subject)).OfType<Patient>()),
        ["Patient?_id=63ee2253-bdd5-da55-2ad2-b4984d0ad700&_revinclude=Encounter:patient"] = new(
            w => w.Of<Patient>().Where(p => p.Id == Schmitt),
            (w, _) => w.Of<Encounter>().Where(e => e.Subject?.Reference == $"Patient/{Schmitt}")),
        ["Encounter?patient.family=cole"] =
            Where<Encounter>((w, e) => w.Resolve<Patient>(e.Subject) is { } p && Brute.StartsWith(p.Name.Select(n => n.Family), "cole")),
        ["Patient?_has:Encounter:patient:class=EMER"] =
            Where<Patient>((w, p) => w.Of<Encounter>().Any(e => e.Subject?.Reference == $"Patient/{p.Id}" && e.Class?.Code == "EMER")),
        ["Encounter?patient:missing=true"] = Where<Encounter>(e => e.Subject?.Reference?.StartsWith("Patient/", StringComparison.Ordinal) != true, mayBeEmpty: true),
        ["Encounter?_sort=-patient,_id&_count=6"] = Sorted<Encounter>(_ => true, (e => e.Subject?.Reference, true), (e => e.Id, false)),

        // common parameters
        ["Patient?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"] =
            Where<Patient>(p => p.Meta?.Profile.Contains("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient") == true),
        ["Patient?_lastUpdated=lt{between}"] = Where<Patient>((w, p) => w.WrittenBeforeBetween(p)),
        ["Encounter?_lastUpdated=lt{between}"] = Where<Encounter>(_ => false, mayBeEmpty: true),
        ["Condition?_lastUpdated=ge{between}&clinical-status=active"] = Where<Condition>((w, c) => !w.WrittenBeforeBetween(c) && Brute.Coded(c.ClinicalStatus, null, "active")),

        // _sort, several keys, both directions, through several pages
        ["Patient?_sort=birthdate&_count=3"] = Sorted<Patient>(_ => true, (p => Brute.Range(p.BirthDate!).Low, false)),
        ["Patient?_sort=-birthdate,-family&_count=2"] =
            Sorted<Patient>(_ => true, (p => Brute.Range(p.BirthDate!).High, true), (p => p.Name.Select(n => Brute.Norm(n.Family!)).Max(StringComparer.Ordinal), true)),
        ["Patient?_sort=-address,_id&_count=4"] = Sorted<Patient>(_ => true,
            (p => p.Address.SelectMany(Brute.Parts).OfType<string>().Select(Brute.Norm).Max(StringComparer.Ordinal), true), (p => p.Id, false)),
        ["Patient?_sort=family&_count=4"] = Sorted<Patient>(_ => true, (p => p.Name.Select(n => Brute.Norm(n.Family!)).Min(StringComparer.Ordinal), false)),
        ["Encounter?subject=Patient/6a4160eb-a793-2f86-2302-378626f46cce&_sort=-date&_count=7"] =
            Sorted<Encounter>(e => e.Subject?.Reference == $"Patient/{Cummings}", (e => Brute.Range(e.Period).High, true)),
        ["Condition?patient=3af3708d-41f1-cd80-f3dd-ec5ac76072bf&_sort=onset-date"] =
            Sorted<Condition>(c => c.Subject?.Reference == $"Patient/{Cole}", (c => Brute.Ranges(c.Onset).Select(r => r.Low).DefaultIfEmpty().Min(), false)),
        ["MedicationRequest?_sort=-authoredon,_id&_count=25"] =
            Sorted<MedicationRequest>(_ => true, (m => Brute.Range(m.AuthoredOn).High, true), (m => m.Id, false)),
        ["Immunization?vaccine-code=140&_sort=date&_count=10"] =
            Sorted<Immunization>(i => Brute.Coded(i.VaccineCode, null, "140"), (i => Brute.Ranges(i.Occurrence).Select(r => r.Low).DefaultIfEmpty().Min(), false)),
    };

    /// <summary>The comparison semantics of search.html, implemented over the POCOs without the hub's code.</summary>
    private static class Brute
    {
        private static readonly Regex DateText = new(
            @"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$", RegexOptions.CultureInvariant);

        public static bool Coded(CodeableConcept? concept, string? system, string? code) =>
            concept?.Coding.Any(c => (system is null || c.System == system) && (code is null || c.Code == code)) == true;

        public static bool TextStartsWith(CodeableConcept? concept, string prefix) =>
            concept is not null && StartsWith(concept.Coding.Select(c => c.Display).Append(concept.Text), prefix);

        /// <summary>Lower case without accents.</summary>
        public static string Norm(string value)
        {
            var text = new StringBuilder();
            foreach (var c in value.Normalize(NormalizationForm.FormD))
            {
                if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark)
                {
                    text.Append(char.ToLowerInvariant(c));
                }
            }

            return text.ToString();
        }

        public static bool StartsWith(IEnumerable<string?> values, string prefix) =>
            values.Any(v => v is not null && Norm(v).StartsWith(Norm(prefix), StringComparison.Ordinal));

        public static IEnumerable<string?> Parts(HumanName name) => [name.Family, name.Text, .. name.Given, .. name.Prefix, .. name.Suffix];

        public static IEnumerable<string?> Parts(Address address) =>
            [address.Text, .. address.Line, address.City, address.District, address.State, address.PostalCode, address.Country];

        /// <summary>The instants a date, dateTime or instant denotes at its precision: [low, high) in UTC ticks; no zone means UTC.</summary>
        public static (long Low, long High) Range(string? text)
        {
            var m = DateText.Match(text ?? throw new ArgumentNullException(nameof(text)));
            Assert.True(m.Success, $"Not a date: {text}");
            int Part(int group, int otherwise) => m.Groups[group].Success ? int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture) : otherwise;

            var start = new DateTime(Part(1, 1), Part(2, 1), Part(3, 1), Part(4, 0), Part(5, 0), Part(6, 0), DateTimeKind.Utc);
            if (!m.Groups[4].Success)
            {
                var end = m.Groups[3].Success ? start.AddDays(1) : m.Groups[2].Success ? start.AddMonths(1) : start.AddYears(1);
                return (start.Ticks, end.Ticks);
            }

            var width = TimeSpan.FromMinutes(1);
            if (m.Groups[6].Success)
            {
                width = TimeSpan.FromSeconds(1);
            }

            if (m.Groups[7].Success)
            {
                var digits = m.Groups[7].Value.Length - 1;
                start = start.AddTicks((long)(decimal.Parse("0" + m.Groups[7].Value, CultureInfo.InvariantCulture) * TimeSpan.TicksPerSecond));
                width = TimeSpan.FromTicks((long)(TimeSpan.TicksPerSecond / Math.Pow(10, Math.Min(digits, 7))));
            }

            if (m.Groups[8].Success && m.Groups[8].Value != "Z")
            {
                var zone = m.Groups[8].Value;
                var offset = new TimeSpan(int.Parse(zone[1..3], CultureInfo.InvariantCulture), int.Parse(zone[4..], CultureInfo.InvariantCulture), 0);
                start = zone[0] == '+' ? start - offset : start + offset;
            }

            return (start.Ticks, (start + width).Ticks);
        }

        /// <summary>A period from its start's low to its end's high; a missing end is open.</summary>
        public static (long Low, long High) Range(Period? period) =>
            (period?.Start is { } start ? Range(start).Low : long.MinValue, period?.End is { } end ? Range(end).High : long.MaxValue);

        public static IEnumerable<(long Low, long High)> Ranges(DataType? value) => value switch
        {
            FhirDateTime dateTime => [Range(dateTime.Value)],
            Date date => [Range(date.Value)],
            Period period => [Range(period)],
            _ => [],
        };

        /// <summary>search.html#prefix for ranges: some value of the resource meets the prefix against the search value's range.</summary>
        public static bool Date(string search, IEnumerable<(long Low, long High)> values)
        {
            var hasPrefix = char.IsAsciiLetterLower(search[0]);
            var prefix = hasPrefix ? search[..2] : "eq";
            var q = Range(hasPrefix ? search[2..] : search);
            return values.Any(v =>
            {
                var contained = v.Low >= q.Low && v.High <= q.High;
                return prefix switch
                {
                    "eq" => contained,
                    "ne" => !contained,
                    "gt" => v.High > q.High,
                    "lt" => v.Low < q.Low,
                    "ge" => v.High > q.High || contained,
                    "le" => v.Low < q.Low || contained,
                    "sa" => v.Low >= q.High,
                    "eb" => v.High <= q.Low,
                    _ => throw new ArgumentException(prefix),
                };
            });
        }

        /// <summary>search.html#quantity: eq within the implied precision (± <paramref name="half"/>), the others against the value.</summary>
        public static bool Quantity(DataType? value, string prefix, decimal search, decimal half, string? code = null)
        {
            if (value is not Quantity { Value: { } v } quantity || (code is not null && quantity.Code != code))
            {
                return false;
            }

            return prefix switch
            {
                "eq" => v >= search - half && v < search + half,
                "gt" => v > search,
                "lt" => v < search,
                "ge" => v >= search,
                "le" => v <= search,
                _ => throw new ArgumentException(prefix),
            };
        }
    }
}

/// <summary>The conformance data loaded into one store, once for the whole suite, with the parsed resources in load order.</summary>
public abstract class SyntheaWorld : IAsyncLifetime
{
    private static readonly FhirSerializers Serializers = new();
    private static readonly FhirJsonDeserializer Json = new();

    private readonly List<Resource> _all = [];
    private readonly Dictionary<string, Resource> _byKey = new(StringComparer.Ordinal);
    private readonly Dictionary<Resource, int> _loadIndex = [];
    private SearchResources? _search;
    private int _writtenBefore;

    public IResourceStore Store { get; private set; } = null!;

    /// <summary>An instant after every Patient was written and before anything else was (for <c>_lastUpdated</c>).</summary>
    public string Between { get; private set; } = "";

    protected abstract Task<IResourceStore> OpenAsync();

    public IEnumerable<T> Of<T>() where T : Resource => _all.OfType<T>();

    public int LoadIndex(Resource resource) => _loadIndex[resource];

    public bool WrittenBeforeBetween(Resource resource) => _loadIndex[resource] < _writtenBefore;

    public T? Resolve<T>(ResourceReference? reference) where T : Resource =>
        reference?.Reference is { } key && _byKey.TryGetValue(key, out var resource) ? resource as T : null;

    public async Task InitializeAsync()
    {
        Store = await OpenAsync();
        await Store.MigrateAsync(CancellationToken.None);
        var folder = Path.Combine(AppContext.BaseDirectory, "ConformanceData");
        var patients = File.ReadLines(Path.Combine(folder, "Patient.ndjson")).Select(Json.DeserializeResource).ToList();
        var others = new List<Resource>();
        foreach (var type in new[] { "Encounter", "Condition", "Procedure", "MedicationRequest", "Immunization", "AllergyIntolerance", "Device" })
        {
            others.AddRange(File.ReadLines(Path.Combine(folder, $"{type}.ndjson")).Select(Json.DeserializeResource));
        }

        var bundle = (Bundle)Json.DeserializeResource(File.ReadAllText(Path.Combine(folder, "uscore_bundle_patient_client_test.json")));
        others.AddRange(bundle.Entry.Select(e => e.Resource!));

        var update = new UpdateResource(Store, new VersionWriter(Serializers, TimeProvider.System));
        async Task WriteAsync(Resource resource)
        {
            await update.HandleAsync(new UpdateRequest(resource.TypeName, resource.Id, null, resource, null), CancellationToken.None);
            _loadIndex[resource] = _all.Count;
            _all.Add(resource);
            _byKey[$"{resource.TypeName}/{resource.Id}"] = resource;
        }

        foreach (var patient in patients)
        {
            await WriteAsync(patient);
        }

        _writtenBefore = _all.Count;
        await Task.Delay(20);
        Between = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        await Task.Delay(20);
        foreach (var resource in others)
        {
            await WriteAsync(resource);
        }

        _search = new SearchResources(Store, new HubOptions(), SearchParser.Default, new LocalTerminology(Store, Serializers), Serializers);
    }

    /// <summary>Every page of the search: the matches' and the included resources' Type/id, in the order the pages give them.</summary>
    public async Task<(List<string> Matches, List<string> Included)> SearchAsync(string type, string query)
    {
        var (matches, included) = (new List<string>(), new List<string>());
        string? next = query;
        for (var pages = 0; next is not null; pages++)
        {
            Assert.True(pages < 100, "Paging did not end.");
            var page = await _search!.HandleAsync(new SearchRequest(type, SearchParser.SplitQueryString(type, next)), CancellationToken.None);
            matches.AddRange(page.Matches.Select(m => $"{m.ResourceType}/{m.Id}"));
            included.AddRange(page.Included.Select(m => $"{m.ResourceType}/{m.Id}"));
            next = page.NextQuery;
        }

        return (matches, included.Distinct().ToList());
    }

    public abstract Task DisposeAsync();

    protected static async Task Dispose(IResourceStore store)
    {
        switch (store)
        {
            case IAsyncDisposable disposable:
                await disposable.DisposeAsync();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }
    }
}

public sealed class SyntheaOnSqlite : SyntheaWorld
{
    private readonly string _folder = Directory.CreateTempSubdirectory("interophub-synthea-").FullName;

    protected override Task<IResourceStore> OpenAsync() =>
        Task.FromResult<IResourceStore>(new SqliteResourceStore(new SqliteStoreOptions { Path = Path.Combine(_folder, "store.db") }));

    public override async Task DisposeAsync()
    {
        await Dispose(Store);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}

public sealed class SyntheaOnPostgres : SyntheaWorld
{
    private string _database = "";

    protected override async Task<IResourceStore> OpenAsync()
    {
        _database = await PostgresCluster.CreateDatabaseAsync("synthea");
        return new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = _database });
    }

    public override async Task DisposeAsync()
    {
        await Dispose(Store);
        await PostgresCluster.DropDatabaseAsync(_database);
    }
}

public sealed class SyntheaSearchTestsOnSqlite(SyntheaOnSqlite world) : SyntheaSearchTests(world), IClassFixture<SyntheaOnSqlite>;

public sealed class SyntheaSearchTestsOnPostgres(SyntheaOnPostgres world) : SyntheaSearchTests(world), IClassFixture<SyntheaOnPostgres>;
