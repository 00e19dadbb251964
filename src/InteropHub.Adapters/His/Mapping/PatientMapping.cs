using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>What other mappings need to know about the patient of the message.</summary>
internal sealed record PatientInfo(Patient Resource, ResourceReference Reference, string MrnInstitution, string Mrn, DateOnly? BirthDate,
    IReadOnlyList<Identifier> LinkingIdentifiers)
{
    /// <summary>
    /// The cross-source person key for dose and parent ids (<see cref="DoseIds"/>, <see cref="KinIds"/>), when the message
    /// gives one: a newborn's record key when a birth certificate's correction changed its key
    /// (<see cref="ExtensionUrls.NewbornRecordKey"/>, <see cref="StoredKeys.NewbornRecordKeys"/>).
    /// </summary>
    public string? PersonKey => DoseIds.PersonKey(NewbornRecordKey ?? LinkingIdentifiers.FirstOrDefault(i => i.System == Systems.NewbornKey)?.Value,
        LinkingIdentifiers.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value);

    /// <summary>The key of the person's doses: the stored Patient's person key (<see cref="StoredKeys.PersonKey"/>), else the message's.</summary>
    public string? DoseKey => StoredPersonKey ?? PersonKey;

    public string? NewbornRecordKey { get; init; }

    public string? StoredPersonKey { get; init; }
}

/// <summary>
/// PID (+ ZPI, NK1) → Patient and RelatedPersons (his-hl7v2.md §4 PID, ZPI, NK1). The Patient is matched on its
/// person-linking identifiers (README "Linking persons": ID number, institution MRN, health card, health-record
/// number, birth certificate number, passport, newborn key); visit numbers sent in PID-3 are never used to link.
/// </summary>
internal static class PatientMapping
{
    private const string V2IdentifierType = "http://terminology.hl7.org/CodeSystem/v2-0203";

