using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>
/// VXU^V04 → one Immunization per ORC/RXA group (his-hl7v2.md §4 RXA, RXR, OBX in VXU; §5 VXU^V04). A dose is
/// keyed by (patient MRN, vaccine, administration date), the key RXA-21 U/D use to find an earlier dose.
/// </summary>
internal static class ImmunizationMapping
{
    public static void Map(HisContext context)
    {
        var patient = PatientMapping.Map(context, upsert: false);
        if (patient is null)
        {
            return;
        }

        var visit = EncounterMapping.Map(context, patient, VisitEvent.Embedded);
        var segments = context.Message.Segments;
        var doses = 0;
        for (var i = 0; i < segments.Count; i++)
        {
            if (segments[i].Id != "RXA")
            {
                continue;
            }

            var orc = i > 0 && segments[i - 1].Id == "ORC" ? segments[i - 1] : null;
            Hl7Segment? rxr = null;
            var obxs = new List<Hl7Segment>();
            for (var j = i + 1; j < segments.Count && segments[j].Id is not ("RXA" or "ORC"); j++)
            {
                if (segments[j].Id == "RXR")
                {
                    rxr ??= segments[j];
                }
                else if (segments[j].Id == "OBX")
                {
                    obxs.Add(segments[j]);
                }
            }

            MapDose(context, orc, segments[i], rxr, obxs, patient, visit);
            doses++;
        }

        if (doses == 0)
        {
            context.Required("RXA");
        }
    }

    private static void MapDose(HisContext context, Hl7Segment? orc, Hl7Segment rxa, Hl7Segment? rxr, List<Hl7Segment> obxs,
        PatientInfo patient, VisitInfo? visit)
    {
        var vaccineCode = TextNormalizer.Number(rxa[5][1]);
        Vaccine? vaccine = null;
        if (vaccineCode.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, rxa.Location(5), "RXA-5 疫苗编码为空");
        }
        else if (!CountyCodes.Vaccines.TryGetValue(vaccineCode, out vaccine))
        {
            context.Error(RejectionReason.UnknownCode, rxa.Location(5), $"RXA-5 疫苗编码 {vaccineCode} 不在县疫苗编码表(QXVAC)中");
        }

        var given = context.PastTime(rxa, 3, required: true);
        if (given is { } g && patient.BirthDate is { } birth && g.Date < birth)
        {
            context.Error(RejectionReason.ImpossibleDate, rxa.Location(3), $"RXA-3 接种时间 {rxa[3].Value} 早于出生日期");
        }

        if (vaccine is null || given is null)
        {
            return;
        }

        // The id every source gives the dose, by the person's key; unless the hub holds the dose under another key.
        var mrnId = ResourceIds.From(patient.MrnInstitution, patient.Mrn, vaccine.Code, given.Value.Date.ToString("yyyyMMdd", CultureInfo.InvariantCulture));
        var id = patient.DoseKey is { } person ? DoseIds.For(person, vaccine.Code, given.Value.Date) : mrnId;
        context.Doses.Add((id, mrnId, vaccine.Code, given.Value.Date));
        context.DosePatient ??= new Identifier(Systems.Mrn(patient.MrnInstitution), patient.Mrn);
        id = context.Stored.DoseIds.GetValueOrDefault(id, id);

        if (string.Equals(rxa[21].Value, "D", StringComparison.OrdinalIgnoreCase))
        {
            // D matches an earlier dose (§4 RXA-21); one the hub never received is named as such, not as a store error.
            context.Preconditions.Add(new MustExist($"Immunization?_id={id}", rxa.Location(21),
                $"RXA-21 删除的接种记录不存在 (疫苗 {vaccine.Code}，{given.Value.ToFhirDate()})"));
            if (context.Stored.SharedDoses?.TryGetValue(id, out var holdsOwn) == true)
            {
                // One Immunization per (person, vaccine, date) whoever reports it: the township's or the certificate's
                // report of the dose stays; the hospital takes back its own.
                context.Warnings.Add(HisIssue.Warning(rxa.Location(21),
                    $"RXA-21 删除的接种记录 (疫苗 {vaccine.Code}，{given.Value.ToFhirDate()}) 也由其他来源上报，仅撤回本院的记录"));
                if (holdsOwn)
                {
                    context.Builder.Patch("Immunization", id, FhirValues.FhirPathPatch($"Immunization.identifier.where(system = '{Systems.Vaccination(context.Institution)}')"));
                }

                return;
            }

            context.Builder.Delete("Immunization", id);
            return;
        }

