using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>OBX → Observation (his-hl7v2.md §4 OBX): typed value, UCUM unit, reference range, interpretation.</summary>
internal static class ObservationMapping
{
    private const string Interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
    private static readonly string[] VitalSigns = ["8480-6", "8462-4", "8867-4", "8310-5", "9279-1", "29463-7", "8302-2", "39156-5", "59408-5"];

    /// <summary>The Observation, or null when a value is unusable (the error is recorded).</summary>
    public static Observation? Map(HisContext context, Hl7Segment obx, PatientInfo patient, ResourceReference? encounter,
        Hl7Time? defaultTime, ResourceReference? performer, string institution)
    {
        if (obx[3].IsEmpty)
        {
            context.Error(RejectionReason.MissingRequired, obx.Location(3), "OBX-3 检验项目为空");
            return null;
        }

        var code = HisContext.Concept(obx[3]);
        AddLoinc(code);
        var observation = new Observation
        {
            Status = Status(context, obx),
            Code = code,
            Subject = patient.Reference,
            Encounter = encounter,
        };

        var isVital = code.Coding.Any(c => c.System == Systems.Loinc && VitalSigns.Contains(c.Code));
        observation.Category.Add(isVital
            ? FhirValues.Coded("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")
            : FhirValues.Coded("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory"));

        if (!MapValue(context, obx, observation))
        {
            return null;
        }

        if (obx[8].Value is { Length: > 0 } flag && !AbnormalFlags.Contains(flag.ToUpperInvariant()))
        {
            context.Error(RejectionReason.UnknownCode, obx.Location(8), $"OBX-8 异常标志 {flag} 不在 HL7 0078 表中");
            return null;
        }

        MapReferenceRange(obx[7].Text.Trim(), observation);
        MapInterpretation(obx[8].Value, observation);

        var effective = context.PastTime(obx, 14) ?? defaultTime;
        if (effective is { } time)
        {
            observation.Effective = new FhirDateTime(time.ToFhirDateTime());
        }

        if (context.Practitioner(obx[16], institution) is { } observer)
        {
            observation.Performer.Add(observer);
        }

        // OBX-23 performing organisation (XON, institution code in XON.10); missing → the sender (§4 OBX).
        var organization = obx[23].Component(10).Subcomponent(1).Value is { Length: > 0 } org
            ? context.KnownOrganization(org, obx.Location(23, 0, 10))
            : performer;
        if (organization is not null)
        {
            observation.Performer.Add(organization);
        }

        foreach (var note in Notes(context.Message, obx))
        {
            observation.Note.Add(new Annotation { Text = note });
        }

        return observation;
    }

    /// <summary>The NTE segments right after <paramref name="segment"/>.</summary>
    public static IEnumerable<string> Notes(Hl7Message message, Hl7Segment segment)
    {
        for (var i = segment.Index; i < message.Segments.Count && message.Segments[i].Id == "NTE"; i++)
        {
            if (message.Segments[i][3].Text.Trim() is { Length: > 0 } text)
            {
                yield return text;
            }
        }
    }

    /// <summary>Adds the LOINC code of a county LIS item when the sender did not send it (the lab ConceptMap, §5 ORU^R01).</summary>
    private static void AddLoinc(CodeableConcept code)
    {
        if (code.Coding.Any(c => c.System == Systems.Loinc))
        {
            return;
        }

        var local = code.Coding.FirstOrDefault(c => c.System == Systems.Local("QXLIS"));
        if (local is not null && CountyCodes.LabItems.TryGetValue(local.Code ?? "", out var item) && item.Loinc is { } loinc)
        {
            code.Coding.Add(new Coding(Systems.Loinc, loinc));
        }
    }

