using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Custom;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;

namespace InteropHub.Fhir.Tests;

public sealed class CustomSearchParameterTests
{
    private static SearchParameter DoseNumber(string expression = "Immunization.protocolApplied.doseNumber.ofType(positiveInt)") => new()
    {
        Url = "https://interophub.dev/fhir/SearchParameter/immunization-dose-number",
        Name = "ImmunizationDoseNumber",
        Status = PublicationStatus.Active,
        Code = "dose-number",
        Base = [ResourceType.Immunization],
        Type = SearchParamType.Number,
        Expression = expression,
    };

    [Fact]
    public void A_custom_parameter_is_indexed_at_once_but_refused_in_searches_with_the_reason_until_marked_searchable()
    {
        var registry = new SearchParameterRegistry();
        var custom = CustomSearchParameter.From(DoseNumber());
        registry.Add(custom.Bases, custom.Param);
        registry.MarkPending(custom.Param.Url, "re-index job 7 is running.");
        var parser = new SearchParser(registry, new HubOptions());
        var immunization = new Immunization { ProtocolApplied = [new() { DoseNumber = new PositiveInt(2) }] };

        Assert.Equal(2, new SearchIndexer(registry, new HubOptions()).Extract(immunization).Numbers.Single(n => n.Param == "dose-number").Value);
        var refused = Assert.ThrowsAny<InvalidInputException>(() => parser.ParseCriteria("Immunization", [new("dose-number", "2")]));
        Assert.Equal("Search parameter 'dose-number' cannot be used yet: re-index job 7 is running.", refused.Outcome.Issue.Single().Diagnostics);
        Assert.ThrowsAny<InvalidInputException>(() => parser.ParseQuery(["Immunization"], [new("_sort", "dose-number")], false));

        registry.MarkSearchable(custom.Param.Url);
        Assert.Single(parser.ParseCriteria("Immunization", [new("dose-number", "2")]).Criteria);
    }

    [Fact]
    public void A_changed_definition_has_another_key_so_the_stored_resources_are_indexed_again()
    {
        var first = CustomSearchParameter.From(DoseNumber());
        var same = CustomSearchParameter.From(DoseNumber());
        var changed = CustomSearchParameter.From(DoseNumber("Immunization.protocolApplied.doseNumber"));

        Assert.Equal(first.DefinitionKey, same.DefinitionKey);
        Assert.NotEqual(first.DefinitionKey, changed.DefinitionKey);
        Assert.StartsWith("https://interophub.dev/fhir/SearchParameter/immunization-dose-number#", first.DefinitionKey, StringComparison.Ordinal);
    }

    [Fact]
    public void Removing_a_custom_parameter_makes_it_unknown_again()
    {
        var registry = new SearchParameterRegistry();
        var custom = CustomSearchParameter.From(DoseNumber());
        registry.Add(custom.Bases, custom.Param);

        registry.Remove(custom.Param.Url);

        Assert.Null(registry.Find("Immunization", "dose-number"));
        Assert.Empty(registry.Custom);
    }
}
