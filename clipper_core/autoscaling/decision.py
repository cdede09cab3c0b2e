"""The autoscaler's decision: how many replicas one model version should have, as a pure function.

``decide(settings, figures, state, now)`` takes the load figures of one tick (summed over every query frontend),
the autoscaling settings, the previous ``ScalerState`` and ``now`` (from the caller's injectable clock), and
returns the next state with a ``Decision``. It does no I/O, reads no clock and keeps nothing between calls: the
management server calls it once per tick per model version and acts on ``Decision.desired``. Start with
``ScalerState.initial(current_replicas)``.

The rules, in the order they are applied:

1. **Smoothing.** Each tick appends a sample (``figures.at``, outstanding = queued + in flight, arrival rate,
   p99) to a sliding window: the samples measured within the last ``smoothing_window_s`` seconds before the
   newest one (a window of 0 keeps only the newest). The load used for decisions is the plain mean of the
   window (the p99 mean is over the samples that had one, ``None`` when none had). Once a window holds no
   traffic its mean is exactly 0, so "no traffic" needs no threshold.
2. **Wanted count** (``Decision.wanted``, before delays and bounds):

   - no traffic (smoothed outstanding 0 and smoothed arrival rate 0): ``min_replicas``;
   - inflight target: ``ceil(outstanding / target_inflight_per_replica)``;
   - latency target: ``ceil(ready * p99 / (target_latency_fraction * slo_s))`` when p99 is known and replicas
     are ready (proportional scaling); with neither p99 nor ``item_seconds`` the current count is kept;
   - either target: never fewer than the throughput needs, ``ceil(arrival_rate * item_seconds / 0.8)``
     (``UTILISATION``) when ``item_seconds`` is known, so a steady load is not undercounted.

   The count acted on is the wanted count clamped to ``[min_replicas, max_replicas]``.
3. **Bounds first.** A count outside ``[min_replicas, max_replicas]`` (after a config change) is clamped at
   once, with the reason "min_replicas is N" / "max_replicas is N".
4. **Scale from zero.** At 0 replicas with inputs waiting (raw ``cold_waiting`` or ``queued`` > 0, not smoothed),
   go to ``max(1, min_replicas)`` at once: the first query is waiting. Any further growth follows rule 5.
5. **Upscale.** Only after the clamped wanted count has been above the current one continuously for
   ``upscale_delay_s``; then jump straight to it (not one by one).
6. **Downscale.** Only after the clamped wanted count has been below the current one continuously for
   ``downscale_delay_s``; then step down gradually: at most halve per step (``ceil(current / 2)``, never below
   the wanted count). 1 → 0 only when ``min_replicas`` is 0 and there has been no traffic at all in the raw
   figures (no arrivals, nothing queued, in flight or cold-waiting) for the whole downscale delay.
7. **Damping.** A change resets both timers (the one still wanted restarts at the change), so two changes by
   rules 5 and 6 are always at least ``min(upscale_delay_s, downscale_delay_s)`` apart, and a downscale comes
   no sooner than ``downscale_delay_s`` after an upscale. A wanted count that flips direction or returns to
   the current count stops the timer of the other direction.

Timers (rules 5-7) run on ``now``; the smoothing window runs on ``figures.at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Protocol

__all__ = ["UTILISATION", "Action", "AutoscalingSettings", "Decision", "Figures", "Sample", "ScalerState",
           "decide"]

UTILISATION = 0.8
"""The share of a replica's time the throughput floor plans to keep busy."""

_EPSILON = 1e-9  # 2.0000000001 replicas' worth of load is 2 replicas, not 3

Action = Literal["hold", "up", "down", "from_zero", "bounds"]


class AutoscalingSettings(Protocol):
    """What ``decide`` reads of a model version's autoscaling config (exactly one of the targets is set)."""

    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def target_inflight_per_replica(self) -> float | None: ...
    @property
    def target_latency_fraction(self) -> float | None: ...
    @property
    def upscale_delay_s(self) -> float: ...
    @property
    def downscale_delay_s(self) -> float: ...
    @property
    def smoothing_window_s(self) -> float: ...


