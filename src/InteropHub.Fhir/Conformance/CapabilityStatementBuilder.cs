using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search.Parameters;

namespace InteropHub.Fhir.Conformance;

/// <summary>
/// Builds the CapabilityStatement from what the server implements (capabilitystatement.html): every concrete
/// R4 resource type with the interactions the REST endpoints serve, the search parameters the store evaluates
/// (every parameter of <see cref="SearchParameterRegistry"/>), the formats and the conditional behaviours.
/// </summary>
public static class CapabilityStatementBuilder
{
    private static readonly CapabilityStatement.TypeRestfulInteraction[] TypeInteractions =
    [
        CapabilityStatement.TypeRestfulInteraction.Read,
        CapabilityStatement.TypeRestfulInteraction.Vread,
        CapabilityStatement.TypeRestfulInteraction.Update,
        CapabilityStatement.TypeRestfulInteraction.Patch,
        CapabilityStatement.TypeRestfulInteraction.Delete,
        CapabilityStatement.TypeRestfulInteraction.HistoryInstance,
        CapabilityStatement.TypeRestfulInteraction.HistoryType,
        CapabilityStatement.TypeRestfulInteraction.Create,
        CapabilityStatement.TypeRestfulInteraction.SearchType,
    ];

    /// <param name="registry">The hub's search parameters, its custom ones included.</param>
    public static CapabilityStatement Build(string softwareVersion, DateTimeOffset startedAt, SearchParameterRegistry registry)
    {
        var rest = new CapabilityStatement.RestComponent
        {
            Mode = CapabilityStatement.RestfulCapabilityMode.Server,
            Documentation = "InteropHub FHIR R4 REST API. Versioned resources with history; search on every R4 search parameter "
                + "(modifiers :missing :exact :contains :text :not :of-type :identifier :[type], :above :below on uris and on tokens of "
                + "CodeSystems stored in the hub, :in :not-in ValueSets stored in the hub; prefixes, chains, _has, "
                + "_include/_revinclude, _sort, _total, _summary, _elements); conditional create/update/patch/delete on any criteria; "
                + "JSON Patch and FHIRPath Patch; batch and atomic transaction Bundles; history with _since, _at and _count.",
            Interaction =
            [
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.Transaction },
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.Batch },
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.HistorySystem },
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.SearchSystem },
            ],
        };

        rest.Operation.Add(new CapabilityStatement.OperationComponent
        {
            Name = "export",
            Definition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            Documentation = "System-level Bulk Data export (GET or POST Parameters; _type, _since, _typeFilter, _elements) to NDJSON files served by the hub.",
        });
        rest.Operation.Add(new CapabilityStatement.OperationComponent
        {
            Name = "import",
            Definition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
            Documentation = "Asynchronous bulk import of NDJSON files, folders under the hub's import root, or http(s) URLs; "
                + "ids are kept (an existing id gets a new version); failed lines are reported with file and line.",
        });
        rest.Operation.Add(new CapabilityStatement.OperationComponent
        {
            Name = "reindex",
            Definition = "https://interophub.dev/fhir/OperationDefinition/reindex",
            Documentation = "GET lists the re-index jobs and their progress; POST (with _type, a comma list of types) re-indexes every live "
                + "resource (of those types) in a durable background job and answers 202. Jobs for added or changed SearchParameters start by themselves.",
        });

        foreach (var type in ResourceTypes.All)
        {
            rest.Resource.Add(Resource(type, registry));
        }

        return new CapabilityStatement
        {
            Status = PublicationStatus.Active,
            Date = startedAt.ToString("yyyy-MM-ddTHH:mm:sszzz", System.Globalization.CultureInfo.InvariantCulture),
            Publisher = "InteropHub",
            Kind = CapabilityStatementKind.Instance,
            Software = new CapabilityStatement.SoftwareComponent { Name = "InteropHub", Version = softwareVersion },
            Implementation = new CapabilityStatement.ImplementationComponent { Description = "InteropHub health-information interoperability hub" },
            FhirVersion = FHIRVersion.N4_0_1,
            Format = ["application/fhir+json", "application/fhir+xml", "json", "xml"],

            // http.html#patch: JSON Patch, and FHIRPath Patch as a Parameters resource in either format.
            PatchFormat = ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
            Rest = [rest],
        };
    }

    private static CapabilityStatement.ResourceComponent Resource(string type, SearchParameterRegistry registry)
    {
        var component = new CapabilityStatement.ResourceComponent
        {
            Type = type,
            Profile = ModelInfo.CanonicalUriForFhirCoreType(type).Value,
            Interaction = TypeInteractions.Select(code => new CapabilityStatement.ResourceInteractionComponent { Code = code }).ToList(),
            Versioning = CapabilityStatement.ResourceVersionPolicy.VersionedUpdate,
            ReadHistory = true,
            UpdateCreate = true,
            ConditionalCreate = true,
            // If-None-Match and If-Modified-Since answer 304 (http.html#cread).
            ConditionalRead = CapabilityStatement.ConditionalReadStatus.FullSupport,
            ConditionalUpdate = true,
            ConditionalDelete = CapabilityStatement.ConditionalDeleteStatus.Single,
        };

        // Every parameter the registry indexes for the type (search.html): the specification's, the common ones and the
        // hub's custom SearchParameters.
        foreach (var param in registry.For(type).Values.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            component.SearchParam.Add(new CapabilityStatement.SearchParamComponent { Name = param.Name, Definition = param.Url, Type = param.Type });
        }

        if (type == "Subscription")
        {
            component.Documentation = "R4 Subscriptions with the rest-hook channel: criteria are any search this hub evaluates; a requested "
                + "Subscription is activated; notifications are queued in the transaction of the change and sent at least once, in order "
                + "per subscription, with the channel headers: with a channel.payload the version as an update, PUT [endpoint]/[type]/[id] "
                + "in that format; without one an empty POST to the endpoint. Failing subscribers are retried with backoff and set to error "
                + "with the reason when they keep failing.";
        }

        if (type == "Binary")
        {
            component.Documentation = "A Binary may be created or updated with its own content: a body in a media type that is not FHIR is "
                + "its data, the Content-Type its contentType, X-Security-Context its securityContext. A read whose Accept names no FHIR "
                + "format (*/*, application/pdf…) answers the content with its type; a FHIR Accept, _format, or no Accept reads the resource.";
        }

        component.SearchInclude = ["*"];
        component.SearchRevInclude = ["*"];
        component.Operation.Add(new CapabilityStatement.OperationComponent
        {
            Name = "validate",
            Definition = "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            Documentation = "The checks of a create (the default at type level), an update (mode=update, the default on an instance; GET validates the stored version) or a delete (mode=delete), nothing written; then conformance to the R4 definition of the type, to meta.profile and to profile (the specification's profiles or a StructureDefinition stored here).",
        });
        if (type == "Patient")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "everything",
                Definition = "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                Documentation = "The patient, every resource in its compartment and what they refer to outside it (organisations, practitioners, locations, …); _since, _type, _count with paging; start/end keep the care given in a date range (each type's clinical date, an order's authored date; resources without one stay in).",
            });
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "match",
                Definition = "http://hl7.org/fhir/OperationDefinition/Patient-match",
                Documentation = "POST a Patient (or Parameters: resource, onlyCertainMatches, count ≤ 100, default 10): the stored Patients that may be that person, "
                    + "by the county's linking rules — a shared identifier is certain, the same name, sex and birth date probable, less possible — "
                    + "most likely first, with search.score and the match-grade extension. Merged-away records are never returned.",
            });
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "recognized-results",
                Definition = "https://interophub.dev/fhir/OperationDefinition/Patient-recognized-results",
                Documentation = "Prior results of an ordered item that the requester must recognise (code, at, requester), each with its expiry.",
            });
        }

        if (type == "ConceptMap")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "translate",
                Definition = "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
                Documentation = "Translates a code with the ConceptMaps stored here (the county's local codes, from mappings/): by map id or url, "
                    + "or every map of the code's system; reverse and targetsystem supported.",
            });
        }

        if (type == "ValueSet")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "expand",
                Definition = "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
                Documentation = $"Expands a ValueSet (by id, url with valueSetVersion, or given) over the CodeSystems and ValueSets stored here: filter (every word in the code or display, ignoring case), offset/count paging, includeDesignations, activeOnly; more than {Resources.Expand.ExpandValueSet.MaxCodes} codes need count.",
            });
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "validate-code",
                Definition = "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
                Documentation = "Whether a code, coding or codeableConcept is in a ValueSet stored here (or given); a wrong display or an abstract code is result false with a message, and display gives the right one.",
            });
        }

        if (type == "CodeSystem")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "lookup",
                Definition = "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
                Documentation = "A code of a CodeSystem stored here: name, version, display, designations and properties (definition, parent, child, inactive, its own); an unknown code or system is a 404.",
            });
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "validate-code",
                Definition = "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
                Documentation = "Whether a code is defined by a CodeSystem stored here (by id, url with version, or given); a wrong display is result false with a message.",
            });
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "subsumes",
                Definition = "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes",
                Documentation = "How codeA and codeB (or codingA and codingB) of a CodeSystem stored here relate in its hierarchy: equivalent, subsumes, subsumed-by or not-subsumed.",
            });
        }

        if (type is "Patient" or "Group")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "export",
                Definition = $"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{type.ToLowerInvariant()}-export",
                Documentation = type == "Patient"
                    ? "Bulk Data export of every patient (or those named by patient) and their compartments (GET or POST Parameters; _type, _since, _typeFilter, patient)."
                    : "Bulk Data export of the Group's member patients (or those of them named by patient) and their compartments (GET or POST Parameters; _type, _since, _typeFilter, _elements, patient).",
            });
        }

        if (type == "ServiceRequest")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "refer",
                Definition = "https://interophub.dev/fhir/OperationDefinition/ServiceRequest-refer",
                Documentation = "Creates a referral (ServiceRequest and Task) in one transaction from patient, from, to, direction (up|down), reason, supportingInfo, note.",
            });
        }

        if (type == "Measure")
        {
            component.Operation.Add(new CapabilityStatement.OperationComponent
            {
                Name = "evaluate-measure",
                Definition = "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
                Documentation = "The health plans' indicators as summary MeasureReports for periodStart..periodEnd, optionally for subject=Organization/{id} " +
                    "(GET or POST): Measure/referral-metrics (referral counts, acceptance and completion rate, median time to accept, non-recognition " +
                    "reasons), and per township Measure/contract-coverage, Measure/nip-coverage, Measure/chronic-disease-management, " +
                    "Measure/maternal-care and Measure/primary-care-share.",
            });
        }

        return component;
    }
}
