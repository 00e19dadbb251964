using System.Collections.Frozen;
using InteropHub.Adapters.Codes;

namespace InteropHub.Adapters.Township;

internal enum ColumnType
{
    Text,
    Code,
    Date,
    DateTime,
    Int,
    Dec,
    IdNumber,
    Institution,

    /// <summary>A birth certificate number: a capital letter and nine digits (township-export.md §3.1, birth-certificate.xsd).</summary>
    CertificateNo,
}

/// <summary>
/// A column of a township table (township-export.md §3). <see cref="Planned"/> dates lie in the future by design
/// (edd, end dates, next visits) and are exempt from the "after export time" check. <see cref="Min"/>: the least an
/// integer may be (integers are never negative).
/// </summary>
internal sealed record Column(string Name, ColumnType Type, bool Required = false, IReadOnlySet<string>? Codes = null,
    bool Multi = false, bool Planned = false, int Min = 0);

/// <summary>The tables in the order they are applied (residents first, so that references resolve).</summary>
internal sealed record TableSchema(string Table, string Key, IReadOnlyList<Column> Columns, bool ReferencesResident = true);

internal static class TownshipSchema
{
    private static FrozenSet<string> Set(params string[] values) => values.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> Binary = Set("0", "1");

    private static readonly Column[] Trailer =
    [
        new("org_code", ColumnType.Institution, true),
        new("status", ColumnType.Code, true, Set("active", "deleted")),
        new("updated_at", ColumnType.DateTime, true),
    ];

    private static readonly Column[] FollowupCommon =
    [
        new("record_no", ColumnType.Text, true),
        new("followup_date", ColumnType.Date, true),
        new("followup_method", ColumnType.Code, true, Set("1", "2", "3")),
        new("sbp", ColumnType.Int), new("dbp", ColumnType.Int), new("weight_kg", ColumnType.Dec), new("bmi", ColumnType.Dec),
        new("compliance", ColumnType.Code, Codes: Set("1", "2", "3")),
        new("adverse_reaction", ColumnType.Code, Codes: Binary),
        new("visit_class", ColumnType.Code, true, Set("1", "2", "3", "4")),
        new("medications", ColumnType.Text),
        new("referral_flag", ColumnType.Code, true, Binary),
        new("referral_reason", ColumnType.Text),
        new("referral_org_code", ColumnType.Institution),
        new("next_followup_date", ColumnType.Date, Planned: true),
        new("doctor_name", ColumnType.Text, true),
    ];

