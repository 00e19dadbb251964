using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;

namespace InteropHub.Adapters.Tests;

/// <summary>
/// The same person and the same dose, seen by the three legacy systems, must meet in one resource. The last tests
/// replay every sample in the specified order (his → township 001/002/003 → certificates) and check the totals of
/// "What a correct hub ends up with" (samples/README.md) that the mappings alone decide.
/// </summary>
public sealed class CrossSourceTests
{
    private static readonly DateTimeOffset Received = new(2025, 6, 30, 12, 0, 0, TimeSpan.FromHours(8));

    private static readonly Lazy<List<Bundle>> AllBundles = new(LoadAll);

    private static HashSet<string> Doses(Bundle bundle) =>
        [.. bundle.Entry.Where(e => e.Resource is Immunization).Select(e => e.Request!.Url!)];

    private static Dictionary<string, byte[]> Batch(string name) =>
        Directory.GetFiles(SampleFiles.Folder($"township/{name}")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    private static Bundle Certificate(string sample) =>
        Assert.IsType<CertificateAccepted>(Assert.Single(BirthCertificateReader.Read(SampleFiles.Bytes($"birth-certificate/{sample}.xml"), Received).Certificates)).Transaction;

    private static List<Bundle> LoadAll()
    {
        var bundles = new List<Bundle>();
        foreach (var file in Directory.GetFiles(SampleFiles.Folder("his"), "*.hl7").Order(StringComparer.Ordinal))
        {
            if (HisMapper.Map(File.ReadAllBytes(file)) is HisAccepted accepted)
            {
                bundles.Add(accepted.Transaction);
            }
        }

        foreach (var batch in new[] { "batch-001", "batch-002", "batch-003-longquan-gb18030" })
        {
            bundles.AddRange(TownshipBatchReader.Read(Batch(batch)).Rows.Select(r => r.Map()).OfType<Bundle>());
        }

        foreach (var file in Directory.GetFiles(SampleFiles.Folder("birth-certificate"), "*.xml").Order(StringComparer.Ordinal))
        {
            bundles.AddRange(BirthCertificateReader.Read(File.ReadAllBytes(file), Received).Certificates.OfType<CertificateAccepted>().Select(c => c.Transaction));
        }

        return bundles;
    }

    [Theory]
    [InlineData("06_", "Q360418201")]
    [InlineData("11_", "Q360418266_twin1")]
    public void Birth_doses_from_the_HIS_the_certificate_and_the_township_export_get_the_same_ids(string vxu, string certificate)
    {
        var his = Doses(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(vxu))).Transaction);
        var bc = Doses(Certificate(certificate));
        var township = TownshipBatchReader.Read(Batch("batch-001")).Rows.Select(r => r.Map()).OfType<Bundle>().SelectMany(Doses).ToHashSet();

