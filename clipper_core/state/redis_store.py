"""A state store in Redis, shared by every frontend and admin server (``redis://host:port/db``).

Layout (all keys under ``clipper:``; NUL separates the parts of a composite field)::

    clipper:apps            hash   app name -> JSON application
    clipper:links           hash   app name -> JSON list of linked model names, in link order
    clipper:models          hash   "name\\0version" -> JSON model (with "seq", its creation order)
    clipper:model_seq       string counter behind "seq"
    clipper:current         hash   model name -> current version
    clipper:replicas        hash   "name\\0version\\0id" -> JSON replica
    clipper:replica_ids     hash   "name\\0version" -> replica ids handed out so far (HINCRBY)
    clipper:policy:<app>    hash   uid -> policy state bytes
    clipper:feedback:<app>  list   JSON feedback, index = seq - 1 (never trimmed, kept after the app is deleted)
    clipper:feedback_seq    hash   app name -> last feedback seq
    clipper:frontends       hash   RPC address -> expiry (unix time)

Every committed write is announced on the channel ``clipper:changes`` as JSON ``{kind, name, version,
origin}``; each store runs one subscriber that turns other stores' announcements into change events, and
announces ``reload`` after it reconnects (Redis restarted: re-read everything). Redis being unreachable makes
calls fail fast with a 503 error naming the URL, never hang. Durability is Redis's: clipper's managed Redis
runs with the append-only file on (``appendfsync always``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from clipper_core.errors import AlreadyExists, ModelUnavailable, NotFound
from clipper_core.inputs import InputType
from clipper_core.state.base import StateStore
from clipper_core.state.records import Application, ChangeEvent, Feedback, Model, Replica

__all__ = ["RedisStateStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")
P = "clipper:"
APPS, LINKS, MODELS, MODEL_SEQ, CURRENT = P + "apps", P + "links", P + "models", P + "model_seq", P + "current"
REPLICAS, REPLICA_IDS, FEEDBACK_SEQ, FRONTENDS = P + "replicas", P + "replica_ids", P + "feedback_seq", P + "frontends"
CHANNEL = P + "changes"
SEP = "\0"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dump(record: Any, **extra: Any) -> str:
    data = dataclasses.asdict(record)
    if "input_type" in data:
        data["input_type"] = record.input_type.value
    data.update(extra)
    return json.dumps(data)


def _app(raw: str | bytes) -> Application:
    data = json.loads(raw)
    data["input_type"] = InputType(data["input_type"])
    return Application(**data)


def _model(raw: str | bytes) -> tuple[int, Model]:
    data = json.loads(raw)
    seq = data.pop("seq", 0)
    data["input_type"] = InputType(data["input_type"])
    data["labels"] = tuple(data["labels"])
    return seq, Model(**data)


def _replica(raw: str | bytes) -> Replica:
    data = json.loads(raw)
    data["input_type"] = InputType(data["input_type"])
    return Replica(**data)


class RedisStateStore(StateStore):
    """Redis-backed, shared by processes and hosts; see the module docstring for the layout."""

    name = "redis"
    shared = True

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self.origin = os.urandom(8).hex()
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def open(self) -> None:
        self._redis = aioredis.Redis.from_url(self.url, socket_connect_timeout=self.timeout,
                                              socket_timeout=self.timeout, decode_responses=False)
        await self._call(self._redis.ping)
        subscribed = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen(subscribed))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(subscribed.wait(), self.timeout)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError(f"RedisStateStore({self.url}) is not open")
        return self._redis

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return await fn(*args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise ModelUnavailable(f"the state store (Redis at {self.url}) is unreachable: {exc}") from None

    async def _announce(self, *events: ChangeEvent) -> None:
        for event in events:
            self._notify(event)
            with contextlib.suppress(Exception):  # committed already; other stores re-read on reconnect
                await self.r.publish(CHANNEL, json.dumps({"kind": event.kind, "name": event.name,
                                                          "version": event.version, "origin": self.origin}))

    async def _listen(self, subscribed: asyncio.Event) -> None:
        backoff, first = 0.1, True
        while True:
            pubsub = None
            try:
                pubsub = self.r.pubsub()
                await pubsub.subscribe(CHANNEL)
                subscribed.set()
                if not first:
                    log.info("reconnected to Redis at %s; re-reading everything", self.url)
                    self._notify(ChangeEvent("reload"))
                first, backoff = False, 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    data = json.loads(message["data"])
                    if data.get("origin") != self.origin:
                        self._notify(ChangeEvent(data["kind"], data.get("name", ""), data.get("version", "")))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lost the change feed from Redis at %s (%s); retrying in %.1f s", self.url, exc, backoff)
                await asyncio.sleep(backoff)  # reconnect back-off
                backoff = min(2.0, backoff * 2)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    async def _transaction(self, fn: Callable[[Any], Awaitable[T]], *watch: str) -> T:
        """Run ``fn(pipe)`` under WATCH of ``watch``; retry when another writer got there first."""
        async def run() -> T:
            async with self.r.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(*watch)
                        return await fn(pipe)
                    except WatchError:
                        continue
        return await self._call(run)

    # -- applications ---------------------------------------------------------------------------------
    async def add_app(self, app: Application) -> None:
        async def write(pipe: Any) -> None:
            if await pipe.hexists(APPS, app.name):
                raise AlreadyExists(f"application '{app.name}' already exists")
            pipe.multi()
            pipe.hset(APPS, app.name, _dump(app))
            pipe.hset(LINKS, app.name, "[]")
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", app.name))

    async def update_app(self, app: Application) -> None:
        async def write(pipe: Any) -> None:
            if not await pipe.hexists(APPS, app.name):
                raise NotFound(f"Application '{app.name}' does not exist")
            pipe.multi()
            pipe.hset(APPS, app.name, _dump(app))
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", app.name))

    async def delete_app(self, name: str) -> None:
        async def write(pipe: Any) -> None:
            if not await pipe.hexists(APPS, name):
                raise NotFound(f"Application '{name}' does not exist")
            pipe.multi()
            pipe.hdel(APPS, name)
            pipe.hdel(LINKS, name)
            pipe.delete(P + "policy:" + name)
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", name))

    async def get_app(self, name: str) -> Application | None:
        raw = await self._call(self.r.hget, APPS, name)
        return None if raw is None else _app(raw)

    async def list_apps(self) -> list[Application]:
        raw = await self._call(self.r.hgetall, APPS)
        return sorted((_app(v) for v in raw.values()), key=lambda a: a.name)

    # -- models ---------------------------------------------------------------------------------------
    async def add_model(self, model: Model, *, make_current: bool = True) -> None:
        field = model.name + SEP + model.version
        seq = await self._call(self.r.incr, MODEL_SEQ)

        async def write(pipe: Any) -> None:
            if await pipe.hexists(MODELS, field):
                raise AlreadyExists(f"model with name '{model.name}' and version '{model.version}' already exists")
            pipe.multi()
            pipe.hset(MODELS, field, _dump(model, seq=seq))
            if make_current:
                pipe.hset(CURRENT, model.name, model.version)
            await pipe.execute()
        await self._transaction(write, MODELS)
        events = [ChangeEvent("model", model.name, model.version)]
        if make_current:
            events.append(ChangeEvent("current_version", model.name))
        await self._announce(*events)

    async def update_model(self, model: Model) -> None:
        field = model.name + SEP + model.version

        async def write(pipe: Any) -> None:
            raw = await pipe.hget(MODELS, field)
            if raw is None:
                raise NotFound(f"model with name '{model.name}' and version '{model.version}' does not exist")
            seq, _ = _model(raw)
            pipe.multi()
            pipe.hset(MODELS, field, _dump(model, seq=seq))
            await pipe.execute()
        await self._transaction(write, MODELS)
        await self._announce(ChangeEvent("model", model.name, model.version))

    async def delete_model(self, name: str, version: str) -> None:
        field = name + SEP + version
        prefix = (field + SEP).encode()

        async def write(pipe: Any) -> tuple[bool, bool]:
            if not await pipe.hexists(MODELS, field):
                raise NotFound(f"model with name '{name}' and version '{version}' does not exist")
            current = await pipe.hget(CURRENT, name)
            replicas = [k for k in await pipe.hkeys(REPLICAS) if k.startswith(prefix)]
            pipe.multi()
            pipe.hdel(MODELS, field)
            was_current = current is not None and _text(current) == version
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
        raw = await self._call(self.r.hget, MODELS, name + SEP + version)
        return None if raw is None else _model(raw)[1]

    async def list_models(self, name: str | None = None) -> list[Model]:
        raw = await self._call(self.r.hgetall, MODELS)
        models = sorted((_model(v) for v in raw.values()), key=lambda sm: (sm[1].name, sm[0]))
        return [m for _, m in models if name is None or m.name == name]

    async def set_current_version(self, name: str, version: str) -> None:
        async def write(pipe: Any) -> None:
            if not await pipe.hexists(MODELS, name + SEP + version):
                raise NotFound(f"Requested version: {version} does not exist for model: {name}")
            pipe.multi()
            pipe.hset(CURRENT, name, version)
            await pipe.execute()
        await self._transaction(write, MODELS)
        await self._announce(ChangeEvent("current_version", name))

    async def get_current_version(self, name: str) -> str | None:
        raw = await self._call(self.r.hget, CURRENT, name)
        return None if raw is None else _text(raw)

    async def current_versions(self) -> dict[str, str]:
        raw = await self._call(self.r.hgetall, CURRENT)
        return {_text(k): _text(v) for k, v in raw.items()}

    # -- links ----------------------------------------------------------------------------------------
    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        async def write(pipe: Any) -> bool:
            raw = await pipe.hget(LINKS, app_name)
            if raw is None or not await pipe.hexists(APPS, app_name):
                raise NotFound(f"Application '{app_name}' does not exist")
            links = json.loads(raw)
            new = [m for m in dict.fromkeys(model_names) if m not in links]
            pipe.multi()
            pipe.hset(LINKS, app_name, json.dumps(links + new))
            await pipe.execute()
            return bool(new)
        if await self._transaction(write, LINKS, APPS):
            await self._announce(ChangeEvent("link", app_name))

    async def delete_links(self, app_name: str, model_names: list[str]) -> None:
        async def write(pipe: Any) -> None:
            raw = await pipe.hget(LINKS, app_name)
            if raw is None or not await pipe.hexists(APPS, app_name):
                raise NotFound(f"Application '{app_name}' does not exist")
            links = json.loads(raw)
            for m in model_names:
                if m not in links:
                    raise NotFound(f"model '{m}' is not linked to application '{app_name}'")
            pipe.multi()
            pipe.hset(LINKS, app_name, json.dumps([m for m in links if m not in set(model_names)]))
            await pipe.execute()
        await self._transaction(write, LINKS, APPS)
        if model_names:
            await self._announce(ChangeEvent("link", app_name))

    async def get_links(self, app_name: str) -> list[str]:
        raw = await self._call(self.r.hget, LINKS, app_name)
        if raw is None:
            raise NotFound(f"Application '{app_name}' does not exist")
        return list(json.loads(raw))

    # -- replicas -------------------------------------------------------------------------------------
    async def add_replica(self, replica: Replica) -> None:
        field = f"{replica.model_name}{SEP}{replica.model_version}{SEP}{replica.replica_id}"
        await self._call(self.r.hset, REPLICAS, field, _dump(replica))
        await self._announce(ChangeEvent("replica", replica.model_name, replica.model_version))

    async def delete_replica(self, model_name: str, model_version: str, replica_id: int) -> None:
        field = f"{model_name}{SEP}{model_version}{SEP}{replica_id}"
        if await self._call(self.r.hdel, REPLICAS, field):
            await self._announce(ChangeEvent("replica", model_name, model_version))

    async def list_replicas(self, model_name: str | None = None, model_version: str | None = None
                            ) -> list[Replica]:
        raw = await self._call(self.r.hgetall, REPLICAS)
        replicas = [_replica(v) for v in raw.values()]
        return sorted((r for r in replicas if (model_name is None or r.model_name == model_name)
                       and (model_version is None or r.model_version == model_version)),
                      key=lambda r: (r.model_name, r.model_version, r.replica_id))

    async def clear_replicas(self, frontend: str) -> None:
        raw = await self._call(self.r.hgetall, REPLICAS)
        gone = {k: _replica(v) for k, v in raw.items()}
        gone = {k: r for k, r in gone.items() if r.frontend == frontend}
        if not gone:
            return
        await self._call(self.r.hdel, REPLICAS, *gone)
        keys = sorted({(r.model_name, r.model_version) for r in gone.values()})
        await self._announce(*(ChangeEvent("replica", name, version) for name, version in keys))

    async def next_replica_id(self, model_name: str, model_version: str) -> int:
        return int(await self._call(self.r.hincrby, REPLICA_IDS, model_name + SEP + model_version, 1)) - 1

    # -- frontends ------------------------------------------------------------------------------------
    async def register_frontend(self, rpc_addr: str, ttl: float = 10.0) -> None:
        await self._call(self.r.hset, FRONTENDS, rpc_addr, str(time.time() + ttl))

    async def unregister_frontend(self, rpc_addr: str) -> None:
        await self._call(self.r.hdel, FRONTENDS, rpc_addr)

    async def list_frontends(self) -> list[str]:
        raw = await self._call(self.r.hgetall, FRONTENDS)
        now = time.time()
        expired = [k for k, v in raw.items() if float(v) <= now]
        if expired:
            await self._call(self.r.hdel, FRONTENDS, *expired)
        return sorted(_text(k) for k, v in raw.items() if float(v) > now)

    # -- policy state and feedback --------------------------------------------------------------------
    async def get_policy_state(self, app_name: str, uid: int) -> bytes | None:
        raw = await self._call(self.r.hget, P + "policy:" + app_name, str(uid))
        return None if raw is None else (raw if isinstance(raw, bytes) else raw.encode())

    async def put_policy_state(self, app_name: str, uid: int, state: bytes) -> None:
        await self._call(self.r.hset, P + "policy:" + app_name, str(uid), bytes(state))

    async def append_feedback(self, feedback: Feedback) -> int:
        async def write(pipe: Any) -> int:
            seq = int(await pipe.hget(FEEDBACK_SEQ, feedback.app_name) or 0) + 1
            record = dataclasses.replace(feedback, seq=seq, received_at=feedback.received_at or time.time())
            pipe.multi()
            pipe.hset(FEEDBACK_SEQ, feedback.app_name, seq)
            pipe.rpush(P + "feedback:" + feedback.app_name, _dump(record))
            await pipe.execute()
            return seq
        return await self._transaction(write, FEEDBACK_SEQ)

    async def list_feedback(self, app_name: str, *, after_seq: int = 0, limit: int = 1000) -> list[Feedback]:
        if limit <= 0:
            return []
        start = max(after_seq, 0)
        raw = await self._call(self.r.lrange, P + "feedback:" + app_name, start, start + limit - 1)
        return [Feedback(**json.loads(v)) for v in raw]
