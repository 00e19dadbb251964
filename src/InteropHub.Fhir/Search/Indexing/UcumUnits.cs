using System.Collections.Concurrent;
using Fhir.Metrics;
using InteropHub.Fhir.Storage;

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
    private static readonly ConcurrentDictionary<string, (decimal Factor, string Unit)?> Factors = new(StringComparer.Ordinal);

    /// <summary>Loads the UCUM tables (about two seconds) ahead of the first quantity.</summary>
    public static void WarmUp() => _ = Units.Value;

    /// <summary>
    /// The value in the unit's canonical unit, multiplied in decimals (the factors are exact decimals): 0.1 mg and
    /// 100 ug must be the same canonical value, which the doubles 0.1 * 0.001 and 100 * 1e-6 are not.
    /// </summary>
    public static bool TryCanonical(string unit, decimal value, out string canonicalUnit, out double canonicalValue)
    {
        canonicalUnit = unit;
        canonicalValue = NumberIndexRow.ToDouble(value);
        if (unit.Length == 0 || Factors.GetOrAdd(unit, Compute) is not { } f)
        {
            return false;
        }

        canonicalUnit = f.Unit;
        try
        {
            canonicalValue = NumberIndexRow.ToDouble(value * f.Factor);
        }
        catch (OverflowException)
        {
            // Past decimal's range (200 mol/L is 1.2e29 m-3): the product in doubles, for a stored value and a search's bounds alike.
            canonicalValue = (double)value * (double)f.Factor;
        }

        return true;
    }

    private static (decimal, string)? Compute(string unit)
    {
        try
        {
            var one = Units.Value.Canonical(Units.Value.Quantity("1", unit));
            var factor = one.Value.ToDecimal();
            return factor != 0 ? (factor, one.Metric.ToString()) : null;
        }
        catch (Exception)
        {
            // The library signals an unknown or non-multiplicative unit with assorted exception types.
            return null;
        }
    }
}
