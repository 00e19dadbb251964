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

    /// <summary>
    /// A POST takes the operation's parameters in its Parameters body: one in the query too would be either ignored or a
    /// second value, so it is a 400 naming it (<c>_format</c> and <c>_pretty</c> are the response's, not the operation's).
    /// </summary>
    public static void EnsureNoneInQuery(HttpRequest request, string operation)
    {
        if (request.Query.Keys.FirstOrDefault(k => k is not ("_format" or "_pretty")) is { } inQuery)
        {
            throw new InvalidInputException($"POST {operation} takes its parameters in the Parameters body, not '{inQuery}' in the query.", inQuery);
        }
    }

    /// <summary>A primitive parameter's value as text, or null.</summary>
    public static string? Text(this Parameters parameters, string name, string operation) =>
        (parameters.One(name, operation)?.Value as PrimitiveType)?.ToString();
}