@dataclass(frozen=True)
class Figures:
    """One tick's load of a model version, summed over every query frontend."""

    queued: int                    # inputs waiting in the queue
    inflight: int                  # inputs sent to replicas, not answered yet
    arrival_rate: float            # inputs/s over the last report interval
    throughput: float              # inputs answered/s
    p99_latency_s: float | None    # end to end; None when nothing was answered
    item_seconds: float            # model seconds per input (moving average); 0 when unknown
    ready_replicas: int            # replicas connected now
    cold_waiting: int              # inputs queued while the version had 0 replicas
    slo_s: float                   # the smallest SLO of the apps linked to the model
    at: float                      # when measured

    @property
    def outstanding(self) -> int:
        return self.queued + self.inflight

    @property
    def idle(self) -> bool:
        """No traffic at all in these figures."""
        return self.arrival_rate <= 0 and self.outstanding == 0 and self.cold_waiting == 0


@dataclass(frozen=True)
class Sample:
    """One tick's load in the smoothing window."""

    at: float
    outstanding: float
    arrival_rate: float
    p99_latency_s: float | None


@dataclass(frozen=True)
class ScalerState:
    """What ``decide`` returns and is given back on the next tick."""

    desired: int                          # the replica count decided so far
    samples: tuple[Sample, ...] = ()      # the smoothing window, oldest first
    up_since: float | None = None         # since when more replicas have been wanted continuously
    down_since: float | None = None       # since when fewer replicas have been wanted continuously
    idle_since: float | None = None       # since when the raw figures have shown no traffic at all
    last_change_at: float | None = None   # when ``desired`` last changed

    @classmethod
    def initial(cls, current_replicas: int) -> ScalerState:
        return cls(desired=current_replicas)


@dataclass(frozen=True)
class Decision:
    """One tick's outcome: the count to have, whether it changed, why, and the figures behind it."""

    desired: int
    changed: bool
    reason: str                      # a sentence with the figures that caused it
    action: Action                   # "hold", "up", "down", "from_zero" or "bounds" (a metrics label)
    previous: int                    # the count before this tick
    wanted: int                      # the raw count the load asks for, before delays and bounds
    load_per_replica: float          # smoothed outstanding inputs per ready replica (per 1 when none is ready)
    outstanding: float               # smoothed queued + in flight
    p99_latency_s: float | None      # smoothed p99


@dataclass(frozen=True)
class _Load:
    """The smoothed load of the window."""

    outstanding: float
    arrival_rate: float
    p99_latency_s: float | None

    @property
    def idle(self) -> bool:
        return self.outstanding <= 0 and self.arrival_rate <= 0


@dataclass(frozen=True)
class _Need:
    """The raw wanted count and the sentence that explains it."""

    wanted: int
    why: str


def decide(settings: AutoscalingSettings, figures: Figures, state: ScalerState,
           now: float) -> tuple[ScalerState, Decision]:
    """One tick: the next state and the decision (see the module docstring for the rules)."""
    samples = _window(state.samples, figures, settings.smoothing_window_s)
    load = _smooth(samples)
    idle_since = (state.idle_since if state.idle_since is not None else now) if figures.idle else None
    state = replace(state, samples=samples, idle_since=idle_since)
    need = _need(settings, figures, load, state.desired)
    target = _clamp(need.wanted, settings)
    current = state.desired

    def decision(desired: int, action: Action, reason: str) -> Decision:
        return Decision(desired=desired, changed=desired != current, reason=reason, action=action,
                        previous=current, wanted=need.wanted,
                        load_per_replica=load.outstanding / max(1, figures.ready_replicas),
                        outstanding=load.outstanding, p99_latency_s=load.p99_latency_s)

    bounded = _clamp(current, settings)
    if bounded != current:
        bound = "min" if bounded > current else "max"
        return _changed(state, bounded, target, now), decision(
            bounded, "bounds", f"{current} → {bounded} replicas: {bound}_replicas is {bounded}")
    waiting = max(figures.cold_waiting, figures.queued)
    if current == 0 and waiting > 0:
        first = min(max(1, settings.min_replicas), settings.max_replicas)
        return _changed(state, first, target, now), decision(
            first, "from_zero", f"0 → {first} replicas: {_inputs(waiting)} waiting with no replica (scale from zero)")
    if target > current:
        return _upscale(settings, state, need, target, now, decision)
    if target < current:
        return _downscale(settings, state, need, target, now, decision)
    state = replace(state, up_since=None, down_since=None)
    return state, decision(current, "hold", f"{_replicas(current)}: {need.why}")


