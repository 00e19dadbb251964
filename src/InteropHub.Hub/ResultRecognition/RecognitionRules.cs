namespace InteropHub.Hub.ResultRecognition;

/// <summary>A prior result as the rules see it.</summary>
/// <param name="PerformerLevel">Grade of the performing institution: 3 三级, 2 二级, 1 一级, 0 未定级.</param>
/// <param name="PerformerDivision">Administrative division code of the performer (GB/T 2260, 6 or more digits).</param>
public sealed record PriorResult(DateTimeOffset Issued, int PerformerLevel, bool QualityControlPassed, string PerformerDivision);

/// <summary>The answer for one result: recognised until <see cref="Expires"/>, or not, and why.</summary>
public sealed record RecognitionDecision(bool Recognised, DateTimeOffset Expires, string? Reason);

/// <summary>
/// When a prior result must be recognised (DOMAIN.md §2, 检验检查结果互认): its item is in the catalogue and in
/// force, it was issued no more than the item's validity window before the time asked about, its performer has at
/// least the minimum grade and passed quality control, and requester and performer are within the item's scope.
/// </summary>
public static class RecognitionRules
{
    public static RecognitionDecision Evaluate(RecognitionItem item, PriorResult result, DateTimeOffset at, string requesterDivision)
    {
        // The window is half-open: a 7-day item issued at 09:00 on day 1 is recognised until 09:00 on day 8.
        var expires = result.Issued.AddDays(item.ValidityDays);
        string? reason = null;
        if (item.EffectiveFrom > at || item.EffectiveTo < at)
        {
            reason = $"the recognition rule for {item.Code} is not in force on {at:yyyy-MM-dd}";
        }
        else if (result.Issued > at)
        {
            reason = "the result was issued after the time asked about";
        }
        else if (at >= expires)
        {
            reason = $"the {item.ValidityDays}-day window ended on {expires:yyyy-MM-dd HH:mm}";
        }
        else if (result.PerformerLevel < item.MinimumLevel)
        {
            reason = $"the performing institution's grade {result.PerformerLevel} is below the required {item.MinimumLevel}";
        }
        else if (!result.QualityControlPassed)
        {
            reason = "the performing institution has not passed quality control for this item";
        }
        else if (!WithinScope(item.Scope, result.PerformerDivision, requesterDivision))
        {
            reason = $"requester and performer are not within the same {item.Scope.ToString().ToLowerInvariant()}";
        }

        return new RecognitionDecision(reason is null, expires, reason);
    }

    /// <summary>GB/T 2260 codes: the first 4 digits name the city, the first 6 the county.</summary>
    private static bool WithinScope(RecognitionScope scope, string performer, string requester)
    {
        var digits = scope == RecognitionScope.City ? 4 : 6;
        return performer.Length >= digits && requester.Length >= digits
            && performer.AsSpan(0, digits).SequenceEqual(requester.AsSpan(0, digits));
    }
}
