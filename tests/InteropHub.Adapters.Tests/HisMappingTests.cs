using Hl7.Fhir.Model;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Tests;

public sealed class HisMappingTests
{
    private static T Single<T>(HisOutcome outcome) where T : Resource =>
        Assert.Single(Assert.IsType<HisAccepted>(outcome).Transaction.Entry.Select(e => e.Resource).OfType<T>());

    private static IEnumerable<T> All<T>(HisOutcome outcome) where T : Resource =>
        Assert.IsType<HisAccepted>(outcome).Transaction.Entry.Select(e => e.Resource).OfType<T>();

    [Fact]
    public void A_lower_case_x_in_an_id_number_is_normalised_and_the_patient_is_matched_on_it_first()
    {
        var outcome = Er7.Sample("04_").Map();

        var entry = Assert.IsType<HisAccepted>(outcome).Transaction.Entry[0];
        Assert.Contains(((Patient)entry.Resource!).Identifier, i => i.System == Systems.ResidentId && i.Value == "36992119960823078X");
        Assert.StartsWith("Patient?identifier=urn:oid:2.16.156.10011.1.3|36992119960823078X,", entry.Request!.Url, StringComparison.Ordinal);
        Assert.Equal(Bundle.HTTPVerb.PUT, entry.Request.Method);
    }

    [Fact]
    public void A_lab_reports_ordering_doctor_and_department_are_kept_on_the_report()
    {
        var report = Single<DiagnosticReport>(Er7.Sample("13_").With("ORC", 17, "0307^内分泌科").Map());

        var doctor = (ResourceReference)report.Extension.Single(e => e.Url == "urn:interophub:ext:ordering-provider").Value!;
        Assert.Equal("何丽萍", doctor.Display);
        var department = (Coding)report.Extension.Single(e => e.Url == "urn:interophub:ext:ordering-department").Value!;
        Assert.Equal(("urn:interophub:cs:qxhis-department", "0307", "内分泌科"), (department.System, department.Code, department.Display));
    }

    [Fact]
    public void A_referral_names_the_department_it_refers_to_and_the_events_reason_and_operator_reach_its_Provenance()
    {
        var referral = Single<ServiceRequest>(Er7.Sample("14_").Map());
        Assert.Equal("0307", Assert.Single(referral.LocationCode).Coding.Single().Code);

        var provenance = Single<Provenance>(Er7.Sample("31_").Map());
        Assert.Equal(("01", "登记错误"), (provenance.Reason.Single().Coding[0].Code, provenance.Reason.Single().Coding[0].Display));
        var enterer = provenance.Agent.Single(a => a.Type?.Coding[0].Code == "enterer");
        Assert.Equal(("Z0105", "孔静"), (enterer.Who.Identifier?.Value, enterer.Who.Display));
    }

    [Theory]
    [InlineData("10^9/L")]
    [InlineData("10\\S\\9/L")]
    [InlineData("10*9/L")]
    public void A_count_unit_sent_with_or_without_its_caret_escaped_is_UCUM_10_9_per_litre(string unit)
    {
        var observation = All<Observation>(Er7.Sample("29_").With("OBX", 6, unit).Map()).First();

        var quantity = Assert.IsType<Quantity>(observation.Value);
        Assert.Equal(("http://unitsofmeasure.org", "10*9/L"), (quantity.System, quantity.Code));
        Assert.Equal("10*9/L", observation.ReferenceRange.Single().Low!.Code);
    }

