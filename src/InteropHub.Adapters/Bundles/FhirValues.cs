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

    /// <summary>
    /// A FHIRPath Patch (fhirpatch.html) of one operation: <c>delete</c> of what <paramref name="path"/> selects, or, with
    /// a <paramref name="value"/>, <c>replace</c> of it.
    /// </summary>
    public static Parameters FhirPathPatch(string path, DataType? value = null)
    {
        var operation = new Parameters.ParameterComponent
        {
            Name = "operation",
            Part =
            [
                new Parameters.ParameterComponent { Name = "type", Value = new Code(value is null ? "delete" : "replace") },
                new Parameters.ParameterComponent { Name = "path", Value = new FhirString(path) },
            ],
        };
        if (value is not null)
        {
            operation.Part.Add(new Parameters.ParameterComponent { Name = "value", Value = value });
        }

        return new Parameters { Parameter = [operation] };
    }
}
