using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using InteropHub.Hub.ResultRecognition;

namespace InteropHub.Hub.Tests.ResultRecognition;

public sealed class RecognitionRulesTests
{
    private const string Baisha = "369921101";
    private const string CountySeat = "369921100";
    private static readonly TimeSpan China = TimeSpan.FromHours(8);
    private static readonly RecognitionCatalogue Catalogue = LoadShippedCatalogue();

    [Fact]
    public void The_shipped_catalogue_maps_local_codes_and_loinc_to_the_same_item()
    {
        var byLocal = Catalogue.Find([new Coding(RecognizedResults.LisSystem, "HBA1C")]);
        var byLoinc = Catalogue.Find([new Coding("http://loinc.org", "4548-4")]);

        Assert.NotNull(byLocal);
        Assert.Same(byLocal, byLoinc);
        Assert.Equal(90, byLocal.ValidityDays);
        Assert.Null(Catalogue.Find([new Coding("http://loinc.org", "0000-0")]));
        // A code of another system is another code, however it is spelt; one without a system may be either.
        Assert.Null(Catalogue.Find([new Coding("http://snomed.info/sct", "HBA1C")]));
        Assert.Same(byLocal, Catalogue.Find([new Coding(null, "HBA1C")]));
    }

    [Fact]
    public void A_result_is_recognised_up_to_but_not_at_the_end_of_its_window()
    {
        var glucose = Item("GLU");
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);
        var result = new PriorResult(issued, 3, true, CountySeat);

        var lastMoment = RecognitionRules.Evaluate(glucose, result, issued.AddDays(7).AddTicks(-1), Baisha);
        var atExpiry = RecognitionRules.Evaluate(glucose, result, issued.AddDays(7), Baisha);

        Assert.True(lastMoment.Recognised);
        Assert.Equal(issued.AddDays(7), lastMoment.Expires);
        Assert.False(atExpiry.Recognised);
        Assert.Contains("7-day window", atExpiry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_result_from_after_the_time_asked_about_is_not_a_prior_result()
    {
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);

        var decision = RecognitionRules.Evaluate(Item("GLU"), new PriorResult(issued, 3, true, CountySeat), issued.AddMinutes(-1), Baisha);

        Assert.False(decision.Recognised);
    }

    [Theory]
    [InlineData(2, true)]
    [InlineData(1, false)]
    [InlineData(0, false)]
    public void The_performer_must_have_the_minimum_grade(int grade, bool recognised)
    {
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);

        var decision = RecognitionRules.Evaluate(Item("GLU"), new PriorResult(issued, grade, true, CountySeat), issued.AddDays(1), Baisha);

        Assert.Equal(recognised, decision.Recognised);
    }

    [Fact]
    public void A_grade_one_centre_is_enough_for_a_blood_count()
    {
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);

        Assert.True(RecognitionRules.Evaluate(Item("WBC"), new PriorResult(issued, 1, true, Baisha), issued.AddDays(1), CountySeat).Recognised);
    }

    [Fact]
    public void A_performer_without_quality_control_is_not_recognised()
    {
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);

        var decision = RecognitionRules.Evaluate(Item("GLU"), new PriorResult(issued, 3, false, CountySeat), issued.AddDays(1), Baisha);

        Assert.False(decision.Recognised);
        Assert.Contains("quality control", decision.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GLU", "439923100", false)]
    [InlineData("GLU", "369902", false)]
    [InlineData("HBSAG", "369902", true)]
    [InlineData("HBSAG", "439923", false)]
    public void Scope_limits_recognition_to_the_county_or_the_city(string item, string requesterDivision, bool recognised)
    {
        var issued = new DateTimeOffset(2025, 3, 1, 9, 0, 0, China);

        var decision = RecognitionRules.Evaluate(Item(item), new PriorResult(issued, 3, true, CountySeat), issued.AddDays(1), requesterDivision);

        Assert.Equal(recognised, decision.Recognised);
    }

    [Fact]
    public void A_rule_not_yet_in_force_recognises_nothing()
    {
        var issued = new DateTimeOffset(2023, 12, 30, 9, 0, 0, China);

        var decision = RecognitionRules.Evaluate(Item("GLU"), new PriorResult(issued, 3, true, CountySeat), issued.AddDays(1), Baisha);

        Assert.False(decision.Recognised);
        Assert.Contains("not in force", decision.Reason, StringComparison.Ordinal);
    }

    private static RecognitionItem Item(string code) => Catalogue.Items.Single(i => i.Code == code);

    private static RecognitionCatalogue LoadShippedCatalogue()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "mappings", "result-recognition.json");
        var codeSystem = new FhirJsonDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Strict)).Deserialize<CodeSystem>(File.ReadAllText(path));
        return RecognitionCatalogue.FromCodeSystem(codeSystem);
    }
}
