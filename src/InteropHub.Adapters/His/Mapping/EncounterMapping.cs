using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

internal enum VisitEvent
{
    /// <summary>A visit named inside an ORU, VXU or REF message: created when absent, never changed (§4 PV1).</summary>
    Embedded,
    Admit,
    Register,
    Update,
    Transfer,
    Discharge,
    CancelDischarge,
    CancelAdmit,
}

internal sealed record VisitInfo(ResourceReference Reference, string Institution, string VisitNumber);

/// <summary>
/// PV1 (+ PV2, DG1) → Encounter (his-hl7v2.md §4 PV1, §5). The visit key is (institution, PV1-19.1); the
/// Encounter is matched on that identifier, so the visit of an ORU or VXU and its ADT events meet whichever
/// arrives first.
/// </summary>
internal static class EncounterMapping
{
    private const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

    /// <summary>In an Encounter's <see cref="ExtensionUrls.Cleared"/>: a participant role an A08 deleted with <c>""</c>.</summary>
    public const string ClearedParticipant = "participant:";

    public static VisitInfo? Map(HisContext context, PatientInfo patient, VisitEvent visitEvent)
    {
        var pv1 = visitEvent == VisitEvent.Embedded ? context.Message.First("PV1") : context.Required("PV1");
        if (pv1 is null)
        {
            return null;
        }

        if (context.Message.All("PV1").Skip(1).Any())
        {
            context.Warn(context.Message.All("PV1").ElementAt(1).Location(), $"PV1 段重复 {context.Message.All("PV1").Count()} 次，仅使用第一个");
        }

        var patientClass = pv1[2].Value.ToUpperInvariant();
        var visitNumber = TextNormalizer.Number(pv1[19].Component(1).Text);
        if (patientClass == "N" || (visitEvent == VisitEvent.Embedded && visitNumber.Length == 0))
        {
            // PV1-2 = N: a person-only message (A28/A31), no visit (§5).
            if (visitEvent is VisitEvent.Admit or VisitEvent.Register or VisitEvent.Transfer or VisitEvent.Discharge or VisitEvent.CancelDischarge or VisitEvent.CancelAdmit)
            {
                context.Error(RejectionReason.MissingRequired, pv1.Location(19), $"{context.Message.MessageCode}^{context.Event} 需要就诊信息(PV1-2 不能为 N，PV1-19 不能为空)");
            }

            return null;
        }

        if (visitNumber.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, pv1.Location(19), "PV1-19 就诊号为空");
            return null;
        }

        var (classCode, classDisplay) = patientClass switch
        {
            "I" or "3" => ("IMP", "inpatient encounter"),
            "O" or "1" => ("AMB", "ambulatory"),
            "E" or "2" => ("EMER", "emergency"),
            _ => ("", ""),
        };
        if (classCode.Length == 0)
        {
            context.Error(RejectionReason.UnknownCode, pv1.Location(2), $"PV1-2 患者类别 {pv1[2].Value} 不在值域中(I/O/E/N 或 1/2/3)");
            return null;
        }

        var institution = pv1[19].Component(4).Subcomponent(1).Value is { Length: > 0 } i ? i : context.Institution;
        var identifierSystem = pv1[19].Component(4).Subcomponent(2).Value switch
        {
            "2.16.156.10011.1.12" => Systems.InpatientNumber(institution),
            "2.16.156.10011.1.11" => Systems.OutpatientNumber(institution),
            _ => Systems.VisitNumber(institution),
        };

