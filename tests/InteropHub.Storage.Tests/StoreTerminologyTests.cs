using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>
/// Token <c>:in</c> / <c>:not-in</c> / <c>:above</c> / <c>:below</c> expanded from the ValueSets and CodeSystems stored
/// in the store, on every store. The expected ids are worked out by hand from <see cref="SeedTerminologyAsync"/>.
/// </summary>
public abstract partial class StoreConformanceTests
{
    private const string Diagnoses = "http://hub.example/CodeSystem/diagnosis";
    private const string ValueSets = "http://hub.example/ValueSet/";

    [Theory]
    // :in / :not-in: a whole local code system less an exclude, listed concepts of an external system, nested ValueSets
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/respiratory", "t1,t2,t7")]
    [InlineData("Observation", "code:in=ValueSet/respiratory", "t1,t2,t7")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/respiratory|1", "t1,t2,t7")]
    [InlineData("Observation", "code:not-in=http://hub.example/ValueSet/respiratory", "t3,t4,t5,t6,t8")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/vitals", "t4")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/vitals-and-cardiac", "t4,t5")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/respiratory,http://hub.example/ValueSet/vitals", "t1,t2,t4,t7")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/respiratory-vitals", "")]
    [InlineData("Observation", "code:not-in=http://hub.example/ValueSet/respiratory-vitals", "t1,t2,t3,t4,t5,t6,t7,t8")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/expanded", "t6")]
    // filters on the concept hierarchy of a stored code system
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/filtered", "t1,t2,t7")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/below-pneumonia", "t1")]
    [InlineData("Observation", "code:in=http://hub.example/ValueSet/not-respiratory", "t3,t5")]
    // an element of type code bound to a required value set is indexed with that set's system
    [InlineData("Observation", "status:in=ValueSet/final-states&code:below=http://hub.example/CodeSystem/diagnosis|pneumonia", "t1")]
    [InlineData("Observation", "status:not-in=ValueSet/final-states", "")]
    // :below / :above: nested concepts and the subsumedBy property
    [InlineData("Observation", "code:below=http://hub.example/CodeSystem/diagnosis|respiratory", "t1,t2,t7")]
    [InlineData("Observation", "code:below=http://hub.example/CodeSystem/diagnosis|pneumonia", "t1")]
    [InlineData("Observation", "code:below=http://hub.example/CodeSystem/diagnosis|cardiac", "t3,t5")]
    [InlineData("Observation", "code:above=http://hub.example/CodeSystem/diagnosis|bacterial-pneumonia", "t1,t7")]
    [InlineData("Observation", "code:above=http://hub.example/CodeSystem/diagnosis|hypertension", "t3,t5")]
    [InlineData("Observation", "code:below=http://hub.example/CodeSystem/diagnosis|influenza,http://hub.example/CodeSystem/diagnosis|hypertension", "t2,t3")]
    // inside _has and chains, and AND-ed with other criteria
    [InlineData("Patient", "_has:Observation:subject:code:below=http://hub.example/CodeSystem/diagnosis|respiratory", "pa")]
    [InlineData("Patient", "_has:Observation:subject:code:in=http://hub.example/ValueSet/vitals-and-cardiac", "pb")]
    [InlineData("Observation", "subject:Patient.gender=female&code:not-in=http://hub.example/ValueSet/respiratory", "t3,t4")]
    public async Task Terminology_modifiers_find_exactly_the_codes_the_local_terminology_defines(string type, string query, string expected)
    {
        await SeedTerminologyAsync();

        var ids = (await FindExpandedAsync(type, query)).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(expected.Split(',', StringSplitOptions.RemoveEmptyEntries), ids);
    }

    [Theory]
    [InlineData("code:in=http://hub.example/ValueSet/unknown", "is not stored in the hub")]
    [InlineData("code:in=http://hub.example/ValueSet/respiratory|2", "is not stored in the hub")]
    [InlineData("code:in=ValueSet/unknown", "ValueSet/unknown is not stored in the hub")]
    [InlineData("code:in=http://hub.example/ValueSet/by-property", "which needs a terminology server")]
    [InlineData("code:in=http://hub.example/ValueSet/all-of-snomed", "http://snomed.info/sct, which is not stored in the hub")]
    [InlineData("code:not-in=http://hub.example/ValueSet/loop", "includes itself")]
    [InlineData("subject:Patient.language:in=ValueSet/unknown", "ValueSet/unknown is not stored in the hub")]
    [InlineData("_has:Observation:has-member:code:below=http://snomed.info/sct|1", "http://snomed.info/sct is not stored in the hub")]
    [InlineData("code:below=http://snomed.info/sct|22298006", "code system http://snomed.info/sct is not stored in the hub")]
    [InlineData("code:above=http://hub.example/CodeSystem/diagnosis|nonsense", "'nonsense' is not a code of the code system")]
    public async Task A_terminology_modifier_the_hub_cannot_expand_locally_is_a_400_naming_the_parameter_and_why(string query, string why)
    {
        await SeedTerminologyAsync();

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => FindExpandedAsync("Observation", query));