    private static ObservationStatus Status(HisContext context, Hl7Segment obx)
    {
        switch (obx[11].Value.ToUpperInvariant())
        {
            case "F":
                return ObservationStatus.Final;
            case "C":
                return ObservationStatus.Corrected;
            case "P":
                return ObservationStatus.Preliminary;
            case "X":
                return ObservationStatus.Cancelled;
            case "R" or "I" or "S":
                return ObservationStatus.Registered;
            case "D" or "W":
                return ObservationStatus.EnteredInError;
            case "":
                context.Error(RejectionReason.MissingRequired, obx.Location(11), "OBX-11 结果状态为空");
                return ObservationStatus.Unknown;
            default:
                context.Error(RejectionReason.UnknownCode, obx.Location(11), $"OBX-11 结果状态 {obx[11].Value} 不在 HL7 0085 中");
                return ObservationStatus.Unknown;
        }
    }

    private static bool MapValue(HisContext context, Hl7Segment obx, Observation observation)
    {
        var valueType = obx[2].Value.ToUpperInvariant();
        if (valueType.Length > 0 && !ValueTypes.Contains(valueType))
        {
            context.Error(RejectionReason.UnknownCode, obx.Location(2), $"OBX-2 值类型 {obx[2].Value} 不在 HL7 0125 表中");
            return false;
        }

        var value = obx[5];
        if (value.IsEmpty)
        {
            if (observation.Status != ObservationStatus.Cancelled)
            {
                observation.DataAbsentReason = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown", "Unknown");
            }

            return true;
        }

        if (valueType is "NM" or "SN" or "DT" or "TS" or "DTM" && obx.Repetitions(5).Count(r => !r.IsEmpty) > 1)
        {
            // One number or time per result: a repeated OBX-5 of these types is kept to its first value, and said so.
            context.Warn(obx.Location(5, 2), $"OBX-5 有 {obx.Repetitions(5).Count(r => !r.IsEmpty)} 个重复值，{valueType} 类型的结果只取第一个 ({value.Value})");
        }

        switch (valueType)
        {
            case "":
                context.Error(RejectionReason.MissingRequired, obx.Location(2), "OBX-2 值类型为空，无法解读 OBX-5");
                return false;
            case "SN":
                return StructuredNumber(context, obx, observation);
            case "NM":
                var text = TextNormalizer.Number(value.Value);
                var comparator = Comparator(ref text);
                if (!decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
                {
                    context.Error(RejectionReason.Malformed, obx.Location(5), $"OBX-5 {value.Value} 不是数值(OBX-2 = NM)", 102);
                    return false;
                }

                var quantity = ToQuantity(number, obx[6]);
                quantity.Comparator = comparator;
                observation.Value = quantity;
                return true;
            case "CE" or "CWE" or "CNE":
                observation.Value = HisContext.Concept(value);
                return true;
            case "DT" or "TS" or "DTM":
                if (!Hl7Time.TryParse(value.Value, out var time))
                {
                    context.Error(RejectionReason.ImpossibleDate, obx.Location(5), $"OBX-5 {value.Value} 不是有效日期");
                    return false;
                }

                observation.Value = new FhirDateTime(time.ToFhirDateTime());
                return true;
            default:
                // ST, TX, FT and the other types of HL7 0125: the text, repetitions as lines, escapes resolved.
                observation.Value = new FhirString(string.Join('\n', obx.Repetitions(5).Select(r => r.Text.Trim())));
                return true;
        }
    }

    /// <summary>
    /// SN (HL7 v2.5 §2.A.71): comparator ^ number ^ separator ^ number. A number alone is a Quantity (with its
    /// comparator), a ratio (":" or "/") a Ratio such as a titre 1:320, a range ("-") a Range.
    /// </summary>
    private static bool StructuredNumber(HisContext context, Hl7Segment obx, Observation observation)
    {
        var value = obx[5];
        var comparatorText = value.Component(1).Value.Trim();
        var comparator = Comparator(ref comparatorText);
        decimal? Number(int component) =>
            TextNormalizer.Number(value.Component(component).Value) is { Length: > 0 } text
            && decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) ? n : null;
        var (first, separator, second) = (Number(2), value.Component(3).Value.Trim(), Number(4));
        var wellFormed = comparatorText.Length == 0 && first is not null && (separator, second) switch
        {
            ("", null) => value.Component(4).IsEmpty,
            (":" or "/", not null) => true,
            ("-", not null) => comparator is null,
            _ => false,
        };
        if (!wellFormed)
        {
            context.Error(RejectionReason.Malformed, obx.Location(5), $"OBX-5 {value.Value} 不是结构化数值(OBX-2 = SN: 比较符^数值^分隔符^数值)", 102);
            return false;
        }

        var unit = obx[6];
        if (separator.Length == 0)
        {
            var quantity = ToQuantity(first!.Value, unit);
            quantity.Comparator = comparator;
            observation.Value = quantity;
        }
        else if (separator == "-")
        {
            observation.Value = new Hl7.Fhir.Model.Range
            {
                Low = ToQuantity(first!.Value, unit), High = ToQuantity(second!.Value, unit),
            };
        }
        else
        {
            var numerator = new Quantity { Value = first, Comparator = comparator };
            observation.Value = new Ratio { Numerator = numerator, Denominator = new Quantity { Value = second } };
        }

        return true;
    }

