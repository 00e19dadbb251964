using System.Security.Cryptography;
using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His;

/// <summary>
/// Raw HIS message bytes → parse → a transaction Bundle with its Provenance, or a typed rejection that locates
/// the problem for the ERR segment (his-hl7v2.md). Pure: no I/O, no clock, no store; what only the store can
/// decide comes back as preconditions (<see cref="HisAccepted.Preconditions"/>).
/// </summary>
public static class HisMapper
{
    /// <summary>Written into every Provenance; bump it when a mapping changes so replays can be told apart.</summary>
    public const string MappingVersion = "1.0.0";

    public const string MappingPolicy = "urn:interophub:mapping:his-hl7v2";

    private static readonly Dictionary<string, string[]> Supported = new(StringComparer.Ordinal)
    {
        ["ADT"] = ["A01", "A02", "A03", "A04", "A08", "A11", "A13", "A28", "A31", "A40"],
        ["ORU"] = ["R01"],
        ["VXU"] = ["V04"],
        ["REF"] = ["I12", "I13", "I14"],
    };

    /// <param name="stored">What the hub holds that decides the ids of the message's records (a second pass, under the
    /// message's person locks); none on the first.</param>
    public static HisOutcome Map(ReadOnlySpan<byte> raw, StoredKeys? stored = null)
    {
        Hl7Message message;
        try
        {
            message = Hl7Parser.Parse(raw);
        }
        catch (Hl7ParseException e)
        {
            var code = e.Location.Field > 0 || e.SegmentIndex > 1 ? 102 : 100;
            return new HisRejected(null, AckCode.AR, [new HisIssue(RejectionReason.Malformed, e.Location, e.Message, IssueSeverity.Error, code)])
            {
                UnreadControlId = Hl7Parser.PeekControlId(raw),
            };
        }

        try
        {
            var headerIssues = CheckHeader(message, out var messageTime);
            if (headerIssues.Any(i => i.Severity == IssueSeverity.Error))
            {
                return new HisRejected(message, AckCode.AR, headerIssues);
            }

            // A \Xhh…\ escape whose bytes are no text in the message's character set is the sender's content error
            // (MALFORMED, ERR-3 102 data type error), answered AE like a non-numeric NM value (§4 OBX-2): it is not the
            // hub's own failure (AR 207, which the sender retries for ever). Z-segments other than ZPI are skipped unread (§4 ZPI).
            var escapes = message.Segments.Where(s => s.Id[0] != 'Z' || s.Id == "ZPI").SelectMany(s => s.UndecodableEscapes())
                .Select(e => new HisIssue(RejectionReason.Malformed, e.Location,
                    $"{e.Location} 的转义序列 {e.Sequence} 不是有效的 {message.Syntax.Charset} 字节", IssueSeverity.Error, 102, "转义序列无效"))
                .ToList();
            return escapes.Count > 0 ? new HisRejected(message, AckCode.AE, escapes) : MapMessage(message, messageTime, headerIssues, stored ?? StoredKeys.None);
        }
        catch (Exception e)
        {
            // A defect in a mapping must not take the listener down or lose the message: AR 207 makes the sender
            // retry, and the stored raw message can be replayed once the mapping is fixed.
            return new HisRejected(message, AckCode.AR,
                [new HisIssue(RejectionReason.Malformed, null, $"映射失败: {e.GetType().Name}: {e.Message}", IssueSeverity.Error, 207, "系统内部错误")]);
        }
    }

