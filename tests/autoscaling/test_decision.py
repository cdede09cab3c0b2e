"""The autoscaler's decision function, driven tick by tick with a fake clock (plain floats)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clipper_core.autoscaling.config import AutoscalingConfig
from clipper_core.autoscaling.decision import Decision, Figures, ScalerState, decide

TICK = 0.5


@dataclass(frozen=True)
class Settings:
    """Stands in for the config's autoscaling settings (it satisfies ``AutoscalingSettings``)."""

    min_replicas: int = 1
    max_replicas: int = 10
    target_inflight_per_replica: float | None = 80.0
    target_latency_fraction: float | None = None
    upscale_delay_s: float = 2.0
    downscale_delay_s: float = 10.0
    smoothing_window_s: float = 0.0


LATENCY = Settings(target_inflight_per_replica=None, target_latency_fraction=0.5)


def figures(at: float, **fields: Any) -> Figures:
    values: dict[str, Any] = dict(queued=0, inflight=0, arrival_rate=0.0, throughput=0.0, p99_latency_s=None,
                                  item_seconds=0.0, ready_replicas=1, cold_waiting=0, slo_s=1.0)
    values.update(fields)
    return Figures(at=at, **values)


class Scaler:
    """One model version's autoscaler: the state passed from tick to tick and a fake clock."""

    def __init__(self, config: Settings, replicas: int, now: float = 100.0) -> None:
        self.config = config
        self.state = ScalerState.initial(replicas)
        self.now = now
        self.decisions: list[Decision] = []
        self.times: list[float] = []

    @property
    def desired(self) -> int:
        return self.state.desired

    def tick(self, dt: float = TICK, **fields: Any) -> Decision:
        """Advance the clock by ``dt`` and decide on figures measured now; ready replicas default to desired."""
        self.now += dt
        fields.setdefault("ready_replicas", self.state.desired)
        self.state, decision = decide(self.config, figures(self.now, **fields), self.state, self.now)
        self.decisions.append(decision)
        self.times.append(self.now)
        return decision

    def change_times(self) -> list[float]:
        return [t for t, d in zip(self.times, self.decisions, strict=True) if d.changed]

    def run(self, seconds: float, **fields: Any) -> list[Decision]:
        """Tick every ``TICK`` for ``seconds`` with the same figures; the decisions that changed the count."""
        ticks = round(seconds / TICK)
        return [d for d in (self.tick(**fields) for _ in range(ticks)) if d.changed]


def test_steps_up_after_the_upscale_delay_and_not_before() -> None:
    scaler = Scaler(Settings(), replicas=1)
    first = scaler.tick(inflight=200)  # 200 / 80 → 3 wanted; the timer starts
    assert not first.changed and first.wanted == 3 and first.desired == 1
    for _ in range(3):  # 0.5, 1.0, 1.5 s above target
        assert not scaler.tick(inflight=200).changed
    up = scaler.tick(inflight=200)  # 2.0 s
    assert up.changed and up.desired == 3 and up.action == "up"


def test_a_dip_restarts_the_upscale_timer() -> None:
    scaler = Scaler(Settings(), replicas=1)
    assert not scaler.run(1.5, inflight=200)
    scaler.tick(inflight=10)  # back within target: the timer stops
    assert not scaler.run(1.5, inflight=200)
    assert scaler.run(1.0, inflight=200)[0].desired == 3


def test_upscale_jumps_straight_to_the_needed_count() -> None:
    scaler = Scaler(Settings(), replicas=1)
    changes = scaler.run(5, queued=300, inflight=400)  # 700 / 80 → 9
    assert [(d.previous, d.desired) for d in changes] == [(1, 9)]


