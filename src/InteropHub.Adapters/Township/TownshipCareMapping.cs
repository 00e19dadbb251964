using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Bundles;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Township;

/// <summary>
/// Contracts, follow-ups, maternal care and child check-ups (township-export.md §3.3–3.8, §4). Measurements with a
/// LOINC code become typed Observations; every other filled column of a visit becomes an Observation coded
/// <c>{table}.{column}</c> in the township system, so nothing the row says is lost.
/// </summary>
internal static class TownshipCareMapping
{
    private const string ItemSystem = "urn:interophub:cs:qx-phs-item";

    private static readonly Dictionary<string, (string Loinc, string Display, string Unit)> Measurements = new(StringComparer.Ordinal)
    {
        ["weight_kg"] = ("29463-7", "Body weight", "kg"),
        ["height_cm"] = ("8302-2", "Body height", "cm"),
        ["length_cm"] = ("8302-2", "Body height", "cm"),
        ["head_circ_cm"] = ("9843-4", "Head Occipital-frontal circumference", "cm"),
        ["bmi"] = ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
        ["heart_rate"] = ("8867-4", "Heart rate", "/min"),
        ["fpg_mmol"] = ("14771-0", "Glucose [Moles/volume] in Serum or Plasma --fasting", "mmol/L"),
        ["hba1c_pct"] = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"),
        ["hb_gl"] = ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L"),
        ["fundal_height_cm"] = ("11881-0", "Uterus Fundal height Tape measure", "cm"),
        ["fetal_heart_rate"] = ("55283-6", "Fetal Heart rate", "/min"),
    };

    /// <summary>Columns mapped to resource elements rather than to item Observations.</summary>
    private static readonly HashSet<string> Structural = new(StringComparer.Ordinal)
    {
        "record_no", "reg_id", "followup_id", "visit_id", "checkup_id", "followup_date", "visit_date", "checkup_date", "register_date",
        "followup_method", "visit_type", "checkup_type", "doctor_name", "sbp", "dbp", "gest_weeks", "gest_days", "delivery_date",
        "pregnancy_outcome", "delivery_org_code",
    };

    public static void Contract(TransactionBuilder builder, CsvRow row)
    {
        var patient = Patient(row);
        var team = new CareTeam
        {
            Identifier = [new Identifier("urn:interophub:sid:family-doctor-team", row["team_code"])],
            Status = CareTeam.CareTeamStatus.Active,
            Name = row["team_name"] is { Length: > 0 } name ? name : row["team_code"],
            Category = [FhirValues.Coded("http://loinc.org", "LA28865-6", "Longitudinal care-coordination focused care team")],
            ManagingOrganization = [FhirValues.Organization(row["org_code"])],
        };
        var teamReference = builder.CreateIfAbsent(team, Criteria.Identifier("urn:interophub:sid:family-doctor-team", row["team_code"]));

        var status = row["contract_status"];
        var end = status == "2" && Date(row["terminate_date"]) is { } terminated ? terminated : Date(row["end_date"])!;
        var episode = new EpisodeOfCare
        {
            Identifier = [new Identifier("urn:interophub:sid:family-doctor-contract", row["contract_id"])],
            Status = status == "1" ? EpisodeOfCare.EpisodeOfCareStatus.Active : EpisodeOfCare.EpisodeOfCareStatus.Finished,
            Type = [FhirValues.Coded(Systems.Local("episode-type"), "family-doctor-contract", "家庭医生签约")],
            Patient = patient,
            ManagingOrganization = FhirValues.Organization(row["org_code"]),
            Period = new Period(new FhirDateTime(Date(row["start_date"])!), new FhirDateTime(end)),
            CareManager = new ResourceReference { Identifier = new Identifier(Systems.Staff(row["org_code"]), row["doctor_code"]), Display = row["doctor_name"] },
            Team = [teamReference],
        };
        episode.Extension.Add(new Extension("urn:interophub:ext:contract-status",
            new Coding(Systems.Local("contract-status"), status, status switch { "1" => "有效", "2" => "已解约", _ => "已到期" })));
        episode.Extension.Add(new Extension("urn:interophub:ext:sign-date", new Date(Date(row["sign_date"])!)));
        foreach (var package in row["package_codes"].Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            episode.Extension.Add(new Extension("urn:interophub:ext:service-package", new Coding(Systems.Local("service-package"), package)));
        }

        // Key populations are reported by group (DOMAIN.md "Family-doctor contracts"), so they sit on the contract.
        foreach (var group in row["key_population_codes"].Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            episode.Extension.Add(new Extension("urn:interophub:ext:key-population", new Coding(Systems.Local("key-population"), group)));
        }

        builder.Put(episode, ResourceIds.From(row["contract_id"]));
    }

