using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.ResultRecognition;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>Result recognition at write time: the recognisable tag on results and the non-recognition reason on orders.</summary>
public abstract class RecognitionWriteTests(HubFactory hub)
{
    private const string Ext = "https://interophub.dev/fhir/StructureDefinition/";
    private const string Glucose = "14771-0";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_result_is_tagged_recognizable_only_when_its_performer_meets_the_item_grade_and_passed_quality_control()
    {
        // Fasting glucose needs grade 2 or better.
        var grade3 = await OrganizationAsync("g3", "3B");
        var grade2 = await OrganizationAsync("g2", "2A");
        var grade1 = await OrganizationAsync("g1", "1");
        var failedControl = await OrganizationAsync("qc", "2A", qualityControl: false);
        var patient = await PatientAsync();

        var byGrade3 = await ResultAsync(patient, grade3, Glucose);
        var byGrade2 = await ResultAsync(patient, grade2, Glucose);
        var byGrade1 = await ResultAsync(patient, grade1, Glucose, claimTag: true);
        var byFailedControl = await ResultAsync(patient, failedControl, Glucose);
        var notCatalogued = await ResultAsync(patient, grade3, "8480-6");
        var report = await WriteAsync(new DiagnosticReport
        {
            Status = DiagnosticReport.DiagnosticReportStatus.Final,
            Code = new CodeableConcept(RecognizedResults.LisSystem, "GLU"),
            Subject = new ResourceReference(patient),
            Performer = [new ResourceReference(grade2)],
        });

        Assert.True(RecognitionTagRule.IsTagged(byGrade3));
        Assert.True(RecognitionTagRule.IsTagged(byGrade2));
        Assert.False(RecognitionTagRule.IsTagged(byGrade1));
        Assert.False(RecognitionTagRule.IsTagged(byFailedControl));
        Assert.False(RecognitionTagRule.IsTagged(notCatalogued));
        Assert.True(RecognitionTagRule.IsTagged(report));
        var tagged = await Fhir.Read<Bundle>(await _client.GetAsync(
            $"/fhir/Observation?subject={patient}&_tag={RecognitionTagRule.TagSystem}|{RecognitionTagRule.Recognizable}"));
        Assert.Equal(new[] { byGrade3.Id, byGrade2.Id }.Order(), tagged.Entry.Select(e => e.Resource!.Id).Order());
    }

    [Fact]
    public async Task Only_a_final_or_corrected_result_is_recognizable_and_one_entered_in_error_loses_its_tag()
    {
        var grade2 = await OrganizationAsync("st", "2A");
        var patient = await PatientAsync();
        var results = new Dictionary<ObservationStatus, Observation>();
        foreach (var status in new[] { ObservationStatus.Preliminary, ObservationStatus.Cancelled, ObservationStatus.EnteredInError, ObservationStatus.Amended })
        {
            var result = Result(patient, grade2, Glucose);
            result.Status = status;
            results[status] = await WriteAsync(result);
        }

        var final = await ResultAsync(patient, grade2, Glucose);
        final.Status = ObservationStatus.EnteredInError;
        var retracted = await Fhir.Read<Observation>(await _client.PutAsync($"/fhir/Observation/{final.Id}", Fhir.Content(final)));

        Assert.False(RecognitionTagRule.IsTagged(results[ObservationStatus.Preliminary]));
        Assert.False(RecognitionTagRule.IsTagged(results[ObservationStatus.Cancelled]));
        Assert.False(RecognitionTagRule.IsTagged(results[ObservationStatus.EnteredInError]));
        Assert.True(RecognitionTagRule.IsTagged(results[ObservationStatus.Amended]));
        Assert.False(RecognitionTagRule.IsTagged(retracted));
    }

    [Fact]
    public async Task An_imported_result_is_tagged_as_a_written_one_is()
    {
        var grade2 = await OrganizationAsync("i2", "2A");
        var grade1 = await OrganizationAsync("i1", "1");
        var patient = await PatientAsync();
        var qualifying = Result(patient, grade2, Glucose);
        qualifying.Id = $"imported-{_suffix}-a";
        var claiming = Result(patient, grade1, Glucose, claimTag: true);
        claiming.Id = $"imported-{_suffix}-b";
        var folder = ImportTests.NewFolder();
        ImportTests.WriteNdjson(folder, "Observation.ndjson", [qualifying, claiming]);

        await ImportTests.WaitAsync(await ImportTests.KickOffAsync(ImportTests.Input("Observation", folder), _client), _client);

        Assert.True(RecognitionTagRule.IsTagged(await ReadAsync(qualifying)));
        Assert.False(RecognitionTagRule.IsTagged(await ReadAsync(claiming)));
    }

