using InteropHub.Adapters.Codes;
using Hl7.Fhir.Model;
using Hl7.Fhir.Utility;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>
/// REF^I12/I13/I14 → ServiceRequest + Task (his-hl7v2.md §6; DOMAIN.md "Two-way referral"). The referral key
/// RF1-6.1 is unique county-wide, so both resources take it as their id. I12 writes the request, I13 moves the
/// Task (and, for <c>P</c>, rewrites the request), I14 cancels both. Whether a move is allowed depends on the stored
/// Task, so it is returned as a <see cref="TaskTransition"/> precondition.
/// </summary>
internal static class ReferralMapping
{
    private static readonly Dictionary<string, (FhirTask.TaskStatus Status, string Display)> States = new(StringComparer.Ordinal)
    {
        ["P"] = (FhirTask.TaskStatus.Requested, "待接收"),
        ["RC"] = (FhirTask.TaskStatus.Received, "已签收"),
        ["A"] = (FhirTask.TaskStatus.Accepted, "同意接收"),
        ["R"] = (FhirTask.TaskStatus.Rejected, "拒绝"),
        ["IP"] = (FhirTask.TaskStatus.InProgress, "患者已到诊"),
        ["C"] = (FhirTask.TaskStatus.Completed, "诊治完成/已回转"),
        ["F"] = (FhirTask.TaskStatus.Failed, "转诊未完成"),
        ["X"] = (FhirTask.TaskStatus.Cancelled, "撤销"),
    };

    /// <summary>The Task state machine: the states a referral may move to each state from.</summary>
    private static readonly Dictionary<FhirTask.TaskStatus, string[]> AllowedFrom = new()
    {
        [FhirTask.TaskStatus.Requested] = ["requested", "received", "accepted"],
        [FhirTask.TaskStatus.Received] = ["requested"],
        [FhirTask.TaskStatus.Accepted] = ["requested", "received"],
        [FhirTask.TaskStatus.Rejected] = ["requested", "received"],
        [FhirTask.TaskStatus.InProgress] = ["accepted"],
        [FhirTask.TaskStatus.Completed] = ["in-progress"],
        [FhirTask.TaskStatus.Failed] = ["in-progress"],
        [FhirTask.TaskStatus.Cancelled] = ["requested", "received", "accepted"],
    };

    public static void Map(HisContext context)
    {
        var rf1 = context.Required("RF1");
        var patient = PatientMapping.Map(context, upsert: false);
        if (rf1 is null || patient is null)
        {
            return;
        }

        var key = TextNormalizer.Number(rf1[6].Component(1).Text);
        if (key.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, rf1.Location(6), "RF1-6 转诊单号为空");
            return;
        }

        var statusCode = rf1[1][1].ToUpperInvariant();
        if (!States.TryGetValue(statusCode, out var state))
        {
            context.Error(statusCode.Length == 0 ? RejectionReason.MissingRequired : RejectionReason.UnknownCode, rf1.Location(1),
                $"RF1-1 转诊状态 {statusCode} 不在值域中");
            return;
        }

        var trigger = context.Event;
        var expected = trigger switch
        {
            "I12" => statusCode == "P",
            "I14" => statusCode == "X",
            _ => statusCode != "X",
        };
        if (!expected)
        {
            context.Error(RejectionReason.InvalidTransition, rf1.Location(1), $"REF^{trigger} 不能携带转诊状态 {statusCode}");
            return;
        }

        var direction = rf1[3][1].ToUpperInvariant();
        if (direction is not ("UP" or "DOWN"))
        {
            context.Error(direction.Length == 0 ? RejectionReason.MissingRequired : RejectionReason.UnknownCode, rf1.Location(3),
                $"RF1-3 转诊方向 {direction} 应为 UP 或 DOWN");
            return;
        }

        var (requester, requesterOrg) = Provider(context, "RP");
        var (performer, owner) = Provider(context, "RT");
        var authored = context.PastTime(rf1, 7, required: trigger == "I12");
        var visit = EncounterMapping.Map(context, patient, VisitEvent.Embedded);
        if (owner is null || requesterOrg is null)
        {
            return;
        }

