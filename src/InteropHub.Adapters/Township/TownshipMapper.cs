using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Codes;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Township;

/// <summary>
/// Valid township rows → one transaction Bundle each (township-export.md §4): residents and immunizations here,
/// contracts, follow-ups, maternal care and child check-ups in <see cref="TownshipCareMapping"/>. Rows applied
/// together share one Provenance (<see cref="Provenance"/>).
/// </summary>
internal static class TownshipMapper
{
    public const string MappingVersion = "0.2.0";
    public const string MappingPolicy = "urn:interophub:mapping:township-export";

    /// <summary>How <c>meta.source</c> of what a township row writes begins.</summary>
    public const string SourcePrefix = "urn:interophub:township:";

    /// <param name="resident">The row's resident when it was accepted earlier in the same batch (for cross-source dose ids).</param>
    /// <param name="source">The row's place in its batch, which every resource it writes names in <c>meta.source</c>
    /// (<c>urn:interophub:township:{batch}#{file}:{row}</c>).</param>
    /// <param name="registrationInBatch">A maternal visit's registration was accepted earlier in the same batch.</param>
    /// <param name="stored">What the hub holds for a dose of a resident stored before this batch (its id, the person key).</param>
    public static Bundle? Map(string table, CsvRow row, bool deleted, CsvRow? resident, string source, bool registrationInBatch = false,
        StoredRow? stored = null)
    {
        var builder = new TransactionBuilder();
        switch (table)
        {
            case "residents" when deleted:
                RetractResident(builder, row, stored is { SharedWithOtherSources: false, Id: { } only } ? only : null);
                break;
            case "residents":
                Resident(builder, row);
                break;
            case "immunizations" when deleted && stored is { SharedWithOtherSources: true }:
                // The HIS or a certificate reports the same dose (one Immunization per person, vaccine and date, §3.2):
                // the township's retraction takes back its own report, the vacc_id, and the dose stays.
                RetractSharedDose(builder, row["vacc_id"]);
                break;
            case "immunizations" when deleted:
                // By identifier: the dose may carry a cross-source id (DoseIds) rather than one made from vacc_id.
                builder.DeleteWhere("Immunization", Criteria.Identifier(VaccinationSystem, row["vacc_id"]));
                break;
            case "immunizations":
                Immunization(builder, row, resident, stored);
                break;
            case var _ when deleted:
                TownshipCareMapping.Retract(builder, table, row[TownshipSchema.Find(table)!.Key]);
                break;
            case "contracts":
                TownshipCareMapping.Contract(builder, row);
                break;
            case "followups_hypertension" or "followups_diabetes":
                TownshipCareMapping.FollowUp(builder, row, table);
                break;
            case "maternal_registrations":
                TownshipCareMapping.MaternalRegistration(builder, row);
                break;
            case "maternal_visits":
                TownshipCareMapping.MaternalVisit(builder, row, registrationInBatch);
                break;
            case "child_checkups":
                TownshipCareMapping.ChildCheckup(builder, row);
                break;
            default:
                return null;
        }

        if (stored is { Replaces: true } && !deleted && table is not ("residents" or "immunizations" or "contracts"))
        {
            TownshipCareMapping.RemoveItemsNotSent(builder, table, row[TownshipSchema.Find(table)!.Key]);
        }

        foreach (var resource in builder.Bundle.Entry.Select(e => e.Resource).OfType<Resource>())
        {
            resource.Meta ??= new Meta();
            resource.Meta.Source = source;
        }

        return builder.Bundle;
    }