    [Fact]
    public async Task A_catalogue_change_re_tags_the_stored_results_it_affects()
    {
        var grade3 = await OrganizationAsync("g3", "3A");
        var grade2 = await OrganizationAsync("g2", "2B");
        var patient = await PatientAsync();
        var byGrade3 = await ResultAsync(patient, grade3, Glucose);
        var byGrade2 = await ResultAsync(patient, grade2, Glucose);
        var original = await Fhir.Read<CodeSystem>(await _client.GetAsync("/fhir/CodeSystem/result-recognition"));
        var retagging = hub.Services.GetRequiredService<RecognitionRetagging>();
        try
        {
            var stricter = (CodeSystem)original.DeepCopy();
            stricter.Concept.Single(c => c.Code == "GLU").Property.Single(p => p.Code == "minimum-level").Value = new Integer(3);
            Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync("/fhir/CodeSystem/result-recognition", Fhir.Content(stricter))).StatusCode);

            Assert.NotNull(await retagging.RunIfCatalogueChangedAsync(CancellationToken.None));
            Assert.Null(await retagging.RunIfCatalogueChangedAsync(CancellationToken.None));
            using (var restarted = hub.Restarted())
            {
                // The completed pass is remembered in the database: a restart does not run it again.
                Assert.NotNull(await restarted.Services.GetRequiredService<InteropHub.Fhir.Storage.IHubStateStore>()
                    .ReadStateAsync(RecognitionRetagging.StateName, CancellationToken.None));
                Assert.Null(await restarted.Services.GetRequiredService<RecognitionRetagging>().RunIfCatalogueChangedAsync(CancellationToken.None));
            }

