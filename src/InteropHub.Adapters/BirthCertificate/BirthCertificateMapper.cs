using System.Globalization;
using System.Text;
using System.Xml.Linq;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.Identity;
using static InteropHub.Adapters.BirthCertificate.BirthCertificateReader;

namespace InteropHub.Adapters.BirthCertificate;

/// <summary>
/// A valid certificate → newborn Patient, mother Patient, RelatedPersons (mother, father), birth Encounter, birth
/// Observations, birth-dose Immunizations and the certificate's DocumentReference (DOMAIN.md "Birth certificates";
/// birth-certificate.md §3). The newborn is matched on the certificate numbers of the chain and on the newborn key
/// (README "Linking persons", rule 5), so a 换发 or a later HIS/township record finds the same child.
/// </summary>
internal static class BirthCertificateMapper
{
    public const string MappingVersion = "0.1.0";

    /// <summary>DocumentReference extension: the certificate's <c>RecordVersion</c>.</summary>
    public const string RecordVersionExtension = "https://interophub.dev/fhir/StructureDefinition/birth-certificate-record-version";
    public const string MappingPolicy = "urn:interophub:mapping:birth-certificate";

    public static CertificateAccepted Map(XElement c, string number, int version, List<CertificateIssue> warnings)
    {
        var builder = new TransactionBuilder();
        var born = DateTimeOffset.Parse(Text(c, "Newborn/BirthDateTime"), CultureInfo.InvariantCulture).ToOffset(TimeSpan.FromHours(8));
        var birthDate = DateOnly.FromDateTime(born.DateTime);
        var replaced = Text(c, "Replaces/CertificateNo") is { Length: > 0 } r ? r : null;
        var issuer = ((string?)c.Element("IssuingInstitution")!.Attribute("code"))!.Trim();
        var gender = Gender(Text(c, "Newborn/SexCode"));
        var order = int.Parse(Text(c, "Newborn/BirthOrder"), CultureInfo.InvariantCulture);
        var plurality = int.Parse(Text(c, "Newborn/Plurality"), CultureInfo.InvariantCulture);

        // Mother.
        var motherElement = c.Element("Mother")!;
        var motherIdentifier = ParentIdentifier(motherElement);
        var motherId = motherIdentifier.System == Systems.ResidentId ? motherIdentifier.Value : null;
        var newbornKey = motherId is null ? null : NewbornKeys.For(motherId, birthDate, gender, order);
        var (firstKey, staleKeys) = EarlierNewbornKeys(c,
            new KeyFields(motherId, Text(c, "Newborn/BirthDateTime"), Text(c, "Newborn/SexCode"), Text(c, "Newborn/BirthOrder")), newbornKey);
        var mother = Parent(motherElement, motherIdentifier, AdministrativeGender.Female, issuer);
        // A first issue finds or creates the mother by her ID document; a replacement (换发, IssueType 3), or an in-place
        // correction (RecordVersion > 1) whose corrections name the mother, updates her from the new document (§3),
        // keeping what it does not carry. A void (Status 2) or a correction of the newborn alone leaves her as she is.
        var correctsMother = c.Element("Corrections")?.Elements("Correction").Any(x => Text(x, "Field").StartsWith("Mother/", StringComparison.Ordinal)) == true;
        var voided = Text(c, "Status") == "2";
        var updatesPersons = !voided && (Text(c, "IssueType") == "3" || (version > 1 && correctsMother));
        if (updatesPersons)
        {
            // Who manages her (her township's clinic, for the indicators of its residents) is not the delivering
            // hospital's to change: the update keeps the stored managing organisation.
            mother.ManagingOrganization = null;
            builder.Upsert(mother, Criteria.Identifier(motherIdentifier.System!, motherIdentifier.Value!));
        }
        else
        {
            builder.CreateIfAbsent(mother, Criteria.Identifier(motherIdentifier.System!, motherIdentifier.Value!));
        }

        // Newborn.
        var newborn = new Patient { Gender = gender, BirthDate = birthDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) };
        newborn.BirthDateElement!.Extension.Add(new Extension(ExtensionUrls.BirthTime, new FhirDateTime(born.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture))));
        var linking = new List<Identifier> { new(Systems.BirthCertificate, number) { Use = Identifier.IdentifierUse.Official } };
        if (replaced is not null)
        {
            linking.Add(new Identifier(Systems.BirthCertificate, replaced) { Use = Identifier.IdentifierUse.Old });
        }

        if (newbornKey is not null)
        {
            linking.Add(new Identifier(Systems.NewbornKey, newbornKey));
        }

        // A void (§3) takes the number from the child: a voided certificate names no one (README rule 4 links by valid
        // numbers). The child is still found by it, and keeps its other identifiers and records.
        newborn.Identifier.AddRange(voided ? linking.Where(i => !(i.System == Systems.BirthCertificate && i.Value == number)) : linking);
        if (voided)
        {
            newborn.Extension.Add(new Extension(ExtensionUrls.Cleared, new Code(ClearedIdentifier(Systems.BirthCertificate, number))));
        }

        // A key a correction made wrong is no longer this child's: kept, it would link another child's records to it.
        newborn.Extension.AddRange(staleKeys.Select(k => new Extension(ExtensionUrls.Cleared, new Code(ClearedIdentifier(Systems.NewbornKey, k)))));
        if (firstKey is not null && firstKey != newbornKey)
        {
            // The key the child's doses and parents keep (see below), for the sources that name it by the new one.
            newborn.Extension.Add(new Extension(ExtensionUrls.NewbornRecordKey, new FhirString(firstKey)));
        }
        else if (staleKeys.Count > 0)
        {
            // Corrected back to the first key: a record key an earlier correction left goes.
            newborn.Extension.Add(new Extension(ExtensionUrls.Cleared, new Code(ExtensionUrls.NewbornRecordKey)));
        }
        if (TextNormalizer.Name(Text(c, "Newborn/Name")) is { Length: > 0 } name)
        {
            newborn.Name.Add(new HumanName { Text = name, Use = HumanName.NameUse.Official });
        }

        newborn.MultipleBirth = plurality > 1 ? new Integer(order) : new FhirBoolean(false);
        newborn.Extension.Add(new Extension(ExtensionUrls.BirthPlace, BirthPlace(c.Element("BirthPlace")!)));
        if (Text(motherElement, "Address") is { Length: > 0 })
        {
            newborn.Address.Add(Address(motherElement.Element("Address")!));
        }

        var newbornReference = builder.Upsert(newborn, Criteria.Identifier(linking));

        // The birth event's key survives a 换发 and a correction: the newborn key the child had at first issue (its
        // records, and the HIS's of the same child, are written by it), else the first certificate of the chain.
        var birthKey = firstKey ?? replaced ?? number;
        var personKey = DoseIds.PersonKey(firstKey, null);
        if (!voided)
        {
            Kin(builder, motherElement, motherIdentifier, "MTH", "mother", newbornReference, birthKey, personKey);
            if (c.Element("Father") is { } fatherElement)
            {
                Kin(builder, fatherElement, ParentIdentifier(fatherElement), "FTH", "father", newbornReference, birthKey, personKey);
            }
            else if (c.Element("Corrections")?.Elements("Correction").Any(x => Text(x, "Field").StartsWith("Father", StringComparison.Ordinal)) == true)
            {
                // §2: Father is absent when not declared. A correction of the father that leaves none takes the father
                // of record away; a certificate that never declared one says nothing of a father another source names.
                builder.Bundle.AddAnnotation(new UndeclaredFather(KinId(birthKey, personKey, "FTH")));
            }
        }

        // What the certificate recorded of the birth is withdrawn with it (entered-in-error); the parents and the doses,
        // which the HIS and the township may report too, stay as they are.
        var encounter = BirthEncounter(builder, c, born, newbornReference, birthKey, voided);
        BirthObservations(builder, c, born, newbornReference, encounter, birthKey, voided);
        if (!voided)
        {
            Doses(builder, c, newbornReference, personKey ?? $"certificate:{birthKey}", birthKey);
        }

        Document(builder, c, number, version, replaced, newbornReference, issuer);

        var provenance = new Provenance
        {
            Recorded = DateTimeOffset.Parse(Text(c, "LastModified"), CultureInfo.InvariantCulture),
            Policy = [$"{MappingPolicy}|{MappingVersion}"],
            Agent =
            [
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"),
                    Who = FhirValues.Organization(issuer),
                },
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"),
                    Who = new ResourceReference { Display = $"InteropHub birth-certificate adapter, mapping {MappingVersion}" },
                },
            ],
            Entity =
            [
                new Provenance.EntityComponent
                {
                    Role = Provenance.ProvenanceEntityRole.Source,
                    What = new ResourceReference
                    {
                        Identifier = new Identifier(Systems.BirthCertificate, number),
                        Display = $"QX-BMC {number} version {version}",
                    },
                },
            ],
        };
        if (c.Element("Corrections") is { } corrections)
        {
            provenance.Reason.AddRange(corrections.Elements("Correction").Select(x =>
                new CodeableConcept { Text = $"{Text(x, "Field")}: {Text(x, "OldValue")} → {Text(x, "NewValue")} ({Text(x, "Reason")})" }));
        }

        builder.AddProvenance(provenance, ResourceIds.From("bc", number, version.ToString(CultureInfo.InvariantCulture)));
        return new CertificateAccepted(number, version, builder.Bundle, replaced, warnings);
    }

    /// <summary>
    /// In a Patient's <see cref="ExtensionUrls.Cleared"/>: an identifier the stored Patient is not to keep (the ingest
    /// pipeline keeps every other stored identifier the message does not carry).
    /// </summary>
    internal static string ClearedIdentifier(string system, string value) => $"identifier:{system}|{value}";

    private static AdministrativeGender Gender(string sexCode) => sexCode switch
    {
        "1" => AdministrativeGender.Male,
        "2" => AdministrativeGender.Female,
        _ => AdministrativeGender.Unknown,
    };

    /// <summary>What the newborn key is made of (README "Linking persons", rule 5), as the certificate writes it.</summary>
    private sealed record KeyFields(string? MotherId, string BirthDateTime, string SexCode, string BirthOrder)
    {
        public static readonly HashSet<string> Paths = new(StringComparer.Ordinal) { "Mother/IdDocument", "Newborn/BirthDateTime", "Newborn/SexCode", "Newborn/BirthOrder" };

        public string? Key() =>
            MotherId is not null
            && DateTimeOffset.TryParse(BirthDateTime, CultureInfo.InvariantCulture, DateTimeStyles.None, out var born)
            && int.TryParse(BirthOrder, NumberStyles.None, CultureInfo.InvariantCulture, out var order)
                ? NewbornKeys.For(MotherId, DateOnly.FromDateTime(born.ToOffset(TimeSpan.FromHours(8)).DateTime), Gender(SexCode), order)
                : null;

        /// <summary>The fields with a correction's value of <paramref name="field"/> (a path below BirthCertificate), or as they are.</summary>
        public KeyFields With(string field, string value) => field switch
        {
            // An ID number that is no valid resident ID number gave no key (the certificate was refused, or named her otherwise).
            "Mother/IdDocument" => this with
            {
                MotherId = ResidentIdNumber.Check(TextNormalizer.Number(value), DateOnly.MaxValue) is { IsValid: true } id ? id.Value : null,
            },
            "Newborn/BirthDateTime" => this with { BirthDateTime = value },
            "Newborn/SexCode" => this with { SexCode = value },
            "Newborn/BirthOrder" => this with { BirthOrder = value },
            _ => this,
        };
    }

    /// <summary>
    /// The newborn keys the certificate's earlier versions gave the child, read back from its Corrections, the cumulative
    /// history of what was changed, oldest first (birth-certificate.md §2; an in-place correction or a 换发 lists the
    /// change, §3). A correction of the sex, birth date, birth order or mother's ID number changes the key: the child's
    /// records keep the ids of the first key, so a correction updates them rather than writing them again, and every
    /// other earlier key is stale.
    /// </summary>
    private static (string? First, List<string> Stale) EarlierNewbornKeys(XElement c, KeyFields current, string? currentKey)
    {
        var corrections = c.Elements("Corrections").Elements("Correction")
            .Select(x => (Field: Text(x, "Field"), Old: Text(x, "OldValue"), New: Text(x, "NewValue")))
            .Where(x => KeyFields.Paths.Contains(x.Field))
            .ToList();
        if (corrections.Count == 0)
        {
            return (currentKey, []);
        }

        // The fields as first issued: each corrected one's value before its first correction.
        var fields = corrections.DistinctBy(x => x.Field, StringComparer.Ordinal).Aggregate(current, (f, x) => f.With(x.Field, x.Old));
        var keys = new List<string?> { fields.Key() };
        foreach (var (field, _, value) in corrections)
        {
            fields = fields.With(field, value);
            keys.Add(fields.Key());
        }

        return (keys[0], [.. keys.OfType<string>().Where(k => k != currentKey).Distinct(StringComparer.Ordinal)]);
    }

    private static Identifier ParentIdentifier(XElement parent)
    {
        var document = parent.Element("IdDocument")!;
        var value = TextNormalizer.Number(document.Value);
        return (string?)document.Attribute("typeCode") switch
        {
            var type when type == "01" || ResidentIdNumber.Passes(value) =>
                new Identifier(Systems.ResidentId, ResidentIdNumber.Check(ResidentIdNumber.Normalize(value), DateOnly.MaxValue).Value) { Use = Identifier.IdentifierUse.Official },
            "03" => new Identifier(Systems.Passport(Text(parent, "NationalityCode")), value),
            var type => new Identifier($"urn:interophub:sid:id-document:{type}", value),
        };
    }

    private static Patient Parent(XElement element, Identifier identifier, AdministrativeGender gender, string issuer)
    {
        var patient = new Patient { Identifier = [identifier], Gender = gender, Name = [new HumanName { Text = TextNormalizer.Name(Text(element, "Name")), Use = HumanName.NameUse.Official }] };
        if (identifier.System == Systems.ResidentId)
        {
            // Digits 7–14 of a resident ID number are the birth date (GB 11643); the certificate gives only the age.
            patient.BirthDate = ResidentIdNumber.Check(identifier.Value!, DateOnly.MaxValue).BirthDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (element.Element("Address") is { } address && address.Value.Trim().Length > 0)
        {
            patient.Address.Add(Address(address));
        }

        if (Text(element, "EthnicityCode") is { Length: > 0 } ethnicity)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.Ethnicity, new Coding(Systems.Ethnicity, ethnicity, CountyCodes.Ethnicities[ethnicity])));
        }

        patient.Extension.Add(new Extension
        {
            Url = ExtensionUrls.Nationality,
            Extension = [new Extension("code", FhirValues.Coded("urn:iso:std:iso:3166", Text(element, "NationalityCode")))],
        });
        patient.ManagingOrganization = FhirValues.Organization(issuer);
        return patient;
    }

    private static Address Address(XElement address)
    {
        var result = new Address { Use = Hl7.Fhir.Model.Address.AddressUse.Home, Text = address.Value.Trim() };
        if ((string?)address.Attribute("divisionCode") is { Length: > 0 } division)
        {
            result.Extension.Add(new Extension(ExtensionUrls.DivisionCode, new Code(division)));
        }

        return result;
    }

    private static Address BirthPlace(XElement place)
    {
        var address = new Address
        {
            State = Text(place, "Province"),
            City = Text(place, "City") is { Length: > 0 } city ? city : null,
            District = Text(place, "County"),
            Line = [.. new[] { Text(place, "Township"), Text(place, "Detail") }.Where(l => l.Length > 0)],
            Country = "CHN",
        };
        address.Text = string.Concat(address.State, address.City, address.District, string.Concat(address.Line));
        address.Extension.Add(new Extension(ExtensionUrls.DivisionCode, new Code(Text(place, "DivisionCode"))));
        address.Extension.Add(new Extension("urn:interophub:ext:birthplace-category", new Coding("urn:interophub:cs:cv02.01.102", Text(place, "CategoryCode"))));
        return address;
    }

    /// <param name="personKey">The newborn's cross-source key, when it has one: the parent then gets the id the HIS gives it.</param>
    private static void Kin(TransactionBuilder builder, XElement parent, Identifier identifier, string role, string display,
        ResourceReference newborn, string birthKey, string? personKey)
    {
        var person = new RelatedPerson
        {
            Active = true,
            Patient = newborn,
            Identifier = [identifier],
            Relationship = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-RoleCode", role, display)],
            Name = [new HumanName { Text = TextNormalizer.Name(Text(parent, "Name")) }],
        };
        if (parent.Element("Address") is { } address && address.Value.Trim().Length > 0)
        {
            person.Address.Add(Address(address));
        }

        builder.Put(person, KinId(birthKey, personKey, role));
    }

    /// <summary>The id of a newborn's parent, shared with the HIS's report of them when the child has a person key.</summary>
    private static string KinId(string birthKey, string? personKey, string role) =>
        personKey is null ? ResourceIds.Hashed("RelatedPerson", "birth", birthKey, role) : KinIds.For(personKey, role);

    private static ResourceReference BirthEncounter(TransactionBuilder builder, XElement c, DateTimeOffset born, ResourceReference newborn, string birthKey,
        bool voided)
    {
        var institution = (string?)c.Element("MidwiferyInstitution")?.Attribute("code");
        var encounter = new Encounter
        {
            Status = voided ? Encounter.EncounterStatus.EnteredInError : Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", institution is null ? "HH" : "IMP", institution is null ? "home health" : "inpatient encounter"),
            Type = [FhirValues.Coded("http://snomed.info/sct", "236973005", "Delivery procedure")],
            Subject = newborn,
            Period = new Period { StartElement = new FhirDateTime(born.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture)) },
            ServiceProvider = institution is null ? null : FhirValues.Organization(institution),
        };
        var attendant = c.Element("Attendant")!;
        encounter.Participant.Add(new Encounter.ParticipantComponent
        {
            Type = [FhirValues.Coded("urn:interophub:cs:birth-attendant-role", (string?)attendant.Attribute("roleCode") ?? "9")],
            Individual = new ResourceReference { Display = attendant.Value.Trim() },
        });
        return builder.Put(encounter, ResourceIds.Hashed("Encounter", "birth", birthKey));
    }

    private static void BirthObservations(TransactionBuilder builder, XElement c, DateTimeOffset born, ResourceReference newborn,
        ResourceReference encounter, string birthKey, bool voided)
    {
        var effective = new FhirDateTime(born.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture));
        var ga = c.Element("Newborn")!.Element("GestationalAge")!;
        var gaDays = int.Parse((string)ga.Attribute("weeks")!, CultureInfo.InvariantCulture) * 7 + int.Parse((string?)ga.Attribute("days") ?? "0", CultureInfo.InvariantCulture);
        (string Loinc, string Display, string Key, Quantity Value)[] items =
        [
            ("8339-4", "Birth weight Measured", "weight", new Quantity { Value = decimal.Parse(Text(c, "Newborn/BirthWeight"), CultureInfo.InvariantCulture), Unit = "g", System = Systems.Ucum, Code = "g" }),
            ("89269-5", "Body height Measured --at birth", "length", new Quantity { Value = decimal.Parse(Text(c, "Newborn/BirthLength"), CultureInfo.InvariantCulture), Unit = "cm", System = Systems.Ucum, Code = "cm" }),
            ("11884-4", "Gestational age Estimated", "gestational-age", new Quantity { Value = gaDays, Unit = "d", System = Systems.Ucum, Code = "d" }),
        ];
        foreach (var (loinc, display, key, value) in items)
        {
            var observation = new Observation
            {
                Status = voided ? ObservationStatus.EnteredInError : ObservationStatus.Final,
                Category = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/observation-category", key == "gestational-age" ? "exam" : "vital-signs")],
                Code = FhirValues.Coded(Systems.Loinc, loinc, display),
                Subject = newborn,
                Encounter = encounter,
                Effective = effective,
                Value = value,
            };
            builder.Put(observation, ResourceIds.Hashed("Observation", "birth", birthKey, key));
        }
    }

    private static void Doses(TransactionBuilder builder, XElement c, ResourceReference newborn, string personKey, string birthKey)
    {
        foreach (var dose in c.Elements("BirthDoseVaccinations").Elements("Vaccination"))
        {
            var vaccine = CountyCodes.Vaccines[(string)dose.Attribute("vaccineCode")!];
            var given = DateTimeOffset.Parse(Text(dose, "AdministeredAt"), CultureInfo.InvariantCulture).ToOffset(TimeSpan.FromHours(8));
            var code = FhirValues.Coded(Systems.Vaccine, vaccine.Code, vaccine.Name);
            if (vaccine.Cvx is { } cvx)
            {
                code.Coding.Add(new Coding(Systems.Cvx, cvx));
            }

            var immunization = new Immunization
            {
                Status = Immunization.ImmunizationStatusCodes.Completed,
                VaccineCode = code,
                Patient = newborn,
                Occurrence = new FhirDateTime(given.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture)),
                // The certificate's own identifier of the dose: it stays on the dose whoever writes it next, so a township
                // deletion of its row of the same dose knows the certificate reports it too.
                Identifier = [new Identifier(Systems.CertificateDose, $"{birthKey}/{vaccine.Code}")],
                PrimarySource = false,
                ReportOrigin = FhirValues.Coded("urn:interophub:cs:record-source", "birth-certificate", "出生医学证明"),
                LotNumber = Text(dose, "LotNo"),
                Performer = [new Immunization.PerformerComponent { Actor = FhirValues.Organization(Text(dose, "InstitutionCode")) }],
                ProtocolApplied = [new Immunization.ProtocolAppliedComponent { DoseNumber = new PositiveInt(int.Parse((string?)dose.Attribute("doseNo") ?? "1", CultureInfo.InvariantCulture)) }],
            };
            if (Text(dose, "ManufacturerCode") is { Length: > 0 } manufacturer)
            {
                immunization.Manufacturer = new ResourceReference
                {
                    Identifier = new Identifier(Systems.VaccineManufacturer, manufacturer),
                    Display = CountyCodes.Manufacturers.GetValueOrDefault(manufacturer),
                };
            }

            if (Text(dose, "ExpiryDate") is { Length: > 0 } expiry)
            {
                immunization.ExpirationDate = expiry;
            }

            if (Text(dose, "TraceCode") is { Length: > 0 } trace)
            {
                immunization.Identifier.Add(new Identifier(Systems.VaccineTraceCode, trace));
            }

            builder.Put(immunization, DoseIds.For(personKey, vaccine.Code, DateOnly.FromDateTime(given.DateTime)));
        }
    }

    /// <summary>
    /// The certificate itself, kept whole as the XML it arrived as, so nothing of it is lost. The record version it
    /// holds is an extension, which the ingest compares with an incoming one (birth-certificate.md §1 "Idempotency").
    /// </summary>
    private static void Document(TransactionBuilder builder, XElement c, string number, int version, string? replaced, ResourceReference newborn, string issuer)
    {
        var xml = Encoding.UTF8.GetBytes(new XDocument(new XDeclaration("1.0", "UTF-8", null), new XElement(c)).ToString(SaveOptions.DisableFormatting));
        var document = new DocumentReference
        {
            MasterIdentifier = new Identifier(Systems.BirthCertificate, number),
            Status = Text(c, "Status") == "2" ? DocumentReferenceStatus.EnteredInError : DocumentReferenceStatus.Current,
            Type = FhirValues.Coded("urn:interophub:cs:document-type", "birth-certificate", "出生医学证明"),
            Subject = newborn,
            Date = DateTimeOffset.Parse(Text(c, "LastModified"), CultureInfo.InvariantCulture),
            Author = [FhirValues.Organization(issuer)],
            Custodian = FhirValues.Organization(issuer),
            Description = $"出生医学证明 {number} (签发类型 {Text(c, "IssueType")}, 记录版本 {Text(c, "RecordVersion")})",
            Content = [new DocumentReference.ContentComponent { Attachment = new Attachment { ContentType = "application/xml", Data = xml, Title = $"{number}.xml" } }],
        };
        document.SetExtension(RecordVersionExtension, new Integer(version));
        if (replaced is not null)
        {
            document.RelatesTo.Add(new DocumentReference.RelatesToComponent
            {
                Code = DocumentRelationshipType.Replaces,
                Target = new ResourceReference { Identifier = new Identifier(Systems.BirthCertificate, replaced), Type = "DocumentReference" },
            });
        }

        builder.Put(document, ResourceIds.From(number));
    }
}
