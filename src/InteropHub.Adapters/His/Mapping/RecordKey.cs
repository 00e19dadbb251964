using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>
/// Marks a record a message writes under a key of its own (a report's OBR-3, a result's OBX-3 within it): the field that
/// names it, and what it is, for an ERR when the stored record cannot take what the message says (another patient's
/// report, a corrected result sent final again).
/// </summary>
internal sealed record RecordKey(Hl7Location Location, string Description);