    public static void FollowUp(TransactionBuilder builder, CsvRow row, string table)
    {
        var patient = Patient(row);
        var kind = table == "followups_hypertension" ? ("hypertension", "高血压患者健康管理") : ("diabetes", "2型糖尿病患者健康管理");
        var plan = new CarePlan
        {
            Identifier = [new Identifier("urn:interophub:sid:chronic-care-plan", $"{row["record_no"]}/{kind.Item1}")],
            Status = RequestStatus.Active,
            Intent = CarePlan.CarePlanIntent.Plan,
            Category = [FhirValues.Coded(Systems.Local("care-plan"), kind.Item1, kind.Item2)],
            Subject = patient,
        };
        var planReference = builder.CreateIfAbsent(plan, Criteria.Identifier("urn:interophub:sid:chronic-care-plan", $"{row["record_no"]}/{kind.Item1}"));
        var encounter = Visit(builder, row, patient, row["followup_id"], row["followup_date"], table, kind.Item2, row["followup_method"] switch
        {
            "2" => ("HH", "home health"),
            "3" => ("VR", "virtual"),
            _ => ("AMB", "ambulatory"),
        });
        Items(builder, row, table, patient, encounter, row["followup_id"], row["followup_date"], planReference);
    }

    public static void MaternalRegistration(TransactionBuilder builder, CsvRow row)
    {
        var patient = Patient(row);
        var outcome = row["pregnancy_outcome"];
        var episode = new EpisodeOfCare
        {
            Identifier = [new Identifier(TownshipMapper.MaternalRegistrationSystem, row["reg_id"])],
            Status = outcome.Length > 0 ? EpisodeOfCare.EpisodeOfCareStatus.Finished : EpisodeOfCare.EpisodeOfCareStatus.Active,
            Type = [FhirValues.Coded(Systems.Local("episode-type"), "pregnancy", "孕产期保健")],
            Patient = patient,
            ManagingOrganization = FhirValues.Organization(row["org_code"]),
            Period = new Period { StartElement = new FhirDateTime(Date(row["register_date"])!) },
        };
        if (Date(row["delivery_date"]) is { } delivered)
        {
            episode.Period.EndElement = new FhirDateTime(delivered);
        }

        if (outcome.Length > 0)
        {
            episode.Extension.Add(new Extension("urn:interophub:ext:pregnancy-outcome", new Coding(Systems.Local("pregnancy-outcome"), outcome)));
        }

        if (row["delivery_org_code"] is { Length: > 0 } deliveredAt)
        {
            episode.Extension.Add(new Extension("urn:interophub:ext:delivery-organization", FhirValues.Organization(deliveredAt)));
        }

        var episodeReference = builder.Put(episode, ResourceIds.From(row["reg_id"]));
        var encounter = Visit(builder, row, patient, FirstVisitKey(row["reg_id"]), row["register_date"], "maternal_registrations", "早孕建册(第1次产前检查)",
            ("AMB", "ambulatory"), episodeReference);
        Items(builder, row, "maternal_registrations", patient, encounter, row["reg_id"], row["register_date"], null);
    }

    /// <param name="registrationInBatch">The registration came in this batch (the reader checked it is the woman's); one
    /// of an earlier batch is named by a conditional reference to the woman's registration, so a visit whose reg_id
    /// the hub does not have, or has for another woman, is refused UNKNOWN_REFERENCE (§2 "References").</param>
    public static void MaternalVisit(TransactionBuilder builder, CsvRow row, bool registrationInBatch)
    {
        var patient = Patient(row);
        var episode = registrationInBatch
            ? new ResourceReference($"EpisodeOfCare/{ResourceIds.From(row["reg_id"])}")
            : new ResourceReference($"EpisodeOfCare?{Criteria.Identifier(TownshipMapper.MaternalRegistrationSystem, row["reg_id"])}"
                + $"&patient.identifier={Systems.HealthRecord}|{TextNormalizer.Number(row["record_no"])}");
        var display = row["visit_type"] switch { "AN" => "产前随访", "PP" => "产后访视", _ => "产后42天健康检查" };
        var encounter = Visit(builder, row, patient, row["visit_id"], row["visit_date"], "maternal_visits", display,
            row["visit_type"] == "PP" ? ("HH", "home health") : ("AMB", "ambulatory"), episode);
        Items(builder, row, "maternal_visits", patient, encounter, row["visit_id"], row["visit_date"], null);
    }