    public static readonly IReadOnlyList<TableSchema> Tables =
    [
        new("residents", "record_no",
        [
            new("record_no", ColumnType.Text, true), new("name", ColumnType.Text, true),
            new("sex_code", ColumnType.Code, true, Set("0", "1", "2", "9")),
            new("birth_date", ColumnType.Date, true),
            new("id_type", ColumnType.Code, Codes: Set("01", "02", "03", "04", "05", "06", "07", "99")),
            new("id_no", ColumnType.Text),
            new("ethnicity_code", ColumnType.Code, Codes: CountyCodes.Ethnicities.Keys.ToFrozenSet(StringComparer.Ordinal)),
            new("nationality_code", ColumnType.Code, Codes: Iso3166.Alpha3),
            new("marital_status_code", ColumnType.Code, Codes: Set("10", "20", "21", "22", "23", "30", "40", "90")),
            new("phone", ColumnType.Text),
            // township-export.md §3.1: the 12-digit village code of the README table.
            new("division_code", ColumnType.Code, true, CountyCodes.Villages.Keys.ToFrozenSet(StringComparer.Ordinal)),
            new("address_detail", ColumnType.Text),
            new("residence_type", ColumnType.Code, true, Set("1", "2")),
            new("health_card_no", ColumnType.Text),
            new("insurance_type", ColumnType.Code, Codes: Set("01", "02", "03", "04", "05", "06", "07", "08", "99")),
            new("poverty_flag", ColumnType.Code, true, Binary),
            new("mother_id_no", ColumnType.IdNumber),
            new("birth_cert_no", ColumnType.CertificateNo),
            new("birth_order", ColumnType.Int),
            new("responsible_doctor", ColumnType.Text),
            new("created_date", ColumnType.Date, true),
            new("archive_status", ColumnType.Code, true, Set("1", "2", "3")),
            new("death_date", ColumnType.Date),
        ], ReferencesResident: false),
        new("immunizations", "vacc_id",
        [
            new("vacc_id", ColumnType.Text, true), new("record_no", ColumnType.Text, true),
            new("vaccine_code", ColumnType.Code, true, CountyCodes.Vaccines.Keys.ToFrozenSet(StringComparer.Ordinal)),
            new("dose_no", ColumnType.Int, true, Min: 1), new("vacc_date", ColumnType.Date, true), new("lot_no", ColumnType.Text),
            new("manufacturer_code", ColumnType.Code, Codes: CountyCodes.Manufacturers.Keys.ToFrozenSet(StringComparer.Ordinal)),
            new("expiry_date", ColumnType.Date, Planned: true), new("dose_ml", ColumnType.Dec),
            new("route_code", ColumnType.Code, Codes: Set("1", "2", "3", "4")),
            new("site_code", ColumnType.Code, Codes: Set("1", "2", "3", "4", "5", "9")),
            new("vacc_org_code", ColumnType.Institution, true), new("vaccinator", ColumnType.Text), new("trace_code", ColumnType.Text),
            new("record_source", ColumnType.Code, true, Set("1", "2")),
        ]),
        new("contracts", "contract_id",
        [
            new("contract_id", ColumnType.Text, true), new("record_no", ColumnType.Text, true), new("team_code", ColumnType.Text, true),
            new("team_name", ColumnType.Text), new("doctor_code", ColumnType.Text, true), new("doctor_name", ColumnType.Text, true),
            new("sign_date", ColumnType.Date, true), new("start_date", ColumnType.Date, true), new("end_date", ColumnType.Date, true, Planned: true),
            new("package_codes", ColumnType.Code, true, Set("01", "02", "03", "04", "05", "06", "07", "08"), Multi: true),
            new("key_population_codes", ColumnType.Code, Codes: Set("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"), Multi: true),
            new("contract_status", ColumnType.Code, true, Set("1", "2", "3")), new("terminate_date", ColumnType.Date),
        ]),
        new("followups_hypertension", "followup_id",
        [
            new("followup_id", ColumnType.Text, true), .. FollowupCommon,
            new("symptom_codes", ColumnType.Code, Codes: Set("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"), Multi: true),
            new("heart_rate", ColumnType.Int), new("smoking_per_day", ColumnType.Int), new("drinking_per_day", ColumnType.Dec),
            new("exercise_per_week", ColumnType.Int), new("salt_intake", ColumnType.Code, Codes: Set("1", "2", "3")),
        ]),
        new("followups_diabetes", "followup_id",
        [
            new("followup_id", ColumnType.Text, true), .. FollowupCommon,
            new("symptom_codes", ColumnType.Code, Codes: Set("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"), Multi: true),
            new("dorsalis_pedis", ColumnType.Code, Codes: Set("1", "2", "3")), new("staple_food_g", ColumnType.Int),
            new("fpg_mmol", ColumnType.Dec), new("hba1c_pct", ColumnType.Dec), new("hypoglycemia", ColumnType.Code, Codes: Set("1", "2", "3")),
            new("insulin", ColumnType.Text),
        ]),
        new("maternal_registrations", "reg_id",
        [
            new("reg_id", ColumnType.Text, true), new("record_no", ColumnType.Text, true), new("register_date", ColumnType.Date, true),
            new("lmp_date", ColumnType.Date, true), new("edd", ColumnType.Date, true, Planned: true),
            new("gest_weeks", ColumnType.Int, true), new("gest_days", ColumnType.Int, true), new("gravidity", ColumnType.Int, true, Min: 1),
            new("parity_vaginal", ColumnType.Int, true), new("parity_cesarean", ColumnType.Int, true),
            new("height_cm", ColumnType.Dec), new("weight_kg", ColumnType.Dec), new("sbp", ColumnType.Int), new("dbp", ColumnType.Int),
            new("hb_gl", ColumnType.Int), new("hbsag", ColumnType.Code, Codes: Set("1", "2", "9")),
            new("high_risk", ColumnType.Code, true, Binary), new("high_risk_factors", ColumnType.Text),
            new("husband_name", ColumnType.Text), new("husband_id_no", ColumnType.IdNumber), new("doctor_name", ColumnType.Text, true),
            new("pregnancy_outcome", ColumnType.Code, Codes: Set("1", "2", "3", "4", "9")), new("delivery_date", ColumnType.Date),
            new("delivery_org_code", ColumnType.Institution),
        ]),
        new("maternal_visits", "visit_id",
        [
            new("visit_id", ColumnType.Text, true), new("reg_id", ColumnType.Text, true), new("record_no", ColumnType.Text, true),
            new("visit_type", ColumnType.Code, true, Set("AN", "PP", "PP42")), new("visit_seq", ColumnType.Int),
            new("visit_date", ColumnType.Date, true), new("gest_weeks", ColumnType.Int), new("gest_days", ColumnType.Int),
            new("weight_kg", ColumnType.Dec), new("sbp", ColumnType.Int), new("dbp", ColumnType.Int),
            new("fundal_height_cm", ColumnType.Dec), new("abdominal_circ_cm", ColumnType.Dec), new("fetal_heart_rate", ColumnType.Int),
            new("hb_gl", ColumnType.Int), new("delivery_date", ColumnType.Date),
            new("breast", ColumnType.Code, Codes: Set("1", "2")), new("lochia", ColumnType.Code, Codes: Set("1", "2")),
            new("uterus", ColumnType.Code, Codes: Set("1", "2")), new("wound", ColumnType.Code, Codes: Set("1", "2")),
            new("classification", ColumnType.Code, true, Set("1", "2")), new("abnormal_desc", ColumnType.Text),
            new("referral_flag", ColumnType.Code, true, Binary), new("referral_reason", ColumnType.Text),
            new("referral_org_code", ColumnType.Institution), new("next_visit_date", ColumnType.Date, Planned: true),
            new("doctor_name", ColumnType.Text, true),
        ]),
        new("child_checkups", "checkup_id",
        [
            new("checkup_id", ColumnType.Text, true), new("record_no", ColumnType.Text, true),
            new("checkup_type", ColumnType.Code, true, Set("NB", "M1", "M3", "M6", "M8", "M12", "M18", "M24", "M30", "Y3", "Y4", "Y5", "Y6")),
            new("checkup_date", ColumnType.Date, true), new("weight_kg", ColumnType.Dec, true), new("length_cm", ColumnType.Dec),
            new("head_circ_cm", ColumnType.Dec), new("weight_eval", ColumnType.Code, Codes: Set("1", "2", "3")),
            new("length_eval", ColumnType.Code, Codes: Set("1", "2", "3")), new("feeding", ColumnType.Code, Codes: Set("1", "2", "3")),
            new("hb_gl", ColumnType.Int), new("development", ColumnType.Code, Codes: Set("1", "2")),
            new("classification", ColumnType.Code, true, Set("1", "2")),
            new("guidance_codes", ColumnType.Code, Codes: Set("1", "2", "3", "4", "5"), Multi: true),
            new("referral_flag", ColumnType.Code, true, Binary), new("birth_cert_no", ColumnType.CertificateNo),
            new("next_checkup_date", ColumnType.Date, Planned: true), new("doctor_name", ColumnType.Text, true),
        ]),
    ];

    public static IReadOnlyList<Column> ColumnsOf(TableSchema table) => [.. table.Columns, .. Trailer];

    /// <summary>Free text that is kept exactly as entered (names, addresses, notes); every other column is normalised.</summary>
    private static readonly FrozenSet<string> FreeText = Set("name", "address_detail", "responsible_doctor", "team_name", "doctor_name",
        "vaccinator", "medications", "referral_reason", "high_risk_factors", "husband_name", "abnormal_desc", "insulin");

    public static IReadOnlySet<string> NormalizedColumns(TableSchema table) =>
        ColumnsOf(table).Select(c => c.Name).Where(n => !FreeText.Contains(n)).ToFrozenSet(StringComparer.Ordinal);

    public static TableSchema? Find(string table) => Tables.FirstOrDefault(t => t.Table == table);
}
