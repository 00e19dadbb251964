namespace InteropHub.Adapters.Identity;

/// <summary>
/// Identifier and code systems the adapters write. National OIDs where the county specification names one
/// (legacy/README.md, "Identifiers"); otherwise hub-local URNs in the <c>urn:interophub:</c> space the seeds use.
/// Per-institution systems end in the 9-character institution code.
/// </summary>
public static class Systems
{
    public const string ResidentId = ResidentIdNumber.System;
    public const string HealthCard = "urn:oid:2.16.156.10011.1.19";
    public const string HealthRecord = "urn:oid:2.16.156.10011.1.2";
    public const string BirthCertificate = "urn:interophub:sid:birth-certificate";

    /// <summary>A birth dose as its certificate reports it: the birth event's key (the newborn key at first issue, else the first certificate number of the chain) / the vaccine code.</summary>
    public const string CertificateDose = "urn:interophub:sid:birth-certificate-dose";

    public const string OrganizationCode = "urn:interophub:sid:org-code";
    public const string Referral = "urn:interophub:sid:referral";
    public const string InsuranceCard = "urn:interophub:sid:insurance-card";
    public const string VaccineTraceCode = "urn:interophub:sid:vaccine-trace-code";
    public const string VaccineManufacturer = "urn:interophub:cs:qxmfr";

    /// <summary>Newborn linkage key: mother's ID number / birth date / sex / birth order (README "Linking persons", rule 5).</summary>
    public const string NewbornKey = "urn:interophub:sid:newborn";

    public const string Ethnicity = "urn:oid:2.16.156.10011.2.3.3.3";
    public const string Sex = "urn:interophub:cs:gb2261.1";
    public const string MaritalStatus = "urn:interophub:cs:gb2261.2";
    public const string Vaccine = "urn:interophub:cs:qxvac";
    public const string Cvx = "http://hl7.org/fhir/sid/cvx";
    public const string Loinc = "http://loinc.org";
    public const string Ucum = "http://unitsofmeasure.org";
    public const string Icd10 = "http://hl7.org/fhir/sid/icd-10";
    public const string Icd10Cn2 = "urn:interophub:cs:icd10-cn2";
    public const string TcmDiagnosis = "urn:interophub:cs:gb-t-15657";

    public static string Mrn(string institution) => $"urn:interophub:sid:mrn:{institution}";

    /// <summary>Whether a system is an institution's MRN system (<see cref="Mrn"/>).</summary>
    public static bool IsMrn(string? system) => system?.StartsWith(Mrn(""), StringComparison.Ordinal) == true;

    public static string InpatientNumber(string institution) => $"urn:interophub:sid:inpatient-no:{institution}";

    public static string OutpatientNumber(string institution) => $"urn:interophub:sid:outpatient-no:{institution}";

    public static string VisitNumber(string institution) => $"urn:interophub:sid:visit-no:{institution}";

    public static string Staff(string institution) => $"urn:interophub:sid:staff:{institution}";

    public static string Department(string institution) => $"urn:interophub:sid:department:{institution}";

    public static string LabReport(string institution) => $"urn:interophub:sid:lab-report:{institution}";

    public static string Order(string institution) => $"urn:interophub:sid:order:{institution}";

    public static string Vaccination(string institution) => $"urn:interophub:sid:vaccination:{institution}";

    public static string Hl7Message(string institution) => $"urn:interophub:sid:hl7v2-message:{institution}";

    public static string Passport(string country) => $"urn:interophub:sid:passport:{country}";

    /// <summary>A code system of one legacy source, e.g. <c>urn:interophub:cs:qxlis</c> for the county LIS codes.</summary>
    public static string Local(string name) => $"urn:interophub:cs:{name.ToLowerInvariant()}";
}

/// <summary>Extensions the adapters write where R4 has no element.</summary>
public static class ExtensionUrls
{
    public const string Ethnicity = "https://interophub.dev/fhir/StructureDefinition/ethnicity";

    /// <summary>
    /// In an adapter's transaction only, never stored: a Patient element the message deleted with <c>""</c> (his-hl7v2.md
    /// §2), which the ingest pipeline then does not keep from the stored Patient (valueCode: an element name or an extension
    /// URL), or an identifier a birth certificate's correction made stale (<c>identifier:{system}|{value}</c>).
    /// </summary>
    public const string Cleared = "urn:interophub:ext:cleared";

    /// <summary>
    /// In a HIS transaction only, never stored: the Patient of a message that does not maintain the person (ORU, VXU,
    /// REF, visit events): created from the message when absent; when stored, only the identifiers it lacks are added
    /// (a second institution's MRN joins the person, legacy/README.md linking rule 2), its demographics left alone.
    /// </summary>
    public const string IdentifiersOnly = "urn:interophub:ext:identifiers-only";

    /// <summary>
    /// A newborn's key at the first issue of its birth certificate (valueString), kept once a correction changed the key:
    /// the child's doses and parents are written by it (<see cref="Identity.DoseIds"/>, <see cref="Identity.KinIds"/>),
    /// so every source that later names the child by the corrected key writes them under the same ids. Not a linking
    /// identifier: another child may have that key.
    /// </summary>
    public const string NewbornRecordKey = "urn:interophub:ext:newborn-record-key";
    public const string RegisteredPoor = "urn:interophub:ext:registered-poor";
    public const string FamilyDoctorContract = "urn:interophub:ext:family-doctor-contract";
    public const string PaymentMethod = "urn:interophub:ext:payment-method";
    public const string DivisionCode = "urn:interophub:ext:division-code";
    public const string AddressCategory = "urn:interophub:ext:address-category";
    public const string OriginalCode = "urn:interophub:ext:original-code";
    public const string OrderingFacility = "urn:interophub:ext:ordering-facility";

    /// <summary>A lab report's ordering doctor (ORC-12 / OBR-16), valueReference.</summary>
    public const string OrderingProvider = "urn:interophub:ext:ordering-provider";

    /// <summary>A lab report's ordering department (ORC-17), valueCoding in the HIS department codes.</summary>
    public const string OrderingDepartment = "urn:interophub:ext:ordering-department";

    /// <summary>
    /// On a referral's note, valueBoolean true: the clinical summary of the REF message (OBR REFSUM, OBX TX), which a later
    /// message with a summary of its own (an amended I12, an I13 P) replaces; the other notes (NTE remarks) add up.
    /// </summary>
    public const string ReferralSummary = "urn:interophub:ext:referral-summary";
    public const string BirthTime = "http://hl7.org/fhir/StructureDefinition/patient-birthTime";
    public const string BirthPlace = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
    public const string Nationality = "http://hl7.org/fhir/StructureDefinition/patient-nationality";
    public const string NameRepresentation = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
}
