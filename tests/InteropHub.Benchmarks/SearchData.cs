using System.Globalization;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using FhirPatient = Hl7.Fhir.Model.Patient;

/// <summary>
/// A deterministic Synthea-shaped world for the search benchmark: for patient i (a clone of one of the Synthea
/// patients of Data/ with its own id, identifiers, birth date and organisation) three Encounters, five vital-sign
/// Observations and one Immunization referencing it, plus <see cref="Organizations"/> organisations. Ten resources
/// per patient, so 100,000 patients make one million resources. The same i always gives the same resources.
/// </summary>
internal sealed class SearchData
{
    public const int Organizations = 200;
    public const int ResourcesPerPatient = 10;
    public const string PatientSystem = "urn:interophub:bench:patient";

    public static readonly (string Code, string Display, string Unit, double Low, double High)[] Vitals =
    [
        ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 180),
        ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 110),
        ("8867-4", "Heart rate", "/min", 50, 120),
        ("9279-1", "Respiratory rate", "/min", 10, 30),
        ("8310-5", "Body temperature", "Cel", 35.5, 40),
        ("29463-7", "Body weight", "kg", 3, 120),
        ("8302-2", "Body height", "cm", 45, 200),
        ("39156-5", "Body mass index", "kg/m2", 14, 45),
        ("2339-0", "Glucose", "mg/dL", 60, 300),
        ("718-7", "Hemoglobin", "g/dL", 8, 18),
    ];

    public static readonly (string Code, string Display)[] Vaccines =
    [
        ("08", "Hep B, adolescent or pediatric"), ("10", "IPV"), ("20", "DTaP"), ("03", "MMR"), ("21", "varicella"),
        ("49", "Hib (PRP-OMP)"), ("133", "Pneumococcal conjugate PCV 13"), ("140", "Influenza, seasonal, injectable"),
        ("62", "HPV, quadrivalent"), ("115", "Tdap"),
    ];

    private static readonly (string Code, string Display)[] EncounterTypes =
    [
        ("185349003", "Encounter for check up"), ("410620009", "Well child visit"), ("162673000", "General examination of patient"),
        ("185345009", "Encounter for symptom"), ("50849002", "Emergency room admission"),
    ];

    /// <summary>Encounters and observations fall between 2015 and 2025.</summary>
    public static readonly DateTimeOffset Start = new(2015, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public const int Days = 3652;

    private readonly List<FhirPatient> _templates;

    public SearchData()
    {
        var parser = new FhirJsonDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable));
        _templates = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Data", "synthea-100-Patient.ndjson"))
            .Where(l => l.Length > 0)
            .Select(parser.Deserialize<FhirPatient>)
            .ToList();
    }

    /// <summary>The family names of the templates (string searches pick prefixes of these).</summary>
    public IReadOnlyList<string> Families => _templates.Select(t => t.Name[0].Family ?? "").Distinct(StringComparer.Ordinal).ToList();

    public static IEnumerable<Resource> OrganizationResources() => Enumerable.Range(0, Organizations).Select(k => (Resource)new Organization
    {
        Id = $"org{k}",
        Identifier = [new Identifier("urn:interophub:bench:org", k.ToString(CultureInfo.InvariantCulture))],
        Active = true,
        Name = k % 2 == 0 ? $"清溪县第{k}卫生院" : $"Qingxi Clinic {k}",
        Type = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")],
    });

    /// <summary>Patient i and everything that references it, in a fixed order.</summary>
    public IEnumerable<Resource> ForPatient(int i)
    {
        var random = new Random(i);
        var patient = (FhirPatient)_templates[i % _templates.Count].DeepCopy();
        var text = i.ToString(CultureInfo.InvariantCulture);
        patient.Id = $"p{text}";
        patient.Meta = null;
        patient.Text = null;
        patient.Identifier =
        [
            new Identifier(PatientSystem, text),
            new Identifier("http://hospital.smarthealthit.org", $"mrn-{text}")
            {
                Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"),
            },
        ];
        patient.BirthDate = new DateOnly(1930, 1, 1).AddDays(random.Next(34_000)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        patient.ManagingOrganization = new ResourceReference($"Organization/org{i % Organizations}");
        yield return patient;

        var subject = new ResourceReference($"Patient/p{text}");
        var encounters = new List<(string Id, DateTimeOffset Start)>();
        for (var e = 0; e < 3; e++)
        {
            var start = Start.AddMinutes(random.Next(Days * 24 * 60));
            var type = EncounterTypes[random.Next(EncounterTypes.Length)];
            var id = $"e{text}-{e}";
            encounters.Add((id, start));
            yield return new Encounter
            {
                Id = id,
                Status = Encounter.EncounterStatus.Finished,
                Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
                Type = [new CodeableConcept("http://snomed.info/sct", type.Code, type.Display, type.Display)],
                Subject = subject,
                Period = new Period(new FhirDateTime(start), new FhirDateTime(start.AddMinutes(30))),
                ServiceProvider = new ResourceReference($"Organization/org{random.Next(Organizations)}"),
            };
        }

        for (var o = 0; o < 5; o++)
        {
            var vital = Vitals[random.Next(Vitals.Length)];
            var (encounter, at) = encounters[o % encounters.Count];
            var value = Math.Round(vital.Low + random.NextDouble() * (vital.High - vital.Low), 1);
            yield return new Observation
            {
                Id = $"o{text}-{o}",
                Status = ObservationStatus.Final,
                Category = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital signs")],
                Code = new CodeableConcept("http://loinc.org", vital.Code, vital.Display, vital.Display),
                Subject = subject,
                Encounter = new ResourceReference($"Encounter/{encounter}"),
                Effective = new FhirDateTime(at.AddMinutes(5)),
                Issued = at.AddMinutes(10),
                Value = new Quantity((decimal)value, vital.Unit) { Code = vital.Unit },
            };
        }

        var vaccine = Vaccines[random.Next(Vaccines.Length)];
        yield return new Immunization
        {
            Id = $"i{text}",
            Status = Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = new CodeableConcept("http://hl7.org/fhir/sid/cvx", vaccine.Code, vaccine.Display, vaccine.Display),
            Patient = subject,
            Occurrence = new FhirDateTime(encounters[0].Start),
            PrimarySource = true,
            ProtocolApplied = [new Immunization.ProtocolAppliedComponent { DoseNumber = new PositiveInt(1 + random.Next(3)) }],
        };
    }
}
