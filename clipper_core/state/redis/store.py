"""The Redis state store's reads and writes (``redis://[:password@]host:port/db``), shared by every frontend
and admin server. The key layout is :mod:`clipper_core.state.redis.layout`; change announcements are
:mod:`clipper_core.state.redis.feed`; timeouts and the 503 are :mod:`clipper_core.state.redis.connection`.

Writes: a write whose precondition must hold (no duplicate, the app or version exists) runs as WATCH + reads
+ MULTI/EXEC and retries when another writer touched a watched key; the others are one command or one
MULTI/EXEC. Appending feedback is ``MULTI HINCRBY clipper:feedback_seq RPUSH clipper:feedback:<app> EXEC``, so
a list index is always its seq and :meth:`RedisStateStore.list_feedback` is one LRANGE. After each committed
write the store tells its own subscribers, then every other store through the change feed.

Durability is Redis's: :meth:`RedisStateStore.open` does not configure it (clipper's managed Redis runs with
``appendonly yes`` and ``appendfsync always``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from clipper_core.config import Config
from clipper_core.errors import AlreadyExists, AppNotFound, ModelVersionNotFound, NotFound, VersionNotFound
from clipper_core.state import codec
from clipper_core.state.base import StateStore
from clipper_core.state.records import ApiKey, Application, ChangeEvent, Feedback, LoadFigures, Model, Replica
from clipper_core.state.redis import connection, frontends, layout, load
from clipper_core.state.redis.connection import RedisUnavailable, redact
from clipper_core.state.redis.feed import ChangeFeed
from clipper_core.state.redis.layout import (
    API_KEYS,
    APPS,
    CURRENT,
    FEEDBACK_SEQ,
    FRONTENDS,
    LINKS,
    LOAD,
    MODEL_SEQ,
    MODELS,
    REPLICA_IDS,
    REPLICAS,
    ROLLOUTS,
    SEP,
    feedback_key,
    model_field,
    policy_key,
    replica_field,
    text,
)

__all__ = ["RedisStateStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisStateStore(StateStore):
    """Redis-backed and shared by processes and hosts; see :mod:`clipper_core.state.redis.layout` for the layout.

    ``timeout`` bounds connecting and every reply (seconds): an unreachable Redis costs at most about that
    long per call."""

    name = "redis"
    shared = True
    url_schemes = ("redis", "rediss", "unix")

    @classmethod
    def from_url(cls, url: str, config: Config) -> RedisStateStore:
        return cls(url)

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self.origin = os.urandom(8).hex()
        """Tags this store's announcements, so its subscriber task skips them (they were delivered already)."""
        self._redis: aioredis.Redis | None = None
        self._feed: ChangeFeed | None = None

    def __repr__(self) -> str:
        return f"RedisStateStore({redact(self.url)!r})"

    # -- lifecycle ------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, check that Redis answers and start the change feed (subscribed when this returns).

        Raises :class:`RedisUnavailable` when Redis cannot be reached within ``timeout``."""
        if self._redis is not None:
            return
        # One immediate retry: after a Redis restart every pooled connection is stale, and its first command must
        # go out again on a fresh one, not fail. During a real outage this costs one more fast failure.
        self._redis = connection.client(self.url, self.timeout, retries=1)
        self._feed = ChangeFeed(self.url, self.timeout, self.origin, self._redis, self._notify)
        try:
            await self._call(self._redis.ping)
            await self._feed.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the change feed and disconnect. Safe to call twice."""
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.stop()
        client, self._redis = self._redis, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    @property
    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._redis

    def _unavailable(self, exc: BaseException) -> RedisUnavailable:
        return connection.unavailable(self.url, exc)

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``fn(*args)``, turning Redis failures into :class:`RedisUnavailable` (503)."""
        return await connection.call(self.url, fn, *args)

    async def _transaction(self, fn: Callable[[Any], Awaitable[T]], *watch: str) -> T:
        """:func:`connection.transaction` on this store's client."""
        return await connection.transaction(self._r, self.url, fn, *watch)

    async def _announce(self, *events: ChangeEvent) -> None:
        """Tell this store's subscribers now, then every other store through the change feed."""
        for event in events:
            self._notify(event)
        if self._feed is not None:
            await self._feed.publish(*events)

    # -- applications ---------------------------------------------------------------------------------
    async def add_app(self, app: Application) -> None:
        record = layout.dump(app)

        async def write(pipe: Any) -> None:
            if await pipe.hexists(APPS, app.name):
                raise AlreadyExists(f"application '{app.name}' already exists")
            pipe.multi()
            pipe.hset(APPS, app.name, record)
            pipe.hset(LINKS, app.name, "[]")
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", app.name))

    async def update_app(self, app: Application) -> None:
        record = layout.dump(app)

        async def write(pipe: Any) -> None:
            old = await pipe.hget(APPS, app.name)
            if old is None:
                raise AppNotFound(app.name)
            pipe.multi()
            pipe.hset(APPS, app.name, record)
            if not layout.read_app(old).same_policy(app):
                pipe.delete(policy_key(app.name))
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", app.name))

    async def delete_app(self, name: str) -> None:
        async def write(pipe: Any) -> bool:
            if not await pipe.hexists(APPS, name):
                raise AppNotFound(name)
            keys = [k for k, v in (await pipe.hgetall(API_KEYS)).items() if layout.read_api_key(v).app_name == name]
            pipe.multi()
            pipe.hdel(APPS, name)
            pipe.hdel(LINKS, name)
            pipe.delete(policy_key(name))  # feedback stays: it is never lost
            if keys:
                pipe.hdel(API_KEYS, *keys)
            await pipe.execute()
            return bool(keys)
        had_keys = await self._transaction(write, APPS, API_KEYS)
        events = [ChangeEvent("app", name)]  # every store hears it: Clipper's lost "del" is gone
        if had_keys:
            events.append(ChangeEvent("api_key", name))
        await self._announce(*events)

    async def get_app(self, name: str) -> Application | None:
        raw = await self._call(self._r.hget, APPS, name)
        return None if raw is None else layout.read_app(raw)

    async def list_apps(self) -> list[Application]:
        raw = await self._call(self._r.hgetall, APPS)
        return sorted((layout.read_app(v) for v in raw.values()), key=lambda a: a.name)

    # -- models ---------------------------------------------------------------------------------------
    async def add_model(self, model: Model, *, make_current: bool = True) -> None:
        field = model_field(model.name, model.version)
        layout.dump(model)  # fail on an unstorable record before taking a seq
        seq = await self._call(self._r.incr, MODEL_SEQ)  # a gap after a duplicate is harmless: only order counts
        record = layout.dump(model, seq=seq)

        async def write(pipe: Any) -> None:
            if await pipe.hexists(MODELS, field):
                raise AlreadyExists(f"model with name '{model.name}' and version '{model.version}' already exists")
            pipe.multi()
            pipe.hset(MODELS, field, record)
            if make_current:
                pipe.hset(CURRENT, model.name, model.version)
            await pipe.execute()
        await self._transaction(write, MODELS)
        events = [ChangeEvent("model", model.name, model.version)]
        if make_current:
            events.append(ChangeEvent("current_version", model.name))
        await self._announce(*events)

    async def update_model(self, model: Model) -> None:
        field = model_field(model.name, model.version)

        async def write(pipe: Any) -> None:
            raw = await pipe.hget(MODELS, field)
            if raw is None:
                raise ModelVersionNotFound(model.name, model.version)
            seq, _ = layout.read_model(raw)  # keep the creation order
            pipe.multi()
            pipe.hset(MODELS, field, layout.dump(model, seq=seq))
            await pipe.execute()
        await self._transaction(write, MODELS)
        await self._announce(ChangeEvent("model", model.name, model.version))

    async def delete_model(self, name: str, version: str) -> None:
        field = model_field(name, version)
        prefix = (field + SEP).encode()

        async def write(pipe: Any) -> tuple[bool, bool]:
            if not await pipe.hexists(MODELS, field):
                raise ModelVersionNotFound(name, version)
            current = await pipe.hget(CURRENT, name)
            replicas = [k for k in await pipe.hkeys(REPLICAS) if k.startswith(prefix)]
            was_current = current is not None and text(current) == version
            pipe.multi()
            pipe.hdel(MODELS, field)
            if was_current:
                pipe.hdel(CURRENT, name)
            if replicas:
                pipe.hdel(REPLICAS, *replicas)
            await pipe.execute()
            return was_current, bool(replicas)
        was_current, had_replicas = await self._transaction(write, MODELS, CURRENT, REPLICAS)
        events = [ChangeEvent("model", name, version)]
        if was_current:
            events.append(ChangeEvent("current_version", name))
        if had_replicas:
            events.append(ChangeEvent("replica", name, version))
        await self._announce(*events)

    async def get_model(self, name: str, version: str) -> Model | None:
        raw = await self._call(self._r.hget, MODELS, model_field(name, version))
        return None if raw is None else layout.read_model(raw)[1]

    async def list_models(self, name: str | None = None) -> list[Model]:
        raw = await self._call(self._r.hgetall, MODELS)
        models = sorted((layout.read_model(v) for v in raw.values()), key=lambda sm: (sm[1].name, sm[0]))
        return [m for _, m in models if name is None or m.name == name]

    async def set_current_version(self, name: str, version: str) -> None:
        async def write(pipe: Any) -> None:
            if not await pipe.hexists(MODELS, model_field(name, version)):
                raise VersionNotFound(name, version)
            pipe.multi()
            pipe.hset(CURRENT, name, version)
            await pipe.execute()
        await self._transaction(write, MODELS)
        await self._announce(ChangeEvent("current_version", name))

    async def get_current_version(self, name: str) -> str | None:
        raw = await self._call(self._r.hget, CURRENT, name)
        return None if raw is None else text(raw)

    async def current_versions(self) -> dict[str, str]:
        raw = await self._call(self._r.hgetall, CURRENT)
        return {text(k): text(v) for k, v in sorted(raw.items())}

    # -- rollouts ------------------------------------------------------------------------------------
    async def put_rollout(self, rollout: dict[str, Any]) -> None:
        model, record = self._encode_rollout(rollout)  # fail before any I/O
        await self._call(self._r.hset, ROLLOUTS, model, record)
        await self._announce(ChangeEvent("rollout", model))

    async def get_rollout(self, model: str) -> dict[str, Any] | None:
        raw = await self._call(self._r.hget, ROLLOUTS, model)
        return None if raw is None else codec.loads(raw)

    async def list_rollouts(self) -> list[dict[str, Any]]:
        raw = await self._call(self._r.hgetall, ROLLOUTS)
        return [codec.loads(raw[k]) for k in sorted(raw, key=text)]

    async def delete_rollout(self, model: str) -> None:
        if await self._call(self._r.hdel, ROLLOUTS, model):
            await self._announce(ChangeEvent("rollout", model))

    # -- links ----------------------------------------------------------------------------------------
    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        async def write(pipe: Any) -> bool:
            raw = await pipe.hget(LINKS, app_name)
            if raw is None:
                raise AppNotFound(app_name)
            links = json.loads(raw)
            new = [m for m in dict.fromkeys(model_names) if m not in links]
            if not new:
                await pipe.reset()
                return False
            pipe.multi()
            pipe.hset(LINKS, app_name, json.dumps(links + new))
            await pipe.execute()
            return True
        if await self._transaction(write, LINKS):
            await self._announce(ChangeEvent("link", app_name))

    async def delete_links(self, app_name: str, model_names: list[str]) -> None:
        async def write(pipe: Any) -> None:
            raw = await pipe.hget(LINKS, app_name)
            if raw is None:
                raise AppNotFound(app_name)
            links = json.loads(raw)
            for m in model_names:
                if m not in links:
                    raise NotFound(f"model '{m}' is not linked to application '{app_name}'")
            gone = set(model_names)
            pipe.multi()
            pipe.hset(LINKS, app_name, json.dumps([m for m in links if m not in gone]))
            await pipe.execute()
        await self._transaction(write, LINKS)
        if model_names:
            await self._announce(ChangeEvent("link", app_name))

    async def get_links(self, app_name: str) -> list[str]:
        raw = await self._call(self._r.hget, LINKS, app_name)
        if raw is None:
            raise AppNotFound(app_name)
        return list(json.loads(raw))

    # -- API keys -----------------------------------------------------------------------------------
    # One hash of every key: listing one app's keys reads them all, which is cheap at the counts API keys come in
    # (the frontends read them only when the change feed says they changed).
    async def add_api_key(self, key: ApiKey) -> None:
        record = layout.dump(key)  # fail on an unstorable record before anything is sent

        async def write(pipe: Any) -> None:
            if not await pipe.hexists(APPS, key.app_name):
                raise AppNotFound(key.app_name)
            if await pipe.hexists(API_KEYS, key.key_id):
                raise AlreadyExists(f"API key '{key.key_id}' already exists")
            pipe.multi()
            pipe.hset(API_KEYS, key.key_id, record)
            await pipe.execute()
        await self._transaction(write, APPS, API_KEYS)
        await self._announce(ChangeEvent("api_key", key.app_name))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        raw = await self._call(self._r.hget, API_KEYS, key_id)
        return None if raw is None else layout.read_api_key(raw)

    async def list_api_keys(self, app_name: str | None = None) -> list[ApiKey]:
        raw = await self._call(self._r.hgetall, API_KEYS)
        keys = [layout.read_api_key(v) for v in raw.values()]
        return sorted((k for k in keys if app_name is None or k.app_name == app_name),
                      key=lambda k: (k.app_name, k.created_at, k.key_id))

    async def delete_api_key(self, key_id: str) -> bool:
        async def write(pipe: Any) -> str | None:
            raw = await pipe.hget(API_KEYS, key_id)
            if raw is None:
                await pipe.reset()
                return None
            pipe.multi()
            pipe.hdel(API_KEYS, key_id)
            await pipe.execute()
            return layout.read_api_key(raw).app_name
        app_name = await self._transaction(write, API_KEYS)
        if app_name is None:
            return False
        await self._announce(ChangeEvent("api_key", app_name))
        return True

    # -- replicas -------------------------------------------------------------------------------------
    async def add_replica(self, replica: Replica) -> None:
        field = replica_field(replica.model_name, replica.model_version, replica.replica_id)
        await self._call(self._r.hset, REPLICAS, field, layout.dump(replica))
        await self._announce(ChangeEvent("replica", replica.model_name, replica.model_version))

    async def delete_replica(self, model_name: str, model_version: str, replica_id: int) -> None:
        field = replica_field(model_name, model_version, replica_id)
        if await self._call(self._r.hdel, REPLICAS, field):
            await self._announce(ChangeEvent("replica", model_name, model_version))

    async def list_replicas(self, model_name: str | None = None, model_version: str | None = None
                            ) -> list[Replica]:
        raw = await self._call(self._r.hgetall, REPLICAS)
        replicas = [layout.read_replica(v) for v in raw.values()]
        return sorted((r for r in replicas if (model_name is None or r.model_name == model_name)
                       and (model_version is None or r.model_version == model_version)),
                      key=lambda r: (r.model_name, r.model_version, r.replica_id))

    async def clear_replicas(self, frontend: str) -> None:
        async def write(pipe: Any) -> list[tuple[str, str]]:
            gone = {k: layout.read_replica(v) for k, v in (await pipe.hgetall(REPLICAS)).items()}
            gone = {k: r for k, r in gone.items() if r.frontend == frontend}
            if not gone:
                await pipe.reset()
                return []
            pipe.multi()
            pipe.hdel(REPLICAS, *gone)
            await pipe.execute()
            return sorted({(r.model_name, r.model_version) for r in gone.values()})
        keys = await self._transaction(write, REPLICAS)
        if keys:
            await self._announce(*(ChangeEvent("replica", name, version) for name, version in keys))

    async def next_replica_id(self, model_name: str, model_version: str) -> int:
        return int(await self._call(self._r.hincrby, REPLICA_IDS, model_field(model_name, model_version), 1)) - 1

    # -- query frontends ------------------------------------------------------------------------------
    async def register_frontend(self, rpc_addr: str, ttl: float = 10.0) -> None:
        await self._call(frontends.register, self._r, rpc_addr, ttl)

    async def unregister_frontend(self, rpc_addr: str) -> None:
        await self._call(self._r.hdel, FRONTENDS, rpc_addr)

    async def list_frontends(self) -> list[str]:
        """Live frontends, sorted; expired registrations are deleted (only if nobody refreshed them meanwhile)."""
        return await self._transaction(frontends.live, FRONTENDS)

    # -- load reports ---------------------------------------------------------------------------------
    async def put_load(self, frontend: str, figures: LoadFigures, ttl: float = 5.0) -> None:
        await self._call(load.put, self._r, frontend, figures, ttl)

    async def list_load(self) -> dict[str, LoadFigures]:
        """Current reports by frontend; expired ones are deleted (only if nobody replaced them meanwhile)."""
        return await self._transaction(load.live, LOAD)

    # -- policy state and feedback --------------------------------------------------------------------
    async def get_policy_state(self, app_name: str, uid: int) -> bytes | None:
        raw = await self._call(self._r.hget, policy_key(app_name), str(uid))
        return None if raw is None else (raw if isinstance(raw, bytes) else raw.encode())

    async def put_policy_state(self, app_name: str, uid: int, state: bytes) -> None:
        await self._call(self._r.hset, policy_key(app_name), str(uid), bytes(state))

    async def append_feedback(self, feedback: Feedback) -> int:
        payload = layout.dump_feedback(dataclasses.replace(feedback, received_at=feedback.received_at or time.time()))

        async def write() -> int:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hincrby(FEEDBACK_SEQ, feedback.app_name, 1)
                pipe.rpush(feedback_key(feedback.app_name), payload)
                seq, length = await pipe.execute()
            if int(seq) != int(length):  # only if someone edited the keys by hand
                log.error("feedback of '%s': seq %s but %s items in %s", feedback.app_name, seq, length,
                          feedback_key(feedback.app_name))
            return int(length)
        return await self._call(write)

    async def list_feedback(self, app_name: str, *, after_seq: int = 0, limit: int = 1000) -> list[Feedback]:
        if limit <= 0:
            return []
        start = max(after_seq, 0)
        raw = await self._call(self._r.lrange, feedback_key(app_name), start, start + limit - 1)
        return [layout.read_feedback(v, start + 1 + i) for i, v in enumerate(raw)]