    public static void ChildCheckup(TransactionBuilder builder, CsvRow row)
    {
        var patient = Patient(row);
        var encounter = Visit(builder, row, patient, row["checkup_id"], row["checkup_date"], "child_checkups", $"儿童健康检查 {row["checkup_type"]}",
            row["checkup_type"] == "NB" ? ("HH", "home health") : ("AMB", "ambulatory"));
        Items(builder, row, "child_checkups", patient, encounter, row["checkup_id"], row["checkup_date"], null);
    }

    /// <summary>The id of the Encounter a visit row writes, by its key.</summary>
    public static string VisitId(string key) => ResourceIds.From(key.Replace('.', '-'));

    /// <summary>A pregnancy registration is also the first antenatal visit: the key of that visit.</summary>
    public static string FirstVisitKey(string regId) => $"{regId}.first";

    /// <summary>
    /// A deleted row retracts what the hub derived from it (§2 "Retraction"): a contract's or a registration's
    /// EpisodeOfCare, and a visit's Encounter with every Observation <see cref="Items"/> may have written for it (the
    /// row's cells are not sent, so every item its table can have). By <c>_id</c>, conditionally: a key the hub never
    /// had deletes nothing (a warning) instead of failing the chunk.
    /// </summary>
    public static void Retract(TransactionBuilder builder, string table, string key)
    {
        if (table is "contracts" or "maternal_registrations")
        {
            builder.DeleteWhere("EpisodeOfCare", $"_id={ResourceIds.From(key)}");
        }

        if (table == "contracts")
        {
            return;
        }

        // A registration is also the first antenatal visit (MaternalRegistration).
        builder.DeleteWhere("Encounter", $"_id={VisitId(table == "maternal_registrations" ? FirstVisitKey(key) : key)}");
        foreach (var id in ItemIds(table, key))
        {
            builder.DeleteWhere("Observation", $"_id={id}");
        }
    }

    /// <summary>
    /// A later version of a visit row replaces the earlier whole (§2 "Update"): the item Observations the earlier
    /// version may have written and this one does not (a column now empty) are removed with it.
    /// </summary>
    public static void RemoveItemsNotSent(TransactionBuilder builder, string table, string key)
    {
        var written = builder.Bundle.Entry.Where(e => e.Resource is Observation).Select(e => e.Resource!.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var id in ItemIds(table, key).Where(id => !written.Contains(id)))
        {
            builder.DeleteWhere("Observation", $"_id={id}");
        }
    }

    /// <summary>The ids of every item Observation <see cref="Items"/> can write for a row of the table.</summary>
    private static IEnumerable<string> ItemIds(string table, string key)
    {
        var schema = TownshipSchema.Find(table)!;
        return schema.Columns.Where(c => !Structural.Contains(c.Name) && c.Name != schema.Key).Select(c => c.Name).Concat(["bp", "gestational-age"])
            .Select(item => ResourceIds.From(key, item.Replace('_', '-')));
    }

    private static ResourceReference Patient(CsvRow row) =>
        new($"Patient?{Criteria.Identifier(Systems.HealthRecord, TextNormalizer.Number(row["record_no"]))}");

