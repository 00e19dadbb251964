using System.Collections.Frozen;
using System.Globalization;

namespace InteropHub.Adapters.Township;

/// <summary>
/// township-export.md §2: "A value outside its plausible range (systolic 400 mmHg, weight 0) is a warning, not a
/// rejection." The bounds are wide physiological limits for any age the tables cover (newborns to the very old), so
/// only entry errors (a digit too many, a unit mixed up, an empty value written as 0) fall outside; the row is applied
/// as it came.
/// </summary>
internal static class PlausibleRanges
{
    private static readonly FrozenDictionary<string, (decimal Low, decimal High, string Unit)> Bounds = new Dictionary<string, (decimal, decimal, string)>
    {
        ["sbp"] = (50, 300, "mmHg"),
        ["dbp"] = (20, 200, "mmHg"),
        ["heart_rate"] = (20, 250, "次/分"),
        ["fetal_heart_rate"] = (60, 220, "次/分"),
        ["weight_kg"] = (0.3m, 300, "kg"),
        ["height_cm"] = (30, 250, "cm"),
        ["length_cm"] = (20, 250, "cm"),
        ["head_circ_cm"] = (20, 70, "cm"),
        ["bmi"] = (8, 80, "kg/m²"),
        ["fpg_mmol"] = (1, 40, "mmol/L"),
        ["hba1c_pct"] = (3, 20, "%"),
        ["hb_gl"] = (30, 250, "g/L"),
        ["fundal_height_cm"] = (5, 50, "cm"),
        ["abdominal_circ_cm"] = (40, 200, "cm"),
        ["dose_ml"] = (0.05m, 5, "mL"),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Each column of the row whose number lies outside its range, with what to say of it.</summary>
    public static IEnumerable<(string Column, string Detail)> Outside(IEnumerable<string> columns, Func<string, string> cell)
    {
        foreach (var column in columns)
        {
            if (Bounds.TryGetValue(column, out var bounds)
                && decimal.TryParse(cell(column), NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                && (value < bounds.Low || value > bounds.High))
            {
                yield return (column, string.Create(CultureInfo.InvariantCulture,
                    $"{column} {cell(column)} 超出合理范围 {bounds.Low}–{bounds.High} {bounds.Unit}，已按原值接收"));
            }
        }
    }
}
