"""Rollouts in the management server (docs/rollouts.md): :class:`RolloutOperations`, what the admin API does to a
model's rollout (start, read, pause, resume, abort, promote), and the :class:`RolloutController`, which every
``interval`` seconds judges each active rollout on the query frontends' figures (their load reports, through the
store, so several frontends agree) with :func:`clipper_core.rollouts.decision.decide`, and advances it, promotes
the candidate (``set_current_version``: the atomic flip) or rolls it back.

The record in the store is the rollout's whole state: a restarted management server's controller resumes it where
it was (the step's clock is wall-clock time; the frontends' counts of the step survive, keyed by its ``step_id``).
Only changes are written (a new step, an end, an operation), each announced to the frontends; what the controller
sees meanwhile (the reason it holds, the live figures) is kept in memory and merged into ``get_rollout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clipper_core.context import RolloutsView, ServerContext
from clipper_core.errors import Conflict, ModelNotFound, ModelVersionNotFound, NotFound
from clipper_core.management.periodic import tick_forever
from clipper_core.rollouts.decision import apply, decide
from clipper_core.rollouts.figures import StepFigures
from clipper_core.rollouts.record import Rollout, read_rollouts
from clipper_core.rollouts.settings import RolloutSettings
from clipper_core.state import LoadFigures, StateStore, load_key

__all__ = ["RolloutController", "RolloutOperations"]

log = logging.getLogger(__name__)


class RolloutController:
    """Moves active rollouts on (see the module).

    :param clock: wall-clock seconds (``time.time``), injectable for tests
    """

    def __init__(self, store: StateStore, *, interval: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self.lock = asyncio.Lock()
        self._live: dict[str, dict[str, Any]] = {}

    def live(self, model: str) -> dict[str, Any] | None:
        return self._live.get(model)

    def forget(self, model: str) -> None:
        """Drop the last look at ``model`` (an operation changed its rollout since)."""
        self._live.pop(model, None)

    async def run(self) -> None:
        """Tick until cancelled (a store outage: the record is intact, the next tick tries again)."""
        await tick_forever(self.tick, self.interval, log, "rollout controller")

    async def tick(self) -> list[Rollout]:
        """Judge every active rollout once; returns those whose record changed."""
        changed: list[Rollout] = []
        async with self.lock:
            active = [r for r in read_rollouts(await self.store.list_rollouts()) if r.active]
            self._live = {r.model: v for r, v in ((r, self._live.get(r.model)) for r in active) if v is not None}
            if not active:
                return changed
            reports = list((await self.store.list_load()).values())
            for rollout in active:
                try:
                    if await self._judge(rollout, reports):
                        changed.append(rollout)
                except Exception as exc:  # one rollout's failure (a store write) does not hold up the others
                    log.warning("rollout of %s:%s not judged this time: %s", rollout.model, rollout.candidate, exc)
        return changed

    async def _judge(self, rollout: Rollout, reports: list[LoadFigures]) -> bool:
        now = self.clock()
        versions = {m.version for m in await self.store.list_models(rollout.model)}
        current = await self.store.get_current_version(rollout.model)
        ended = None
        if rollout.candidate not in versions:
            ended = f"aborted: the candidate version {rollout.candidate} was deleted"
        elif rollout.baseline not in versions:
            ended = f"aborted: the baseline version {rollout.baseline} was deleted"
        elif current != rollout.baseline:
            ended = (f"aborted: the current version became {current} (set_model_version, or a deploy that made "
                     "its version current) while the rollout ran; the controller does not override it")
        if ended is not None:
            rollout.note("abort", now, ended)  # (with the share it had)
            rollout.state, rollout.ended_at = "aborted", now
            await self.store.put_rollout(rollout.to_dict())
            return True
        candidate = _step_figures(reports, rollout, rollout.candidate)
        baseline = _step_figures(reports, rollout, rollout.baseline)
        verdict = decide(rollout, candidate, now)
        figures = {"candidate": candidate.summary(), "baseline": baseline.summary()}
        self._live[rollout.model] = {"reason": verdict.reason, "figures": figures, "at": now,
                                     "step_id": rollout.step_id}
        if verdict.action == "promote":
            await self.store.set_current_version(rollout.model, rollout.candidate)
        rollout.figures = figures
        if not apply(rollout, verdict, candidate, now):
            return False
        log.info("rollout of %s:%s: %s", rollout.model, rollout.candidate, verdict.reason)
        await self.store.put_rollout(rollout.to_dict())
        return True


def _step_figures(reports: list[LoadFigures], rollout: Rollout, version: str) -> StepFigures:
    """A version's counts in the rollout's current step, over every frontend's report."""
    figures = StepFigures()
    key = load_key(rollout.model, version)
    for report in reports:
        version_figures = report.get(key)
        if version_figures:
            figures.add_flat(version_figures, rollout.salt, rollout.step_id)
    return figures