    private static Quantity.QuantityComparator? Comparator(ref string text)
    {
        foreach (var (prefix, comparator) in new (string, Hl7.Fhir.Model.Quantity.QuantityComparator)[]
        {
            ("<=", Quantity.QuantityComparator.LessOrEqual), (">=", Quantity.QuantityComparator.GreaterOrEqual),
            ("≤", Quantity.QuantityComparator.LessOrEqual), ("≥", Quantity.QuantityComparator.GreaterOrEqual),
            ("<", Quantity.QuantityComparator.LessThan), (">", Quantity.QuantityComparator.GreaterThan),
        })
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal))
            {
                text = text[prefix.Length..].Trim();
                return comparator;
            }
        }

        return null;
    }

    /// <summary>A quantity with the unit as printed and, when known, its UCUM code (µ/μ/u variants unified, §9).</summary>
    internal static Quantity ToQuantity(decimal value, Hl7Value unitField)
    {
        var printed = PrintedUnit(unitField).Replace('\u00B5', '\u03BC');
        var quantity = new Quantity { Value = value };
        if (printed.Length == 0)
        {
            return quantity;
        }

        quantity.Unit = printed;
        if (Ucum(printed) is { } code)
        {
            quantity.System = Systems.Ucum;
            quantity.Code = code;
        }

        return quantity;
    }

    /// <summary>
    /// OBX-6 as the LIS printed it. A unit such as <c>10^9/L</c> sent unescaped splits at the component separator into
    /// <c>10</c> and <c>9/L</c> (his-hl7v2.md §9): a number followed by a component that starts with a digit is joined
    /// back, where a coded unit's second component is its text.
    /// </summary>
    private static string PrintedUnit(Hl7Value unitField)
    {
        var first = unitField.Component(1).Text.Trim();
        var second = unitField.Component(2).Text.Trim();
        return first.Length > 0 && first.All(char.IsAsciiDigit) && second.Length > 0 && char.IsAsciiDigit(second[0]) ? $"{first}^{second}" : first;
    }

    internal static string? Ucum(string unit) => unit switch
    {
        "μmol/L" or "umol/L" => "umol/L",
        "mmol/L" => "mmol/L",
        "nmol/L" => "nmol/L",
        "pmol/L" => "pmol/L",
        "g/L" => "g/L",
        "mg/L" => "mg/L",
        "mg/dL" => "mg/dL",
        "ng/mL" => "ng/mL",
        "U/L" => "U/L",
        "IU/L" => "[IU]/L",
        "%" => "%",
        "10^9/L" or "10*9/L" or "×10^9/L" => "10*9/L",
        "10^12/L" or "10*12/L" or "×10^12/L" => "10*12/L",
        "mm[Hg]" or "mmHg" => "mm[Hg]",
        "mL" or "ml" => "mL",
        "fL" => "fL",
        "pg" => "pg",
        "s" => "s",
        "kg" => "kg",
        "g" => "g",
        "cm" => "cm",
        "/min" or "次/分" => "/min",
        "℃" or "°C" => "Cel",
        _ => null,
    };

    /// <summary>OBX-7: <c>3.5-5.3</c>, <c>3.5～5.3</c>, <c>&lt;5.18</c>, <c>≤1.70</c>, <c>&gt;1.04</c> or text such as <c>阴性</c>.</summary>
    private static void MapReferenceRange(string text, Observation observation)
    {
        if (text.Length == 0)
        {
            return;
        }

        var range = new Observation.ReferenceRangeComponent { Text = text };
        var unit = observation.Value as Quantity;
        var normalized = TextNormalizer.Number(text).Replace('～', '~');
        var separator = normalized.IndexOfAny(['~', '-'], 1);
        if (separator > 0 && Parse(normalized[..separator]) is { } low && Parse(normalized[(separator + 1)..]) is { } high)
        {
            range.Low = Bound(low, unit);
            range.High = Bound(high, unit);
        }
        else if ((normalized.StartsWith('<') || normalized.StartsWith('≤')) && Parse(normalized.TrimStart('<', '≤', '=')) is { } max)
        {
            range.High = Bound(max, unit);
        }
        else if ((normalized.StartsWith('>') || normalized.StartsWith('≥')) && Parse(normalized.TrimStart('>', '≥', '=')) is { } min)
        {
            range.Low = Bound(min, unit);
        }

        observation.ReferenceRange.Add(range);
    }

    private static decimal? Parse(string text) =>
        decimal.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static Quantity Bound(decimal value, Quantity? unit) =>
        new() { Value = value, Unit = unit?.Unit, System = unit?.System, Code = unit?.Code };

    /// <summary>HL7 table 0125, Value Type (v2.5, with the v2.6+ DTM).</summary>
    private static readonly HashSet<string> ValueTypes = new(StringComparer.Ordinal)
    {
        "AD", "CE", "CF", "CK", "CN", "CNE", "CP", "CWE", "CX", "DR", "DT", "DTM", "ED", "FT", "ID", "IS", "MA", "MO", "NA", "NM", "NR", "PN",
        "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN", "XON", "XPN", "XTN",
    };

    /// <summary>HL7 table 0078, Abnormal Flags (v2.5, with the later versions' additions).</summary>
    private static readonly HashSet<string> AbnormalFlags = new(StringComparer.Ordinal)
    {
        "L", "H", "LL", "HH", "<", ">", "N", "A", "AA", "U", "D", "B", "W", "S", "R", "I", "MS", "VS", "NULL", "POS", "NEG", "IND", "DET",
        "ND", "AC", "RR", "QCF", "TOX", "EX", "HX", "LX", "HU", "LU", "NR", "SDD", "SYN-R", "SYN-S", "CAR", "↑", "↓",
    };

    /// <summary>OBX-8, HL7 table 0078; the LIS arrows mean high and low; LL/HH are critical values (§4 OBX-8).</summary>
    private static void MapInterpretation(string flag, Observation observation)
    {
        var (code, display) = flag.ToUpperInvariant() switch
        {
            "N" => ("N", "Normal"),
            "L" or "↓" => ("L", "Low"),
            "H" or "↑" => ("H", "High"),
            "LL" => ("LL", "Critical low"),
            "HH" => ("HH", "Critical high"),
            "A" => ("A", "Abnormal"),
            "AA" => ("AA", "Critical abnormal"),
            "" => ("", ""),
            _ => ("?", ""),
        };
        if (code.Length == 0)
        {
            return;
        }

        var concept = code == "?"
            ? FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0078", flag.ToUpperInvariant())
            : FhirValues.Coded(Interpretation, code, display);
        if (code != "?" && flag != code)
        {
            // The LIS arrows are kept as the text the clinician saw.
            concept.Text = flag;
        }

        observation.Interpretation.Add(concept);
    }
}