    /// <summary>
    /// The Provenance of rows of one institution applied in one transaction (DOMAIN.md: every adapter write names its
    /// source system, institution and message): the institution as author, the batch (source system, id, file and rows)
    /// as the source entity, the span of the rows' <c>updated_at</c> as occurred, and as targets every resource their
    /// entries write or delete by id. Each written resource names its own row in <c>meta.source</c> (<see cref="Map"/>),
    /// so the Provenance, which falls in the compartment of every person it targets, carries no row keys (a resident's
    /// health-record number) of its own. Its id comes from the
    /// batch, file, rows and institution, so a replay of the same rows updates it. Null when the rows write nothing it
    /// can target (deletions by identifier only).
    /// </summary>
    public static Bundle.EntryComponent? Provenance(TownshipManifest manifest, string institution,
        IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows)
    {
        var targets = new List<ResourceReference>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in rows.SelectMany(r => r.Transaction.Entry))
        {
            // A resource put or deleted by id is referenced by it; a conditional one by its entry (the transaction
            // resolves it); a conditional delete cannot be.
            var reference = entry.Request switch
            {
                { Method: Bundle.HTTPVerb.PUT or Bundle.HTTPVerb.DELETE, Url: { } byId } when !byId.Contains('?') => byId,
                { Method: Bundle.HTTPVerb.DELETE or Bundle.HTTPVerb.PATCH } => null,
                _ => entry.FullUrl,
            };
            if (reference is not null && seen.Add(reference))
            {
                targets.Add(new ResourceReference(reference));
            }
        }

        if (targets.Count == 0)
        {
            return null;
        }

