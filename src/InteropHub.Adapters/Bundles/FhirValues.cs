using Hl7.Fhir.Model;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Bundles;

/// <summary>Small builders every adapter uses.</summary>
internal static class FhirValues
{
    /// <summary>A CodeableConcept of one coding; the display goes on the coding (the SDK's three-argument constructor would make it the text).</summary>
    public static CodeableConcept Coded(string system, string code, string? display = null) =>
        new() { Coding = [new Coding(system, code, display)] };

    /// <summary>A conditional reference to a county institution by its code; the seeds hold the Organizations.</summary>
    public static ResourceReference Organization(string code) =>
        new($"Organization?{Criteria.Identifier(Systems.OrganizationCode, code)}", CountyCodes.Institutions.GetValueOrDefault(code));
}
