using Hl7.Fhir.Model;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Tests;

/// <summary>The county's linking rules as match grades (legacy/README.md, "Linking persons").</summary>
public sealed class PatientMatchingTests
{
    private const string ZhaoId = "369902196302140930";

    private static Patient Person(string? name = "赵建华", AdministrativeGender? gender = AdministrativeGender.Male, string? birthDate = "1963-02-14",
        params Identifier[] identifiers) => new()
    {
        Name = name is null ? [] : [new HumanName { Text = name }],
        Gender = gender,
        BirthDate = birthDate,
        Identifier = [.. identifiers],
    };

    private static Identifier Mrn(string value) => new(Systems.Mrn("QX2100012"), value);

    [Fact]
    public void The_same_MRN_of_one_institution_is_a_certain_match()
    {
        var match = PatientMatching.Compare(Person(identifiers: Mrn("0000390412")), Person(identifiers: Mrn("0000390412")));

        Assert.Equal(MatchGrade.Certain, match!.Grade);
        Assert.Equal(1m, match.Score);
    }

    [Fact]
    public void A_15_digit_legacy_ID_number_matches_its_18_digit_upgrade_and_a_value_without_system_counts_when_it_passes_the_check()
    {
        var stored = Person("孙桂芳", AdministrativeGender.Female, "1949-10-01", new Identifier(ResidentIdNumber.System, "369902194910010866"));

        Assert.Equal(MatchGrade.Certain, PatientMatching.Compare(Person("孙桂芳", AdministrativeGender.Female, "1949-10-01", new Identifier(ResidentIdNumber.System, "369902491001086")), stored)!.Grade);
        Assert.Equal(MatchGrade.Certain, PatientMatching.Compare(Person(null, null, null, new Identifier(null, "369902194910010866")), stored)!.Grade);
    }

    [Fact]
    public void The_same_name_sex_and_birth_date_without_a_shared_identifier_is_probable_and_a_shared_phone_raises_the_score()
    {
        var plain = PatientMatching.Compare(Person(identifiers: Mrn("0000517733")), Person(identifiers: [Mrn("0000390412"), new Identifier(ResidentIdNumber.System, ZhaoId)]));
        var withPhone = Person();
        withPhone.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "１３９００００１８７６"));
        var otherWithPhone = Person();
        otherWithPhone.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "+86 139 0000 1876"));

        Assert.Equal(MatchGrade.Probable, plain!.Grade);
        Assert.Equal(["name", "gender", "birthDate"], plain.Agree);
        Assert.Equal(0.8m, plain.Score);
        Assert.Equal(0.85m, PatientMatching.Compare(withPhone, otherWithPhone)!.Score);
    }

    [Fact]
    public void Two_different_resident_ID_numbers_are_two_persons_whatever_else_they_share()
    {
        var match = PatientMatching.Compare(Person(identifiers: new Identifier(ResidentIdNumber.System, ZhaoId)),
            Person(identifiers: [new Identifier(ResidentIdNumber.System, "369902195804121372"), Mrn("1")]));

        Assert.Null(match);
    }

    [Fact]
    public void Twins_with_their_own_newborn_keys_are_not_matched_by_their_shared_birth_date_sex_and_temporary_name()
    {
        Patient Twin(string order) => new()
        {
            Name = [new HumanName { Text = "刘芳之子", Use = HumanName.NameUse.Temp }],
            Gender = AdministrativeGender.Male,
            BirthDate = "2025-04-02",
            Identifier = [new Identifier(Systems.NewbornKey, $"369921199205300464/2025-04-02/1/{order}")],
        };

        Assert.Null(PatientMatching.Compare(Twin("1"), Twin("2")));
        // Without the keys, a temporary name still says nothing: birth date and sex alone are no match.
        var first = Twin("1");
        var second = Twin("2");
        first.Identifier.Clear();
        second.Identifier.Clear();
        Assert.Null(PatientMatching.Compare(first, second));
    }

    [Fact]
    public void A_shared_identifier_beside_a_different_birth_date_is_only_probable_and_names_the_difference()
    {
        var match = PatientMatching.Compare(Person(birthDate: "1963-02-15", identifiers: Mrn("7")), Person(identifiers: Mrn("7")));

        Assert.Equal(MatchGrade.Probable, match!.Grade);
        Assert.Equal(["birthDate"], match.Conflict);
    }

    [Fact]
    public void Without_an_identifier_a_different_birth_date_or_sex_is_no_match()
    {
        Assert.Null(PatientMatching.Compare(Person(birthDate: "1963-02-15"), Person()));
        Assert.Null(PatientMatching.Compare(Person(gender: AdministrativeGender.Female), Person()));
    }

    [Fact]
    public void Name_order_spaces_case_and_accents_do_not_matter_and_the_structured_name_meets_the_text()
    {
        var structured = new Patient { Name = [new HumanName { Family = "Müller", Given = ["Anna"] }], Gender = AdministrativeGender.Female, BirthDate = "1980-01-01" };
        var text = new Patient { Name = [new HumanName { Text = "ANNA MULLER" }], Gender = AdministrativeGender.Female, BirthDate = "1980-01-01" };
        var chinese = Person();
        chinese.Name = [new HumanName { Family = "赵", Given = ["建华"] }];

        Assert.Equal(MatchGrade.Probable, PatientMatching.Compare(structured, text)!.Grade);
        Assert.Equal(MatchGrade.Probable, PatientMatching.Compare(chinese, Person("赵 建华"))!.Grade);
    }

    [Fact]
    public void A_missing_sex_or_a_year_only_birth_date_leaves_at_most_a_possible_match()
    {
        Assert.Equal(MatchGrade.Possible, PatientMatching.Compare(Person(gender: null), Person())!.Grade);
        Assert.Null(PatientMatching.Compare(Person(birthDate: "1963"), Person()));
        var withAddress = Person(birthDate: null);
        withAddress.Address.Add(new Address { Line = ["沙坪村1组"], City = "白沙镇" });
        var otherWithAddress = Person();
        otherWithAddress.Address.Add(new Address { Line = ["沙坪村 1 组"], City = "白沙镇" });
        Assert.Equal(0.55m, PatientMatching.Compare(withAddress, otherWithAddress)!.Score);
    }
}