            var grade2Now = await ReadAsync(byGrade2);
            var grade3Now = await ReadAsync(byGrade3);
            Assert.False(RecognitionTagRule.IsTagged(grade2Now));
            Assert.Equal("2", grade2Now.Meta!.VersionId);
            Assert.True(RecognitionTagRule.IsTagged(grade3Now));
            Assert.Equal("1", grade3Now.Meta!.VersionId);
        }
        finally
        {
            original.Meta = null;
            Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync("/fhir/CodeSystem/result-recognition", Fhir.Content(original))).StatusCode);
            await retagging.RunIfCatalogueChangedAsync(CancellationToken.None);
        }

        Assert.True(RecognitionTagRule.IsTagged(await ReadAsync(byGrade2)));
    }

    [Fact]
    public async Task A_result_follows_the_catalogue_written_before_it_in_its_transaction_and_every_later_result_too()
    {
        var grade2 = await OrganizationAsync("t2", "2B");
        var patient = await PatientAsync();
        var original = await Fhir.Read<CodeSystem>(await _client.GetAsync("/fhir/CodeSystem/result-recognition"));
        try
        {
            var stricter = (CodeSystem)original.DeepCopy();
            stricter.Concept.Single(c => c.Code == "GLU").Property.Single(p => p.Code == "minimum-level").Value = new Integer(3);
            var inTransaction = Result(patient, grade2, Glucose);
            inTransaction.Id = $"in-transaction-{_suffix}";
            var transaction = new Bundle
            {
                Type = Bundle.BundleType.Transaction,
                Entry =
                [
                    new Bundle.EntryComponent
                    {
                        Resource = stricter,
                        Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = "CodeSystem/result-recognition" },
                    },
                    new Bundle.EntryComponent
                    {
                        Resource = inTransaction,
                        Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Observation/{inTransaction.Id}" },
                    },
                ],
            };

            Assert.Equal(HttpStatusCode.OK, (await _client.PostAsync("/fhir", Fhir.Content(transaction))).StatusCode);
            var after = await ResultAsync(patient, grade2, Glucose);

            // Grade 2 met the catalogue before the transaction; the catalogue it wrote asks grade 3.
            Assert.False(RecognitionTagRule.IsTagged(await ReadAsync(inTransaction)));
            Assert.False(RecognitionTagRule.IsTagged(after));
        }
        finally
        {
            original.Meta = null;
            Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync("/fhir/CodeSystem/result-recognition", Fhir.Content(original))).StatusCode);
            await hub.Services.GetRequiredService<RecognitionRetagging>().RunIfCatalogueChangedAsync(CancellationToken.None);
        }

        Assert.True(RecognitionTagRule.IsTagged(await ResultAsync(patient, grade2, Glucose)));
    }

    [Fact]
    public async Task A_catalogue_that_cannot_be_read_is_refused_naming_the_item()
    {
        var original = await Fhir.Read<CodeSystem>(await _client.GetAsync("/fhir/CodeSystem/result-recognition"));
        original.Concept[0].Property.RemoveAll(p => p.Code == "validity-days");

        var response = await _client.PutAsync("/fhir/CodeSystem/result-recognition", Fhir.Content(original));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(original.Concept[0].Code!, (await Fhir.Read<OperationOutcome>(response)).Issue[0].Expression.Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_order_for_an_item_with_a_result_to_recognise_needs_a_non_recognition_reason_from_the_list()
    {
        var county = await OrganizationAsync("county", "3B", division: "369921100");
        var township = await OrganizationAsync("township", "1", division: "369921101");
        var patient = await PatientAsync();
        await ResultAsync(patient, county, Glucose);

        var withoutReason = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, township, "2025-03-03T10:00:00+08:00", null)));
        var unknownReason = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, township, "2025-03-03T10:00:00+08:00", "tired")));
        var withReason = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, township, "2025-03-03T10:00:00+08:00", "emergency")));
        var afterTheWindow = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, township, "2025-03-20T10:00:00+08:00", null)));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, withoutReason.StatusCode);
        Assert.StartsWith("[non-recognition-reason]", (await Fhir.Read<OperationOutcome>(withoutReason)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknownReason.StatusCode);
        Assert.StartsWith("[non-recognition-reason-code]", (await Fhir.Read<OperationOutcome>(unknownReason)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, withReason.StatusCode);
        Assert.Equal(HttpStatusCode.Created, afterTheWindow.StatusCode);
        var reported = await SearchWhenIndexedAsync(
            $"/fhir/ServiceRequest?subject={patient}&non-recognition-reason={NonRecognitionReasonRule.ReasonSystem}|emergency");
        Assert.Equal((await Fhir.Read<ServiceRequest>(withReason)).Id, Assert.Single(reported.Entry).Resource!.Id);
    }

    [Fact]
    public async Task The_reason_is_needed_when_a_practitioner_of_the_institution_orders_and_when_an_update_changes_the_item()
    {
        var county = await OrganizationAsync("county", "3B", division: "369921100");
        var township = await OrganizationAsync("township", "1", division: "369921101");
        var patient = await PatientAsync();
        await ResultAsync(patient, county, Glucose);
        var doctor = await WriteAsync(new Practitioner { Name = [new HumanName { Text = "吴国庆" }] });
        var role = await WriteAsync(new PractitionerRole { Practitioner = new ResourceReference($"Practitioner/{doctor.Id}"), Organization = new ResourceReference(township) });

        var byRole = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, $"PractitionerRole/{role.Id}", "2025-03-03T10:00:00+08:00", null)));
        var byDoctor = await _client.PostAsync("/fhir/ServiceRequest", Fhir.Content(Order(patient, $"Practitioner/{doctor.Id}", "2025-03-03T10:00:00+08:00", null)));
        var other = Order(patient, township, "2025-03-03T10:00:00+08:00", null);
        other.Code = new CodeableConcept("http://loinc.org", "8480-6");
        var created = await WriteAsync(other);
        created.Code = new CodeableConcept("http://loinc.org", Glucose);
        var recoded = await _client.PutAsync($"/fhir/ServiceRequest/{created.Id}", Fhir.Content(created));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, byRole.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, byDoctor.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, recoded.StatusCode);
        Assert.StartsWith("[non-recognition-reason]", (await Fhir.Read<OperationOutcome>(recoded)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_reason_is_needed_when_an_update_makes_a_finished_order_active_moves_it_to_the_patient_or_drops_the_reason()
    {
        var county = await OrganizationAsync("county", "3B", division: "369921100");
        var township = await OrganizationAsync("township", "1", division: "369921101");
        var patient = await PatientAsync();
        var other = await PatientAsync();
        await ResultAsync(patient, county, Glucose);

        var finished = Order(patient, township, "2025-03-03T10:00:00+08:00", null);
        finished.Status = RequestStatus.Completed;
        var reopened = await WriteAsync(finished);
        reopened.Status = RequestStatus.Active;
        var reactivated = await _client.PutAsync($"/fhir/ServiceRequest/{reopened.Id}", Fhir.Content(reopened));

        var moved = await WriteAsync(Order(other, township, "2025-03-03T10:00:00+08:00", null));
        moved.Subject = new ResourceReference(patient);
        var movedToPatient = await _client.PutAsync($"/fhir/ServiceRequest/{moved.Id}", Fhir.Content(moved));

        var reasoned = await WriteAsync(Order(patient, township, "2025-03-03T10:00:00+08:00", "condition-changed"));
        reasoned.Extension.Clear();
        var dropped = await _client.PutAsync($"/fhir/ServiceRequest/{reasoned.Id}", Fhir.Content(reasoned));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, reactivated.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, movedToPatient.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, dropped.StatusCode);
        Assert.StartsWith("[non-recognition-reason]", (await Fhir.Read<OperationOutcome>(dropped)).Issue[0].Diagnostics, StringComparison.Ordinal);

        // An order accepted without a reason, before the result came, is not refused for a later note.
        var earlier = await WriteAsync(Order(other, township, "2025-03-03T10:00:00+08:00", null));
        await ResultAsync(other, county, Glucose);
        earlier.Note.Add(new Annotation { Text = "空腹" });
        Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync($"/fhir/ServiceRequest/{earlier.Id}", Fhir.Content(earlier))).StatusCode);
    }

    [Fact]
    public async Task A_result_is_found_until_the_last_moment_of_its_window_and_not_after()
    {
        var county = await OrganizationAsync("county", "3B", division: "369921100");
        var township = await OrganizationAsync("township", "1", division: "369921101");
        var patient = await PatientAsync();
        await ResultAsync(patient, county, Glucose);

        async Task<int> AskAsync(string at)
        {
            var response = await _client.GetAsync($"/fhir/{patient}/$recognized-results?code=http://loinc.org%7C{Glucose}&at={Uri.EscapeDataString(at)}&requester={township}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await Fhir.Read<Bundle>(response)).Entry.Count;
        }

        // Issued 2025-03-01 09:00 (+08:00); fasting glucose is recognised for 7 days.
        Assert.Equal(1, await AskAsync("2025-03-08T08:59:59+08:00"));
        Assert.Equal(0, await AskAsync("2025-03-08T09:00:00+08:00"));
    }

    private static ServiceRequest Order(string patient, string requester, string authored, string? reason)
    {
        var order = new ServiceRequest
        {
            Status = RequestStatus.Active,
            Intent = RequestIntent.Order,
            Code = new CodeableConcept("http://loinc.org", Glucose, "葡萄糖(空腹)"),
            Subject = new ResourceReference(patient),
            Requester = new ResourceReference(requester),
            AuthoredOn = authored,
        };
        if (reason is not null)
        {
            order.Extension.Add(new Extension(NonRecognitionReasonRule.ReasonExtension, new Coding(NonRecognitionReasonRule.ReasonSystem, reason)));
        }

        return order;
    }

    /// <summary>The custom parameter is registered at start-up and answers 400 until its first re-index is done.</summary>
    private async Task<Bundle> SearchWhenIndexedAsync(string url)
    {
        for (var attempt = 0; ; attempt++)
        {
            var response = await _client.GetAsync(url);
            if (response.StatusCode == HttpStatusCode.OK || attempt == 100)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return await Fhir.Read<Bundle>(response);
            }

            await Task.Delay(100);
        }
    }

    private async Task<Observation> ResultAsync(string patient, string performer, string loinc, bool claimTag = false) =>
        await WriteAsync(Result(patient, performer, loinc, claimTag));

    private static Observation Result(string patient, string performer, string loinc, bool claimTag = false)
    {
        var observation = new Observation
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", loinc),
            Subject = new ResourceReference(patient),
            Effective = new FhirDateTime(new DateTimeOffset(2025, 3, 1, 9, 0, 0, TimeSpan.FromHours(8))),
            Performer = [new ResourceReference(performer)],
            Value = new Quantity(5.4m, "mmol/L"),
        };
        if (claimTag)
        {
            observation.Meta = new Meta { Tag = [new Coding(RecognitionTagRule.TagSystem, RecognitionTagRule.Recognizable)] };
        }

        return observation;
    }

    private async Task<T> WriteAsync<T>(T resource) where T : Resource
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await Fhir.Read<T>(response);
    }

    private async Task<Observation> ReadAsync(Observation observation) =>
        await Fhir.Read<Observation>(await _client.GetAsync($"/fhir/Observation/{observation.Id}"));

    private async Task<string> PatientAsync() =>
        $"Patient/{(await WriteAsync(Fhir.Patient("马", "丽"))).Id}";

    private async Task<string> OrganizationAsync(string name, string level, bool qualityControl = true, string division = "369921100")
    {
        var id = $"{name}-{_suffix}";
        var organization = new Organization
        {
            Id = id,
            Name = id,
            Extension =
            [
                new Extension($"{Ext}institution-level", new Coding("urn:interophub:cs:institution-level", level)),
                new Extension($"{Ext}division-code", new Code(division)),
            ],
        };
        if (!qualityControl)
        {
            organization.Extension.Add(new Extension(RecognizedResults.QualityControlExtension, new FhirBoolean(false)));
        }

        Assert.True((await _client.PutAsync($"/fhir/Organization/{id}", Fhir.Content(organization))).IsSuccessStatusCode);
        return $"Organization/{id}";
    }
}

public sealed class RecognitionWriteTestsOnSqlite(SqliteHub hub) : RecognitionWriteTests(hub), IClassFixture<SqliteHub>;

public sealed class RecognitionWriteTestsOnPostgres(PostgresHub hub) : RecognitionWriteTests(hub), IClassFixture<PostgresHub>;