def test_upscale_reason_names_the_figures() -> None:
    scaler = Scaler(Settings(), replicas=3)
    [up] = scaler.run(2.5, queued=212, inflight=200)
    assert up.reason == ("3 → 6 replicas: 412 outstanding inputs over 3 replicas (target 80/replica), "
                         "above target for 2.0 s (upscale delay 2 s)")
    assert up.load_per_replica == 412 / 3 and up.wanted == 6 and up.outstanding == 412


def test_throughput_floors_the_inflight_count() -> None:
    scaler = Scaler(Settings(), replicas=1)
    # 100 inputs/s at 40 ms each keep 4 replicas busy, 5 at 80%, though only 20 are outstanding at a time
    [up] = scaler.run(2.5, inflight=20, arrival_rate=100.0, item_seconds=0.04)
    assert up.desired == 5
    assert "100 inputs/s at 40 ms/input need 5 replicas at 80% utilisation" in up.reason


def test_steps_down_after_the_downscale_delay_gradually() -> None:
    scaler = Scaler(Settings(), replicas=8)
    assert not scaler.run(9.5, inflight=40)  # 1 wanted, below target for 9.5 s
    changes = scaler.run(40, inflight=40)
    assert [(d.previous, d.desired) for d in changes] == [(8, 4), (4, 2), (2, 1)]
    assert scaler.change_times() == [110.5, 120.5, 130.5]  # wanted since 100.5; each step restarts the timer
    assert "below target for 10.0 s (downscale delay 10 s); stepping down gradually towards 1" in changes[0].reason


def test_scale_from_zero_is_immediate() -> None:
    scaler = Scaler(Settings(min_replicas=0), replicas=0)
    decision = scaler.tick(queued=1, cold_waiting=1, ready_replicas=0)
    assert decision.changed and decision.desired == 1 and decision.action == "from_zero"
    assert decision.reason == "0 → 1 replicas: 1 input waiting with no replica (scale from zero)"


def test_scale_from_zero_goes_to_min_replicas_when_higher() -> None:
    scaler = Scaler(Settings(min_replicas=0, max_replicas=4), replicas=0)
    # not a config with min 2 (that is a bounds change): max(1, min) with min 0 is 1, then the load decides
    assert scaler.tick(cold_waiting=500, queued=500, ready_replicas=0).desired == 1
    assert [d.desired for d in scaler.run(2.5, queued=500)] == [4]


def test_to_zero_only_after_idleness_for_the_whole_delay() -> None:
    scaler = Scaler(Settings(min_replicas=0, downscale_delay_s=10), replicas=1)
    # a trickle: one input in flight every other tick keeps the smoothed load (and 1 replica) up
    for _ in range(40):
        scaler.tick()
        scaler.tick(inflight=1)
    assert scaler.desired == 1
    idle_from = scaler.now
    changes = scaler.run(30)
    assert [(d.previous, d.desired) for d in changes] == [(1, 0)]
    [when] = scaler.change_times()
    assert when - idle_from == 10.5  # the first idle tick is measured 0.5 s after the last busy one
    assert changes[0].reason == "1 → 0 replicas: no traffic for 10.0 s (downscale delay 10 s)"


def test_no_scale_to_zero_while_something_is_in_flight() -> None:
    scaler = Scaler(Settings(min_replicas=0, smoothing_window_s=0), replicas=1)
    # no smoothing, and nothing outstanding on most ticks, but an input arrives every 5 s
    for _ in range(12):
        scaler.run(4.5)
        scaler.tick(arrival_rate=0.2, inflight=1)
    assert scaler.desired == 1


def test_oscillating_load_is_damped() -> None:
    scaler = Scaler(Settings(smoothing_window_s=10.0, upscale_delay_s=2.0, downscale_delay_s=10.0), replicas=1)
    for second in range(60):
        scaler.run(1.0, inflight=400 if second % 2 == 0 else 0)
    changes = [d for d in scaler.decisions if d.changed]
    assert 1 <= len(changes) <= 2
    assert scaler.desired == 3  # ~200 outstanding on average / 80