        var issue = e.Outcome.Issue.Single();
        Assert.Equal(query[..query.IndexOf('=', StringComparison.Ordinal)], issue.Expression.Single());
        Assert.Contains(why, issue.Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_value_set_is_used_by_the_next_search()
    {
        await SeedTerminologyAsync();
        Assert.Equal(["t4"], await FindExpandedAsync("Observation", "code:in=ValueSet/vitals"));

        var vitals = TerminologyWorld().OfType<ValueSet>().Single(v => v.Id == "vitals");
        vitals.Compose!.Include[0].Concept.Add(new ValueSet.ConceptReferenceComponent { Code = "8339-4" });
        await PutAsync(vitals);

        Assert.Equal(["t4", "t6"], (await FindExpandedAsync("Observation", "code:in=ValueSet/vitals")).Order(StringComparer.Ordinal));
    }

    private async Task<IReadOnlyList<string>> FindExpandedAsync(string type, string query)
    {
        var criteria = await new LocalTerminology(Store, Serializers).ExpandAsync(Criteria(type, query), Ct);
        return (await Store.FindAsync(type, criteria, null, 100, Ct)).Select(m => m.Id).ToList();
    }

    private async Task SeedTerminologyAsync()
    {
        foreach (var resource in TerminologyWorld())
        {
            await PutAsync(resource);
        }
    }

    private static List<Resource> TerminologyWorld()
    {
        static CodeSystem.ConceptDefinitionComponent Concept(string code, params CodeSystem.ConceptDefinitionComponent[] children) =>
            new() { Code = code, Display = code, Concept = [.. children] };

        var hypertension = Concept("hypertension");
        hypertension.Property.Add(new CodeSystem.ConceptPropertyComponent { Code = "subsumedBy", Value = new Code("cardiac") });
        var diagnoses = new CodeSystem
        {
            Id = "diagnosis",
            Url = Diagnoses,
            Status = PublicationStatus.Active,
            Content = CodeSystemContentMode.Complete,
            HierarchyMeaning = CodeSystem.CodeSystemHierarchyMeaning.IsA,
            Concept =
            [
                Concept("respiratory", Concept("pneumonia", Concept("bacterial-pneumonia")), Concept("influenza")),
                Concept("cardiac"),
                hypertension,
            ],
        };

        static ValueSet Set(string id, params ValueSet.ConceptSetComponent[] include) => new()
        {
            Id = id,
            Url = ValueSets + id,
            Status = PublicationStatus.Active,
            Compose = new ValueSet.ComposeComponent { Include = [.. include] },
        };

        static ValueSet.ConceptSetComponent Codes(string system, params string[] codes) =>
            new() { System = system, Concept = codes.Select(c => new ValueSet.ConceptReferenceComponent { Code = c }).ToList() };

        var respiratory = Set("respiratory", new ValueSet.ConceptSetComponent { System = Diagnoses });
        respiratory.Version = "1";
        respiratory.Compose!.Exclude.Add(Codes(Diagnoses, "cardiac", "hypertension"));
        var vitals = Set("vitals", Codes(Loinc, "8480-6", "8462-4"));
        var vitalsAndCardiac = Set("vitals-and-cardiac", new ValueSet.ConceptSetComponent { ValueSet = [ValueSets + "vitals"] }, Codes(Diagnoses, "cardiac"));
        // Both in respiratory and in vitals: none.
        var respiratoryVitals = Set("respiratory-vitals", new ValueSet.ConceptSetComponent { ValueSet = [ValueSets + "respiratory", ValueSets + "vitals"] });
        var expanded = new ValueSet
        {
            Id = "expanded",
            Url = ValueSets + "expanded",
            Status = PublicationStatus.Active,
            Expansion = new ValueSet.ExpansionComponent
            {
                Timestamp = "2024-01-01",
                Contains = [new ValueSet.ContainsComponent { System = Loinc, Code = "8339-4" }],
            },
        };
        var finalStates = Set("final-states", Codes("http://hl7.org/fhir/observation-status", "final", "amended"));
        var filtered = Set("filtered", new ValueSet.ConceptSetComponent
        {
            System = Diagnoses,
            Filter = [new ValueSet.FilterComponent { Property = "concept", Op = FilterOperator.IsA, Value = "respiratory" }],
        });
        ValueSet Filtered(string id, string property, FilterOperator op, string value) => Set(id, new ValueSet.ConceptSetComponent
        {
            System = Diagnoses,
            Filter = [new ValueSet.FilterComponent { Property = property, Op = op, Value = value }],
        });
        var belowPneumonia = Filtered("below-pneumonia", "concept", FilterOperator.DescendentOf, "pneumonia");
        var notRespiratory = Filtered("not-respiratory", "concept", FilterOperator.IsNotA, "respiratory");
        var byProperty = Filtered("by-property", "status", FilterOperator.Equal, "retired");
        var snomed = Set("all-of-snomed", new ValueSet.ConceptSetComponent { System = "http://snomed.info/sct" });
        var loop = Set("loop", new ValueSet.ConceptSetComponent { ValueSet = [ValueSets + "loop"] });

        static Observation Coded(string id, string? system, string code, string? subject = null) => new()
        {
            Id = id,
            Status = ObservationStatus.Final,
            Code = new CodeableConcept(system, code),
            Subject = subject is null ? null : new ResourceReference($"Patient/{subject}"),
        };

        return
        [
            diagnoses, respiratory, vitals, vitalsAndCardiac, respiratoryVitals, expanded, finalStates, filtered, belowPneumonia, notRespiratory, byProperty, snomed, loop,
            new Patient { Id = "pa", Gender = AdministrativeGender.Male },
            new Patient { Id = "pb", Gender = AdministrativeGender.Female },
            Coded("t1", Diagnoses, "bacterial-pneumonia", "pa"),
            Coded("t2", Diagnoses, "influenza"),
            Coded("t3", Diagnoses, "hypertension", "pb"),
            Coded("t4", Loinc, "8480-6", "pb"),
            Coded("t5", Diagnoses, "cardiac"),
            Coded("t6", Loinc, "8339-4"),
            Coded("t7", Diagnoses, "respiratory"),
            // A coding without a system: in no ValueSet and below no concept, whatever its code.
            Coded("t8", null, "influenza"),
        ];
    }
}
