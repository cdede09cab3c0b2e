"""A rollout as the state store keeps it (one per model name, ``StateStore.put_rollout``): which version replaces
which, its settings, where it is, and its history. The frontends route by it, the management server's controller
moves it on, and a restarted management server resumes it from here.

States: ``running`` and ``paused`` are active (the frontends split or mirror the traffic; paused: the step does
not advance, the guards still roll back); ``promoted`` (canary: the candidate is the current version), ``passed``
(shadow: the candidate held every guard), ``rolled_back`` (a guard tripped), ``aborted`` (by a person) are ended.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper_core.errors import InvalidInput
from clipper_core.rollouts.settings import RolloutSettings

__all__ = ["ACTIVE", "ENDED", "Rollout", "read_rollouts"]

log = logging.getLogger(__name__)

ACTIVE = ("running", "paused")
ENDED = ("promoted", "passed", "rolled_back", "aborted")
MAX_HISTORY = 50
"""Most events a rollout's history keeps (the oldest go first)."""


@dataclass
class Rollout:
    model: str
    candidate: str
    baseline: str
    """The version that was current when the rollout started: what the candidate is compared with."""
    settings: RolloutSettings
    state: str = "running"
    step: int = 0
    step_id: int = 1
    """Changes whenever the split changes (a new step, a resume): the frontends count each step afresh."""
    step_started_at: float = 0.0
    """Wall-clock seconds (``time.time``): survives a restart of the management server."""
    started_at: float = 0.0
    ended_at: float | None = None
    reason: str = ""
    """Why it is where it is: the last decision, or why it ended (the guard and the figures that tripped it)."""
    figures: dict[str, Any] = field(default_factory=dict)
    """The last figures judged: ``{"candidate": {...}, "baseline": {...}}`` (``StepFigures.summary``)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    salt: int = field(default_factory=lambda: secrets.randbits(32))
    """Mixed into the per-user hash: each rollout splits the users afresh, the same way on every frontend."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def share(self) -> float:
        """The candidate's share of the queries now (0 once ended)."""
        return self.settings.share(self.step) if self.active else 0.0

    @property
    def last_step(self) -> bool:
        return self.step == len(self.settings.steps) - 1

    def note(self, event: str, at: float, reason: str, figures: Mapping[str, Any] | None = None) -> None:
        """Record an event in the history (and as the reason)."""
        self.reason = reason
        entry: dict[str, Any] = {"event": event, "at": at, "step": self.step, "share": self.share, "reason": reason}
        if figures:
            entry["figures"] = dict(figures)
        self.history.append(entry)
        del self.history[:-MAX_HISTORY]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["settings"] = self.settings.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollout:
        """A stored record (as :meth:`to_dict` wrote it)."""
        try:
            values = dict(data)
            values["settings"] = RolloutSettings.from_dict(values["settings"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"a stored rollout record is malformed: {exc}") from None

    def view(self) -> dict[str, Any]:
        """What ``/admin/get_rollout`` answers: the record, with the weights it gives each version."""
        data = self.to_dict()
        share = self.share
        mirrored = self.settings.mode == "shadow"
        if self.state == "promoted":
            data["weights"] = {self.candidate: 1.0, self.baseline: 0.0}
        else:
            data["weights"] = {self.candidate: 0.0 if mirrored else share,
                               self.baseline: 1.0 if mirrored else 1.0 - share}
        if mirrored:
            data["mirrored"] = share
        data.pop("salt")
        return data


def read_rollouts(records: Iterable[Mapping[str, Any]]) -> list[Rollout]:
    """The stored records as rollouts; a malformed one is logged and left out (it cannot be served or moved)."""
    rollouts = []
    for record in records:
        try:
            rollouts.append(Rollout.from_dict(record))
        except InvalidInput as exc:
            log.error("rollout record of %r ignored: %s", record.get("model"), exc)
    return rollouts
