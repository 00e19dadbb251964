using InteropHub.Adapters.Identity;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;

namespace InteropHub.Server.Adapters;

/// <summary>
/// The review list of records that may be one person (<see cref="ProbableMatches"/>): <c>GET /adapters/probable-matches</c>
/// lists the pairs; <c>POST /adapters/probable-matches/dismiss?patient=Patient/a&amp;patient=Patient/b</c> records that a
/// pair is two persons, and <c>…/undismiss</c> with the same query takes that back.
/// </summary>
public static class ProbableMatchEndpoints
{
    public static IEndpointRouteBuilder MapProbableMatchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/adapters/probable-matches", ListAsync);
        app.MapPost("/adapters/probable-matches/dismiss", (HttpRequest request, ProbableMatches matches, CancellationToken ct) =>
            DismissAsync(request, matches, undo: false, ct));
        app.MapPost("/adapters/probable-matches/undismiss", (HttpRequest request, ProbableMatches matches, CancellationToken ct) =>
            DismissAsync(request, matches, undo: true, ct));
        return app;
    }

    private static async Task<IResult> ListAsync(ProbableMatches matches, CancellationToken ct)
    {
        var list = await matches.ListAsync(ct);
        return Results.Json(new
        {
            scanned = list.Scanned,
            dismissed = list.Dismissed,
            pairs = list.Pairs.Select(pair => new
            {
                grade = pair.Comparison.Grade.ToString().ToLowerInvariant(),
                score = pair.Comparison.Score,
                agree = pair.Comparison.Agree,
                differ = pair.Comparison.Conflict,
                patients = pair.Patients.Select(p => new
                {
                    reference = $"Patient/{p.Id}",
                    name = p.Name.Select(n => n.Text ?? string.Join(" ", new[] { n.Family }.Concat(n.Given ?? []).Where(part => !string.IsNullOrEmpty(part)))).FirstOrDefault(),
                    gender = p.Gender?.ToString().ToLowerInvariant(),
                    birthDate = p.BirthDate,
                    identifiers = p.Identifier.Select(i => $"{i.System}|{i.Value}"),
                }),
            }),
        });
    }

    private static async Task<IResult> DismissAsync(HttpRequest request, ProbableMatches matches, bool undo, CancellationToken ct)
    {
        var named = request.Query["patient"];
        if (named.Count != 2 || request.Query.Keys.Any(k => k != "patient"))
        {
            throw new InvalidInputException("Name the pair as patient=Patient/{id}&patient=Patient/{id}, and nothing else.", "patient");
        }

        var ids = named.Select(n => (n ?? "").StartsWith("Patient/", StringComparison.Ordinal) ? n![8..] : n ?? "").ToList();
        foreach (var id in ids)
        {
            ResourceTypes.EnsureValidId(id);
        }

        await matches.DismissAsync(ids[0], ids[1], ct, undo);
        return undo ? Results.Json(new { undismissed = ids.Select(id => $"Patient/{id}") }) : Results.Json(new { dismissed = ids.Select(id => $"Patient/{id}") });
    }
}
