using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Server.Operations;

/// <summary>Reading an operation's Parameters body (operations.html): each named parameter at most once.</summary>
internal static class OperationParameters
{
    /// <summary>The parameter of that name, or null; given twice, a 400 naming it (the SDK's GetSingle throws, a 500).</summary>
    public static Parameters.ParameterComponent? One(this Parameters parameters, string name, string operation) =>
        parameters.Parameter.Where(p => p.Name == name).ToList() switch
        {
            [] => null,
            [var one] => one,
            _ => throw new InvalidInputException($"The {operation} parameter '{name}' is given more than once.", name),
        };

    /// <summary>A primitive parameter's value as text, or null.</summary>
    public static string? Text(this Parameters parameters, string name, string operation) =>
        (parameters.One(name, operation)?.Value as PrimitiveType)?.ToString();
}