    [Theory]
    [InlineData("99999919580412137", true)]
    [InlineData("36995519580412137", true)]
    [InlineData("36990219580412137", false)]
    [InlineData("11010119580412137", false)]
    public void An_id_number_whose_area_code_is_no_division_is_accepted_with_a_warning(string first17, bool warned)
    {
        var id = first17 + ResidentIdNumber.CheckCharacter(first17);

        var outcome = Assert.IsType<HisAccepted>(Er7.Sample("16_").With("PID", 3, $"0000021875^^^QX2110026^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN").Map());

        Assert.Equal(warned, outcome.Warnings.Any(w => w.Detail.Contains($"地区码 {id[..6]}", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("^^369921", null)]
    [InlineData("^369921101^", null)]
    [InlineData("^^369921101202", null)]
    [InlineData("^^110101", null)]
    [InlineData("^^999999", "PID^1^11^1^9")]
    [InlineData("^^369921999", "PID^1^11^1^9")]
    [InlineData("^369955^", "PID^1^11^1^8")]
    public void A_division_code_the_hub_does_not_know_is_kept_with_a_warning_at_its_component(string xad789, string? warnedAt)
    {
        var outcome = Assert.IsType<HisAccepted>(Er7.Sample("16_").With("PID", 11, "沙坪村3组12号^白沙镇^清源市^江西省^^CHN^H" + xad789).Map());

        var code = xad789.Split('^').Last(c => c.Length > 0);
        Assert.Equal(code, Single<Patient>(outcome).Address.Single().GetExtensionValue<Code>(ExtensionUrls.DivisionCode)?.Value);
        Assert.Equal(warnedAt, outcome.Warnings.SingleOrDefault(w => w.Detail.Contains("行政区划", StringComparison.Ordinal))?.Location!.ToErl());
    }

    [Fact]
    public void A_wrong_check_character_is_rejected_AE_naming_the_repetition_and_the_expected_character()
    {
        var error = Er7.Sample("16_").With("PID", 3, "0000021875^^^QX2110026^MR~369902195804121375^^^&2.16.156.10011.1.3&ISO^NNCHN").Map().SingleError();

        Assert.Equal((RejectionReason.IdCheckDigit, "PID^1^3^2", 102), (error.Reason, error.Location!.ToErl(), error.Hl7ErrorCode));
        Assert.Equal("PID-3 身份证号 369902195804121375 校验位应为 2", error.Detail);
    }

    [Theory]
    [InlineData("36990219580412137", "ID_FORMAT")]
    [InlineData("369902195802301372", "ID_FORMAT")]
    [InlineData("369902205804121372", "ID_FORMAT")]
    public void Id_numbers_of_the_wrong_length_or_with_an_impossible_or_future_date_are_ID_FORMAT(string id, string reason)
    {
        var error = Er7.Sample("16_").With("PID", 3, $"0000021875^^^QX2110026^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN").Map().SingleError();

        Assert.Equal(reason, error.Reason.Code());
    }

    [Fact]
    public void A_15_digit_id_number_typed_SFZ_is_upgraded_to_18_with_a_warning()
    {
        var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("27_")));

        var patient = (Patient)outcome.Transaction.Entry[0].Resource!;
        Assert.Contains(patient.Identifier, i => i.System == Systems.ResidentId && i.Value == "369902194910010866");
        Assert.Equal("1949-10-01", patient.BirthDate);
        Assert.Empty(patient.BirthDateElement!.Extension);
    }

    [Fact]
    public void An_id_number_sent_in_PID_19_is_used_when_PID_3_has_none()
    {
        var message = Er7.Sample("16_").With("PID", 3, "0000021875^^^QX2110026^MR").With("PID", 19, "36990219580412137２");

        var patient = Single<Patient>(message.Map());

        Assert.Contains(patient.Identifier, i => i.System == Systems.ResidentId && i.Value == "369902195804121372");
    }

    [Fact]
    public void A_PID_3_without_an_MRN_is_MISSING_REQUIRED()
    {
        var error = Er7.Sample("16_").With("PID", 3, "369902195804121372^^^&2.16.156.10011.1.3&ISO^NNCHN").Map().SingleError();

        Assert.Equal((RejectionReason.MissingRequired, "PID^1^3"), (error.Reason, error.Location!.ToErl()));
    }

    [Theory]
    [InlineData("M", AdministrativeGender.Male)]
    [InlineData("1", AdministrativeGender.Male)]
    [InlineData("2", AdministrativeGender.Female)]
    [InlineData("U", AdministrativeGender.Unknown)]
    [InlineData("9", AdministrativeGender.Unknown)]
    public void Sex_is_read_as_HL7_0001_or_GB_T_2261_1(string code, AdministrativeGender gender)
    {
        Assert.Equal(gender, Single<Patient>(Er7.Sample("16_").With("PID", 8, code).Map()).Gender);
    }

    [Fact]
    public void A_repeated_numeric_result_keeps_its_first_value_with_a_warning()
    {
        var outcome = Er7.Sample("13_").With("OBX", 5, "8.2~9.1").Map();

        var accepted = Assert.IsType<HisAccepted>(outcome);
        Assert.Contains(accepted.Warnings, w => w.Location!.ToErl().StartsWith("OBX^1^5", StringComparison.Ordinal) && w.Detail.Contains("8.2", StringComparison.Ordinal));
        Assert.Contains(accepted.Transaction.Entry.Select(e => e.Resource).OfType<Observation>(), o => o.Value is Quantity { Value: 8.2m });
    }

    [Fact]
    public void A_stated_sex_that_disagrees_with_the_ID_number_is_a_warning_not_a_rejection()
    {
        var outcome = Er7.Sample("16_").With("PID", 8, "F").Map();

        var accepted = Assert.IsType<HisAccepted>(outcome);
        Assert.Contains(accepted.Warnings, w => w.Location!.ToErl() == "PID^1^8");
    }

    [Fact]
    public void Sex_9_keeps_its_original_code()
    {
        var patient = Single<Patient>(Er7.Sample("16_").With("PID", 8, "9").Map());

        var original = Assert.IsType<Coding>(Assert.Single(patient.GenderElement!.Extension).Value);
        Assert.Equal((Systems.Sex, "9"), (original.System, original.Code));
    }

    [Theory]
    [InlineData("PID", 8, "X", "UNKNOWN_CODE", "PID^1^8")]
    [InlineData("PID", 10, "99^火星族^GB3304", "UNKNOWN_CODE", "PID^1^10")]
    [InlineData("PID", 7, "19580231", "IMPOSSIBLE_DATE", "PID^1^7")]
    [InlineData("PID", 7, "20260101", "IMPOSSIBLE_DATE", "PID^1^7")]
    [InlineData("PID", 7, "00010101", "IMPOSSIBLE_DATE", "PID^1^7")]
    [InlineData("PV1", 44, "00010101", "IMPOSSIBLE_DATE", "PV1^1^44")]
    [InlineData("PV1", 2, "Z", "UNKNOWN_CODE", "PV1^1^2")]
    [InlineData("PV1", 19, "", "MISSING_REQUIRED", "PV1^1^19")]
    [InlineData("PV1", 44, "", "MISSING_REQUIRED", "PV1^1^44")]
    [InlineData("PV1", 44, "20250510083500", "IMPOSSIBLE_DATE", "PV1^1^44")]
    [InlineData("DG1", 6, "", "MISSING_REQUIRED", "DG1^1^6")]
    [InlineData("EVN", 2, "", "MISSING_REQUIRED", "EVN^1^2")]
    public void Content_errors_are_rejected_AE_with_their_reason_and_location(string segment, int field, string value, string reason, string erl)
    {
        var outcome = Er7.Sample("16_").With(segment, field, value).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((reason, erl), (error.Reason.Code(), error.Location!.ToErl()));
    }

    [Theory]
    [InlineData("16_")]
    [InlineData("03_")]
    [InlineData("31_")]
    public void An_ADT_message_without_its_EVN_segment_is_AE_MISSING_REQUIRED_naming_EVN(string sample)
    {
        var outcome = Er7.Sample(sample).Without("EVN").Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((RejectionReason.MissingRequired, "EVN^1"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_diagnosis_without_its_type_is_refused_and_never_written_with_an_empty_use_code()
    {
        var outcome = Er7.Sample("23_").Map();
        var lines = Er7.Sample("23_").Split('\r').Select(l => l.StartsWith("DG1|2|", StringComparison.Ordinal) ? l.Replace("|F|", "||", StringComparison.Ordinal) : l);

        var refused = string.Join('\r', lines).Map();

        Assert.Equal(AckCode.AE, refused.AckCode);
        Assert.Equal((RejectionReason.MissingRequired, 101, "DG1^2^6"), (refused.SingleError().Reason, refused.SingleError().Hl7ErrorCode, refused.SingleError().Location!.ToErl()));
        Assert.All(Single<Encounter>(outcome).Diagnosis.SelectMany(d => d.Use!.Coding), c => Assert.False(string.IsNullOrEmpty(c.Code)));
    }

    [Theory]
    [InlineData("00010101")]
    [InlineData("99991231235959-1200")]
    public void A_message_time_outside_the_representable_years_is_rejected_AR_at_MSH_7(string value)
    {
        var outcome = Er7.Sample("16_").With("MSH", 7, value).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AR, outcome.AckCode);
        Assert.Equal(("MALFORMED", "MSH^1^7"), (error.Reason.Code(), error.Location!.ToErl()));
    }

    [Theory]
    [InlineData("PID", 5, "测\\XFF\\试", "PID^1^5^1^1")]
    [InlineData("PID", 11, "沙坪村3组12号^\\XE799\\镇", "PID^1^11^1^2")]
    [InlineData("PV1", 3, "0304^0512^02^QX2110026&\\XC0\\", "PV1^1^3^1^4^2")]
    public void An_escape_of_bytes_that_are_no_UTF_8_text_is_AE_MALFORMED_at_its_component_not_an_internal_error(string segment, int field,
        string value, string erl)
    {
        var outcome = Er7.Sample("16_").With(segment, field, value).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((RejectionReason.Malformed, 102, erl), (error.Reason, error.Hl7ErrorCode, error.Location!.ToErl()));
        Assert.Contains(value[value.IndexOf('\\', StringComparison.Ordinal)..(value.LastIndexOf('\\') + 1)], error.Detail, StringComparison.Ordinal);
        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, "IHUB-1", DateTimeOffset.UnixEpoch);
        Assert.Contains($"ERR||{erl}|102^Data type error^HL70357|E|MALFORMED^", ack, StringComparison.Ordinal);
    }

    [Fact]
    public void An_undecodable_escape_in_a_Z_segment_the_hub_skips_does_not_reject_the_message()
    {
        var outcome = (Er7.Sample("16_") + "\rZPV|1|\\XFF\\").Map();

        Assert.IsType<HisAccepted>(outcome);
    }

    [Fact]
    public void A_hex_escape_of_valid_bytes_is_text_in_the_message_character_set()
    {
        var patient = Single<Patient>(Er7.Sample("16_").With("PID", 5, "\\XE69D8E\\德福").Map());

        Assert.Equal("李德福", patient.Name[0].Text);
    }

    [Fact]
    public void An_undecodable_escape_in_the_header_is_AR_MALFORMED_at_its_MSH_field()
    {
        var outcome = Er7.Sample("16_").With("MSH", 3, "QX\\XFF\\HIS").Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AR, outcome.AckCode);
        Assert.Equal((RejectionReason.Malformed, 102, "MSH^1^3^1^1"), (error.Reason, error.Hl7ErrorCode, error.Location!.ToErl()));
        Assert.Equal("QX2110026-20250506-000412", ((HisRejected)outcome).UnreadControlId);
    }

    [Fact]
    public void A_discharge_before_the_admission_is_IMPOSSIBLE_DATE()
    {
        var error = Er7.Sample("23_").With("PV1", 45, "20250501103000").Map().SingleError();

        Assert.Equal((RejectionReason.ImpossibleDate, "PV1^1^45"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_cancel_discharge_that_still_carries_the_discharge_fields_maps_no_end_disposition_or_destination()
    {
        // The HIS may send the A13 with the PV1 of the discharge it undoes: PV1-36 3 (to a township centre), PV1-37, PV1-45.
        var cancel = Er7.Sample("23_").With("MSH", 9, "ADT^A13^ADT_A01").With("EVN", 1, "A13");

        var encounter = Single<Encounter>(cancel.Map());

        Assert.Equal(Encounter.EncounterStatus.InProgress, encounter.Status);
        Assert.Null(encounter.Period?.End);
        Assert.Null(encounter.Hospitalization?.DischargeDisposition);
        Assert.Null(encounter.Hospitalization?.Destination);
        Assert.Equal("3", encounter.Hospitalization!.AdmitSource!.Coding[0].Code);
        var discharge = Single<Encounter>(Er7.Sample("23_").Map());
        Assert.Equal("3", discharge.Hospitalization!.DischargeDisposition!.Coding[0].Code);
        Assert.EndsWith("|QX2110026", discharge.Hospitalization.Destination!.Reference, StringComparison.Ordinal);
    }

    [Fact]
    public void The_delete_marker_removes_a_value_instead_of_storing_two_quotes()
    {
        var patient = Single<Patient>(Er7.Sample("16_").With("MSH", 9, "ADT^A08^ADT_A01").With("PID", 13, "\"\"").Map());

        Assert.Empty(patient.Telecom);
    }

    [Fact]
    public void Placeholder_birth_dates_mean_unknown_and_are_not_rejected()
    {
        var patient = Single<Patient>(Er7.Sample("16_").With("PID", 7, "19000101").Map());

        Assert.Null(patient.BirthDate);
    }

    [Fact]
    public void An_outpatient_registration_is_a_finished_ambulatory_encounter_keyed_by_its_visit_number()
    {
        var entry = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("16_"))).Transaction.Entry.Single(e => e.Resource is Encounter);

        var encounter = (Encounter)entry.Resource!;
        Assert.Equal(Encounter.EncounterStatus.Finished, encounter.Status);
        Assert.Equal("AMB", encounter.Class.Code);
        Assert.Equal("Encounter?identifier=urn:interophub:sid:outpatient-no:QX2110026|MZ20250506000087", entry.Request!.Url);
        Assert.Equal("2025-05-06T08:35:00+08:00", encounter.Period!.Start);
    }

    [Fact]
    public void Discharge_cancel_discharge_and_cancel_admit_need_the_visit_to_exist_and_set_its_status()
    {
        foreach (var (sample, status) in new[]
        {
            ("07_", Encounter.EncounterStatus.Finished),
            ("08_", Encounter.EncounterStatus.InProgress),
            ("31_", Encounter.EncounterStatus.EnteredInError),
        })
        {
            var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(sample)));
            var encounter = Single<Encounter>(outcome);
            Assert.Equal(status, encounter.Status);
            var precondition = Assert.IsType<MustExist>(Assert.Single(outcome.Preconditions));
            Assert.Equal($"Encounter?identifier={encounter.Identifier[0].System}|{encounter.Identifier[0].Value}", precondition.Search);
            Assert.Equal("PV1^1^19", precondition.Location.ToErl());
        }
    }