        // §6 "sent by": the originator sends I12, I14 and an I13 P (content change); the receiver every other I13.
        var byReceiver = trigger == "I13" && statusCode != "P";
        var sender = context.Message.SendingFacility;
        var party = Institution(context, byReceiver ? "RT" : "RP");
        if (sender.Length > 0 && party.Length > 0 && sender != party)
        {
            context.Error(RejectionReason.InvalidTransition, new Hl7Location("MSH", 1, 4),
                $"转诊状态 {statusCode} 应由{(byReceiver ? "接收" : "转出")}机构 {party} 发送，本消息发送机构为 {sender}");
            return;
        }

        var identifier = new Identifier(Systems.Referral, key);
        var id = ResourceIds.From(key);
        var requestReference = new ResourceReference($"ServiceRequest/{id}");
        var notes = Notes(context, out var rejection);
        if (statusCode == "R" && rejection is null)
        {
            // §6: the reason of a rejection is in an NTE with NTE-4 RJ (the hub's Task needs it as statusReason).
            context.Error(RejectionReason.MissingRequired, new Hl7Location("NTE", 1, 3), "拒绝转诊 (RF1-1 R) 须在 NTE-3 说明拒绝原因，NTE-4 = RJ");
            return;
        }

        var writesRequest = trigger is "I12" or "I14" || statusCode == "P";
        if (writesRequest)
        {
            var request = Request(context, rf1, identifier, direction, patient, visit, authored, requester ?? requesterOrg, owner, performer, notes, key);
            requestReference = context.Builder.Put(request, id);
        }

        var task = new FhirTask
        {
            Identifier = [identifier],
            Status = state.Status,
            BusinessStatus = FhirValues.Coded(Systems.Local("qxref-status"), statusCode, state.Display),
            Intent = FhirTask.TaskIntent.Order,
            Priority = Priority(rf1),
            Focus = requestReference,
            For = patient.Reference,
            // The referring institution (the request names its doctor): the party the referral rules and metrics know.
            Requester = requesterOrg,
            Owner = owner,
            Code = FhirValues.Coded("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"),
        };
        if (authored is { } a)
        {
            task.AuthoredOn = a.ToFhirDateTime();
        }

        var changed = context.PastTime(rf1, 9) ?? context.MessageTime;
        task.LastModified = changed.ToFhirDateTime();
        if (rejection is not null)
        {
            task.StatusReason = new CodeableConcept { Text = rejection };
        }

        task.Note.AddRange(notes.Select(n => new Annotation { Text = n }));
        if (state.Status is FhirTask.TaskStatus.InProgress or FhirTask.TaskStatus.Completed && visit is not null)
        {
            task.Output.Add(new FhirTask.OutputComponent
            {
                Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ActCode", "ENC", "encounter"),
                Value = visit.Reference,
            });
        }
        else if (state.Status == FhirTask.TaskStatus.Completed)
        {
            // PV1 is optional in REF (§6): a completion that names no visit hands the patient back with the notice
            // itself as the summary a completed referral carries (its notes, who completed it, when).
            task.Output.Add(new FhirTask.OutputComponent
            {
                Type = FhirValues.Coded(Systems.Local("referral-output"), "completion-notice", "转诊完成通知"),
                Value = CompletionNotice(context, key, patient, requestReference, owner, changed, notes),
            });
        }

        context.Builder.Put(task, id);
        if (state.Status == FhirTask.TaskStatus.Completed)
        {
            // The referral was carried out: its ServiceRequest follows the Task to completed (FHIR request status: "the
            // activity described by the request has been fully performed"), as an I14 makes it revoked.
            context.Builder.Patch("ServiceRequest", id, FhirValues.FhirPathPatch("ServiceRequest.status", new Code(RequestStatus.Completed.GetLiteral())));
        }

