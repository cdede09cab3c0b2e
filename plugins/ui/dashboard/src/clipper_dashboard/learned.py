"""What an app's selection policy has learned for one user: the policy's own description of the state
(:meth:`~clipper_core.interfaces.SelectionPolicy.describe_state`: a bandit's probabilities or pulls per model) and
the state's JSON, as the state store holds it."""

from __future__ import annotations

from typing import Any

import orjson

from clipper_core.context import ServerContext
from clipper_core.errors import AppNotFound
from clipper_core.interfaces import SelectionPolicy

__all__ = ["MAX_STATE_BYTES", "learned"]

MAX_STATE_BYTES = 64 * 1024
"""A stored state larger than this is described but not sent whole (a LinUCB state grows with its features)."""


async def learned(ctx: ServerContext, app_name: str, uid: int) -> dict[str, Any]:
    """The policy's figures per linked model for ``uid``, and where they come from: ``store`` (what feedback
    taught so far) or ``initial`` (no feedback yet from this user: what the policy starts from)."""
    app = await ctx.store.get_app(app_name)
    if app is None:
        raise AppNotFound(app_name)
    models = await ctx.store.get_links(app_name)
    policy = _policy(ctx, app_name)
    answer: dict[str, Any] = {"app": app_name, "uid": uid, "policy": app.policy, "models": models,
                              "needs_state": False, "source": None, "figures": {}, "state": None,
                              "state_bytes": 0}
    if policy is None:
        policy = ctx.registry.policies.get(app.policy)(app, app.policy_config)
    if not policy.needs_state:
        return answer  # a stateless policy (the default one): nothing is learned per user
    raw = await ctx.store.get_policy_state(app_name, uid)
    state = policy.loads_state(raw) if raw is not None else policy.initial_state(list(models))
    answer.update(needs_state=True, source="store" if raw is not None else "initial",
                  figures=policy.describe_state(state, list(models)), state_bytes=len(raw) if raw else 0)
    if raw is not None and len(raw) <= MAX_STATE_BYTES:
        answer["state"] = orjson.loads(raw)
    return answer


def _policy(ctx: ServerContext, app_name: str) -> SelectionPolicy | None:
    """The policy instance this process serves the app with, when it runs the query path (its config as loaded)."""
    path = ctx.query_path
    if path is None:
        return None
    rt = path.snapshot.apps.get(app_name)
    return rt.policy if rt is not None else None