        var encounter = new Encounter
        {
            Identifier = [new Identifier(identifierSystem, visitNumber) { Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0203", "VN") }],
            Class = new Coding(ActCode, classCode, classDisplay),
            Subject = patient.Reference,
        };

        var start = context.PastTime(pv1, 44, required: visitEvent is VisitEvent.Admit or VisitEvent.Register);
        var end = visitEvent == VisitEvent.CancelDischarge ? null : context.PastTime(pv1, 45, required: visitEvent == VisitEvent.Discharge);
        // A time of the day alone (YYYYMMDD, §2) compares by day.
        if (start is { } s && end is { } e && (s.HasTime && e.HasTime ? e.Value < s.Value : e.Date < s.Date))
        {
            context.Error(RejectionReason.ImpossibleDate, pv1.Location(45), $"PV1-45 出院时间 {pv1[45].Value} 早于入院时间 {pv1[44].Value}");
        }

        if (start is not null || end is not null)
        {
            encounter.Period = new Period
            {
                StartElement = start is { } st ? new FhirDateTime(st.ToFhirDateTime()) : null,
                EndElement = end is { } en ? new FhirDateTime(en.ToFhirDateTime()) : null,
            };
        }

        encounter.Status = visitEvent switch
        {
            VisitEvent.CancelAdmit => Encounter.EncounterStatus.EnteredInError,
            VisitEvent.Discharge => Encounter.EncounterStatus.Finished,
            // The HIS sends no A03 for outpatient and emergency visits: they are complete when registered (§5).
            _ when classCode != "IMP" => Encounter.EncounterStatus.Finished,
            _ when end is not null => Encounter.EncounterStatus.Finished,
            VisitEvent.Embedded => Encounter.EncounterStatus.Unknown,
            _ => Encounter.EncounterStatus.InProgress,
        };

        // The event, for the merge with the stored visit (IngestPipeline.KeepVisitHistory): only an A13 undoes a discharge.
        encounter.AddAnnotation(visitEvent);
        if (visitEvent == VisitEvent.CancelAdmit)
        {
            // A visit that never was has no diagnoses: those it recorded are marked entered in error, not deleted.
            EnteredInError(context, context.Stored.VisitDiagnoses ?? []);
        }

        MapDetails(context, pv1, encounter, institution, discharged: visitEvent != VisitEvent.CancelDischarge);
        if (visitEvent == VisitEvent.Update)
        {
            // §2: "" deletes the stored value (A08): the visit keeps no participant of that role (the ingest reads and drops these).
            foreach (var (field, role) in new[] { (7, "ATND"), (8, "REF"), (17, "ADM") }.Where(f => pv1[f.Item1].IsDelete))
            {
                encounter.Extension.Add(new Extension(ExtensionUrls.Cleared, new Code(ClearedParticipant + role)));
            }
        }
        MapLocations(context, pv1, encounter, visitEvent);
        var criteria = Criteria.Identifier(identifierSystem, visitNumber);
        var reference = visitEvent == VisitEvent.Embedded
            ? context.Builder.CreateIfAbsent(encounter, criteria)
            : context.Builder.Upsert(encounter, criteria);

        if (visitEvent is VisitEvent.Transfer or VisitEvent.Discharge or VisitEvent.CancelDischarge or VisitEvent.CancelAdmit)
        {
            // An event about a visit the hub never received is UNKNOWN_REFERENCE (§1 "Order"); only the store knows.
            context.Preconditions.Add(new MustExist($"Encounter?{criteria}", pv1.Location(19),
                $"PV1-19 就诊号 {visitNumber} 的就诊记录不存在(未收到或已被拒绝)"));
        }

        var visit = new VisitInfo(reference, institution, visitNumber);
        if (visitEvent != VisitEvent.Embedded)
        {
            MapDiagnoses(context, encounter, patient, visit);
        }

        if (visitEvent == VisitEvent.CancelDischarge)
        {
            // An A13 undoes the discharge (§5), its final diagnoses (DG1-6 F) with it: those the stored visit lists are
            // marked entered in error, unless the A13 sends them again (IngestPipeline.KeepVisitHistory drops the others).
            var sent = encounter.Diagnosis.Select(d => d.Condition?.Reference).ToHashSet(StringComparer.Ordinal);
            EnteredInError(context, (context.Stored.VisitDiagnoses ?? []).Where(id => !sent.Contains($"Condition/{id}")));
        }

        return visit;
    }

    private static void EnteredInError(HisContext context, IEnumerable<string> conditionIds)
    {
        foreach (var id in conditionIds)
        {
            context.Builder.Patch("Condition", id, FhirValues.FhirPathPatch("Condition.verificationStatus",
                FhirValues.Coded("http://terminology.hl7.org/CodeSystem/condition-ver-status", "entered-in-error", "Entered in Error")));
        }
    }

    /// <param name="discharged">False for an A13: it undoes the discharge (§5), so the PV1-36/37 it may still carry are
    /// not facts of the reopened visit, as its PV1-45 is not; the stored ones go with the period's end
    /// (IngestPipeline.KeepVisitHistory keeps them only while the visit stays finished).</param>
    private static void MapDetails(HisContext context, Hl7Segment pv1, Encounter encounter, string institution, bool discharged)
    {
        var admissionType = pv1[4].Value.ToUpperInvariant();
        if (admissionType.Length > 0)
        {
            encounter.Type.Add(FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0007", admissionType));
            encounter.Priority = admissionType switch
            {
                "E" => FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "EM", "emergency"),
                "U" => FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "UR", "urgent"),
                "R" => FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "R", "routine"),
                _ => null,
            };
        }

