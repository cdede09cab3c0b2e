"""A model version's autoscaling settings: what the admin API, ``ClipperConnection.set_autoscaling``, the CLI and
a model's registration accept, validated once here (every problem an ``InvalidInput`` naming the field, what
was wrong and what is expected), and kept in the model's record as a plain dict (``Model.autoscaling``).

* ``min_replicas`` (0 allows scaling to zero: the first query then starts a replica) and ``max_replicas``;
* one target: ``target_inflight_per_replica`` (outstanding inputs, queued and in flight, per replica; the
  default, 4) or ``target_latency_fraction`` (p99 latency at that fraction of the smallest linked SLO);
* ``upscale_delay_s`` / ``downscale_delay_s``: how long the load must call for a change before it is made;
* ``smoothing_window_s``: the window the load is smoothed over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipper_core.errors import InvalidInput
from clipper_core.settings_checks import check_integer, check_number, known_settings

__all__ = ["MAX_AUTOSCALE_REPLICAS", "AutoscalingConfig"]

MAX_AUTOSCALE_REPLICAS = 256
"""Most replicas an autoscaled model version may get (as ``set_num_replicas`` allows)."""
DEFAULT_INFLIGHT_TARGET = 4.0
_MAX_DELAY_S = 3600.0


@dataclass(frozen=True)
class AutoscalingConfig:
    min_replicas: int = 1
    max_replicas: int = 4
    target_inflight_per_replica: float | None = DEFAULT_INFLIGHT_TARGET
    target_latency_fraction: float | None = None
    upscale_delay_s: float = 3.0
    downscale_delay_s: float = 30.0
    smoothing_window_s: float = 5.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AutoscalingConfig:
        """Validate ``data`` (the JSON the admin API receives; omitted keys take the defaults)."""
        values = known_settings("'autoscaling'", data, (f.name for f in dataclasses.fields(cls)),
                                "an object of settings or null")
        if "target_latency_fraction" in values and values["target_latency_fraction"] is not None \
                and "target_inflight_per_replica" not in values:
            values["target_inflight_per_replica"] = None  # the latency target replaces the default one
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        low = check_integer("min_replicas", self.min_replicas, 0, MAX_AUTOSCALE_REPLICAS)
        high = check_integer("max_replicas", self.max_replicas, 1, MAX_AUTOSCALE_REPLICAS)
        if low > high:
            raise InvalidInput(f"'min_replicas' ({low}) is above 'max_replicas' ({high}); expected min <= max")
        inflight, latency = self.target_inflight_per_replica, self.target_latency_fraction
        if (inflight is None) == (latency is None):
            raise InvalidInput("give exactly one target: 'target_inflight_per_replica' (outstanding inputs per "
                               "replica) or 'target_latency_fraction' (p99 as a fraction of the SLO)")
        if inflight is not None:
            check_number("target_inflight_per_replica", inflight, 0.0, 1e6, open_low=True)
        if latency is not None:
            check_number("target_latency_fraction", latency, 0.0, 1.0, open_low=True)
        check_number("upscale_delay_s", self.upscale_delay_s, 0.0, _MAX_DELAY_S)
        check_number("downscale_delay_s", self.downscale_delay_s, 0.0, _MAX_DELAY_S)
        check_number("smoothing_window_s", self.smoothing_window_s, 0.0, 600.0, open_low=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
