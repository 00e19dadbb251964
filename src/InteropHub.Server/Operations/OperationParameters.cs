using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Server.Formatting;

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

    /// <summary>A boolean parameter's value; false when absent.</summary>
    public static bool Flag(this Parameters parameters, string name, string operation) =>
        (parameters.One(name, operation)?.Value as FhirBoolean)?.Value ?? false;

    /// <summary>
    /// The concept a terminology operation is asked about, with the parameter that gave it: <c>code</c> with
    /// <c>system</c> and the version parameter, or <c>coding</c>, not both (an empty coding when there is neither).
    /// </summary>
    public static (Coding Coding, string Parameter) Concept(this Parameters parameters, string code, string system, string version, string coding, string operation)
    {
        var text = parameters.Text(code, operation);
        var given = parameters.One(coding, operation)?.Value as Coding;
        return (text, given) switch
        {
            (not null, not null) => throw new InvalidInputException($"{operation} takes {code} (with {system}) or {coding}, not both.", coding),
            (not null, null) => (new Coding(parameters.Text(system, operation), text) { Version = parameters.Text(version, operation) }, code),
            (null, not null) => (given, coding),
            _ => (new Coding(), code),
        };
    }
}

/// <summary>
/// The parameters an operation takes (its R4 OperationDefinition): each one's type, a data type's name or a resource
/// type's; and those the hub knows but does not support, each with why. Reads them from a GET's query (each value
/// converted to its type) or a POST's Parameters body, and refuses what the operation does not take with a 400 naming it.
/// </summary>
internal sealed class OperationSignature(string operation, IReadOnlyDictionary<string, string> types, IReadOnlyDictionary<string, string>? unsupported = null)
{
    /// <summary>The query as Parameters, each value of its parameter's type (a Coding written <c>system|code</c>), every one checked.</summary>
    public Parameters FromQuery(HttpRequest request)
    {
        var parameters = new Parameters();
        foreach (var (name, values) in request.Query)
        {
            foreach (var value in values.OfType<string>())
            {
                var bar = value.IndexOf('|', StringComparison.Ordinal);
                parameters.Add(name, TypeOf(name) switch
                {
                    "Coding" => bar < 0 ? new Coding(null, value) : new Coding(value[..bar], value[(bar + 1)..]),
                    "code" => new Code(value),
                    "uri" => new FhirUri(value),
                    "boolean" => value switch
                    {
                        "true" => new FhirBoolean(true),
                        "false" => new FhirBoolean(false),
                        _ => throw new InvalidInputException($"{name} must be true or false, not '{value}'.", name),
                    },
                    "integer" => int.TryParse(value, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var number)
                        ? new Integer(number)
                        : throw new InvalidInputException($"{name} must be an integer, not '{value}'.", name),
                    _ => new FhirString(value),
                });
            }
        }

        EnsureTaken(parameters);
        return parameters;
    }

    /// <summary>A POST's Parameters body (no operation parameter in the query), every one checked.</summary>
    public async Task<Parameters> FromBodyAsync(HttpRequest request, FhirRequestReader reader, CancellationToken ct)
    {
        OperationParameters.EnsureNoneInQuery(request, operation);
        var parameters = await reader.ReadResourceAsync(request, ct) as Parameters
            ?? throw new InvalidInputException($"POST {operation} takes a Parameters resource.", "Parameters");
        return Checked(request, parameters);
    }

    /// <summary>A POST's Parameters body already read (no operation parameter in the query), every one checked.</summary>
    public Parameters Checked(HttpRequest request, Parameters parameters)
    {
        OperationParameters.EnsureNoneInQuery(request, operation);
        EnsureTaken(parameters);
        return parameters;
    }

    /// <summary>Each parameter one the operation takes, with a value of its type: else a 400 naming it.</summary>
    private void EnsureTaken(Parameters parameters)
    {
        foreach (var parameter in parameters.Parameter)
        {
            var name = parameter.Name ?? "";
            if (unsupported?.GetValueOrDefault(name) is { } why)
            {
                throw new FhirException(System.Net.HttpStatusCode.BadRequest, OperationOutcome.IssueType.NotSupported,
                    $"The {operation} parameter '{name}' is not supported: {why}", name);
            }

            if (TypeOf(name) is not { } type)
            {
                throw new InvalidInputException($"{operation} has no parameter '{name}'.", name);
            }

            if (ModelInfo.IsKnownResource(type))
            {
                if (parameter.Resource?.TypeName != type)
                {
                    throw new InvalidInputException($"The {operation} parameter '{name}' is a {type} resource, not {parameter.Resource?.TypeName ?? parameter.Value?.TypeName ?? "empty"}.", name);
                }
            }
            else if (parameter.Value?.TypeName != type)
            {
                var given = parameter.Value is { } value ? $"a {value.TypeName}" : parameter.Resource is { } resource ? $"a {resource.TypeName} resource" : "no value";
                throw new InvalidInputException($"The {operation} parameter '{name}' is a {type} (value{char.ToUpperInvariant(type[0])}{type[1..]}), not {given}.", name);
            }
        }
    }

    private string? TypeOf(string name) => name is "_format" or "_pretty" ? "string" : types.GetValueOrDefault(name);
}
