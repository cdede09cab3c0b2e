"""What the query path answers, whatever the wire format: one :class:`Prediction` per input, and a
:class:`FeedbackReceipt` per accepted feedback. The frontends (Clipper REST, V2) translate these to their JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipper_core.policies.combine import NO_MODELS

__all__ = ["NO_MODELS", "SLO_MISSED", "FeedbackReceipt", "Prediction", "ScalingFromZero"]

SLO_MISSED = "Failed to retrieve a prediction response within the specified latency SLO"


class ScalingFromZero(Exception):
    """A model version scaled to zero could not start a replica within the query's SLO; the message is the
    default output's explanation ("scaling model 'm' from zero")."""


@dataclass(slots=True)
class Prediction:
    """The answer to one input."""

    query_id: int
    output: Any
    """The combined output as a JSON value (Clipper re-parses string outputs as JSON), or the default output."""
    default: bool = False
    """True when ``output`` is the app's default output (or the policy's own default)."""
    explanation: str = ""
    """Why the default output was given (Clipper's ``default_explanation``); empty otherwise."""
    models: list[str] | None = None
    """The models whose outputs were combined, for policies that combine several (stragglers left out)."""


@dataclass(slots=True)
class FeedbackReceipt:
    """Feedback that is stored durably (whether or not the policy could learn from it)."""

    query_id: int
    seq: int
    """The feedback's sequence number in the state store (1, 2, ... per app)."""