        var code = FhirValues.Coded(Systems.Vaccine, vaccine.Code, vaccine.Name);
        var cvx = rxa[5][6] is "CVX" && rxa[5][4].Length > 0 ? rxa[5][4] : vaccine.Cvx;
        if (cvx is not null)
        {
            code.Coding.Add(new Coding(Systems.Cvx, cvx));
        }

        var completion = rxa[20].Value.ToUpperInvariant();
        if (completion is not ("" or "CP" or "RE" or "NA" or "PA"))
        {
            // A garbled refusal must not be recorded as a dose given.
            context.Error(RejectionReason.UnknownCode, rxa.Location(20), $"RXA-20 完成状态 {rxa[20].Value} 不在 HL7 0322 表中 (CP, RE, NA, PA)");
            return;
        }

        if (rxa[6].IsEmpty)
        {
            context.Error(RejectionReason.MissingRequired, rxa.Location(6), "RXA-6 剂量为空（剂量未知时为 999）");
            return;
        }

        if (!decimal.TryParse(TextNormalizer.Number(rxa[6].Value), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out _))
        {
            // RXA-6 is a number (NM): text there is a garbled message, not a dose of unknown amount (that is 999).
            context.Error(RejectionReason.Malformed, rxa.Location(6), $"RXA-6 剂量 {rxa[6].Value} 不是数值（剂量未知时为 999）", 102);
            return;
        }

        if (rxr is not null && rxr[1][1].Length > 0 && RouteIn0162(rxr) && !RouteCodes.Contains(rxr[1][1].ToUpperInvariant()))
        {
            context.Error(RejectionReason.UnknownCode, rxr.Location(1), $"RXR-1 接种途径 {rxr[1][1]} 不在 HL7 0162 表中");
            return;
        }

        var immunization = new Immunization
        {
            Status = completion is "RE" or "NA" ? Immunization.ImmunizationStatusCodes.NotDone : Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = code,
            Patient = patient.Reference,
            Encounter = visit?.Reference,
            Occurrence = new FhirDateTime(given.Value.ToFhirDateTime()),
            Recorded = context.MessageTime.ToFhirDateTime(),
        };
        if (completion == "RE" && !rxa[18].IsEmpty)
        {
            immunization.StatusReason = HisContext.Concept(rxa[18]);
        }
        else if (completion == "NA")
        {
            immunization.StatusReason = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ActReason", "MEDPREC", "medical precaution");
        }

        if (completion == "PA")
        {
            immunization.IsSubpotent = true;
        }

        if (orc is not null && TextNormalizer.Number(orc[3].Component(1).Text) is { Length: > 0 } filler)
        {
            immunization.Identifier.Add(new Identifier(Systems.Vaccination(context.Institution), filler));
        }

        // RXA-9: 00 = given now, 01 = transcribed from a historical record.
        switch (rxa[9][1])
        {
            case "00":
                immunization.PrimarySource = true;
                break;
            case "01":
                immunization.PrimarySource = false;
                immunization.ReportOrigin = HisContext.Concept(rxa[9]);
                break;
        }

        if (TextNormalizer.Number(rxa[15].Value) is { Length: > 0 } lot)
        {
            immunization.LotNumber = lot;
        }

        if (context.Time(rxa, 16) is { } expires)
        {
            immunization.ExpirationDateElement = new Date(expires.ToFhirDate());
        }

        if (rxa[17][1] is { Length: > 0 } manufacturer)
        {
            immunization.Manufacturer = new ResourceReference
            {
                Identifier = new Identifier(Systems.VaccineManufacturer, manufacturer),
                Display = CountyCodes.Manufacturers.GetValueOrDefault(manufacturer, rxa[17].Component(2).Text.Trim()),
            };
        }

        if (decimal.TryParse(TextNormalizer.Number(rxa[6].Value), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount)
            && amount != 999m)
        {
            immunization.DoseQuantity = ObservationMapping.ToQuantity(amount, rxa[7]);
        }

