using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using Hl7.Fhir.Model;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// "Not sent" is not "delete" (his-hl7v2.md §2): the elements of a stored record that a message's version of it leaves
/// empty are copied into that version, top-level elements only (a list the message gives replaces the stored one).
/// </summary>
public static class UnsentElements
{
    /// <summary>What the resource itself keeps: its id and meta are the write's, its narrative is made from its content.</summary>
    private static readonly HashSet<string> Skipped = new(StringComparer.Ordinal) { "id", "meta", "implicitRules", "language", "text", "contained" };

    /// <summary>Each type's top-level elements, looked up once.</summary>
    private static readonly ConcurrentDictionary<Type, (PropertyInfo Property, bool IsCollection)[]> Elements = new();

    public static void Keep(Resource next, Resource stored)
    {
        if (next.GetType() != stored.GetType())
        {
            return;
        }

        foreach (var (property, isCollection) in Elements.GetOrAdd(next.GetType(), ElementsOf))
        {
            var had = property.GetValue(stored);
            if (isCollection)
            {
                if (property.GetValue(next) is IList { Count: 0 } list && had is IList { Count: > 0 } kept)
                {
                    foreach (var item in kept)
                    {
                        list.Add(item);
                    }
                }
            }
            else if (property.GetValue(next) is null && had is not null && property.CanWrite)
            {
                property.SetValue(next, had);
            }
        }
    }

    /// <summary>Every top-level element of <paramref name="next"/> as the stored version has it (a write that is to change nothing).</summary>
    public static void KeepAll(Resource next, Resource stored)
    {
        if (next.GetType() != stored.GetType())
        {
            return;
        }

        foreach (var (property, isCollection) in Elements.GetOrAdd(next.GetType(), ElementsOf))
        {
            var had = property.GetValue(stored);
            if (isCollection && property.GetValue(next) is IList list)
            {
                list.Clear();
                foreach (var item in (IList?)had ?? Array.Empty<object>())
                {
                    list.Add(item);
                }
            }
            else if (!isCollection && property.CanWrite)
            {
                property.SetValue(next, had);
            }
        }
    }

    private static (PropertyInfo, bool)[] ElementsOf(Type type) =>
        (ModelInfo.ModelInspector.FindOrImportClassMapping(type) ?? throw new InvalidOperationException($"{type.Name} is not a FHIR model type."))
            .PropertyMappings.Where(p => !Skipped.Contains(p.Name) && p.NativeProperty is not null)
            .Select(p => (p.NativeProperty!, p.IsCollection)).ToArray();
}
