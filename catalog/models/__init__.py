from catalog.models.entities import (
    LINEAGE_COMPONENTS,
    Dataset,
    DatasetSnapshot,
    Deployment,
    Environment,
    Feature,
    FeaturePin,
    FeatureVersion,
    Lifecycle,
    Model,
    ModelVersion,
    Project,
    Source,
    WorkloadType,
)
from catalog.models.locations import Location, LocationEntity, LocationStatus
from catalog.models.search import SearchDoc

__all__ = [
    "LINEAGE_COMPONENTS",
    "Dataset",
    "DatasetSnapshot",
    "Deployment",
    "Environment",
    "Feature",
    "FeaturePin",
    "FeatureVersion",
    "Lifecycle",
    "Location",
    "LocationEntity",
    "LocationStatus",
    "Model",
    "ModelVersion",
    "Project",
    "SearchDoc",
    "Source",
    "WorkloadType",
]