        if (pv1[10].Value is { Length: > 0 } department)
        {
            encounter.ServiceType = FhirValues.Coded(Systems.Local("qxhis-department"), department,
                CountyCodes.Departments.GetValueOrDefault(department));
            // Translated as mappings/his-department-to-diagnosis-treatment-subject.json says, for readers outside the county.
            if (CountyCodes.DepartmentSubjects.TryGetValue(department, out var subject))
            {
                encounter.ServiceType.Coding.Add(new Coding(CountyCodes.DiagnosisTreatmentSubjects, subject.Code, subject.Name));
            }
        }

        var facility = pv1[3].Component(4).Subcomponent(1).Value is { Length: > 0 } f ? f : institution;
        encounter.ServiceProvider = FhirValues.Organization(facility);

        AddParticipant(context, encounter, pv1[7], "ATND", "attender", institution);
        AddParticipant(context, encounter, pv1[8], "REF", "referrer", institution);
        AddParticipant(context, encounter, pv1[17], "ADM", "admitter", institution);

        if (context.Message.First("PV2")?[3] is { IsEmpty: false } reason)
        {
            encounter.ReasonCode.Add(HisContext.Concept(reason));
        }

        var hospitalization = new Encounter.HospitalizationComponent();
        if (pv1[14].Value is { Length: > 0 } source)
        {
            hospitalization.AdmitSource = FhirValues.Coded(Systems.Local("admit-source"), source, source switch
            {
                "1" => "急诊",
                "2" => "门诊",
                "3" => "其他医疗机构转入",
                "9" => "其他",
                _ => null,
            });
        }

        if (discharged && pv1[36].Value is { Length: > 0 } disposition)
        {
            hospitalization.DischargeDisposition = FhirValues.Coded(Systems.Local("discharge-disposition"), disposition, disposition switch
            {
                "1" => "医嘱离院",
                "2" => "医嘱转院",
                "3" => "医嘱转社区卫生服务机构/乡镇卫生院",
                "4" => "非医嘱离院",
                "5" => "死亡",
                "9" => "其他",
                _ => null,
            });
        }

        if (discharged && pv1[37].Value is { Length: > 0 } destination)
        {
            hospitalization.Destination = context.KnownOrganization(destination, pv1.Location(37));
        }

