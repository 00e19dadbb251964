using System.Collections.Concurrent;
using Fhir.Metrics;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>
/// Converts UCUM quantities to canonical units (search.html#quantity: "5.4|http://unitsofmeasure.org|mg" matches
/// 5400 ug) with the SDK's UCUM library. A unit's factor is computed once and cached: the library takes ~0.2 ms per
/// conversion, far too slow for index extraction. Units with an offset (Cel) or unknown to UCUM are not converted.
/// </summary>
public static class UcumUnits
{
    public const string System = "http://unitsofmeasure.org";

    private static readonly Lazy<SystemOfUnits> Units = new(UCUM.Load, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<string, (double Factor, string Unit)?> Factors = new(StringComparer.Ordinal);

    /// <summary>Loads the UCUM tables (about two seconds) ahead of the first quantity.</summary>
    public static void WarmUp() => _ = Units.Value;

    public static bool TryCanonical(string unit, double value, out string canonicalUnit, out double canonicalValue)
    {
        canonicalUnit = unit;
        canonicalValue = value;
        if (unit.Length == 0)
        {
            return false;
        }

        var factor = Factors.GetOrAdd(unit, Compute);
        if (factor is not { } f)
        {
            return false;
        }

        canonicalUnit = f.Unit;
        canonicalValue = value * f.Factor;
        return true;
    }

    private static (double, string)? Compute(string unit)
    {
        try
        {
            var one = Units.Value.Canonical(Units.Value.Quantity("1", unit));
            var factor = (double)one.Value.ToDecimal();
            return double.IsFinite(factor) && factor != 0 ? (factor, one.Metric.ToString()) : null;
        }
        catch (Exception)
        {
            // The library signals an unknown or non-multiplicative unit with assorted exception types.
            return null;
        }
    }
}
