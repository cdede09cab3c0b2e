"""One abstract base class per plugin kind."""

from clipper_core.interfaces.cache import CacheKey, PredictionCache
from clipper_core.interfaces.container_manager import ContainerManager
from clipper_core.interfaces.deployer import Deployer, DeployTarget
from clipper_core.interfaces.policy import Query, SelectionPolicy

__all__ = ["CacheKey", "ContainerManager", "DeployTarget", "Deployer", "PredictionCache", "Query", "SelectionPolicy"]