        if (hospitalization.AdmitSource is not null || hospitalization.DischargeDisposition is not null || hospitalization.Destination is not null)
        {
            encounter.Hospitalization = hospitalization;
        }
    }

    private static void AddParticipant(HisContext context, Encounter encounter, Hl7Value xcn, string code, string display, string institution)
    {
        if (context.Practitioner(xcn, institution) is { } practitioner)
        {
            encounter.Participant.Add(new Encounter.ParticipantComponent
            {
                Type = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", code, display)],
                Individual = practitioner,
            });
        }
    }

    private static void MapLocations(HisContext context, Hl7Segment pv1, Encounter encounter, VisitEvent visitEvent)
    {
        // A02: PV1-6 is the location left, PV1-3 the new one (§5), at the transfer's time: EVN-6, the clinical time, when
        // it differs from EVN-2, the time it was recorded. The history of locations is kept by the merge with the stored
        // visit (IngestPipeline.KeepVisitHistory), each place with its period.
        var transferred = visitEvent == VisitEvent.Transfer && context.Message.First("EVN") is { } evn
            ? (context.PastTime(evn, 6) ?? context.PastTime(evn, 2)) is { } at ? new FhirDateTime(at.ToFhirDateTime()) : null
            : null;
        if (visitEvent == VisitEvent.Transfer && context.Location(pv1[6]) is { } prior)
        {
            encounter.Location.Add(new Encounter.LocationComponent
            {
                Location = prior,
                Status = Encounter.EncounterLocationStatus.Completed,
                Period = transferred is null ? null : new Period { EndElement = transferred },
            });
        }

        if (context.Location(pv1[3]) is { } current)
        {
            // A place taken at the transfer, or on admission (the visit's start).
            var from = transferred ?? (visitEvent is VisitEvent.Admit or VisitEvent.Register ? encounter.Period?.StartElement : null);
            encounter.Location.Add(new Encounter.LocationComponent
            {
                Location = current,
                Status = encounter.Status switch
                {
                    Encounter.EncounterStatus.InProgress => Encounter.EncounterLocationStatus.Active,
                    Encounter.EncounterStatus.Finished => Encounter.EncounterLocationStatus.Completed,
                    _ => null,
                },
                Period = from is null ? null : new Period { StartElement = (FhirDateTime)from.DeepCopy() },
            });
        }
    }

    /// <summary>DG1 → Condition (encounter-diagnosis) and Encounter.diagnosis (§4 DG1).</summary>
    private static void MapDiagnoses(HisContext context, Encounter encounter, PatientInfo patient, VisitInfo visit)
    {
        foreach (var dg1 in context.Message.All("DG1"))
        {
            if (dg1[3].IsEmpty)
            {
                context.Error(RejectionReason.MissingRequired, dg1.Location(3), "DG1-3 诊断编码为空");
                continue;
            }

            var type = dg1[6].Value.ToUpperInvariant();
            if (type.Length == 0)
            {
                // DG1-6 is R (§4 DG1): it says whether the diagnosis is the admission, outpatient or discharge one, and
                // Encounter.diagnosis.use may not hold an empty code.
                context.Error(RejectionReason.MissingRequired, dg1.Location(6), "DG1-6 诊断类型为空(A 入院诊断, W 门诊/初步诊断, F 出院诊断)");
                continue;
            }

            var condition = new Condition
            {
                Category = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")],
                VerificationStatus = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    type == "W" ? "provisional" : "confirmed"),
                Code = Diagnosis(dg1[3]),
                Subject = patient.Reference,
                Encounter = visit.Reference,
            };
            if (context.Time(dg1, 5) is { } recorded)
            {
                condition.RecordedDateElement = new FhirDateTime(recorded.ToFhirDateTime());
            }

            if (context.Practitioner(dg1[16], visit.Institution) is { } asserter)
            {
                condition.Asserter = asserter;
            }

            var setId = dg1[1].Value.Length > 0 ? dg1[1].Value : dg1.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var reference = context.Builder.Put(condition, ResourceIds.From(visit.Institution, visit.VisitNumber, "dx", type, setId));
            var use = FhirValues.Coded(Systems.Local("diagnosis-type"), type, type switch
            {
                "A" => "入院诊断",
                "W" => "门诊/初步诊断",
                "F" => "出院诊断",
                _ => null,
            });
            if (type is "A" or "F")
            {
                use.Coding.Add(new Coding("http://terminology.hl7.org/CodeSystem/diagnosis-role", type == "A" ? "AD" : "DD"));
            }

            encounter.Diagnosis.Add(new Encounter.DiagnosisComponent
            {
                Condition = reference,
                Use = use,
                Rank = int.TryParse(dg1[15].Value, out var rank) && rank > 0 ? rank : null,
            });
        }
    }

    /// <summary>
    /// A diagnosis code as sent, plus the ICD-10 stem when the sender used a national clinical-edition extension
    /// code such as <c>I10.x00x002</c> or <c>E11.900</c> (legacy/README.md, code systems).
    /// </summary>
    internal static CodeableConcept Diagnosis(Hl7Value ce)
    {
        var concept = HisContext.Concept(ce);
        var coding = concept.Coding.FirstOrDefault();
        if (coding is { System: Systems.Icd10Cn2 } && Icd10Stem(coding.Code ?? "") is { } stem)
        {
            concept.Coding.Add(new Coding(Systems.Icd10, stem));
        }

        return concept;
    }

    internal static string? Icd10Stem(string code)
    {
        var dot = code.IndexOf('.', StringComparison.Ordinal);
        var category = dot < 0 ? code : code[..dot];
        if (category.Length != 3 || !char.IsAsciiLetterUpper(category[0]))
        {
            return null;
        }

        return dot >= 0 && dot + 1 < code.Length && char.IsAsciiDigit(code[dot + 1]) ? $"{category}.{code[dot + 1]}" : category;
    }
}