    /// <param name="upsert">ADT events that maintain the person replace the Patient; other messages create it when absent
    /// and otherwise add only its identifiers (<see cref="ExtensionUrls.IdentifiersOnly"/>).</param>
    public static PatientInfo? Map(HisContext context, bool upsert)
    {
        var pid = context.Required("PID");
        if (pid is null)
        {
            return null;
        }

        var patient = new Patient();
        var linking = new List<Identifier>();
        var (mrnInstitution, mrn) = ReadIdentifiers(context, pid, patient, linking);
        var birth = ReadBirth(context, pid, patient);
        ReadNames(context, pid, patient);
        ReadGender(context, pid, patient);
        WarnSexDigit(context, pid, patient);
        ReadEthnicity(context, pid, patient);
        ReadAddresses(context, pid, patient);
        ReadTelecoms(pid, 13, patient.Telecom);
        ReadMaritalStatus(pid, patient);
        ReadOther(context, pid, patient);
        ReadZpi(context, patient, linking);
        ReadNewbornKey(context, pid, patient, linking, birth);
        MarkCleared(pid, context.Message.First("ZPI"), patient);

        if (mrn.Length == 0 || linking.Count == 0)
        {
            return null;
        }

        var criteria = Criteria.Identifier(linking);
        if (!upsert)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.IdentifiersOnly, new FhirBoolean(true)));
        }

        var reference = context.Builder.Upsert(patient, criteria);
        var info = new PatientInfo(patient, reference, mrnInstitution, mrn, birth?.Date, linking)
        {
            NewbornRecordKey = linking.FirstOrDefault(i => i.System == Systems.NewbornKey)?.Value is { } key
                && context.Stored.NewbornRecordKeys.TryGetValue(key, out var recordKey) ? recordKey : null,
            StoredPersonKey = context.Stored.PersonKey,
        };
        MapKin(context, info);
        return info;
    }

    /// <summary>
    /// §2: <c>""</c> deletes the stored value, where an empty field leaves it. The fields deleted so are named in
    /// <see cref="ExtensionUrls.Cleared"/> extensions, which the ingest pipeline removes when it merges the Patient with
    /// the stored one, keeping those elements out of it; PID-30 <c>N</c> (alive) clears a recorded death the same way.
    /// </summary>
    private static void MarkCleared(Hl7Segment pid, Hl7Segment? zpi, Patient patient)
    {
        var cleared = new List<string>();
        if (zpi?[2].IsDelete == true)
        {
            cleared.Add(ExtensionUrls.PaymentMethod);
        }

        if (zpi?[4].IsDelete == true)
        {
            cleared.Add(ExtensionUrls.RegisteredPoor);
        }

        if (pid[10].IsDelete)
        {
            cleared.Add(ExtensionUrls.Ethnicity);
        }

        if (pid[11].IsDelete)
        {
            cleared.Add("address");
        }

        if (pid[13].IsDelete || pid[14].IsDelete)
        {
            cleared.Add("telecom");
        }

        if (pid[16].IsDelete)
        {
            cleared.Add("maritalStatus");
        }

        if (pid[28].IsDelete)
        {
            cleared.Add(ExtensionUrls.Nationality);
        }

        if (patient.Deceased is null && (pid[29].IsDelete || string.Equals(pid[30].Value, "N", StringComparison.OrdinalIgnoreCase)))
        {
            cleared.Add("deceased");
        }

        patient.Extension.AddRange(cleared.Select(c => new Extension(ExtensionUrls.Cleared, new Code(c))));
    }

    /// <summary>Digit 17 of an ID number is odd for men and even for women; disagreeing with PID-8 is a warning (README).</summary>
    private static void WarnSexDigit(HisContext context, Hl7Segment pid, Patient patient)
    {
        if (patient.Gender is AdministrativeGender.Male or AdministrativeGender.Female
            && patient.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value is { } id
            && ResidentIdNumber.Check(id, DateOnly.MaxValue) is { IsValid: true } check && check.IsMale != (patient.Gender == AdministrativeGender.Male))
        {
            context.Warn(pid.Location(8), $"PID-8 性别与身份证号 {id} 第17位所示性别不符");
        }
    }

    /// <summary>Validates an ID number field and returns its identifier, or null after recording the error.</summary>
    public static Identifier? ResidentId(HisContext context, string sent, Hl7Location location)
    {
        var check = ResidentIdNumber.Check(sent, context.MessageTime.Date);
        if (!check.IsValid)
        {
            context.Error(check.Failure!.Value, location, $"{location} {check.Detail}");
            return null;
        }

        if (check.Upgraded)
        {
            context.Warn(location, $"{location} 15位身份证号 {sent} 已升级为 {check.Value}");
        }

        if (!ResidentIdNumber.KnownArea(check.Value))
        {
            context.Warn(location, $"{location} 身份证号 {check.Value} 的地区码 {check.Value[..6]} 不在行政区划表中");
        }

        return new Identifier(Systems.ResidentId, check.Value) { Use = Identifier.IdentifierUse.Official };
    }

    private static (string Institution, string Mrn) ReadIdentifiers(HisContext context, Hl7Segment pid, Patient patient, List<Identifier> linking)
    {
        var mrn = ("", "");
        var repetitions = pid.Repetitions(3);
        var hasResidentId = false;
        for (var i = 0; i < repetitions.Count; i++)
        {
            var cx = repetitions[i];
            var value = TextNormalizer.Number(cx.Component(1).Text);
            if (value.Length == 0)
            {
                continue;
            }

            var authority = cx.Component(4).Subcomponent(1).Value;
            var universalId = cx.Component(4).Subcomponent(2).Value;
            var type = cx[5].ToUpperInvariant();
            var location = pid.Location(3, i + 1);
            Identifier? identifier = null;
            var links = true;
            if (universalId == "2.16.156.10011.1.3" || type is "NNCHN" or "ID" or "SFZ")
            {
                identifier = ResidentId(context, value, location);
                hasResidentId |= identifier is not null;
            }
            else if (type is "MR" or "PI")
            {
                var institution = authority.Length > 0 ? authority : context.Institution;
                identifier = new Identifier(Systems.Mrn(institution), value)
                {
                    Use = Identifier.IdentifierUse.Usual,
                    Type = FhirValues.Coded(V2IdentifierType, "MR"),
                };
                if (mrn.Item2.Length == 0 || institution == context.Institution)
                {
                    mrn = (institution, value);
                }
            }
            else if (universalId == "2.16.156.10011.1.19" || type == "HC")
            {
                identifier = new Identifier(Systems.HealthCard, value);
            }
            else if (type == "BCT")
            {
                identifier = new Identifier(Systems.BirthCertificate, value.ToUpperInvariant());
            }
            else if (type == "PPN")
            {
                identifier = new Identifier(Systems.Passport(authority.Length > 0 ? authority : "UNK"), value)
                {
                    Type = FhirValues.Coded(V2IdentifierType, "PPN"),
                };
            }
            else if (type == "VN")
            {
                // A visit number repeated in PID-3 by some instances: it identifies a visit, not a person (§4 PID-3).
                continue;
            }
            else
            {
                links = false;
                identifier = new Identifier(Systems.Local($"id:{(authority.Length > 0 ? authority : type)}"), value)
                {
                    Type = type.Length > 0 ? FhirValues.Coded(V2IdentifierType, type) : null,
                };
            }

            if (identifier is not null && !patient.Identifier.Any(x => x.System == identifier.System && x.Value == identifier.Value))
            {
                patient.Identifier.Add(identifier);
                if (links)
                {
                    linking.Add(identifier);
                }
            }
        }

        // One township instance sends the ID number in PID-19 instead (§4 PID-19).
        // PID-19 is the SSN field of the standard: only a value shaped like an ID number is taken as one.
        if (!hasResidentId && ResidentIdNumber.Normalize(pid[19].Value) is { Length: 15 or 18 } ssn && ssn[..15].All(char.IsAsciiDigit))
        {
            if (ResidentId(context, ssn, pid.Location(19)) is { } identifier)
            {
                patient.Identifier.Add(identifier);
                linking.Add(identifier);
            }
        }
        else if (!hasResidentId && pid[19].Value.Length > 0)
        {
            context.Warn(pid.Location(19), $"PID-19 {pid[19].Value} 不是身份证号，已忽略");
        }

        if (mrn.Item2.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, pid.Location(3), "PID-3 缺少患者ID(MR)");
        }

        // The ID number is the strongest key: list it first in the match criteria.
        linking.Sort((a, b) => (b.System == Systems.ResidentId).CompareTo(a.System == Systems.ResidentId));
        return mrn;
    }

    private static Hl7Time? ReadBirth(HisContext context, Hl7Segment pid, Patient patient)
    {
        var birth = context.Time(pid, 7, required: true);
        if (birth is not { } time)
        {
            return null;
        }

        if (time.Date > context.MessageTime.Date)
        {
            context.Error(RejectionReason.ImpossibleDate, pid.Location(7), $"PID-7 出生日期 {pid[7].Value} 晚于消息时间");
            return null;
        }

        patient.BirthDateElement = new Date(time.ToFhirDate());
        var isNewborn = pid[21].Value.Length > 0 || pid[24].Value.Length > 0 || context.Message.First("PV1")?[4].Value == "N";
        if (time.HasTime && (isNewborn || time.Value.TimeOfDay != TimeSpan.Zero) && time.Date.AddYears(1) > context.MessageTime.Date)
        {
            // Newborns' PID-7 carries the time of birth; adults' "195804120000" is just a date (§9).
            patient.BirthDateElement.Extension.Add(new Extension(ExtensionUrls.BirthTime, new FhirDateTime(time.ToFhirDateTime())));
        }

        return time;
    }

    private static void ReadNames(HisContext context, Hl7Segment pid, Patient patient)
    {
        foreach (var xpn in pid.Repetitions(5))
        {
            var family = TextNormalizer.Name(xpn.Component(1).Subcomponent(1).Text);
            var given = TextNormalizer.Name(xpn.Component(2).Text);
            if (family.Length == 0 && given.Length == 0)
            {
                continue;
            }

            var alphabetic = xpn[8] == "A";
            var name = new HumanName();
            if (given.Length == 0)
            {
                // Chinese names are usually sent whole in XPN.1; splitting them would guess at compound surnames.
                name.Text = family;
            }
            else
            {
                name.Family = family;
                name.Given = [given];
                name.Text = alphabetic ? $"{family} {given}" : family + given;
            }

            // Newborns are registered as "<mother>之子/之女" until named (§4 PID-5).
            var temporary = !alphabetic && (name.Text.EndsWith("之子", StringComparison.Ordinal) || name.Text.EndsWith("之女", StringComparison.Ordinal));
            name.Use = temporary ? HumanName.NameUse.Temp : HumanName.NameUse.Official;
            if (xpn[8] is "A" or "I")
            {
                name.Extension.Add(new Extension(ExtensionUrls.NameRepresentation, new Code(alphabetic ? "ABC" : "IDE")));
            }

            patient.Name.Add(name);
        }

        if (patient.Name.Count == 0)
        {
            context.Error(RejectionReason.MissingRequired, pid.Location(5), "PID-5 姓名为空");
        }
    }

    private static void ReadGender(HisContext context, Hl7Segment pid, Patient patient)
    {
        var sex = TextNormalizer.Number(pid[8].Value).ToUpperInvariant();
        AdministrativeGender? gender = sex switch
        {
            "M" or "1" => AdministrativeGender.Male,
            "F" or "2" => AdministrativeGender.Female,
            "U" or "0" or "O" or "9" => AdministrativeGender.Unknown,
            _ => null,
        };
        if (sex.Length == 0)
        {
            context.Error(RejectionReason.MissingRequired, pid.Location(8), "PID-8 性别为空");
            return;
        }

        if (gender is null)
        {
            context.Error(RejectionReason.UnknownCode, pid.Location(8), $"PID-8 性别代码 {sex} 不在 HL7 0001 或 GB/T 2261.1 中");
            return;
        }

        patient.GenderElement = new Code<AdministrativeGender>(gender);
        if (sex is "O" or "9")
        {
            // "Other" and "not stated" both become unknown in FHIR; the original code is kept (§4 PID-8).
            var original = sex == "O" ? new Coding("http://terminology.hl7.org/CodeSystem/v2-0001", "O") : new Coding(Systems.Sex, "9", "未说明的性别");
            patient.GenderElement.Extension.Add(new Extension(ExtensionUrls.OriginalCode, original));
        }
    }

    private static void ReadEthnicity(HisContext context, Hl7Segment pid, Patient patient)
    {
        var field = pid[10].IsEmpty ? 22 : 10;
        var ce = pid[field];
        var code = TextNormalizer.Number(ce[1]);
        if (code.Length == 0)
        {
            return;
        }

        if (!CountyCodes.Ethnicities.TryGetValue(code, out var name))
        {
            context.Error(RejectionReason.UnknownCode, pid.Location(field), $"PID-{field} 民族代码 {code} 不在 GB/T 3304 中");
            return;
        }

        patient.Extension.Add(new Extension(ExtensionUrls.Ethnicity, new Coding(Systems.Ethnicity, code, name)));
    }

    private static void ReadAddresses(HisContext context, Hl7Segment pid, Patient patient)
    {
        var repetitions = pid.Repetitions(11);
        for (var i = 0; i < repetitions.Count; i++)
        {
            var xad = repetitions[i];
            var detail = xad.Component(1).Text.Trim();
            var township = xad.Component(2).Text.Trim();
            var city = xad.Component(3).Text.Trim();
            var province = xad.Component(4).Text.Trim();
            if (detail.Length + township.Length + city.Length + province.Length == 0)
            {
                continue;
            }

            var address = new Address
            {
                Line = [.. new[] { township, detail }.Where(l => l.Length > 0)],
                City = city.Length > 0 ? city : null,
                State = province.Length > 0 ? province : null,
                PostalCode = xad[5] is { Length: > 0 } postal ? postal : null,
                Country = xad[6] is { Length: > 0 } country ? country : null,
                Text = province + city + township + detail,
            };

            var category = xad[7].ToUpperInvariant();
            address.Use = category is "H" or "L" or "" ? Address.AddressUse.Home : null;
            if (category.Length > 0 && category != "H")
            {
                // L = 户籍地址 (registered domicile), N = 出生地: kept as sent, FHIR has no such use.
                address.Extension.Add(new Extension(ExtensionUrls.AddressCategory, new Code(category)));
            }

            // The division code is in XAD.9, else XAD.8 (6-digit county or 9-digit township code, §4 PID-11).
            var division = xad[9].Length > 0 ? xad[9] : xad[8];
            if (division.Length > 0)
            {
                if (division.Length is 6 or 9 or 12 && division.All(char.IsAsciiDigit))
                {
                    address.Extension.Add(new Extension(ExtensionUrls.DivisionCode, new Code(division)));
                    if (!KnownDivision(division))
                    {
                        // Kept as sent: an unknown code is a warning (§4 PID-11).
                        context.Warn(pid.Location(11, i + 1, xad[9].Length > 0 ? 9 : 8), $"PID-11 行政区划代码 {division} 不在行政区划表中");
                    }
                }
                else
                {
                    context.Warn(pid.Location(11, i + 1, xad[9].Length > 0 ? 9 : 8), $"PID-11 行政区划代码 {division} 无法识别");
                }
            }

            if (category == "N")
            {
                patient.Extension.Add(new Extension(ExtensionUrls.BirthPlace, address));
            }
            else
            {
                patient.Address.Add(address);
            }
        }
    }

    /// <summary>XTN: the number is in XTN.12 (v2.5) or XTN.1 (old instances); full-width digits are normalised (§9).</summary>
    internal static void ReadTelecoms(Hl7Segment segment, int field, List<ContactPoint> telecoms)
    {
        foreach (var xtn in segment.Repetitions(field))
        {
            var number = TextNormalizer.Number(xtn[12].Length > 0 ? xtn[12] : xtn.Component(1).Text);
            if (number.Length == 0)
            {
                continue;
            }

            telecoms.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone,
                xtn[3] == "CP" ? ContactPoint.ContactPointUse.Mobile : xtn[2] == "WPN" ? ContactPoint.ContactPointUse.Work : ContactPoint.ContactPointUse.Home,
                number));
        }
    }

    private static void ReadMaritalStatus(Hl7Segment pid, Patient patient)
    {
        var code = pid[16][1];
        if (code.Length == 0)
        {
            return;
        }

        var concept = new CodeableConcept();
        var standard = code switch
        {
            "10" or "S" => ("S", "Never Married"),
            "20" or "21" or "22" or "23" or "M" => ("M", "Married"),
            "30" or "W" => ("W", "Widowed"),
            "40" or "D" => ("D", "Divorced"),
            _ => ("UNK", "unknown"),
        };
        if (char.IsAsciiDigit(code[0]))
        {
            concept.Coding.Add(new Coding(Systems.MaritalStatus, code, pid[16].Component(2).Text.Trim() is { Length: > 0 } d ? d : null));
        }

        concept.Coding.Add(new Coding("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", standard.Item1, standard.Item2));
        patient.MaritalStatus = concept;
    }

    private static void ReadOther(HisContext context, Hl7Segment pid, Patient patient)
    {
        if (string.Equals(pid[24].Value, "Y", StringComparison.OrdinalIgnoreCase))
        {
            patient.MultipleBirth = new Integer(int.TryParse(pid[25].Value, out var order) && order > 0 ? order : 1);
        }
        else if (string.Equals(pid[24].Value, "N", StringComparison.OrdinalIgnoreCase))
        {
            patient.MultipleBirth = new FhirBoolean(false);
        }

        if (pid[28][1] is { Length: > 0 } nationality)
        {
            patient.Extension.Add(new Extension
            {
                Url = ExtensionUrls.Nationality,
                Extension = [new Extension("code", FhirValues.Coded("urn:iso:std:iso:3166", nationality))],
            });
        }

        if (context.Time(pid, 29) is { } death)
        {
            patient.Deceased = new FhirDateTime(death.ToFhirDateTime());
        }
        else if (string.Equals(pid[30].Value, "Y", StringComparison.OrdinalIgnoreCase))
        {
            patient.Deceased = new FhirBoolean(true);
        }
    }

    private static void ReadZpi(HisContext context, Patient patient, List<Identifier> linking)
    {
        var zpi = context.Single("ZPI");
        if (zpi is null)
        {
            return;
        }

        if (zpi[2][1] is { Length: > 0 } payment)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.PaymentMethod,
                new Coding(Systems.Local("payment-method"), payment, zpi[2].Component(2).Text.Trim() is { Length: > 0 } d ? d : null)));
        }

        if (TextNormalizer.Number(zpi[3].Value) is { Length: > 0 } card)
        {
            patient.Identifier.Add(new Identifier(Systems.InsuranceCard, card));
        }

        if (Flag(zpi[4].Value) is { } poor)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.RegisteredPoor, new FhirBoolean(poor)));
        }

        if (TextNormalizer.Number(zpi[5].Value) is { Length: > 0 } record)
        {
            var identifier = new Identifier(Systems.HealthRecord, record);
            patient.Identifier.Add(identifier);
            linking.Add(identifier);
        }

        if (Flag(zpi[6].Value) is { } contract)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.FamilyDoctorContract, new FhirBoolean(contract)));
        }
    }

    private static bool? Flag(string value) => value.ToUpperInvariant() switch
    {
        "1" or "Y" => true,
        "0" or "N" => false,
        _ => null,
    };

    /// <summary>
    /// Newborns link across sources by (mother's ID number, birth date, sex, birth order) (README "Linking persons",
    /// rule 5). The key is written as an identifier so the certificate and township adapters can match on it too.
    /// </summary>
    private static void ReadNewbornKey(HisContext context, Hl7Segment pid, Patient patient, List<Identifier> linking, Hl7Time? birth)
    {
        Identifier? mother = null;
        if (pid[21].Value is { Length: > 0 } motherId)
        {
            mother = ResidentId(context, motherId, pid.Location(21));
        }
        else if (birth is { } b && b.Date.AddYears(1) > context.MessageTime.Date)
        {
            var nk1 = context.Message.All("NK1").FirstOrDefault(n => n[3][1] == "MTH" && n[33].Value.Length > 0);
            if (nk1 is not null)
            {
                mother = ResidentId(context, nk1[33].Value, nk1.Location(33));
            }
        }

        if (mother is null || birth is null || patient.Gender is null)
        {
            return;
        }

        var order = int.TryParse(pid[25].Value, out var o) && o > 0 ? o : 1;
        var key = NewbornKeys.For(mother.Value!, birth.Value.Date, patient.Gender.Value, order);
        var identifier = new Identifier(Systems.NewbornKey, key);
        patient.Identifier.Add(identifier);
        linking.Add(identifier);
    }

    /// <summary>NK1 → RelatedPerson of the patient; kin never become Patients of their own (§5).</summary>
    private static void MapKin(HisContext context, PatientInfo patient)
    {
        foreach (var nk1 in context.Message.All("NK1"))
        {
            var name = TextNormalizer.Name(nk1[2].Component(1).Subcomponent(1).Text + nk1[2].Component(2).Text);
            var relationship = nk1[3][1].ToUpperInvariant();
            if (name.Length == 0 && relationship.Length == 0)
            {
                continue;
            }

            var person = new RelatedPerson { Patient = patient.Reference, Active = true };
            if (name.Length > 0)
            {
                person.Name.Add(new HumanName { Text = name });
            }

            if (relationship.Length > 0)
            {
                var concept = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0063", relationship,
                    nk1[3].Component(2).Text.Trim() is { Length: > 0 } d ? d : null);
                if (RoleCode(relationship) is { } role)
                {
                    concept.Coding.Add(new Coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", role));
                }

                person.Relationship.Add(concept);
            }

            if (nk1[7][1] == "C")
            {
                person.Relationship.Add(FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0131", "C", "Emergency Contact"));
            }

            ReadTelecoms(nk1, 5, person.Telecom);
            if (nk1[33].Value is { Length: > 0 } id && ResidentId(context, id, nk1.Location(33)) is { } identifier)
            {
                person.Identifier.Add(identifier);
            }

            // A newborn's parent is the same RelatedPerson as the certificate's (KinIds).
            var key = relationship is "MTH" or "FTH" && KinIds.OfNewborn(patient.PersonKey) is { } personKey
                ? KinIds.For(personKey, relationship)
                : ResourceIds.Hashed("RelatedPerson", patient.MrnInstitution, patient.Mrn, relationship, name);
            context.Builder.Put(person, key);
        }
    }

    private static string? RoleCode(string relationship) => relationship switch
    {
        "MTH" => "MTH",
        "FTH" => "FTH",
        "SPO" => "SPS",
        "CHD" => "CHILD",
        "GCH" => "GRNDCHILD",
        "GRD" => "GUARD",
        "SIB" => "SIB",
        "PAR" => "PRN",
        _ => null,
    };

    /// <summary>
    /// A division code the hub knows: its first six digits a county of the area table (<see cref="ResidentIdNumber.KnownArea"/>),
    /// and within this county a township or village of the county's table.
    /// </summary>
    private static bool KnownDivision(string code) =>
        ResidentIdNumber.KnownArea(code)
        && (code.Length == 6 || !code.StartsWith(CountyCodes.CountyDivision, StringComparison.Ordinal)
            || CountyCodes.Villages.Keys.Any(village => village.StartsWith(code, StringComparison.Ordinal)));
}