class _MakeDecision(Protocol):
    def __call__(self, desired: int, action: Action, reason: str) -> Decision: ...


def _upscale(settings: AutoscalingSettings, state: ScalerState, need: _Need, target: int, now: float,
             decision: _MakeDecision) -> tuple[ScalerState, Decision]:
    """More replicas are wanted: jump to ``target`` once that has held for the upscale delay."""
    since = state.up_since if state.up_since is not None else now
    held, delay = now - since, settings.upscale_delay_s
    current = state.desired
    if held < delay:
        state = replace(state, up_since=since, down_since=None)
        return state, decision(current, "hold", f"{_replicas(current)}: {need.why}; {target} wanted for "
                                                f"{held:.1f} s of the {delay:g} s upscale delay")
    capped = f" (wanted {need.wanted}, max_replicas {settings.max_replicas})" if need.wanted > target else ""
    return _changed(state, target, target, now), decision(
        target, "up", f"{current} → {target} replicas: {need.why}, above target for {held:.1f} s "
                      f"(upscale delay {delay:g} s){capped}")


def _downscale(settings: AutoscalingSettings, state: ScalerState, need: _Need, target: int, now: float,
               decision: _MakeDecision) -> tuple[ScalerState, Decision]:
    """Fewer replicas are wanted: once that has held for the downscale delay, step down by at most half."""
    since = state.down_since if state.down_since is not None else now
    held, delay = now - since, settings.downscale_delay_s
    current = state.desired
    state = replace(state, up_since=None, down_since=since)
    if held < delay:
        return state, decision(current, "hold", f"{_replicas(current)}: {need.why}; {target} wanted for "
                                                f"{held:.1f} s of the {delay:g} s downscale delay")
    step = max(target, math.ceil(current / 2)) if current > 1 else target
    if step == 0 and not _idle_for(state, now, delay):
        step = 1
    if step == current:  # 1 → 0 waits for a whole downscale delay without traffic
        idle = 0.0 if state.idle_since is None else now - state.idle_since
        return state, decision(current, "hold", f"{_replicas(current)}: {need.why}; no traffic for {idle:.1f} s "
                                                f"of the {delay:g} s needed to scale to zero")
    if step == 0:
        idle = now - state.idle_since if state.idle_since is not None else 0.0
        return _changed(state, 0, target, now), decision(
            0, "down", f"{current} → 0 replicas: no traffic for {idle:.1f} s (downscale delay {delay:g} s)")
    gradual = f"; stepping down gradually towards {target}" if step > target else ""
    return _changed(state, step, target, now), decision(
        step, "down", f"{current} → {step} replicas: {need.why}, below target for {held:.1f} s "
                      f"(downscale delay {delay:g} s){gradual}")


def _changed(state: ScalerState, desired: int, target: int, now: float) -> ScalerState:
    """The state after a change to ``desired``: both timers reset, the still-wanted direction's from now."""
    return replace(state, desired=desired, last_change_at=now,
                   up_since=now if target > desired else None,
                   down_since=now if target < desired else None)


