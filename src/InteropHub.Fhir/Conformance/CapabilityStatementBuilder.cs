using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;

namespace InteropHub.Fhir.Conformance;

/// <summary>
/// Builds the CapabilityStatement from what the server implements (capabilitystatement.html): every concrete
/// R4 resource type with the interactions the REST endpoints serve, the search parameters the store evaluates
/// (<see cref="SearchCriteria.SupportedParameters"/>), the formats and the conditional behaviours.
/// </summary>
public static class CapabilityStatementBuilder
{
    private static readonly CapabilityStatement.TypeRestfulInteraction[] TypeInteractions =
    [
        CapabilityStatement.TypeRestfulInteraction.Read,
        CapabilityStatement.TypeRestfulInteraction.Vread,
        CapabilityStatement.TypeRestfulInteraction.Update,
        CapabilityStatement.TypeRestfulInteraction.Delete,
        CapabilityStatement.TypeRestfulInteraction.HistoryInstance,
        CapabilityStatement.TypeRestfulInteraction.HistoryType,
        CapabilityStatement.TypeRestfulInteraction.Create,
        CapabilityStatement.TypeRestfulInteraction.SearchType,
    ];

    public static CapabilityStatement Build(string softwareVersion, DateTimeOffset startedAt)
    {
        var rest = new CapabilityStatement.RestComponent
        {
            Mode = CapabilityStatement.RestfulCapabilityMode.Server,
            Documentation = "InteropHub FHIR R4 REST API. Versioned resources with history, conditional create/update/delete on _id and identifier.",
            Interaction =
            [
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.HistorySystem },
            ],
        };

        rest.Operation.Add(new CapabilityStatement.OperationComponent
        {
            Name = "export",
            Definition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            Documentation = "System-level Bulk Data export (_type, _since) to NDJSON files served by the hub.",
        });

        foreach (var type in ResourceTypes.All)
        {
            rest.Resource.Add(Resource(type));
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
            Rest = [rest],
        };
    }

    private static CapabilityStatement.ResourceComponent Resource(string type)
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
            ConditionalRead = CapabilityStatement.ConditionalReadStatus.NotSupported,
            ConditionalUpdate = true,
            ConditionalDelete = CapabilityStatement.ConditionalDeleteStatus.Single,
        };

        component.SearchParam.Add(new CapabilityStatement.SearchParamComponent
        {
            Name = "_id",
            Definition = "http://hl7.org/fhir/SearchParameter/Resource-id",
            Type = SearchParamType.Token,
        });

        var identifier = ModelInfo.SearchParameters.FirstOrDefault(p => p.Resource == type && p.Name == "identifier");
        if (identifier is not null)
        {
            component.SearchParam.Add(new CapabilityStatement.SearchParamComponent
            {
                Name = "identifier",
                Definition = identifier.Url,
                Type = SearchParamType.Token,
            });
        }

        return component;
    }
}
