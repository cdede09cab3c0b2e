"""What the query path keeps so that policies learn from feedback: per-(app, user) policy states (a bounded
cache over the state store) and the recent predictions that feedback is joined with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from clipper_core.config import Config
from clipper_core.interfaces import Query
from clipper_core.serving.app_runtime import AppRuntime
from clipper_core.serving.cache_keys import item_key
from clipper_core.serving.combine import arrived
from clipper_core.serving.recent import RecentPredictions
from clipper_core.state import StateStore

__all__ = ["Learner"]

AskEveryModel = Callable[[AppRuntime, Any, int], Awaitable[tuple[Query, dict[str, Any]]]]


class Learner:
    """Joins feedback with what the models said and persists the policy's new state.

    :param ask_every_model: queries every linked model for one input (when no prediction is remembered)
    """

    def __init__(self, store: StateStore, config: Config, ask_every_model: AskEveryModel) -> None:
        self.store = store
        self.recent = RecentPredictions(config.recent_predictions)
        self.states_per_app = config.policy_states_per_app
        self._ask_every_model = ask_every_model

    async def state(self, rt: AppRuntime, uid: int, fresh: bool = False) -> Any:
        """Per-(app, user) policy state: from the in-memory cache unless ``fresh``, else from the store."""
        policy = rt.policy
        assert policy is not None
        states = rt.states
        if not fresh and uid in states:
            states.move_to_end(uid)
            return states[uid]
        raw = await self.store.get_policy_state(rt.app.name, uid)
        state = policy.loads_state(raw) if raw is not None else policy.initial_state(list(rt.linked))
        states[uid] = state
        if len(states) > self.states_per_app:
            states.popitem(last=False)
        return state

    async def observe(self, rt: AppRuntime, uid: int, item: Any, label: Any, query_id: int | None) -> None:
        """Teach the policy: join the feedback with the predictions made for that query (by query id, else by
        input), re-query every linked model only when none are remembered, then persist the new state."""
        policy = rt.policy
        assert policy is not None
        found = self.recent.find(rt.app.name, uid, item_key(item), query_id)
        if found is None:
            query, plan = await self._ask_every_model(rt, item, uid)
            predictions, _ = arrived(plan)
        else:
            query, predictions = found
        async with rt.state_lock:
            state = await self.state(rt, uid, fresh=self.store.shared)
            state = policy.observe(state, query, label, predictions)
            rt.states[uid] = state
            await self.store.put_policy_state(rt.app.name, uid, policy.dumps_state(state))