        context.Preconditions.Add(new TaskTransition(id, AllowedFrom[state.Status], state.Status.GetLiteral(),
            KeepsStatus: statusCode == "P", MayBeAbsent: trigger == "I12", rf1.Location(1),
            trigger == "I12" ? $"转诊单 {key} 已存在且状态不允许修改" : $"转诊单 {key} 当前状态不允许变更为 {state.Display}"));
    }

    private static ResourceReference CompletionNotice(HisContext context, string key, PatientInfo patient, ResourceReference request,
        ResourceReference owner, Hl7Time at, List<string> notes)
    {
        var text = notes.Count > 0 ? string.Join('\n', notes) : $"转诊 {key} 已完成";
        var notice = new DocumentReference
        {
            Status = DocumentReferenceStatus.Current,
            Type = FhirValues.Coded(Systems.Loinc, "57133-1", "Referral note"),
            Subject = patient.Reference,
            DateElement = new Instant(at.Value),
            Author = [owner],
            Description = $"转诊完成通知 {key}",
            Content =
            [
                new DocumentReference.ContentComponent
                {
                    Attachment = new Attachment { ContentType = "text/plain; charset=utf-8", Data = System.Text.Encoding.UTF8.GetBytes(text), Title = "转诊完成通知" },
                },
            ],
            Context = new DocumentReference.ContextComponent { Related = [request] },
        };
        return context.Builder.Put(notice, ResourceIds.From(key, "completion-notice"));
    }

    private static ServiceRequest Request(HisContext context, Hl7Segment rf1, Identifier identifier, string direction, PatientInfo patient,
        VisitInfo? visit, Hl7Time? authored, ResourceReference requester, ResourceReference owner, ResourceReference? performer,
        List<string> notes, string key)
    {
        var request = new ServiceRequest
        {
            Identifier = [identifier],
            Status = context.Event == "I14" ? RequestStatus.Revoked : RequestStatus.Active,
            Intent = RequestIntent.Order,
            Category =
            [
                FhirValues.Coded("http://snomed.info/sct", "3457005", "Patient referral"),
                FhirValues.Coded(Systems.Local("qxref"), direction, direction == "UP" ? "上转" : "下转"),
            ],
            Priority = Priority(rf1) switch
            {
                RequestPriority.Asap => RequestPriority.Asap,
                RequestPriority.Stat => RequestPriority.Stat,
                _ => RequestPriority.Routine,
            },
            Subject = patient.Reference,
            Encounter = visit?.Reference,
            Requester = requester,
            Performer = [owner],
        };
        if (performer is not null)
        {
            request.Performer.Add(performer);
        }

        // PRD-4.1 of the referred-to party: the department the patient is referred to (§4 PRD, department codes §8).
        if (Prd(context, "RT")?[4].Component(1).Subcomponent(1).Value is { Length: > 0 } department)
        {
            request.LocationCode.Add(FhirValues.Coded(Systems.Local("qxhis-department"), department, CountyCodes.Departments.GetValueOrDefault(department)));
        }

        if (authored is { } a)
        {
            request.AuthoredOn = a.ToFhirDateTime();
            var until = context.Time(rf1, 8) is { } expiry ? expiry.ToFhirDateTime() : new Hl7Time(a.Value.AddDays(7), a.Digits).ToFhirDateTime();
            request.Occurrence = new Period(new FhirDateTime(a.ToFhirDateTime()), new FhirDateTime(until));
        }

        foreach (var field in new[] { 4, 5 })
        {
            if (!rf1[field].IsEmpty)
            {
                request.OrderDetail.Add(HisContext.Concept(rf1[field]));
            }
        }

        if (!rf1[10].IsEmpty)
        {
            // RF1-10 is coded in HL7 table 0336 (§4), also when the sender leaves CE.3 empty (`P^患者意愿`): its system
            // is what tells the referral's reason from its DG1 diagnoses when a later message changes one of them.
            request.ReasonCode.Add(HisContext.Concept(rf1[10], name => name.Length == 0 ? ReferralReasonSystem : HisContext.CodingSystem(name)));
        }

        foreach (var dg1 in context.Message.All("DG1").Where(d => !d[3].IsEmpty))
        {
            request.ReasonCode.Add(EncounterMapping.Diagnosis(dg1[3]));
        }

        // RF1-11: a down-referral names the up-referral it returns; a number never received is only a warning (§4 RF1-11),
        // so the link is logical (by identifier) and never fails the transaction.
        if (TextNormalizer.Number(rf1[11].Component(1).Text) is { Length: > 0 } returned)
        {
            request.BasedOn.Add(new ResourceReference { Identifier = new Identifier(Systems.Referral, returned), Type = "ServiceRequest" });
            context.Preconditions.Add(new ShouldExist($"ServiceRequest?{Criteria.Identifier(Systems.Referral, returned)}", rf1.Location(11),
                $"RF1-11 关联转诊单号 {returned} 未收到过，按逻辑引用保存"));
        }

        // Supporting information: OBR REFSUM with vital signs and a free-text summary (§6).
        foreach (var obx in context.Message.All("OBX"))
        {
            if (obx[2].Value.ToUpperInvariant() is "TX" or "FT" or "ST")
            {
                request.Note.Add(new Annotation { Text = obx[5].Text.Trim(), Extension = [new Extension(ExtensionUrls.ReferralSummary, new FhirBoolean(true))] });
                continue;
            }

            if (ObservationMapping.Map(context, obx, patient, visit?.Reference, null, FhirValues.Organization(context.Institution), context.Institution) is { } observation)
            {
                var setId = obx[1].Value.Length > 0 ? obx[1].Value : obx.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
                request.SupportingInfo.Add(context.Builder.Put(observation, ResourceIds.From(key, "obx", setId)));
            }
        }

        request.Note.AddRange(notes.Select(n => new Annotation { Text = n }));
        return request;
    }

    /// <summary>HL7 table 0336 (referral reason), the coding system of RF1-10.</summary>
    public const string ReferralReasonSystem = "http://terminology.hl7.org/CodeSystem/v2-0336";

    /// <summary>The PRD of a role (RP referring, RT referred to).</summary>
    private static Hl7Segment? Prd(HisContext context, string role) =>
        context.Message.All("PRD").FirstOrDefault(p => string.Equals(p[1][1], role, StringComparison.OrdinalIgnoreCase));

    /// <summary>The institution code (PRD-4.4) of the PRD of a role, or "".</summary>
    private static string Institution(HisContext context, string role) => Prd(context, role)?[4].Component(4).Subcomponent(1).Value ?? "";

    /// <summary>PRD of a role: the named provider (PRD-7 staff code, with the phone of PRD-5) and the institution (PRD-4.4).</summary>
    private static (ResourceReference? Practitioner, ResourceReference? Organization) Provider(HisContext context, string role)
    {
        var prd = Prd(context, role);
        if (prd is null)
        {
            context.Error(RejectionReason.MissingRequired, new Hl7Location("PRD"), $"缺少角色为 {role} 的 PRD 段");
            return (null, null);
        }

        var institution = prd[4].Component(4).Subcomponent(1).Value;
        if (institution.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, prd.Location(4, 0, 4), $"PRD-4 {role} 机构代码为空");
            return (null, null);
        }

        var organization = context.KnownOrganization(institution, prd.Location(4, 0, 4));
        var staff = TextNormalizer.Number(prd[7][1]);
        var name = TextNormalizer.Name(prd[2].Component(1).Text);
        ResourceReference? practitioner = null;
        if (staff.Length > 0)
        {
            var owner = prd[7][3] is { Length: > 0 } o ? o : institution;
            var phones = new List<ContactPoint>();
            PatientMapping.ReadTelecoms(prd, 5, phones);
            practitioner = context.Practitioner(new Hl7Value($"{staff}{prd.Syntax.Component}{prd.Syntax.EscapeText(name)}", prd.Syntax, 0), owner, phones);
        }
        else if (name.Length > 0)
        {
            practitioner = new ResourceReference { Display = name };
        }

        return (practitioner, organization);
    }

    private static List<string> Notes(HisContext context, out string? rejection)
    {
        rejection = null;
        var notes = new List<string>();
        foreach (var nte in context.Message.All("NTE"))
        {
            var text = nte[3].Text.Trim();
            if (text.Length == 0)
            {
                continue;
            }

            if (nte[4][1] == "RJ")
            {
                rejection = text;
            }
            else
            {
                notes.Add(text);
            }
        }

        return notes;
    }

    private static RequestPriority? Priority(Hl7Segment rf1) => rf1[2][1].ToUpperInvariant() switch
    {
        "S" => RequestPriority.Stat,
        "A" => RequestPriority.Asap,
        "R" => RequestPriority.Routine,
        _ => null,
    };
}