def _idle_for(state: ScalerState, now: float, delay: float) -> bool:
    return state.idle_since is not None and now - state.idle_since >= delay


def _window(samples: tuple[Sample, ...], figures: Figures, window_s: float) -> tuple[Sample, ...]:
    """The window with this tick's sample: the samples within ``window_s`` of the newest (same ``at``: replaced)."""
    sample = Sample(at=figures.at, outstanding=float(figures.outstanding), arrival_rate=figures.arrival_rate,
                    p99_latency_s=figures.p99_latency_s)
    kept = tuple(s for s in samples if s.at < sample.at and s.at >= sample.at - window_s)
    return (*kept, sample)


def _smooth(samples: tuple[Sample, ...]) -> _Load:
    """The mean of the window; p99 over the samples that had one."""
    n = len(samples)
    latencies = [s.p99_latency_s for s in samples if s.p99_latency_s is not None]
    return _Load(outstanding=sum(s.outstanding for s in samples) / n,
                 arrival_rate=sum(s.arrival_rate for s in samples) / n,
                 p99_latency_s=sum(latencies) / len(latencies) if latencies else None)


def _need(settings: AutoscalingSettings, figures: Figures, load: _Load, current: int) -> _Need:
    """The raw wanted count (rule 2), before delays and bounds."""
    if load.idle:
        return _Need(settings.min_replicas, f"no traffic (min_replicas {settings.min_replicas})")
    primary: _Need | None
    if settings.target_inflight_per_replica is not None:
        primary = _inflight_need(settings.target_inflight_per_replica, figures, load)
    elif settings.target_latency_fraction is not None:
        primary = _latency_need(settings.target_latency_fraction, figures, load)
    else:
        raise ValueError("autoscaling needs target_inflight_per_replica or target_latency_fraction")
    floor = _throughput_need(figures, load)
    if floor is not None and (primary is None or floor.wanted > primary.wanted):
        return floor if primary is None else _Need(floor.wanted, f"{primary.why}; {floor.why}")
    if primary is None:
        return _Need(current, "p99 and model time unknown, keeping the count")
    return primary


def _inflight_need(target: float, figures: Figures, load: _Load) -> _Need:
    return _Need(_ceil(load.outstanding / target),
                 f"{_num(load.outstanding)} outstanding inputs over {_replicas(figures.ready_replicas)} "
                 f"(target {target:g}/replica)")


def _latency_need(fraction: float, figures: Figures, load: _Load) -> _Need | None:
    p99, ready, target = load.p99_latency_s, figures.ready_replicas, fraction * figures.slo_s
    if p99 is None or ready <= 0 or target <= 0:
        return None
    if p99 > target and load.outstanding <= ready:
        # Nothing waits for a replica: the latency is the model's own, which more replicas cannot shorten.
        return None
    return _Need(_ceil(ready * p99 / target),
                 f"p99 {_ms(p99)} over {_replicas(ready)} (target {_ms(target)} = {fraction:g} × SLO "
                 f"{_ms(figures.slo_s)})")


def _throughput_need(figures: Figures, load: _Load) -> _Need | None:
    """The replicas the arrival rate keeps ``UTILISATION`` busy; None while the model's time is unknown."""
    if figures.item_seconds <= 0:
        return None
    wanted = _ceil(load.arrival_rate * figures.item_seconds / UTILISATION)
    return _Need(wanted, f"{_num(load.arrival_rate)} inputs/s at {_ms(figures.item_seconds)}/input need "
                         f"{_replicas(wanted)} at {UTILISATION:.0%} utilisation")


def _clamp(count: int, settings: AutoscalingSettings) -> int:
    return max(settings.min_replicas, min(settings.max_replicas, count))


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _EPSILON))


def _num(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _ms(seconds: float) -> str:
    return f"{_num(seconds * 1000)} ms"


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


def _inputs(n: int) -> str:
    return f"{n} input" if n == 1 else f"{n} inputs"