    [Fact]
    public void A_transfer_keeps_the_location_left_as_completed_and_the_new_one_active()
    {
        var encounter = Single<Encounter>(HisMapper.Map(SampleFiles.His("22_")));

        Assert.Equal(
            [("心内科CCU CCU-03", Encounter.EncounterLocationStatus.Completed), ("心血管内科 0512-02", Encounter.EncounterLocationStatus.Active)],
            encounter.Location.Select(l => (l.Location.Display, l.Status)));
    }

    [Fact]
    public void A_person_update_never_creates_an_encounter_and_kin_become_related_persons()
    {
        var outcome = HisMapper.Map(SampleFiles.His("02_"));

        Assert.Empty(All<Encounter>(outcome));
        var spouse = Single<RelatedPerson>(outcome);
        Assert.Equal("黄美玲", spouse.Name[0].Text);
        Assert.Contains(spouse.Relationship, r => r.Coding.Any(c => c.Code == "SPS"));
    }

    [Fact]
    public void A_merge_retires_the_old_MRN_with_replaced_by_and_the_survivor_replaces_it()
    {
        var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("03_")));

        var patients = outcome.Transaction.Entry.Where(e => e.Resource is Patient).ToList();
        var survivor = patients.Single(e => ((Patient)e.Resource!).Active == true);
        var retired = patients.Single(e => ((Patient)e.Resource!).Active == false);
        Assert.Equal("Patient?identifier=urn:interophub:sid:mrn:QX2100012|0000517733", retired.Request!.Url);
        Assert.Equal((survivor.FullUrl, Patient.LinkType.ReplacedBy), (((Patient)retired.Resource!).Link[0].Other!.Reference, ((Patient)retired.Resource!).Link[0].Type));
        Assert.Equal((retired.FullUrl, Patient.LinkType.Replaces), (((Patient)survivor.Resource!).Link[0].Other!.Reference, ((Patient)survivor.Resource!).Link[0].Type));
        Assert.Equal("0000517733", outcome.Merge!.Retired.Value);
        Assert.Contains(outcome.Preconditions, p => p is MustExist { Search: "Patient?identifier=urn:interophub:sid:mrn:QX2100012|0000517733" });
    }

    [Fact]
    public void A_merge_across_institutions_is_UNKNOWN_REFERENCE()
    {
        var error = Er7.Sample("03_").With("MRG", 1, "0000517733^^^QX2110026^MR").Map().SingleError();

        Assert.Equal((RejectionReason.UnknownReference, "MRG^1^1"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_newborn_gets_the_linkage_key_of_mother_birth_date_sex_and_order_and_a_temporary_name()
    {
        var patient = Single<Patient>(HisMapper.Map(SampleFiles.His("05_")));

        Assert.Contains(patient.Identifier, i => i.System == Systems.NewbornKey && i.Value == "36992119960823078X/20250315/female/1");
        Assert.Equal(HumanName.NameUse.Temp, patient.Name[0].Use);
        Assert.Equal("2025-03-15T08:42:00+08:00", ((FhirDateTime)patient.BirthDateElement!.GetExtension(ExtensionUrls.BirthTime)!.Value!).Value);
    }

    [Fact]
    public void Lab_results_carry_value_unit_range_interpretation_and_the_performing_laboratory()
    {
        var outcome = HisMapper.Map(SampleFiles.His("29_"));

        var potassium = All<Observation>(outcome).Single(o => o.Code.Coding[0].Code == "K");
        var quantity = Assert.IsType<Quantity>(potassium.Value);
        Assert.Equal((6.8m, "mmol/L", "HH"), (quantity.Value, quantity.Code, potassium.Interpretation[0].Coding[0].Code));
        Assert.Equal((3.5m, 5.3m), (potassium.ReferenceRange[0].Low!.Value, potassium.ReferenceRange[0].High!.Value));
        Assert.Contains(potassium.Code.Coding, c => c.System == Systems.Loinc && c.Code == "2823-3");
        var creatinine = All<Observation>(outcome).Single(o => o.Code.Coding[0].Code == "CREA");
        Assert.Equal(("umol/L", "μmol/L"), (((Quantity)creatinine.Value!).Code, ((Quantity)creatinine.Value!).Unit));
        var urea = All<Observation>(outcome).Single(o => o.Code.Coding[0].Code == "UREA");
        Assert.DoesNotContain(urea.Code.Coding, c => c.System == Systems.Loinc);
        var report = Single<DiagnosticReport>(outcome);
        Assert.Equal(3, report.Result.Count);
        Assert.Equal("Organization?identifier=urn:interophub:sid:org-code|QX2100012", report.Performer[0].Reference);
        Assert.Contains("危急值", report.Conclusion, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_local_lab_code_is_kept_as_a_local_coding()
    {
        var message = Er7.Sample("29_").With("OBX", 3, "XYZ^新项目^QXLIS");

        var observation = All<Observation>(message.Map()).First();

        Assert.Equal([("urn:interophub:cs:qxlis", "XYZ")], observation.Code.Coding.Select(c => (c.System, c.Code)));
    }

    [Fact]
    public void Local_codes_without_a_standard_equivalent_are_reported_for_counting()
    {
        var accepted = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("29_")));

        var unmapped = Codes.UnmappedCodes.In(accepted.Transaction);

        Assert.Equal([("urn:interophub:cs:qxlis", "UREA")], unmapped.Select(c => (c.System, c.Code)));
        Assert.Empty(Codes.UnmappedCodes.In(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("21_"))).Transaction));
    }

    [Theory]
    [InlineData("<0.10", 0.10, Quantity.QuantityComparator.LessThan)]
    [InlineData("６.8", 6.8, null)]
    public void Numeric_results_accept_comparators_and_full_width_digits(string value, double expected, Quantity.QuantityComparator? comparator)
    {
        var observation = All<Observation>(Er7.Sample("29_").With("OBX", 5, value).Map()).First();

        var quantity = Assert.IsType<Quantity>(observation.Value);
        Assert.Equal(((decimal)expected, comparator), (quantity.Value, quantity.Comparator));
    }

    [Fact]
    public void Structured_numeric_results_become_a_quantity_a_ratio_or_a_range()
    {
        Observation Result(string value) => All<Observation>(Er7.Sample("29_").With("OBX", 2, "SN").With("OBX", 5, value).Map()).First();

        var titre = Assert.IsType<Ratio>(Result(">^1^:^320").Value);
        Assert.Equal((1m, Quantity.QuantityComparator.GreaterThan, 320m), (titre.Numerator!.Value, titre.Numerator.Comparator, titre.Denominator!.Value));
        var range = Assert.IsType<Hl7.Fhir.Model.Range>(Result("^2^-^5").Value);
        Assert.Equal((2m, 5m, "mmol/L"), (range.Low!.Value, range.High!.Value, range.Low.Code));
        var bounded = Assert.IsType<Quantity>(Result("<^0.5").Value);
        Assert.Equal((0.5m, Quantity.QuantityComparator.LessThan), (bounded.Value, bounded.Comparator));
    }

    [Theory]
    [InlineData("SN", "^>^1^:^", "OBX^1^5", RejectionReason.Malformed)]
    [InlineData("SN", "^abc", "OBX^1^5", RejectionReason.Malformed)]
    [InlineData("", "6.8", "OBX^1^2", RejectionReason.MissingRequired)]
    public void A_result_whose_value_type_is_missing_or_does_not_fit_its_value_is_answered_AE(string type, string value, string erl, RejectionReason reason)
    {
        var outcome = Er7.Sample("29_").With("OBX", 2, type).With("OBX", 5, value).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((reason, erl), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_second_OBR_with_the_report_number_of_an_earlier_one_is_DUPLICATE_KEY_at_its_OBR_3()
    {
        var sample = Er7.Sample("29_");
        var orc = sample.Split('\r', '\n').First(l => l.StartsWith("ORC|", StringComparison.Ordinal));
        var obr = sample.Split('\r', '\n').First(l => l.StartsWith("OBR|", StringComparison.Ordinal)).Replace("OBR|1|", "OBR|2|", StringComparison.Ordinal);
        var outcome = (sample.TrimEnd('\r', '\n') + $"\r{orc}\r{obr}\rOBX|1|NM|NA^钠^QXLIS||140|mmol/L|137-147|N|||F\r").Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((RejectionReason.DuplicateKey, "OBR^2^3"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_non_numeric_NM_result_is_MALFORMED_at_OBX_5_and_answered_AE()
    {
        var outcome = Er7.Sample("29_").With("OBX", 5, "偏高").Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((RejectionReason.Malformed, "OBX^1^5", 102), (error.Reason, error.Location!.ToErl(), error.Hl7ErrorCode));
    }

    [Fact]
    public void A_correction_rewrites_the_same_report_and_results()
    {
        var original = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("21_")));
        var corrected = Er7.Sample("21_").With("MSH", 10, "QX2100012-LIS-20250508-000001").With("OBR", 25, "C").With("OBX", 11, "C").With("OBX", 5, "3.4").Map();

        var ids = (Bundle b) => b.Entry.Where(e => e.Resource is DiagnosticReport or Observation).Select(e => e.Request!.Url).ToList();
        Assert.Equal(ids(original.Transaction), ids(Assert.IsType<HisAccepted>(corrected).Transaction));
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Corrected, Single<DiagnosticReport>(corrected).Status);
    }

    [Fact]
    public void Each_vaccination_group_is_one_immunization_keyed_by_person_vaccine_and_date()
    {
        var outcome = HisMapper.Map(SampleFiles.His("06_"));

        var doses = All<Immunization>(outcome).ToList();
        const string newborn = "newborn:36992119960823078X/20250315/female/1";
        Assert.Equal([DoseIds.For(newborn, "0101", new DateOnly(2025, 3, 15)), DoseIds.For(newborn, "0201", new DateOnly(2025, 3, 16))], doses.Select(d => d.Id));
        Assert.Equal(["08", "19"], doses.Select(d => d.VaccineCode.Coding.Single(c => c.System == Systems.Cvx).Code));
        Assert.All(doses, d => Assert.Equal(1, ((PositiveInt)d.ProtocolApplied[0].DoseNumber).Value));
        Assert.Equal("IDINJ", doses[1].Route!.Coding[1].Code);
        Assert.Equal("1", doses[0].FundingSource!.Coding[0].Code);
    }

    [Fact]
    public void A_vaccine_code_outside_the_county_table_is_UNKNOWN_CODE_at_RXA_5()
    {
        var error = Er7.Sample("06_").With("RXA", 5, "9999^新疫苗^QXVAC").Map().SingleError();

        Assert.Equal((RejectionReason.UnknownCode, "RXA^1^5"), (error.Reason, error.Location!.ToErl()));
    }

    [Theory]
    [InlineData("06_", "RXA", 20, "ZZ", "UNKNOWN_CODE", "RXA^1^20")]
    [InlineData("06_", "RXA", 6, "", "MISSING_REQUIRED", "RXA^1^6")]
    [InlineData("06_", "RXA", 6, "abc", "MALFORMED", "RXA^1^6")]
    [InlineData("11_", "RXR", 1, "XX^未知途径^HL70162", "UNKNOWN_CODE", "RXR^1^1")]
    [InlineData("13_", "OBX", 8, "ZZ", "UNKNOWN_CODE", "OBX^1^8")]
    [InlineData("13_", "OBX", 2, "XX", "UNKNOWN_CODE", "OBX^1^2")]
    public void A_coded_field_of_a_dose_or_a_result_outside_its_HL7_table_or_an_empty_or_garbled_amount_is_refused(
        string sample, string segment, int field, string value, string reason, string erl)
    {
        var outcome = Er7.Sample(sample).With(segment, field, value).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal((reason, erl), (error.Reason.Code(), error.Location!.ToErl()));
    }

    [Theory]
    [InlineData("EP^硬膜外^HL70162", AckCode.AA)]
    [InlineData("GTT^胃造口管^HL70162", AckCode.AA)]
    [InlineData("im^肌内注射^HL70162", AckCode.AA)]
    [InlineData("GT^^HL70162", AckCode.AE)]
    public void A_route_is_checked_against_the_whole_of_HL7_0162_in_any_case(string route, AckCode expected)
    {
        Assert.Equal(expected, Er7.Sample("11_").With("RXR", 1, route).Map().AckCode);
    }

    [Fact]
    public void A_discharge_of_the_day_alone_on_the_day_of_admission_is_accepted()
    {
        var outcome = Er7.Sample("23_").With("PV1", 44, "20250508090000").With("PV1", 45, "20250508").Map();

        Assert.Equal(AckCode.AA, outcome.AckCode);
    }

    [Fact]
    public void A_route_named_in_another_coding_system_is_kept_in_that_system()
    {
        var dose = All<Immunization>(Er7.Sample("11_").With("RXR", 1, "C28161^Intramuscular^NCIT").Map()).First();

        Assert.Equal(("C28161", Systems.Local("NCIT")), (dose.Route!.Coding[0].Code, dose.Route.Coding[0].System));
    }

    [Fact]
    public void A_dose_before_birth_is_IMPOSSIBLE_DATE()
    {
        var error = Er7.Sample("06_").With("RXA", 3, "20250301102000").Map().SingleError();

        Assert.Equal((RejectionReason.ImpossibleDate, "RXA^1^3"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void A_delete_action_deletes_the_dose_it_names()
    {
        var outcome = Assert.IsType<HisAccepted>(Er7.Sample("06_").With("RXA", 21, "D").Map());

        var id = DoseIds.For("newborn:36992119960823078X/20250315/female/1", "0101", new DateOnly(2025, 3, 15));
        Assert.Contains(outcome.Transaction.Entry, e => e.Request!.Method == Bundle.HTTPVerb.DELETE && e.Request.Url == $"Immunization/{id}");
    }

    [Theory]
    [InlineData("18_", "QX2110026")]
    [InlineData("15_", "QX2100012")]
    public void A_referral_status_sent_by_the_wrong_side_is_INVALID_TRANSITION_at_MSH_4(string sample, string sender)
    {
        var outcome = Er7.Sample(sample).With("MSH", 4, sender).Map();

        var error = outcome.SingleError();
        Assert.Equal(AckCode.AE, outcome.AckCode);
        Assert.Equal(("INVALID_TRANSITION", "MSH^1^4"), (error.Reason.Code(), error.Location!.ToErl()));
    }

    [Fact]
    public void An_up_referral_is_a_service_request_and_a_requested_task_owned_by_the_receiver()
    {
        var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("17_")));

        var request = Single<ServiceRequest>(outcome);
        var task = Single<Hl7.Fhir.Model.Task>(outcome);
        Assert.Equal("ZZ-QX2110026-20250506-0007", request.Id);
        Assert.Contains(request.Category, c => c.Coding[0].Code == "UP");
        Assert.Equal(2, request.SupportingInfo.Count);
        Assert.Equal((Hl7.Fhir.Model.Task.TaskStatus.Requested, "ServiceRequest/ZZ-QX2110026-20250506-0007"), (task.Status, task.Focus!.Reference));
        Assert.Equal("Organization?identifier=urn:interophub:sid:org-code|QX2100012", task.Owner!.Reference);
        var transition = Assert.IsType<TaskTransition>(Assert.Single(outcome.Preconditions));
        Assert.True(transition.MayBeAbsent);
    }

    [Theory]
    [InlineData("18_", "accepted", new[] { "requested", "received" })]
    [InlineData("20_", "in-progress", new[] { "accepted" })]
    [InlineData("24_", "completed", new[] { "in-progress" })]
    [InlineData("15_", "cancelled", new[] { "requested", "received", "accepted" })]
    public void Status_changes_carry_the_allowed_previous_states_for_the_store_to_check(string sample, string to, string[] from)
    {
        var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(sample)));

        var transition = Assert.IsType<TaskTransition>(Assert.Single(outcome.Preconditions));
        Assert.Equal((to, false), (transition.To, transition.MayBeAbsent));
        Assert.Equal(from, transition.AllowedFrom);
    }

    [Fact]
    public void A_down_referral_names_the_up_referral_it_returns()
    {
        var request = Single<ServiceRequest>(HisMapper.Map(SampleFiles.His("25_")));

        Assert.Equal("ZZ-QX2110026-20250506-0007", Assert.Single(request.BasedOn).Identifier!.Value);
    }

    [Fact]
    public void The_phone_of_a_referral_PRD_goes_to_the_practitioner_the_hub_creates()
    {
        var message = Er7.Sample("14_").Replace("PRD|RP^转出方^HL70286|何丽萍||0201^^^QX2110026^^^^^全科医疗科||",
            "PRD|RP^转出方^HL70286|何丽萍||0201^^^QX2110026^^^^^全科医疗科|^WPN^CP^^^^^^^^^13900002001|", StringComparison.Ordinal);

        var doctor = Assert.Single(All<Practitioner>(message.Map()), p => p.Identifier.Any(i => i.Value == "W0112"));

        var phone = Assert.Single(doctor.Telecom);
        Assert.Equal((ContactPoint.ContactPointSystem.Phone, ContactPoint.ContactPointUse.Mobile, "13900002001"), (phone.System, phone.Use, phone.Value));
    }

    [Fact]
    public void A_referral_to_an_institution_outside_the_table_is_UNKNOWN_CODE()
    {
        var message = Er7.Sample("17_").Replace("PRD|RT^接收方^HL70286|||0304^^^QX2100012", "PRD|RT^接收方^HL70286|||0304^^^QX9999999", StringComparison.Ordinal);

        var error = message.Map().SingleError();

        Assert.Equal((RejectionReason.UnknownCode, "PRD^2^4^^4"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void An_I13_carrying_the_cancel_status_is_an_INVALID_TRANSITION()
    {
        var error = Er7.Sample("18_").With("RF1", 1, "X^撤销^QXREF").Map().SingleError();

        Assert.Equal(RejectionReason.InvalidTransition, error.Reason);
    }

    [Fact]
    public void Escapes_in_free_text_are_resolved()
    {
        var request = Single<ServiceRequest>(HisMapper.Map(SampleFiles.His("14_")));

        Assert.Contains(request.Note, n => n.Text!.Contains("8.9&9.6mmol/L", StringComparison.Ordinal));
        Assert.Contains(request.ReasonCode, c => c.Coding.Any(x => x.System == Systems.Icd10 && x.Code == "E11.9"));
    }

    [Fact]
    public void The_same_message_resent_with_other_terminators_and_time_has_the_same_content_hash_and_bundle()
    {
        var first = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("16_")));
        var resent = Assert.IsType<HisAccepted>(Er7.Sample("16_").With("MSH", 7, "20250506083600").Replace('\r', '\n').Map());

        Assert.Equal(first.ContentHash, resent.ContentHash);
        Assert.Equal(first.Key, resent.Key);
        Assert.NotEqual(first.ContentHash, Assert.IsType<HisAccepted>(Er7.Sample("16_").With("PID", 13, "13900009999").Map()).ContentHash);
    }

    [Theory]
    [InlineData("MSH", 11, "T", 202)]
    [InlineData("MSH", 12, "2.3", 203)]
    [InlineData("MSH", 9, "ADT^A05^ADT_A05", 201)]
    [InlineData("MSH", 9, "SIU^S12", 200)]
    [InlineData("MSH", 10, "", 101)]
    [InlineData("MSH", 7, "2025", 101)]
    public void Unsupported_or_unreadable_headers_are_rejected_AR(string segment, int field, string value, int errorCode)
    {
        var message = Er7.Sample("16_").With(segment, field, value);
        if (value == "2025")
        {
            message = message.With("MSH", 7, "");
        }

        var outcome = message.Map();

        Assert.Equal(AckCode.AR, outcome.AckCode);
        Assert.Contains(Assert.IsType<HisRejected>(outcome).Errors, e => e.Hl7ErrorCode == errorCode && e.Location!.ToErl() == $"MSH^1^{field}");
        // his-hl7v2.md §7: an AR is MALFORMED or UNSUPPORTED.
        Assert.All(((HisRejected)outcome).Errors, e => Assert.Contains(e.Reason, new[] { RejectionReason.Malformed, RejectionReason.Unsupported }));
    }

    [Fact]
    public void A_sender_outside_the_county_institution_table_is_UNKNOWN_CODE_at_MSH_4()
    {
        var error = Er7.Sample("16_").With("MSH", 4, "QX9999999").Map().SingleError();

        Assert.Equal((RejectionReason.UnknownCode, "MSH^1^4"), (error.Reason, error.Location!.ToErl()));
    }

    [Fact]
    public void Unparsable_bytes_are_rejected_AR_MALFORMED_without_a_message()
    {
        var outcome = HisMapper.Map("this is not HL7"u8);

        var rejected = Assert.IsType<HisRejected>(outcome);
        Assert.Equal(AckCode.AR, rejected.AckCode);
        Assert.Null(rejected.Message);
        Assert.Null(rejected.Key);
        Assert.Equal(RejectionReason.Malformed, Assert.Single(rejected.Errors).Reason);
    }
}