        var (first, last) = (rows[0].Row, rows[^1].Row);
        var id = ResourceIds.From("township", manifest.BatchId, first.File, $"{first.Row}-{last.Row}", institution);
        var provenance = new Provenance
        {
            Target = targets,
            Occurred = new Period
            {
                StartElement = new FhirDateTime(rows.Min(r => r.Row.UpdatedAt)),
                EndElement = new FhirDateTime(rows.Max(r => r.Row.UpdatedAt)),
            },
            Recorded = manifest.ExportTime,
            Policy = [$"{MappingPolicy}|{MappingVersion}"],
            Agent =
            [
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"),
                    Who = FhirValues.Organization(institution),
                },
                new Provenance.AgentComponent
                {
                    Type = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"),
                    Who = new ResourceReference { Display = $"InteropHub township export adapter, mapping {MappingVersion}" },
                },
            ],
            Entity =
            [
                new Provenance.EntityComponent
                {
                    Role = Hl7.Fhir.Model.Provenance.ProvenanceEntityRole.Source,
                    What = new ResourceReference
                    {
                        Identifier = new Identifier(BatchSystem, manifest.BatchId),
                        Display = rows.Count == 1
                            ? $"{manifest.SourceSystem} {manifest.BatchId} {first.File} row {first.Row}"
                            : $"{manifest.SourceSystem} {manifest.BatchId} {first.File}, {rows.Count} rows from row {first.Row} to {last.Row}",
                    },
                },
            ],
        };
        return TransactionBuilder.ProvenanceEntry(provenance, id);
    }

    /// <summary>The identifier system of a township export batch (its manifest's <c>batch_id</c>).</summary>
    public const string BatchSystem = "urn:interophub:sid:township-batch";

    /// <summary>
    /// A deleted resident row retracts the health record (§2 "Retraction"): its number leaves the Patient, so the rows
    /// that name it afterwards are <c>UNKNOWN_REFERENCE</c> ("not deleted", §2 "References"). The person stays: the HIS,
    /// the certificates and the resident's earlier rows refer to the Patient, which holds what they said. A Patient only
    /// the township ever wrote (<paramref name="townshipOnly"/>, its id; the ingest adds If-Match on the version it read)
    /// is the health record itself: it is no longer in use (<c>active</c> false), so no search of active residents and no
    /// indicator counts it.
    /// </summary>
    private static void RetractResident(TransactionBuilder builder, CsvRow row, string? townshipOnly)
    {
        var recordNo = TextNormalizer.Number(row["record_no"]);
        var patch = FhirValues.FhirPathPatch($"Patient.identifier.where(system = '{Systems.HealthRecord}' and value = '{recordNo}')");
        if (townshipOnly is null)
        {
            builder.PatchWhere("Patient", Criteria.Identifier(Systems.HealthRecord, recordNo), patch);
            return;
        }

        patch.Parameter.AddRange(FhirValues.FhirPathPatch("Patient.active", new FhirBoolean(false)).Parameter);
        builder.Patch("Patient", townshipOnly, patch);
    }

    private static void RetractSharedDose(TransactionBuilder builder, string vaccId) =>
        builder.PatchWhere("Immunization", Criteria.Identifier(VaccinationSystem, vaccId), WithoutRow(vaccId));

    /// <summary>A FHIRPath Patch taking a row's <c>vacc_id</c> off a dose.</summary>
    private static Parameters WithoutRow(string vaccId) => FhirValues.FhirPathPatch(
        $"Immunization.identifier.where(system = '{VaccinationSystem}' and value = '{vaccId.Replace("'", "\\'", StringComparison.Ordinal)}')");

    /// <summary>§3.1 → Patient, matched on the health-record number and the other person-linking identifiers.</summary>
    private static void Resident(TransactionBuilder builder, CsvRow row)
    {
        var linking = new List<Identifier>();
        var patient = new Patient { Active = row["archive_status"] != "2" };
        void Add(Identifier identifier, bool links = true)
        {
            patient.Identifier.Add(identifier);
            if (links)
            {
                linking.Add(identifier);
            }
        }

        var idNo = TextNormalizer.Number(row["id_no"]);
        if (idNo.Length > 0)
        {
            switch (row["id_type"])
            {
                case var _ when IsIdNumber(row):
                    Add(new Identifier(Systems.ResidentId, ResidentIdNumber.Check(idNo, DateOnly.MaxValue).Value) { Use = Identifier.IdentifierUse.Official });
                    break;
                case "03":
                    Add(new Identifier(Systems.Passport(row["nationality_code"] is { Length: > 0 } c ? c : "UNK"), idNo));
                    break;
                default:
                    Add(new Identifier($"urn:interophub:sid:id-document:{row["id_type"]}", idNo));
                    break;
            }
        }

        Add(new Identifier(Systems.HealthRecord, TextNormalizer.Number(row["record_no"])));
        if (TextNormalizer.Number(row["health_card_no"]) is { Length: > 0 } card)
        {
            Add(new Identifier(Systems.HealthCard, card));
        }

        if (row["birth_cert_no"] is { Length: > 0 } certificate)
        {
            Add(new Identifier(Systems.BirthCertificate, certificate.ToUpperInvariant()));
        }

        var name = TextNormalizer.Name(row["name"]);
        var temporary = name.EndsWith("之子", StringComparison.Ordinal) || name.EndsWith("之女", StringComparison.Ordinal);
        patient.Name.Add(new HumanName { Text = name, Use = temporary ? HumanName.NameUse.Temp : HumanName.NameUse.Official });
        patient.Gender = row["sex_code"] switch
        {
            "1" => AdministrativeGender.Male,
            "2" => AdministrativeGender.Female,
            _ => AdministrativeGender.Unknown,
        };
        var birth = RowValidatorDates.Date(row["birth_date"])!.Value;
        patient.BirthDate = birth.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

        if (NewbornKey(row) is { } newbornKey)
        {
            Add(new Identifier(Systems.NewbornKey, newbornKey));
        }

        if (row["ethnicity_code"] is { Length: > 0 } ethnicity)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.Ethnicity, new Coding(Systems.Ethnicity, ethnicity, CountyCodes.Ethnicities[ethnicity])));
        }

        patient.Extension.Add(new Extension
        {
            Url = ExtensionUrls.Nationality,
            Extension = [new Extension("code", FhirValues.Coded("urn:iso:std:iso:3166", row["nationality_code"] is { Length: > 0 } n ? n : "CHN"))],
        });
        patient.Extension.Add(new Extension(ExtensionUrls.RegisteredPoor, new FhirBoolean(row["poverty_flag"] == "1")));
        patient.Extension.Add(new Extension("urn:interophub:ext:residence-type",
            new Coding(Systems.Local("residence-type"), row["residence_type"], row["residence_type"] == "1" ? "户籍" : "非户籍")));
        if (row["insurance_type"] is { Length: > 0 } insurance)
        {
            patient.Extension.Add(new Extension(ExtensionUrls.PaymentMethod, new Coding(Systems.Local("payment-method"), insurance)));
        }

        if (row["marital_status_code"] is { Length: > 0 } marital)
        {
            patient.MaritalStatus = FhirValues.Coded(Systems.MaritalStatus, marital);
        }

        if (TextNormalizer.Number(row["phone"]) is { Length: > 0 } phone)
        {
            patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, ContactPoint.ContactPointUse.Mobile, phone));
        }

        var address = new Address { Use = Address.AddressUse.Home, Text = row["address_detail"] is { Length: > 0 } d ? d : null };
        if (row["address_detail"] is { Length: > 0 } line)
        {
            address.Line = [line];
        }

        address.Extension.Add(new Extension(ExtensionUrls.DivisionCode, new Code(row["division_code"])));
        patient.Address.Add(address);

        if (row["archive_status"] == "3" && RowValidatorDates.Date(row["death_date"]) is { } death)
        {
            patient.Deceased = new FhirDateTime(death.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        }

        // A twin's place in the birth (§3.1 birth_order); 1 is also every single birth's, so it says nothing alone.
        if (int.TryParse(row["birth_order"], NumberStyles.None, CultureInfo.InvariantCulture, out var order) && order > 1)
        {
            patient.MultipleBirth = new Integer(order);
        }

        if (row["responsible_doctor"] is { Length: > 0 } doctor)
        {
            patient.GeneralPractitioner.Add(new ResourceReference { Display = doctor });
        }

        if (RowValidatorDates.Date(row["created_date"]) is { } created)
        {
            patient.Extension.Add(new Extension("urn:interophub:ext:health-record-created", new Date(created.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))));
        }

        patient.ManagingOrganization = FhirValues.Organization(row["org_code"]);
        linking.Sort((a, b) => (b.System == Systems.ResidentId).CompareTo(a.System == Systems.ResidentId));
        builder.Upsert(patient, Criteria.Identifier(linking));
    }

    internal const string VaccinationSystem = "urn:interophub:sid:township-vaccination";

    /// <summary>The identifier system of a pregnancy registration's EpisodeOfCare (its <c>reg_id</c>).</summary>
    internal const string MaternalRegistrationSystem = "urn:interophub:sid:maternal-registration";

    /// <summary>
    /// §3.2 → Immunization, keyed by person, vaccine and date (one dose whichever source reports it) when the person is
    /// known: from the resident row of this batch, or from the stored Patient of an earlier one; else by vacc_id.
    /// </summary>
    private static void Immunization(TransactionBuilder builder, CsvRow row, CsvRow? resident, StoredRow? stored)
    {
        var vaccine = CountyCodes.Vaccines[row["vaccine_code"]];
        var code = FhirValues.Coded(Systems.Vaccine, vaccine.Code, vaccine.Name);
        if (vaccine.Cvx is { } cvx)
        {
            code.Coding.Add(new Coding(Systems.Cvx, cvx));
        }

        var immunization = new Immunization
        {
            Identifier = [new Identifier(VaccinationSystem, row["vacc_id"])],
            Status = Hl7.Fhir.Model.Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = code,
            Patient = new ResourceReference($"Patient?{Criteria.Identifier(Systems.HealthRecord, TextNormalizer.Number(row["record_no"]))}"),
            Occurrence = new FhirDateTime(RowValidatorDates.Date(row["vacc_date"])!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            PrimarySource = row["record_source"] == "1",
            ProtocolApplied = [new Hl7.Fhir.Model.Immunization.ProtocolAppliedComponent { DoseNumber = new PositiveInt(int.Parse(row["dose_no"], CultureInfo.InvariantCulture)) }],
        };
        if (row["record_source"] == "2")
        {
            immunization.ReportOrigin = FhirValues.Coded(Systems.Local("record-source"), "2", "历史补录");
        }

        if (row["lot_no"] is { Length: > 0 } lot)
        {
            immunization.LotNumber = lot;
        }

        if (row["manufacturer_code"] is { Length: > 0 } manufacturer)
        {
            immunization.Manufacturer = new ResourceReference
            {
                Identifier = new Identifier(Systems.VaccineManufacturer, manufacturer),
                Display = CountyCodes.Manufacturers[manufacturer],
            };
        }

        if (RowValidatorDates.Date(row["expiry_date"]) is { } expiry)
        {
            immunization.ExpirationDate = expiry.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (decimal.TryParse(row["dose_ml"], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var ml))
        {
            immunization.DoseQuantity = new Quantity { Value = ml, Unit = "mL", System = Systems.Ucum, Code = "mL" };
        }

        if (row["route_code"] is { Length: > 0 } route)
        {
            var (v3, display) = route switch
            {
                "1" => ("PO", "口服"),
                "2" => ("IDINJ", "皮内注射"),
                "3" => ("SQ", "皮下注射"),
                _ => ("IM", "肌内注射"),
            };
            immunization.Route = FhirValues.Coded(Systems.Local("township-route"), route, display);
            immunization.Route.Coding.Add(new Coding("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", v3));
        }

        if (row["site_code"] is { Length: > 0 } site)
        {
            immunization.Site = FhirValues.Coded(Systems.Local("township-site"), site, site switch
            {
                "1" => "左上臂",
                "2" => "右上臂",
                "3" => "左大腿",
                "4" => "右大腿",
                "5" => "口服",
                _ => "其他",
            });
        }

        if (row["vaccinator"] is { Length: > 0 } vaccinator)
        {
            immunization.Performer.Add(new Hl7.Fhir.Model.Immunization.PerformerComponent
            {
                Function = FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"),
                Actor = new ResourceReference { Display = vaccinator },
            });
        }

        immunization.Performer.Add(new Hl7.Fhir.Model.Immunization.PerformerComponent { Actor = FhirValues.Organization(row["vacc_org_code"]) });
        if (TextNormalizer.Number(row["trace_code"]) is { Length: > 0 } trace)
        {
            immunization.Identifier.Add(new Identifier(Systems.VaccineTraceCode, trace));
        }

        // A resident of the batch known by its certificate alone takes the stored child's key (TownshipRow.BirthCertificateNo).
        var personKey = resident is null ? stored?.PersonKey : DoseIds.PersonKey(stored?.NewbornRecordKey ?? NewbornKey(resident), IsIdNumber(resident)
            ? ResidentIdNumber.Check(TextNormalizer.Number(resident["id_no"]), DateOnly.MaxValue).Value
            : null) ?? stored?.PersonKey;
        builder.Put(immunization, stored?.Id ?? (personKey is null
            ? ResourceIds.From(row["vacc_id"])
            : DoseIds.For(personKey, vaccine.Code, RowValidatorDates.Date(row["vacc_date"])!.Value)));
        if (stored?.LeavesDose is { } left && left != immunization.Id)
        {
            // §2 "Update": the row is replaced whole, and this version is another dose (another vaccine or date) than the one
            // its earlier version reported, which another source may report too (§3.2): the row's report leaves it.
            builder.Patch("Immunization", left, WithoutRow(row["vacc_id"]));
        }
    }

    /// <summary>A resident row's id_no is a resident ID number: type 01, or any that passes the check (README rule 1).</summary>
    internal static bool IsIdNumber(CsvRow resident) =>
        resident["id_no"].Length > 0 && (resident["id_type"] == "01" || ResidentIdNumber.Passes(resident["id_no"]));

    /// <summary>README "Linking persons" rule 5 for a child's resident row: mother's ID, birth date, sex, birth order.</summary>
    internal static string? NewbornKey(CsvRow resident)
    {
        if (resident["mother_id_no"] is not { Length: > 0 } mother || RowValidatorDates.Date(resident["birth_date"]) is not { } birth)
        {
            return null;
        }

        var gender = resident["sex_code"] switch
        {
            "1" => AdministrativeGender.Male,
            "2" => AdministrativeGender.Female,
            _ => AdministrativeGender.Unknown,
        };
        var order = int.TryParse(resident["birth_order"], out var o) && o > 0 ? o : 1;
        return NewbornKeys.For(ResidentIdNumber.Check(TextNormalizer.Number(mother), DateOnly.MaxValue).Value, birth, gender, order);
    }
}

/// <summary>The date formats of the township dialect (§1: <c>YYYY-MM-DD</c>, <c>YYYY/M/D</c>, <c>YYYYMMDD</c>; China time).</summary>
internal static class RowValidatorDates
{
    public static DateOnly? Date(string value) =>
        DateOnly.TryParseExact(value, ["yyyy-MM-dd", "yyyy/M/d", "yyyyMMdd"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null;

    public static string? DateTime(string value) =>
        System.DateTime.TryParseExact(value, ["yyyy-MM-dd HH:mm:ss", "yyyy/M/d H:mm:ss", "yyyy-MM-dd HH:mm"], CultureInfo.InvariantCulture,
            DateTimeStyles.None, out var local)
            ? new DateTimeOffset(local, TimeSpan.FromHours(8)).ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture)
            : null;
}
