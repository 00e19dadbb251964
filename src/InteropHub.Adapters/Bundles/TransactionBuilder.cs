using System.Security.Cryptography;
using System.Text;
using Hl7.Fhir.Model;

namespace InteropHub.Adapters.Bundles;

/// <summary>
/// Collects the entries of one transaction Bundle. Resources with a natural key get a deterministic id
/// (<see cref="Put"/>), so a replay updates them; persons, visits and reference data are matched on business
/// identifiers (<see cref="Upsert"/>, <see cref="CreateIfAbsent"/>) because another source may have created them
/// first. Every fullUrl is a UUID derived from the entry's request, so the same message always gives the same Bundle.
/// </summary>
internal sealed class TransactionBuilder
{
    private readonly Bundle _bundle = new() { Type = Bundle.BundleType.Transaction };
    private readonly Dictionary<string, ResourceReference> _byRequest = new(StringComparer.Ordinal);

    public Bundle Bundle => _bundle;

    /// <summary>References to every resource written, for Provenance.target.</summary>
    public List<ResourceReference> Targets { get; } = [];

    /// <summary>Create or replace the resource with this id.</summary>
    public ResourceReference Put(Resource resource, string id)
    {
        resource.Id = id;
        var url = $"{resource.TypeName}/{id}";
        return Add(resource, url, Bundle.HTTPVerb.PUT, url, null, new ResourceReference(url));
    }

    /// <summary>Conditional update: replace the one resource matching <paramref name="criteria"/>, or create it.</summary>
    public ResourceReference Upsert(Resource resource, string criteria)
    {
        var url = $"{resource.TypeName}?{criteria}";
        return Add(resource, url, Bundle.HTTPVerb.PUT, url, null, null);
    }

    /// <summary>Conditional create: reuse the resource matching <paramref name="criteria"/> unchanged, or create it.</summary>
    public ResourceReference CreateIfAbsent(Resource resource, string criteria)
    {
        var key = $"{resource.TypeName}?{criteria}";
        return Add(resource, key, Bundle.HTTPVerb.POST, resource.TypeName, criteria, null);
    }

    public void Delete(string type, string id)
    {
        var url = $"{type}/{id}";
        _bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = Urn(url + "#delete"),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.DELETE, Url = url },
        });
    }

    /// <summary>FHIRPath Patch (http.html#patch) of the resource with this id, which the Provenance then names.</summary>
    public void Patch(string type, string id, Parameters patch)
    {
        AddPatch($"{type}/{id}", patch);
        Targets.Add(new ResourceReference($"{type}/{id}"));
    }

    /// <summary>Conditional FHIRPath Patch (http.html#patch) of the one resource matching <paramref name="criteria"/>.</summary>
    public void PatchWhere(string type, string criteria, Parameters patch) => AddPatch($"{type}?{criteria}", patch);

    private void AddPatch(string url, Parameters patch) =>
        _bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = Urn(url + "#patch"),
            Resource = patch,
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PATCH, Url = url },
        });

    /// <summary>Conditional delete: removes the resources matching <paramref name="criteria"/>.</summary>
    public void DeleteWhere(string type, string criteria)
    {
        var url = $"{type}?{criteria}";
        _bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = Urn(url + "#delete"),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.DELETE, Url = url },
        });
    }

    /// <summary>Adds the Provenance last: it targets every resource written before it.</summary>
    public void AddProvenance(Provenance provenance, string id)
    {
        provenance.Target = [.. Targets.Select(t => new ResourceReference(t.Reference))];
        _bundle.Entry.Add(ProvenanceEntry(provenance, id));
    }

    /// <summary>The entry that puts a Provenance under its id (a replay of the same message or rows updates it).</summary>
    public static Bundle.EntryComponent ProvenanceEntry(Provenance provenance, string id)
    {
        provenance.Id = id;
        var url = $"Provenance/{id}";
        return new Bundle.EntryComponent
        {
            FullUrl = Urn(url),
            Resource = provenance,
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = url },
        };
    }

    private ResourceReference Add(Resource resource, string key, Bundle.HTTPVerb method, string url, string? ifNoneExist,
        ResourceReference? reference)
    {
        if (_byRequest.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var fullUrl = Urn(key);
        reference ??= new ResourceReference(fullUrl);
        _bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = fullUrl,
            Resource = resource,
            Request = new Bundle.RequestComponent { Method = method, Url = url, IfNoneExist = ifNoneExist },
        });
        _byRequest[key] = reference;
        Targets.Add(reference);
        return reference;
    }

    /// <summary>A name-based UUID (RFC 9562 version 8 layout over SHA-256) for a request key.</summary>
    internal static string Urn(string key)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return "urn:uuid:" + new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }
}

/// <summary>Builds search criteria for conditional requests and references.</summary>
internal static class Criteria
{
    /// <summary><c>identifier=system|value,system|value</c>: any of them matches (comma = OR in FHIR search).</summary>
    public static string Identifier(IEnumerable<Identifier> identifiers) =>
        "identifier=" + string.Join(",", identifiers.Select(i => $"{Escape(i.System ?? "")}|{Escape(i.Value ?? "")}"));

    public static string Identifier(string system, string value) => $"identifier={Escape(system)}|{Escape(value)}";

    /// <summary>FHIR search escaping (<c>\ , | $</c>) then percent-encoding of anything outside a safe URL set.</summary>
    private static string Escape(string value)
    {
        var text = new StringBuilder(value.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in value.EnumerateRunes())
        {
            if (rune.Value is '\\' or ',' or '|' or '$')
            {
                text.Append("%5C");
            }

            if (rune.IsAscii && (char.IsAsciiLetterOrDigit((char)rune.Value) || rune.Value is '-' or '.' or '_' or '~' or ':' or '/'))
            {
                text.Append((char)rune.Value);
                continue;
            }

            foreach (var b in utf8[..rune.EncodeToUtf8(utf8)])
            {
                text.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }
}