    /// <summary>
    /// SHA-256 of the message with MSH-7 blanked and CR as the only terminator: a resend of the same message
    /// (§1: "segment terminators and MSH-7 ignored") gives the same hash.
    /// </summary>
    public static string ContentHash(Hl7Message message)
    {
        var text = new StringBuilder();
        foreach (var segment in message.Segments)
        {
            if (segment.Index == 1)
            {
                var fields = Enumerable.Range(3, Math.Max(0, segment.FieldCount - 2)).Select(n => n == 7 ? "" : segment.RawField(n));
                text.Append("MSH").Append(segment.Syntax.Field).Append(segment.Syntax.EncodingCharacters)
                    .Append(segment.Syntax.Field).AppendJoin(segment.Syntax.Field, fields);
            }
            else
            {
                text.Append(segment.Line);
            }

            text.Append('\r');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static List<HisIssue> CheckHeader(Hl7Message message, out Hl7Time messageTime)
    {
        var issues = new List<HisIssue>();
        var msh = message.Header;
        messageTime = default;
        void Reject(RejectionReason reason, int field, string detail, int code, string? summary = null) =>
            issues.Add(new HisIssue(reason, msh.Location(field), detail, IssueSeverity.Error, code, summary));

        var type = $"{message.MessageCode}^{message.TriggerEvent}";
        if (!Supported.TryGetValue(message.MessageCode, out var triggers))
        {
            Reject(RejectionReason.Unsupported, 9, $"{type} 不在接口范围内", 200, "不支持的消息类型");
        }
        else if (!triggers.Contains(message.TriggerEvent))
        {
            Reject(RejectionReason.Unsupported, 9, $"{type} 不在接口范围内", 201, "不支持的触发事件");
        }

        if (message.ProcessingId != "P")
        {
            // T (training) and D (debugging) messages are not data (§4 MSH-11).
            Reject(RejectionReason.Unsupported, 11, $"MSH-11 处理标识 {message.ProcessingId} 不是 P(生产)", 202, "不支持的处理标识");
        }

        switch (message.Version)
        {
            case "2.5" or "2.4":
                break;
            case "":
                issues.Add(HisIssue.Warning(msh.Location(12), "MSH-12 版本为空，按 2.5 处理"));
                break;
            default:
                Reject(RejectionReason.Unsupported, 12, $"MSH-12 版本 {message.Version} 不在接口范围内(2.5，旧版 2.4)", 203, "不支持的版本");
                break;
        }

        // A header without its sender, control ID or time cannot be keyed or answered in order: AR, and an AR's reason is
        // MALFORMED or UNSUPPORTED (§7); ERR-3 still says which (101, required field missing).
        if (message.SendingFacility.Length == 0)
        {
            Reject(RejectionReason.Malformed, 4, "MSH-4 发送机构为空", 101);
        }

        if (message.ControlId.Length == 0)
        {
            Reject(RejectionReason.Malformed, 10, "MSH-10 消息ID为空", 101);
        }

        if (message.DateTimeOfMessage.Length == 0)
        {
            Reject(RejectionReason.Malformed, 7, "MSH-7 消息时间为空", 101);
        }
        else if (!Hl7Time.TryParse(message.DateTimeOfMessage, out messageTime))
        {
            Reject(RejectionReason.Malformed, 7, $"MSH-7 消息时间 {message.DateTimeOfMessage} 不是有效的日期时间", 102);
        }

        return issues;
    }

    private static HisOutcome MapMessage(Hl7Message message, Hl7Time messageTime, List<HisIssue> headerWarnings,
        StoredKeys stored)
    {
        var context = new HisContext(message, messageTime, stored);
        context.Warnings.AddRange(headerWarnings);
        if (!Codes.CountyCodes.Institutions.ContainsKey(context.Institution))
        {
            // Every record is attributed to the sending institution; one outside the county's table cannot be.
            return new HisRejected(message, AckCode.AE,
                [new HisIssue(RejectionReason.UnknownCode, message.Header.Location(4), $"MSH-4 发送机构 {context.Institution} 不在机构表中")]);
        }

        if (message.MessageCode == "ADT" && context.Required("EVN") is { } evn)
        {
            // Every ADT structure has an EVN, whose EVN-2 is R (§3, §4 EVN); the Provenance's time comes from it.
            context.Time(evn, 2, required: true);
        }

        switch (message.MessageCode, message.TriggerEvent)
        {
            case ("ADT", "A40"):
                MapMerge(context);
                break;
            case ("ADT", var trigger):
                MapAdt(context, trigger);
                break;
            case ("ORU", _):
                LabResultMapping.Map(context);
                break;
            case ("VXU", _):
                ImmunizationMapping.Map(context);
                break;
            case ("REF", _):
                ReferralMapping.Map(context);
                break;
        }

        var provenance = Provenance(context);
        var errors = context.Errors.Distinct().ToList();
        if (errors.Count > 0)
        {
            return new HisRejected(message, AckCode.AE, errors);
        }

        context.Builder.AddProvenance(provenance, ResourceIds.From(context.Institution, message.ControlId));
        return new HisAccepted(message, context.Builder.Bundle, provenance, context.Preconditions, context.Merge, ContentHash(message),
            context.Warnings.Distinct().ToList())
        {
            Doses = context.Doses,
            DosePatient = context.DosePatient,
        };
    }

    private static void MapAdt(HisContext context, string trigger)
    {
        // Events that carry the person replace the Patient; visit events only create it when absent (§5).
        var maintainsPerson = trigger is "A01" or "A04" or "A08" or "A28" or "A31";
        var patient = PatientMapping.Map(context, upsert: maintainsPerson);
        if (patient is null)
        {
            return;
        }

        VisitEvent? visitEvent = trigger switch
        {
            "A01" => VisitEvent.Admit,
            "A04" => VisitEvent.Register,
            "A08" => VisitEvent.Update,
            "A02" => VisitEvent.Transfer,
            "A03" => VisitEvent.Discharge,
            "A13" => VisitEvent.CancelDischarge,
            "A11" => VisitEvent.CancelAdmit,
            _ => null, // A28/A31 never create an Encounter (§5).
        };
        if (visitEvent is null)
        {
            context.Single("PV1");
            return;
        }

        var visit = EncounterMapping.Map(context, patient, visitEvent.Value);
        if (visit is null || trigger is "A11")
        {
            return;
        }

        // OBX in ADT (blood pressure on admission, heart rate at discharge) belong to the visit. Set IDs restart in every
        // message, so an observation is known by the moment it belongs to and what it measures (the n-th of its code, or
        // OBX-4): the visit's admission (A01/A04) or discharge (A03), another event's time (A02, A08…), or its own
        // OBX-14. A re-sent admission updates its observations; the discharge's never replace the admission's.
        var evn = context.Message.First("EVN");
        var pv1 = context.Message.First("PV1");
        var recorded = evn is null ? null : context.PastTime(evn, 6) ?? context.PastTime(evn, 2);
        var (moment, defaultTime) = trigger switch
        {
            "A01" or "A04" => (trigger, (pv1 is null ? null : context.Time(pv1, 44)) ?? recorded),
            "A03" => (trigger, (pv1 is null ? null : context.Time(pv1, 45)) ?? recorded),
            _ => ($"{trigger}-{Digits(recorded)}", recorded ?? (pv1 is null ? null : context.Time(pv1, 44))),
        };
        var ofCode = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var obx in context.Message.All("OBX"))
        {
            if (ObservationMapping.Map(context, obx, patient, visit.Reference, defaultTime, FhirValues.Organization(visit.Institution), visit.Institution) is { } observation)
            {
                var code = obx[3].Value;
                var at = obx[14].IsEmpty ? moment : Digits(context.Time(obx, 14));
                var reading = ofCode[$"{at}|{code}"] = ofCode.GetValueOrDefault($"{at}|{code}") + 1;
                var which = obx[4].Value is { Length: > 0 } subId ? subId : reading.ToString(System.Globalization.CultureInfo.InvariantCulture);
                context.Builder.Put(observation, ResourceIds.From(visit.Institution, visit.VisitNumber, "obx", at, code, which));
            }
        }
    }

    /// <summary>A time as yyyyMMddHHmmss, China time, for an id; "" when absent.</summary>
    private static string Digits(Hl7Time? time) =>
        time is { } t ? t.Value.ToOffset(Hl7Time.ChinaOffset).ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) : "";

