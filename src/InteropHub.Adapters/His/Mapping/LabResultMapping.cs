using InteropHub.Adapters.Codes;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>
/// ORU^R01 → one DiagnosticReport per OBR and one Observation per OBX (his-hl7v2.md §5 ORU^R01). The report key
/// is (MSH-4, OBR-3.1) and each result is keyed under it by OBX-3 and OBX-4, so a correction (OBR-25 = C)
/// replaces the stored values and adds no report.
/// </summary>
internal static class LabResultMapping
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
        Hl7Segment? orc = null;
        var reports = 0;
        var fillers = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < segments.Count; i++)
        {
            if (segments[i].Id == "ORC")
            {
                orc = segments[i];
            }
            else if (segments[i].Id == "OBR")
            {
                var obxs = new List<Hl7Segment>();
                for (var j = i + 1; j < segments.Count && segments[j].Id is not ("OBR" or "ORC"); j++)
                {
                    if (segments[j].Id == "OBX")
                    {
                        obxs.Add(segments[j]);
                    }
                }

                MapReport(context, orc, segments[i], obxs, patient, visit, fillers);
                orc = null;
                reports++;
            }
        }

        if (reports == 0)
        {
            context.Required("OBR");
        }
    }

    private static void MapReport(HisContext context, Hl7Segment? orc, Hl7Segment obr, List<Hl7Segment> obxs, PatientInfo patient, VisitInfo? visit,
        HashSet<string> fillers)
    {
        var institution = context.Institution;
        var filler = TextNormalizer.Number(obr[3].Component(1).Text);
        if (filler.Length == 0 && orc is not null)
        {
            filler = TextNormalizer.Number(orc[3].Component(1).Text);
        }

        if (filler.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, obr.Location(3), "OBR-3 报告单号为空");
            return;
        }

        if (!fillers.Add(filler))
        {
            // One report number is one report (§5 ORU^R01): a second OBR with it would replace the first one's report
            // and leave its results named by none.
            context.Error(RejectionReason.DuplicateKey, obr.Location(3), $"OBR-3 报告单号 {filler} 在本消息中已用于前一个 OBR，一个报告单号只对应一个报告");
            return;
        }

        if (obr[4].IsEmpty)
        {
            context.Error(RejectionReason.MissingRequired, obr.Location(4), "OBR-4 检验项目组合为空");
        }

        var report = new DiagnosticReport
        {
            Identifier = [new Identifier(Systems.LabReport(institution), filler)
            {
                Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0203", "FILL"),
            }],
            Status = ReportStatus(context, obr),
            Category = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
            Code = HisContext.Concept(obr[4]),
            Subject = patient.Reference,
            Encounter = visit?.Reference,
        };
        report.AddAnnotation(new RecordKey(obr[3].IsEmpty && orc is not null ? orc.Location(3) : obr.Location(3), $"检验报告 {filler}"));
        if (obr[24].Value is { Length: > 0 } section && section != "LAB")
        {
            report.Category.Add(FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0074", section));
        }

        var placer = TextNormalizer.Number(obr[2].Component(1).Text);
        if (placer.Length > 0)
        {
            report.BasedOn.Add(new ResourceReference { Identifier = new Identifier(Systems.Order(institution), placer) });
        }

        var collected = context.PastTime(obr, 7, required: true);
        if (collected is { } c)
        {
            report.Effective = new FhirDateTime(c.ToFhirDateTime());
        }

        if (context.PastTime(obr, 22, required: true) is { } issued)
        {
            report.Issued = issued.Value;
        }

        var performer = FhirValues.Organization(institution);
        report.Performer.Add(performer);
        var interpreter = obr[32].Component(1);
        if (context.Practitioner(new Hl7Value(interpreter.Raw, context.Message.Syntax, 0), institution) is { } verifier)
        {
            // OBR-32 is an NDL whose first component is "code&name".
            report.ResultsInterpreter.Add(verifier);
        }

        // ORC-12 (else OBR-16) the ordering doctor and ORC-17 the ordering department (§4 ORC, OBR): DiagnosticReport has
        // no requester of its own in R4 and the order is named by its placer number only, so they are extensions.
        var orderedBy = orc is not null && !orc[12].IsEmpty ? orc[12] : obr[16];
        if (context.Practitioner(orderedBy, institution) is { } orderingDoctor)
        {
            report.Extension.Add(new Extension(ExtensionUrls.OrderingProvider, orderingDoctor));
        }

        if (orc?[17].Component(1).Value is { Length: > 0 } orderingDepartment)
        {
            report.Extension.Add(new Extension(ExtensionUrls.OrderingDepartment, new Coding(Systems.Local("qxhis-department"), orderingDepartment,
                orc[17].Component(2).Text is { Length: > 0 } named ? named : CountyCodes.Departments.GetValueOrDefault(orderingDepartment))));
        }

        if (orc?[21].Component(10).Subcomponent(1).Value is { Length: > 0 } orderingFacility)
        {
            // A township centre that collected the sample for the county laboratory centre (§4 ORC-21).
            if (context.KnownOrganization(orderingFacility, orc.Location(21, 0, 10)) is { } facility)
            {
                report.Extension.Add(new Extension(ExtensionUrls.OrderingFacility, facility));
            }
        }

        var specimen = Specimen(context, obr, patient, collected, institution, filler);
        if (specimen is not null)
        {
            report.Specimen.Add(specimen);
        }

        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var obx in obxs)
        {
            var observation = ObservationMapping.Map(context, obx, patient, visit?.Reference, collected, performer, institution);
            if (observation is null)
            {
                continue;
            }

            if (report.Issued is { } reportIssued)
            {
                observation.Issued = reportIssued;
            }

            observation.Specimen = specimen;

            var item = TextNormalizer.Number(obx[3][1]);
            var key = obx[4].Value.Length > 0 ? $"{item}.{obx[4].Value}" : item;
            if (!used.Add(key))
            {
                key = $"{key}.{obx[1].Value}";
                used.Add(key);
            }

            observation.AddAnnotation(new RecordKey(obx.Location(3), $"检验报告 {filler} 的结果 {key}"));

            report.Result.Add(context.Builder.Put(observation, ResourceIds.From(institution, filler, key)));
        }

        // NTE after the OBR, and after the group's last OBX, are the laboratory's remarks on the report (samples 13, 21,
        // 29); the latter stay on that Observation as well, as the v2 structure attaches them there.
        var notes = ObservationMapping.Notes(context.Message, obr)
            .Concat(obxs.Count > 0 ? ObservationMapping.Notes(context.Message, obxs[^1]) : [])
            .ToList();
        if (notes.Count > 0)
        {
            report.Conclusion = string.Join('\n', notes);
        }

        context.Builder.Put(report, ResourceIds.From(institution, filler));
    }

    /// <summary>OBR-15 specimen source (SPS: the specimen type as <c>code&amp;text&amp;system</c> in its first component), OBR-7 collected, OBR-14 received.</summary>
    private static ResourceReference? Specimen(HisContext context, Hl7Segment obr, PatientInfo patient, Hl7Time? collected, string institution, string filler)
    {
        var type = obr[15].Component(1);
        var code = type.Subcomponent(1).Value;
        if (code.Length == 0)
        {
            return null;
        }

        var system = type.Subcomponent(3).Value is { Length: > 0 } s ? HisContext.CodingSystem(s) : "http://terminology.hl7.org/CodeSystem/v2-0070";
        var display = type.Subcomponent(2).Text.Trim() is { Length: > 0 } d ? d : obr[15][2];
        var specimen = new Specimen
        {
            Type = FhirValues.Coded(system, code, display.Length > 0 ? display : null),
            Subject = patient.Reference,
            Collection = collected is { } c ? new Specimen.CollectionComponent { Collected = new FhirDateTime(c.ToFhirDateTime()) } : null,
        };
        if (context.PastTime(obr, 14) is { } received)
        {
            specimen.ReceivedTime = received.ToFhirDateTime();
        }

        return context.Builder.Put(specimen, ResourceIds.From(institution, filler, "specimen"));
    }

    private static DiagnosticReport.DiagnosticReportStatus ReportStatus(HisContext context, Hl7Segment obr)
    {
        switch (obr[25].Value.ToUpperInvariant())
        {
            case "F":
                return DiagnosticReport.DiagnosticReportStatus.Final;
            case "C":
                return DiagnosticReport.DiagnosticReportStatus.Corrected;
            case "P":
                return DiagnosticReport.DiagnosticReportStatus.Preliminary;
            case "X":
                return DiagnosticReport.DiagnosticReportStatus.Cancelled;
            case "":
                context.Error(RejectionReason.MissingRequired, obr.Location(25), "OBR-25 报告状态为空");
                return DiagnosticReport.DiagnosticReportStatus.Unknown;
            default:
                context.Error(RejectionReason.UnknownCode, obr.Location(25), $"OBR-25 报告状态 {obr[25].Value} 不在值域中(F/C/P/X)");
                return DiagnosticReport.DiagnosticReportStatus.Unknown;
        }
    }
}
