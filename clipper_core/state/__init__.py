"""State stores: what clipper must not forget (apps, models, links, replicas, policy state, feedback)."""

from clipper_core.state.base import ChangeCallback, StateStore
from clipper_core.state.records import Application, ChangeEvent, Feedback, Model, ModelKey, Replica

__all__ = ["Application", "ChangeCallback", "ChangeEvent", "Feedback", "Model", "ModelKey", "Replica", "StateStore"]