    /// <summary>
    /// ADT^A40: MRG-1 (an MRN of the same institution) is merged into the PID-3 patient (§4 MRG, §5 A40). The
    /// retired Patient is deactivated with a replaced-by link; moving its records is the store's part (<see cref="PatientMerge"/>).
    /// </summary>
    private static void MapMerge(HisContext context)
    {
        var mrg = context.Required("MRG");
        var survivor = PatientMapping.Map(context, upsert: true);
        if (mrg is null || survivor is null)
        {
            return;
        }

        var prior = mrg[1];
        var value = TextNormalizer.Number(prior.Component(1).Text);
        var institution = prior.Component(4).Subcomponent(1).Value is { Length: > 0 } i ? i : context.Institution;
        if (value.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, mrg.Location(1), "MRG-1 被合并患者ID为空");
            return;
        }

        if (institution != survivor.MrnInstitution)
        {
            context.Error(RejectionReason.UnknownReference, mrg.Location(1),
                $"MRG-1 机构 {institution} 与 PID-3 患者ID的机构 {survivor.MrnInstitution} 不同，不能合并");
            return;
        }

        if (value == survivor.Mrn)
        {
            context.Error(RejectionReason.UnknownReference, mrg.Location(1), $"MRG-1 患者ID {value} 与 PID-3 相同");
            return;
        }