        Assert.Equal(2, his.Count);
        Assert.Equal(his, bc);
        Assert.Subset(township, his);
    }

    [Theory]
    [InlineData("05_", "Q360418201")]
    [InlineData("11_", "Q360418266_twin1")]
    public void A_newborns_mother_named_by_the_HIS_and_by_the_certificate_is_one_RelatedPerson(string his, string certificate)
    {
        static string Mother(Bundle bundle) => bundle.Entry.Single(e => e.Resource is RelatedPerson r
            && r.Relationship.Any(c => c.Coding.Any(x => x.Code == "MTH"))).Request!.Url!;

        var fromHis = Mother(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(his))).Transaction);

        Assert.StartsWith("RelatedPerson/", fromHis, StringComparison.Ordinal);
        Assert.Equal(fromHis, Mother(Certificate(certificate)));
    }

    [Fact]
    public void The_newborn_key_links_the_HIS_admission_the_certificate_and_the_township_record()
    {
        static string? Key(Bundle bundle) => bundle.Entry.Select(e => e.Resource).OfType<Patient>()
            .SelectMany(p => p.Identifier).FirstOrDefault(i => i.System == Systems.NewbornKey)?.Value;
        var township = TownshipBatchReader.Read(Batch("batch-001")).Rows.Single(r => r.Key == "36992110120200042").Map()!;

        var keys = new[]
        {
            Key(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("05_"))).Transaction),
            Key(Certificate("Q360418201")),
            Key(township),
        };

        Assert.All(keys, k => Assert.Equal("36992119960823078X/20250315/female/1", k));
    }

    [Fact]
    public void All_samples_together_name_the_43_persons_the_specification_expects()
    {
        var persons = new Persons();

        // Every union first, then the roots: a later message may join two persons seen separately before.
        var keys = AllBundles.Value.SelectMany(persons.PatientKeys).ToList();
        var distinct = keys.Select(persons.Find).Distinct().Count();

        Assert.Equal(43, distinct);
    }

    [Fact]
    public void All_samples_together_link_7_mothers_to_their_newborns()
    {
        var persons = new Persons();
        foreach (var bundle in AllBundles.Value)
        {
            _ = persons.PatientKeys(bundle).ToList();
        }

        var links = new HashSet<(string, string)>();
        foreach (var bundle in AllBundles.Value)
        {
            foreach (var mother in bundle.Entry.Select(e => e.Resource).OfType<RelatedPerson>()
                .Where(r => r.Relationship.Any(c => c.Coding.Any(x => x.Code == "MTH"))))
            {
                var newborn = bundle.Entry.Single(e => e.FullUrl == mother.Patient!.Reference);
                links.Add((persons.Find(Persons.Keys(newborn)[0]), persons.Find($"{mother.Identifier[0].System}|{mother.Identifier[0].Value}")));
            }
        }

        Assert.Equal(7, links.Count);
    }

    [Fact]
    public void All_samples_together_leave_the_36_immunizations_the_specification_expects()
    {
        var doses = new HashSet<string>(StringComparer.Ordinal);
        var byVaccId = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in AllBundles.Value.SelectMany(b => b.Entry))
        {
            if (entry.Resource is Immunization immunization)
            {
                doses.Add(immunization.Id!);
                foreach (var identifier in immunization.Identifier.Where(i => i.System == "urn:interophub:sid:township-vaccination"))
                {
                    byVaccId[identifier.Value!] = immunization.Id!;
                }
            }
            else if (entry.Request!.Method == Bundle.HTTPVerb.DELETE && entry.Request.Url!.StartsWith("Immunization?", StringComparison.Ordinal))
            {
                Assert.True(doses.Remove(byVaccId[entry.Request.Url[(entry.Request.Url.IndexOf('|', StringComparison.Ordinal) + 1)..]]));
            }
        }

        Assert.Equal(36, doses.Count);
    }

    [Fact]
    public void All_samples_together_give_8_HIS_encounters_3_referrals_8_certificate_documents_and_a_completion_notice()
    {
        var his = Directory.GetFiles(SampleFiles.Folder("his"), "*.hl7").Select(f => HisMapper.Map(File.ReadAllBytes(f))).OfType<HisAccepted>().ToList();

        var encounters = his.SelectMany(a => a.Transaction.Entry).Where(e => e.Resource is Encounter)
            .Select(e => e.Request!.IfNoneExist ?? e.Request.Url![(e.Request.Url!.IndexOf('?', StringComparison.Ordinal) + 1)..]).Distinct().Count();
        var referrals = his.SelectMany(a => a.Transaction.Entry).Where(e => e.Resource is ServiceRequest).Select(e => e.Request!.Url).Distinct().Count();
        var documents = AllBundles.Value.SelectMany(b => b.Entry).Where(e => e.Resource is DocumentReference).Select(e => e.Request!.Url).Distinct().Count();

        // Sample 24 completes a referral without a PV1: its mapping brings the notice as the summary (which the pipeline
        // leaves out, as the arrival reported the treatment Encounter).
        Assert.Equal((8, 3, 9), (encounters, referrals, documents));
    }

    /// <summary>
    /// Union of person-linking identifiers: two Patient entries that share one are the same person (README "Linking
    /// persons"); an A40 joins the retired MRN to the survivor.
    /// </summary>
    private sealed class Persons
    {
        private readonly Dictionary<string, string> _parent = new(StringComparer.Ordinal);

        public static List<string> Keys(Bundle.EntryComponent entry)
        {
            var criteria = entry.Request!.IfNoneExist ?? entry.Request.Url![(entry.Request.Url!.IndexOf('?', StringComparison.Ordinal) + 1)..];
            return [.. Uri.UnescapeDataString(criteria["identifier=".Length..]).Split(',')];
        }

        public string Find(string key)
        {
            _parent.TryAdd(key, key);
            return _parent[key] == key ? key : _parent[key] = Find(_parent[key]);
        }

        /// <summary>Records the Patient entries of a bundle and returns one key per entry.</summary>
        public IEnumerable<string> PatientKeys(Bundle bundle)
        {
            foreach (var entry in bundle.Entry.Where(e => e.Resource is Patient))
            {
                var keys = Keys(entry);
                Union(keys);
                foreach (var link in ((Patient)entry.Resource!).Link.Where(l => l.Type == Patient.LinkType.Replaces))
                {
                    Union([keys[0], .. Keys(bundle.Entry.Single(e => e.FullUrl == link.Other!.Reference))]);
                }

                yield return keys[0];
            }
        }

        private void Union(List<string> keys)
        {
            foreach (var key in keys.Skip(1))
            {
                _parent[Find(key)] = Find(keys[0]);
            }
        }
    }
}