def test_oscillating_load_without_smoothing_makes_no_change() -> None:
    scaler = Scaler(Settings(smoothing_window_s=0.0, upscale_delay_s=2.0, downscale_delay_s=10.0), replicas=3)
    for second in range(60):
        scaler.run(1.0, inflight=400 if second % 2 == 0 else 0)
    assert not [d for d in scaler.decisions if d.changed]


def test_no_downscale_within_the_downscale_delay_after_an_upscale() -> None:
    scaler = Scaler(Settings(downscale_delay_s=10.0), replicas=1)
    [up] = scaler.run(2.5, inflight=400)
    assert up.desired == 5
    assert not scaler.run(9.5, inflight=0)
    assert scaler.run(1, inflight=0)


def test_never_above_max() -> None:
    scaler = Scaler(Settings(max_replicas=4), replicas=1)
    [up] = scaler.run(10, inflight=10_000)
    assert up.desired == 4 and up.wanted == 125
    assert up.reason.endswith("(wanted 125, max_replicas 4)")


def test_never_below_min() -> None:
    scaler = Scaler(Settings(min_replicas=2), replicas=6)
    assert [d.desired for d in scaler.run(60)] == [3, 2]


def test_raising_min_is_an_immediate_scale_up() -> None:
    scaler = Scaler(Settings(min_replicas=1), replicas=1)
    scaler.run(5, inflight=10)
    scaler.config = replace(scaler.config, min_replicas=4)
    decision = scaler.tick(inflight=10)
    assert decision.changed and decision.desired == 4 and decision.action == "bounds"
    assert decision.reason == "1 → 4 replicas: min_replicas is 4"


def test_lowering_max_is_an_immediate_scale_down() -> None:
    scaler = Scaler(Settings(max_replicas=8), replicas=8)
    scaler.config = replace(scaler.config, max_replicas=3)
    decision = scaler.tick(inflight=2000)
    assert decision.desired == 3 and decision.reason == "8 → 3 replicas: max_replicas is 3"


def test_latency_target_scales_up_when_p99_is_above_it() -> None:
    scaler = Scaler(LATENCY, replicas=2)
    # p99 800 ms against 0.5 × 1 s: 2 × 0.8 / 0.5 → 4
    [up] = scaler.run(2.5, p99_latency_s=0.8, arrival_rate=50.0, item_seconds=0.01, inflight=10)
    assert up.desired == 4
    assert "p99 800 ms over 2 replicas (target 500 ms = 0.5 × SLO 1000 ms)" in up.reason


def test_latency_target_scales_down_when_well_below_it() -> None:
    scaler = Scaler(LATENCY, replicas=4)
    changes = scaler.run(40, p99_latency_s=0.1, arrival_rate=10.0, item_seconds=0.02, inflight=1)
    assert [(d.previous, d.desired) for d in changes] == [(4, 2), (2, 1)]


def test_latency_target_holds_near_target() -> None:
    scaler = Scaler(LATENCY, replicas=4)
    assert not scaler.run(30, p99_latency_s=0.45, arrival_rate=10.0, item_seconds=0.02, inflight=1)


def test_latency_target_never_below_what_the_throughput_needs() -> None:
    scaler = Scaler(LATENCY, replicas=6)
    # p99 alone would allow 1, but 200 inputs/s at 20 ms each need 5 replicas at 80%
    changes = scaler.run(40, p99_latency_s=0.01, arrival_rate=200.0, item_seconds=0.02, inflight=4)
    assert [d.desired for d in changes] == [5]


def test_no_traffic_means_min_replicas() -> None:
    scaler = Scaler(Settings(min_replicas=2), replicas=2)
    decision = scaler.tick()
    assert decision.wanted == 2 and not decision.changed
    assert decision.reason == "2 replicas: no traffic (min_replicas 2)"
    latency = Scaler(replace(LATENCY, min_replicas=1), replicas=3)
    assert latency.tick().wanted == 1


