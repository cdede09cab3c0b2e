"""State stores: what clipper must not forget (apps, models, links, replicas, rollouts, policy state,
feedback)."""

from clipper_core.state.base import ChangeCallback, StateStore
from clipper_core.state.records import (
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

__all__ = ["Application", "ChangeCallback", "ChangeEvent", "Feedback", "LoadFigures", "Model", "ModelKey", "Replica",
           "StateStore", "load_key", "parse_load_key"]
