using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Text.Json;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Search;

/// <summary>
/// The opaque <c>_cursor</c> of search next and previous links: the row id and sort values of the last match of the
/// page (of the first match, marked "before", for a previous link), as base64url JSON. Only the server reads it; a cursor that does not fit the query's <c>_sort</c> is a 400.
/// </summary>
public static class SearchCursorText
{
    /// <param name="before">A cursor for the page ending just before <paramref name="last"/> (a previous link).</param>
    public static string Encode(ResourceMatch last, bool before = false)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            if (before)
            {
                writer.WriteStringValue("<");
            }

            writer.WriteNumberValue(last.Rid);
            foreach (var value in last.SortValues ?? [])
            {
                switch (value)
                {
                    case long l:
                        writer.WriteNumberValue(l);
                        break;
                    case int i:
                        writer.WriteNumberValue(i);
                        break;
                    case double d:
                        writer.WriteStringValue(d.ToString("R", CultureInfo.InvariantCulture));
                        break;
                    default:
                        writer.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                        break;
                }
            }

            writer.WriteEndArray();
        }

        return Base64Url.EncodeToString(buffer.ToArray());
    }

    public static SearchCursor? Decode(string? text, IReadOnlyList<SortClause> sort)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(Base64Url.DecodeFromChars(text));
            var items = document.RootElement.EnumerateArray().ToList();
            var before = items.Count > 0 && items[0].ValueKind == JsonValueKind.String && items[0].GetString() == "<";
            if (before)
            {
                items.RemoveAt(0);
            }

            if (items.Count != sort.Count + 1)
            {
                throw new FormatException("The cursor does not fit the sort order.");
            }

            var values = new object[sort.Count];
            for (var i = 0; i < sort.Count; i++)
            {
                var item = items[i + 1];
                values[i] = sort[i] switch
                {
                    { Param: "_lastUpdated" } or { Table: IndexTable.Dates } => item.GetInt64(),
                    { Table: IndexTable.Numbers or IndexTable.Quantities } => double.Parse(item.GetString()!, CultureInfo.InvariantCulture),
                    _ => item.GetString()!,
                };
            }

            return new SearchCursor(values, items[0].GetInt64(), before);
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException or ArgumentException)
        {
            throw new InvalidInputException($"{Paging.CursorParameter} '{text}' is not a continuation key this server issued for this search.", Paging.CursorParameter);
        }
    }

    internal static string Query(IEnumerable<KeyValuePair<string, string>> parameters) =>
        string.Join('&', parameters.Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(p.Value)}"));

    internal static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
