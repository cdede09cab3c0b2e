"""State stores: what clipper must not forget (apps, models, links, replicas, rollouts, API keys, policy state,
feedback)."""

from clipper_core.state.base import ChangeCallback, StateStore
from clipper_core.state.records import (
    ApiKey,
    Application,
    ChangeEvent,
    Feedback,
    LoadFigures,
    Model,
    ModelKey,
    Replica,
    load_key,
    parse_load_key,
)

__all__ = ["ApiKey", "Application", "ChangeCallback", "ChangeEvent", "Feedback", "LoadFigures", "Model", "ModelKey",
           "Replica", "StateStore", "load_key", "parse_load_key"]