        var retiredIdentifier = new Identifier(Systems.Mrn(institution), value)
        {
            Use = Identifier.IdentifierUse.Old,
            Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
        };
        var retired = new Patient
        {
            Identifier = [retiredIdentifier],
            Active = false,
            Link = [new Patient.LinkComponent { Other = survivor.Reference, Type = Patient.LinkType.ReplacedBy }],
        };
        if (TextNormalizer.Name(mrg[7].Component(1).Text) is { Length: > 0 } name)
        {
            retired.Name.Add(new HumanName { Text = name, Use = HumanName.NameUse.Old });
        }

        // The survivor is the PID-3 MRN's record. Matched on all its identifiers, it would also match the retired one when
        // both carry one of them (the ID number that linked them): the merge is what resolves that.
        if (context.Builder.Bundle.Entry.FirstOrDefault(e => ReferenceEquals(e.Resource, survivor.Resource)) is { Request: { } upsert })
        {
            upsert.Url = $"Patient?{Criteria.Identifier(Systems.Mrn(survivor.MrnInstitution), survivor.Mrn)}";
        }

        var criteria = Criteria.Identifier(Systems.Mrn(institution), value);
        var retiredReference = context.Builder.Upsert(retired, criteria);
        survivor.Resource.Link.Add(new Patient.LinkComponent { Other = retiredReference, Type = Patient.LinkType.Replaces });
        survivor.Resource.Active = true;
        context.Preconditions.Add(new MustExist($"Patient?{criteria}", mrg.Location(1), $"MRG-1 患者ID {value} 不存在(从未收到)"));
        context.Merge = new PatientMerge(new Identifier(Systems.Mrn(institution), value), survivor.LinkingIdentifiers);
    }

    private static Provenance Provenance(HisContext context)
    {
        var message = context.Message;
        var provenance = new Provenance
        {
            Recorded = context.MessageTime.Value,
            Policy = [$"{MappingPolicy}|{MappingVersion}"],
            Activity = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0003", message.TriggerEvent),
            Agent =
            [
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"),
                    Who = FhirValues.Organization(context.Institution),
                },
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"),
                    Who = new ResourceReference { Display = $"InteropHub HIS HL7 v2 adapter, mapping {MappingVersion}" },
                },
            ],
            Entity =
            [
                new Provenance.EntityComponent
                {
                    Role = Hl7.Fhir.Model.Provenance.ProvenanceEntityRole.Source,
                    What = new ResourceReference
                    {
                        Identifier = new Identifier(Systems.Hl7Message(context.Institution), message.ControlId),
                        Display = $"{message.SendingApplication} {message.MessageCode}^{message.TriggerEvent} {message.ControlId}",
                    },
                },
            ],
        };
        var evn = message.First("EVN");
        if (evn is not null && (context.Time(evn, 6) ?? context.Time(evn, 2)) is { } occurred)
        {
            provenance.Occurred = new FhirDateTime(occurred.ToFhirDateTime());
        }

        // EVN-4 why the event happened (A11: 01 登记错误, 02 患者取消; A13: 01 误操作, 02 病情变化) and EVN-5 who entered it.
        if (evn?[4].Component(1).Value is { Length: > 0 } reason)
        {
            provenance.Reason.Add(FhirValues.Coded(Systems.Local($"qxhis-event-reason-{message.TriggerEvent}"), reason, (message.TriggerEvent, reason) switch
            {
                ("A11", "01") => "登记错误",
                ("A11", "02") => "患者取消",
                ("A13", "01") => "误操作",
                ("A13", "02") => "病情变化",
                _ => evn[4].Component(2).Text is { Length: > 0 } text ? text : null,
            }));
        }

        if (evn?[5] is { IsEmpty: false } operatorId)
        {
            var code = TextNormalizer.Number(operatorId.Component(1).Text);
            var name = TextNormalizer.Name(operatorId.Component(2).Text);
            provenance.Agent.Add(new Provenance.AgentComponent
            {
                Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "enterer", "Enterer"),
                Who = new ResourceReference
                {
                    Identifier = code.Length > 0 ? new Identifier(Systems.Staff(context.Institution), code) : null,
                    Display = name.Length > 0 ? name : null,
                },
            });
        }

        return provenance;
    }
}