class RolloutOperations:
    """What the admin API does to rollouts; every change under the controller's lock.

    :param controller: the controller of this process (its lock and live view)
    """

    @classmethod
    def of(cls, ctx: ServerContext) -> RolloutOperations:
        return cls(ctx.store, ctx.rollouts)

    def __init__(self, store: StateStore, controller: RolloutsView | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.controller = controller
        self.lock = controller.lock if controller is not None else asyncio.Lock()
        self.clock = clock

    async def start(self, model: str, version: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Start a rollout of ``version`` (registered, not current) of ``model``, against its current version."""
        checked = RolloutSettings.from_dict(settings)
        async with self.lock:
            versions = {m.version for m in await self.store.list_models(model)}
            if not versions:
                raise ModelNotFound(model)
            if version not in versions:
                raise ModelVersionNotFound(model, version)
            current = await self.store.get_current_version(model)
            if current is None:
                raise Conflict(f"model '{model}' has no current version for the candidate to replace; make one "
                               "current first (set_model_version)")
            if version == current:
                raise Conflict(f"version '{version}' is already the current version of model '{model}'; roll out "
                               "a version that is not current (deploy it with make_current=False)")
            candidate = next(m for m in await self.store.list_models(model) if m.version == version)
            base = next(m for m in await self.store.list_models(model) if m.version == current)
            if candidate.input_type is not base.input_type:
                raise Conflict(f"version '{version}' of model '{model}' takes {candidate.input_type.value}, the "
                               f"current version '{current}' {base.input_type.value}; the apps linked to the "
                               "model would send it inputs it cannot take")
            cold = (candidate.autoscaling or {}).get("min_replicas") == 0 and checked.mode == "canary"
            if not cold and not await self.store.list_replicas(model, version):
                raise Conflict(f"version '{version}' of model '{model}' has no connected replica, so every query "
                               "it took would get the default output (or, mirrored, be dropped); start its "
                               "replicas (deploy it with make_current=False) and wait until they connect")
            existing = await self.store.get_rollout(model)
            if existing is not None and Rollout.from_dict(existing).active:
                raise Conflict(f"model '{model}' already has an active rollout (of version "
                               f"'{existing['candidate']}', {existing['state']}); abort or promote it first")
            now = self.clock()
            rollout = Rollout(model, version, current, checked, step_started_at=now, started_at=now)
            share = f"{checked.steps[0]:g}%"
            rollout.note("start", now, f"started: {version} {'mirrored' if checked.mode == 'shadow' else 'takes'} "
                         f"{share} of the queries of {model} (current: {current})")
            await self.store.put_rollout(rollout.to_dict())
        return self._view(rollout)

    async def get(self, model: str) -> dict[str, Any]:
        return self._view(await self._rollout(model))

    async def list(self) -> list[dict[str, Any]]:
        return [self._view(Rollout.from_dict(r)) for r in await self.store.list_rollouts()]

    async def pause(self, model: str) -> dict[str, Any]:
        return await self._change(model, "pause", self._pause)

    async def resume(self, model: str) -> dict[str, Any]:
        return await self._change(model, "resume", self._resume)

    async def abort(self, model: str) -> dict[str, Any]:
        return await self._change(model, "abort", self._abort)

    async def promote(self, model: str) -> dict[str, Any]:
        return await self._change(model, "promote", self._promote)

    # -- the changes --------------------------------------------------------------------------------------
    async def _pause(self, rollout: Rollout, now: float) -> str:
        if rollout.state == "paused":
            raise Conflict(f"the rollout of model '{rollout.model}' is paused already")
        rollout.state = "paused"
        return f"paused by an operator at step {rollout.step + 1}"

    async def _resume(self, rollout: Rollout, now: float) -> str:
        if rollout.state != "paused":
            raise Conflict(f"the rollout of model '{rollout.model}' is not paused ({rollout.state})")
        rollout.state = "running"
        rollout.step_id += 1  # the step starts over, its figures from zero
        rollout.step_started_at = now
        return f"resumed by an operator: step {rollout.step + 1} starts over"

    async def _abort(self, rollout: Rollout, now: float) -> str:
        rollout.state, rollout.ended_at = "aborted", now
        return f"aborted by an operator at step {rollout.step + 1}; {rollout.baseline} keeps every query"

    async def _promote(self, rollout: Rollout, now: float) -> str:
        await self.store.set_current_version(rollout.model, rollout.candidate)
        rollout.state, rollout.ended_at = "promoted", now
        return f"promoted by an operator at step {rollout.step + 1}: {rollout.candidate} is the current version"

    async def _change(self, model: str, event: str, change: Callable[[Rollout, float], Any]) -> dict[str, Any]:
        async with self.lock:
            rollout = await self._rollout(model)
            if not rollout.active:
                raise Conflict(f"the rollout of model '{model}' has ended ({rollout.state}: {rollout.reason}); "
                               f"there is nothing to {event}")
            now = self.clock()
            share = rollout.share
            reason = await change(rollout, now)
            rollout.note(event, now, reason)
            rollout.history[-1]["share"] = share  # the share it had when the operator acted
            await self.store.put_rollout(rollout.to_dict())
            self._forget_live(model)
        return self._view(rollout)

    def _forget_live(self, model: str) -> None:
        """The controller's last look is older than this change: until it looks again, the record speaks."""
        if self.controller is not None:
            self.controller.forget(model)

    async def _rollout(self, model: str) -> Rollout:
        record = await self.store.get_rollout(model)
        if record is None:
            raise NotFound(f"model '{model}' has no rollout; start one with start_rollout")
        return Rollout.from_dict(record)

    def _view(self, rollout: Rollout) -> dict[str, Any]:
        view = rollout.view()
        live = self.controller.live(rollout.model) if self.controller is not None and rollout.active else None
        if live is not None and live.get("step_id") == rollout.step_id:
            view.update(reason=live["reason"], figures=live["figures"], judged_at=live["at"])
        return view