        MapPerformers(context, rxa, immunization);
        MapRoute(rxr, immunization);
        MapObservations(obxs, immunization, rxa);
        context.Builder.Put(immunization, id);
    }

    private static void MapPerformers(HisContext context, Hl7Segment rxa, Immunization immunization)
    {
        var facility = rxa[11].Component(4).Subcomponent(1).Value;
        if (facility.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, rxa.Location(11, 0, 4), "RXA-11 接种单位为空");
            return;
        }

        if (context.Practitioner(rxa[10], facility) is { } vaccinator)
        {
            immunization.Performer.Add(new Immunization.PerformerComponent
            {
                Function = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"),
                Actor = vaccinator,
            });
        }

        if (context.KnownOrganization(facility, rxa.Location(11, 0, 4)) is { } organization)
        {
            immunization.Performer.Add(new Immunization.PerformerComponent { Actor = organization });
        }
    }

    /// <summary>HL7 table 0162, Route of Administration (v2.5).</summary>
    private static readonly HashSet<string> RouteCodes = new(StringComparer.Ordinal)
    {
        "AP", "B", "DT", "EP", "ET", "GTT", "GU", "IA", "IB", "IC", "ICV", "ID", "IH", "IHA", "IM", "IMR", "IN", "IO", "IP", "IS", "IT", "IU",
        "IV", "MM", "MTH", "NG", "NP", "NS", "NT", "OP", "OT", "OTH", "PF", "PO", "PR", "RM", "SC", "SD", "SL", "TD", "TL", "TP",
        "TRA", "UR", "VG", "VM", "WND",
    };

    /// <summary>RXR-1 names a route of HL7 0162 (its coding system empty or HL70162), not of another system.</summary>
    private static bool RouteIn0162(Hl7Segment rxr) => rxr[1][3] is "" or "HL70162";

    private static void MapRoute(Hl7Segment? rxr, Immunization immunization)
    {
        if (rxr is null)
        {
            return;
        }

        if (rxr[1][1] is { Length: > 0 } route)
        {
            // HL7 0162, or another system the sender names (NCI Thesaurus, C28161 intramuscular).
            var in0162 = RouteIn0162(rxr);
            route = in0162 ? route.ToUpperInvariant() : route;
            var concept = in0162
                ? FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0162", route, rxr[1].Component(2).Text.Trim() is { Length: > 0 } d ? d : null)
                : HisContext.Concept(rxr[1]);
            var standard = route switch
            {
                "IM" => ("IM", "Injection, intramuscular"),
                "ID" => ("IDINJ", "Injection, intradermal"),
                "SC" => ("SQ", "Injection, subcutaneous"),
                "PO" => ("PO", "Swallow, oral"),
                "IN" => ("NASINHLC", "Inhalation, nasal"),
                _ => ("", ""),
            };
            if (standard.Item1.Length > 0)
            {
                concept.Coding.Add(new Coding("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", standard.Item1, standard.Item2));
            }

            immunization.Route = concept;
        }

        if (rxr[2][1] is { Length: > 0 } site)
        {
            immunization.Site = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0163", site,
                rxr[2].Component(2).Text.Trim() is { Length: > 0 } d ? d : null);
        }
    }

    /// <summary>The OBX of a VXU dose: funding programme, dose number and traceability code (§4 "OBX in VXU").</summary>
    private static void MapObservations(List<Hl7Segment> obxs, Immunization immunization, Hl7Segment rxa)
    {
        var dose = int.TryParse(rxa[2].Value, out var counter) && counter > 0 ? counter : (int?)null;
        foreach (var obx in obxs)
        {
            switch (obx[3][1])
            {
                case "64994-7":
                    immunization.FundingSource = HisContext.Concept(obx[5]);
                    break;
                case "30973-2" when int.TryParse(obx[5].Value, out var number) && number > 0:
                    dose = number;
                    break;
                case "VTC" when TextNormalizer.Number(obx[5].Value) is { Length: > 0 } trace:
                    immunization.Identifier.Add(new Identifier(Systems.VaccineTraceCode, trace));
                    break;
            }
        }

        immunization.ProtocolApplied.Add(new Immunization.ProtocolAppliedComponent
        {
            DoseNumber = dose is { } n ? new PositiveInt(n) : new FhirString("unknown"),
        });
    }
}