    private static string? Date(string value) => RowValidatorDates.Date(value)?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static ResourceReference Visit(TransactionBuilder builder, CsvRow row, ResourceReference patient, string key, string date, string table,
        string display, (string Code, string Display) encounterClass, ResourceReference? episode = null)
    {
        var type = table switch
        {
            "maternal_visits" => row["visit_type"],
            "child_checkups" => row["checkup_type"],
            _ => table,
        };
        var encounter = new Encounter
        {
            Identifier = [new Identifier($"urn:interophub:sid:township-visit:{table}", key)],
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", encounterClass.Code, encounterClass.Display),
            Type = [FhirValues.Coded(Systems.Local($"qx-phs-visit"), type, display)],
            Subject = patient,
            Period = new Period { StartElement = new FhirDateTime(Date(date)!) },
            ServiceProvider = FhirValues.Organization(row["org_code"]),
            EpisodeOfCare = episode is null ? [] : [episode],
        };
        if (row["doctor_name"] is { Length: > 0 } doctor)
        {
            encounter.Participant.Add(new Encounter.ParticipantComponent
            {
                Type = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer")],
                Individual = new ResourceReference { Display = doctor },
            });
        }

        return builder.Put(encounter, VisitId(key));
    }

    private static void Items(TransactionBuilder builder, CsvRow row, string table, ResourceReference patient, ResourceReference encounter,
        string key, string date, ResourceReference? plan)
    {
        var schema = TownshipSchema.Find(table)!;
        var effective = new FhirDateTime(Date(date)!);
        Observation New(CodeableConcept code, string category) => new()
        {
            Status = ObservationStatus.Final,
            Category = [FhirValues.Coded("http://terminology.hl7.org/CodeSystem/observation-category", category)],
            Code = code,
            Subject = patient,
            Encounter = encounter,
            Effective = effective,
            BasedOn = plan is null ? [] : [plan],
        };
        void Put(Observation observation, string item) => builder.Put(observation, ResourceIds.From(key, item.Replace('_', '-')));

        if (Number(row["sbp"]) is { } sbp && Number(row["dbp"]) is { } dbp)
        {
            var bp = New(FhirValues.Coded(Systems.Loinc, "85354-9", "Blood pressure panel with all children optional"), "vital-signs");
            bp.Component.Add(new Observation.ComponentComponent { Code = FhirValues.Coded(Systems.Loinc, "8480-6", "Systolic blood pressure"), Value = Quantity(sbp, "mm[Hg]") });
            bp.Component.Add(new Observation.ComponentComponent { Code = FhirValues.Coded(Systems.Loinc, "8462-4", "Diastolic blood pressure"), Value = Quantity(dbp, "mm[Hg]") });
            Put(bp, "bp");
        }

        if (Number(row["gest_weeks"]) is { } weeks)
        {
            var ga = New(FhirValues.Coded(Systems.Loinc, "11884-4", "Gestational age Estimated"), "exam");
            ga.Value = Quantity(weeks * 7 + (Number(row["gest_days"]) ?? 0), "d");
            Put(ga, "gestational-age");
        }

        foreach (var column in schema.Columns)
        {
            var value = TextNormalizer.Number(row[column.Name]);
            if (value.Length == 0 || Structural.Contains(column.Name) || column.Name == schema.Key)
            {
                continue;
            }

            if (Measurements.TryGetValue(column.Name, out var measurement) && Number(value) is { } number)
            {
                var observation = New(FhirValues.Coded(Systems.Loinc, measurement.Loinc, measurement.Display),
                    measurement.Loinc is "29463-7" or "8302-2" or "9843-4" or "39156-5" or "8867-4" ? "vital-signs" : "laboratory");
                observation.Value = Quantity(number, measurement.Unit);
                Put(observation, column.Name);
                continue;
            }

            // Any other filled column: kept as an item Observation of the township system.
            var item = New(FhirValues.Coded(ItemSystem, $"{table}.{column.Name}"), "survey");
            item.Value = column.Type switch
            {
                ColumnType.Code => new CodeableConcept
                {
                    Coding = [.. value.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(c => new Coding($"urn:interophub:cs:qx-phs:{column.Name.Replace('_', '-')}", c))],
                },
                ColumnType.Int or ColumnType.Dec when Number(value) is { } n => new Quantity { Value = n },
                ColumnType.Date when Date(value) is { } d => new FhirDateTime(d),
                ColumnType.Institution => FhirValues.Coded(Systems.OrganizationCode, value),
                _ => new FhirString(row[column.Name]),
            };
            Put(item, column.Name);
        }
    }

    private static decimal? Number(string value) =>
        decimal.TryParse(TextNormalizer.Number(value), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number) ? number : null;

    private static Quantity Quantity(decimal value, string ucum) => new() { Value = value, Unit = ucum, System = Systems.Ucum, Code = ucum };
}