def test_hold_reasons_tell_how_long_a_change_has_been_wanted() -> None:
    scaler = Scaler(Settings(), replicas=1)
    scaler.tick(inflight=200)
    decision = scaler.tick(inflight=200)
    assert decision.reason == ("1 replica: 200 outstanding inputs over 1 replica (target 80/replica); "
                               "3 wanted for 0.5 s of the 2 s upscale delay")


def test_the_config_type_is_accepted() -> None:
    config = AutoscalingConfig(min_replicas=1, max_replicas=4)  # 4 outstanding per replica, upscale delay 3 s
    state = ScalerState.initial(1)
    for tick in range(1, 40):
        now = tick * TICK
        state, decision = decide(config, figures(now, queued=30, inflight=4, ready_replicas=state.desired), state, now)
    assert decision.desired == 4 and decision.wanted == 9


@st.composite
def loads(draw: st.DrawFn) -> list[tuple[float, Figures]]:
    """A sequence of (seconds since the previous tick, figures) with the figures' clock left to fill in."""
    n = draw(st.integers(min_value=1, max_value=80))
    steps = []
    for _ in range(n):
        dt = draw(st.sampled_from([0.1, 0.5, 0.5, 0.5, 1.0, 3.0]))
        queued = draw(st.sampled_from([0, 0, 1, 10, 100, 1000]))
        steps.append((dt, figures(0.0, queued=queued, inflight=draw(st.sampled_from([0, 0, 5, 50, 500])),
                                  arrival_rate=draw(st.sampled_from([0.0, 0.0, 1.0, 20.0, 300.0])),
                                  p99_latency_s=draw(st.sampled_from([None, 0.01, 0.2, 0.5, 2.0])),
                                  item_seconds=draw(st.sampled_from([0.0, 0.001, 0.05])),
                                  ready_replicas=draw(st.integers(min_value=0, max_value=12)),
                                  cold_waiting=draw(st.sampled_from([0, 0, queued])),
                                  slo_s=draw(st.sampled_from([0.1, 1.0])))))
    return steps


@st.composite
def configs(draw: st.DrawFn) -> Settings:
    low = draw(st.integers(min_value=0, max_value=4))
    inflight = draw(st.booleans())
    return Settings(min_replicas=low, max_replicas=draw(st.integers(min_value=max(1, low), max_value=12)),
                    target_inflight_per_replica=draw(st.sampled_from([1.0, 10.0, 80.0])) if inflight else None,
                    target_latency_fraction=None if inflight else draw(st.sampled_from([0.25, 0.5, 0.9])),
                    upscale_delay_s=draw(st.sampled_from([0.5, 2.0, 5.0])),
                    downscale_delay_s=draw(st.sampled_from([0.5, 10.0, 30.0])),
                    smoothing_window_s=draw(st.sampled_from([0.0, 2.0, 10.0])))


@settings(max_examples=300, deadline=None)
@given(config=configs(), steps=loads(), data=st.data())
def test_stays_within_bounds_and_changes_at_most_once_per_delay(config: Settings, steps: list[tuple[float, Figures]],
                                                                 data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=config.min_replicas, max_value=config.max_replicas))
    state, now = ScalerState.initial(start), 0.0
    last_change: float | None = None
    spacing = min(config.upscale_delay_s, config.downscale_delay_s)
    for dt, raw in steps:
        now += dt
        state, decision = decide(config, replace(raw, at=now), state, now)
        assert config.min_replicas <= decision.desired <= config.max_replicas
        assert decision.desired == state.desired
        assert decision.changed == (decision.desired != decision.previous)
        if not decision.changed:
            continue
        assert decision.reason.startswith(f"{decision.previous} → {decision.desired} replicas: ")
        if decision.action != "from_zero":
            assert last_change is None or now - last_change >= spacing - 1e-9
        last_change = now
