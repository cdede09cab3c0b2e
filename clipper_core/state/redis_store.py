"""A state store in Redis, shared by every frontend and admin server (``redis://[:password@]host:port/db``).

Layout (every key under ``clipper:``; NUL separates the parts of a composite hash field)::

    clipper:apps              hash    app name -> JSON application
    clipper:links             hash    app name -> JSON list of linked model names, in link order
                                      (present exactly while the app exists)
    clipper:models            hash    "name\\0version" -> JSON model plus "seq" (its creation order)
    clipper:model_seq         string  counter behind a model's "seq" (INCR)
    clipper:current           hash    model name -> current version
    clipper:replicas          hash    "name\\0version\\0replica id" -> JSON replica
    clipper:replica_ids       hash    "name\\0version" -> replica ids handed out so far (HINCRBY, never reset)
    clipper:policy:<app>      hash    uid -> policy state bytes (deleted with the app)
    clipper:feedback:<app>    list    JSON feedback; the item at index i has seq i + 1 (never trimmed, and
                                      kept when the app is deleted)
    clipper:feedback_seq      hash    app name -> last feedback seq (= the list's length)
    clipper:frontends         hash    query frontend RPC address -> expiry (Redis server clock, unix seconds)
    clipper:changes           channel change announcements (PUBLISH), see below

Writes: a write whose precondition must hold (no duplicate, the app or version exists) runs as WATCH + reads
+ MULTI/EXEC and retries when another writer touched a watched key; the others are one command or one
MULTI/EXEC. Appending feedback is ``MULTI HINCRBY clipper:feedback_seq RPUSH clipper:feedback:<app> EXEC``, so
a list index is always its seq and :meth:`RedisStateStore.list_feedback` is one LRANGE.

Change notifications: after each committed write the writer calls its own subscribers, then publishes each
event on ``clipper:changes`` as JSON ``{"kind", "name", "version", "origin"}`` (``origin``: a random id of
the store object). Every open store runs one subscriber task that turns announcements from *other* origins
into :class:`~clipper_core.state.ChangeEvent` s. When that connection drops (Redis restarted, a network
failure, or no answer to a liveness PING) the task reconnects with back-off (0.1 s doubling to 2 s, forever)
and, once Redis answers again, announces ``ChangeEvent("reload")``: whatever was announced in between is
lost, so subscribers re-read everything.

Outages: the client has connect and read timeouts (``timeout``, 2 s) and no retries, so while Redis is
unreachable every call fails within about ``timeout`` with :class:`RedisUnavailable` (HTTP 503, "the state
store (Redis at <url>) is unreachable"); it never hangs. Durability is Redis's: :meth:`RedisStateStore.open`
does not configure it (clipper's managed Redis runs with ``appendonly yes`` and ``appendfsync always``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clipper_core.config import Config
from clipper_core.errors import AlreadyExists, ModelUnavailable, NotFound
from clipper_core.inputs import InputType
from clipper_core.state.base import StateStore
from clipper_core.state.records import Application, ChangeEvent, Feedback, Model, Replica

__all__ = ["CHANNEL", "PREFIX", "RedisStateStore", "RedisUnavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "clipper:"
APPS, LINKS, MODELS, MODEL_SEQ = PREFIX + "apps", PREFIX + "links", PREFIX + "models", PREFIX + "model_seq"
CURRENT, REPLICAS, REPLICA_IDS = PREFIX + "current", PREFIX + "replicas", PREFIX + "replica_ids"
FEEDBACK_SEQ, FRONTENDS, CHANNEL = PREFIX + "feedback_seq", PREFIX + "frontends", PREFIX + "changes"
SEP = "\0"

_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 2.0
"""Reconnect back-off of the subscriber task (seconds)."""
_IDLE_PING = 5.0
"""The subscriber PINGs after this many quiet seconds and reconnects when the answer is ``timeout`` late."""


class RedisUnavailable(ModelUnavailable):
    """Redis cannot be reached or refused the request (HTTP 503 with ``Retry-After: 1``); the message names
    the URL (without its password)."""

    title = "State store unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


def _policy_key(app_name: str) -> str:
    return PREFIX + "policy:" + app_name


def _feedback_key(app_name: str) -> str:
    return PREFIX + "feedback:" + app_name


def _redact(url: str) -> str:
    """``url`` without its password (error messages reach HTTP clients and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json_default(value: Any) -> Any:
    """As the SQLite store: bytes become base64 text, numpy values lists/numbers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def _dump(record: Any, **changes: Any) -> str:
    data = dataclasses.asdict(record)
    if "input_type" in data:
        data["input_type"] = record.input_type.value
    data.update(changes)
    return json.dumps(data, default=_json_default, separators=(",", ":"))


def _app(raw: str | bytes) -> Application:
    data = json.loads(raw)
    data["input_type"] = InputType(data["input_type"])
    return Application(**data)


def _model(raw: str | bytes) -> tuple[int, Model]:
    """(creation seq, model)."""
    data = json.loads(raw)
    seq = int(data.pop("seq", 0))
    data["input_type"] = InputType(data["input_type"])
    data["labels"] = tuple(data["labels"])
    return seq, Model(**data)


def _replica(raw: str | bytes) -> Replica:
    data = json.loads(raw)
    data["input_type"] = InputType(data["input_type"])
    return Replica(**data)


def _feedback(raw: str | bytes, seq: int) -> Feedback:
    data = json.loads(raw)
    data["seq"] = seq
    return Feedback(**data)


class RedisStateStore(StateStore):
    """Redis-backed and shared by processes and hosts; see the module docstring for the key layout.

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
        self._feed_client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RedisStateStore({_redact(self.url)!r})"

    # -- lifecycle ------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, check that Redis answers and start the subscriber task (subscribed when this returns).

        Raises :class:`RedisUnavailable` when Redis cannot be reached within ``timeout``."""
        if self._redis is not None:
            return
        options: dict[str, Any] = dict(socket_connect_timeout=self.timeout, socket_timeout=self.timeout,
                                       socket_keepalive=True, decode_responses=False)
        # One immediate retry: after a Redis restart every pooled connection is stale, and its first command must
        # go out again on a fresh one, not fail. During a real outage this costs one more fast failure.
        self._redis = aioredis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 1), **options)
        # The change feed has its own client with no retry: a lost subscription must surface (and be followed by
        # a "reload" announcement), never be silently re-established with the changes in between missed.
        self._feed_client = aioredis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **options)
        try:
            await self._call(self._redis.ping)
            ready = asyncio.Event()
            listener = self._listener = asyncio.get_running_loop().create_task(
                self._listen(ready), name=f"clipper-redis-changes-{self.origin}")
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait({waiter, listener}, timeout=self.timeout * 3, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not ready.is_set():
                raise RedisUnavailable(f"the state store (Redis at {_redact(self.url)}) is unreachable: "
                                       f"could not subscribe to {CHANNEL}")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the subscriber task and disconnect. Safe to call twice."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        for client in (self._redis, self._feed_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._redis = self._feed_client = None

    @property
    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._redis

    def _unavailable(self, exc: BaseException) -> RedisUnavailable:
        url = _redact(self.url)
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            return RedisUnavailable(f"the state store (Redis at {url}) is unreachable: {exc}")
        return RedisUnavailable(f"the state store (Redis at {url}) refused the request: {exc}")

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``fn(*args)``, turning Redis failures into :class:`RedisUnavailable` (503)."""
        try:
            return await fn(*args)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from None

    async def _transaction(self, fn: Callable[[Any], Awaitable[T]], *watch: str) -> T:
        """Run ``fn(pipe)`` with ``watch`` WATCHed: it reads through ``pipe``, raises if a precondition fails,
        else calls ``pipe.multi()``, queues the writes and executes them. Retried when a watched key changed."""
        async def run() -> T:
            async with self._r.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(*watch)
                        return await fn(pipe)
                    except WatchError:
                        continue  # another writer committed in between: read again
        return await self._call(run)

    async def _announce(self, *events: ChangeEvent) -> None:
        """Tell this store's subscribers now, then every other store through the channel."""
        for event in events:
            self._notify(event)
        try:
            async with self._r.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(CHANNEL, json.dumps({"kind": event.kind, "name": event.name,
                                                      "version": event.version, "origin": self.origin}))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Committed already, so the write succeeded. The other stores' feeds broke too unless this was a
            # blip of this connection alone; when they reconnect they announce "reload".
            log.warning("could not announce %s on Redis at %s: %s", events, _redact(self.url), exc)

    # -- change feed ----------------------------------------------------------------------------------
    async def _listen(self, ready: asyncio.Event) -> None:
        """The subscriber task: forever (until cancelled) subscribe, relay, and reconnect with back-off."""
        backoff = _BACKOFF_FIRST
        url = _redact(self.url)
        while True:
            if self._feed_client is None:
                raise RuntimeError(f"{self!r} is not open")
            pubsub = self._feed_client.pubsub()
            try:
                await self._subscribe(pubsub)
                if ready.is_set():
                    log.warning("change feed from Redis at %s is back; subscribers re-read everything", url)
                    self._notify(ChangeEvent("reload"))
                ready.set()
                backoff = _BACKOFF_FIRST
                await self._relay(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change feed from Redis at %s lost (%s); reconnecting in %.1f s", url, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(_BACKOFF_MAX, backoff * 2)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _subscribe(self, pubsub: PubSub) -> None:
        """SUBSCRIBE, wait for Redis to confirm it, and check that Redis serves data (it is not loading)."""
        await pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + self.timeout
        while True:
            message = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message.get("type") == "subscribe":
                break
            if time.monotonic() >= deadline:
                raise RedisTimeoutError(f"no confirmation of SUBSCRIBE {CHANNEL} within {self.timeout} s")
        await self._r.hlen(APPS)  # BusyLoadingError while Redis is still reading its append-only file

    async def _relay(self, pubsub: PubSub) -> None:
        """Turn other stores' announcements into events until the connection fails (then raise)."""
        heard = time.monotonic()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, False
                if message.get("type") == "message":
                    self._relay_one(message["data"])
                continue
            if now - heard > _IDLE_PING + 2 * self.timeout:
                raise RedisTimeoutError(f"no answer to PING for {now - heard:.1f} s")
            if now - heard > _IDLE_PING and not pinged:
                await pubsub.ping()  # the answer arrives as a "pong" message
                pinged = True

    def _relay_one(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            event = ChangeEvent(str(message["kind"]), str(message.get("name", "")),
                                str(message.get("version", "")))
            origin = message.get("origin")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed message on %s: %r", CHANNEL, data[:200])
            return
        if origin != self.origin:
            self._notify(event)

    # -- applications ---------------------------------------------------------------------------------
    async def add_app(self, app: Application) -> None:
        record = _dump(app)

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
        record = _dump(app)

        async def write(pipe: Any) -> None:
            old = await pipe.hget(APPS, app.name)
            if old is None:
                raise NotFound(f"Application '{app.name}' does not exist")
            pipe.multi()
            pipe.hset(APPS, app.name, record)
            if not _app(old).same_policy(app):
                pipe.delete(_policy_key(app.name))
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
            pipe.delete(_policy_key(name))  # feedback stays: it is never lost
            await pipe.execute()
        await self._transaction(write, APPS)
        await self._announce(ChangeEvent("app", name))  # every store hears it: Clipper's lost "del" is gone

    async def get_app(self, name: str) -> Application | None:
        raw = await self._call(self._r.hget, APPS, name)
        return None if raw is None else _app(raw)

    async def list_apps(self) -> list[Application]:
        raw = await self._call(self._r.hgetall, APPS)
        return sorted((_app(v) for v in raw.values()), key=lambda a: a.name)

    # -- models ---------------------------------------------------------------------------------------
    async def add_model(self, model: Model, *, make_current: bool = True) -> None:
        field = model.name + SEP + model.version
        _dump(model)  # fail on an unstorable record before taking a seq
        seq = await self._call(self._r.incr, MODEL_SEQ)  # a gap after a duplicate is harmless: only order counts
        record = _dump(model, seq=seq)

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
        field = model.name + SEP + model.version

        async def write(pipe: Any) -> None:
            raw = await pipe.hget(MODELS, field)
            if raw is None:
                raise NotFound(f"model with name '{model.name}' and version '{model.version}' does not exist")
            seq, _ = _model(raw)  # keep the creation order
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
            was_current = current is not None and _text(current) == version
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
        raw = await self._call(self._r.hget, MODELS, name + SEP + version)
        return None if raw is None else _model(raw)[1]

    async def list_models(self, name: str | None = None) -> list[Model]:
        raw = await self._call(self._r.hgetall, MODELS)
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
        raw = await self._call(self._r.hget, CURRENT, name)
        return None if raw is None else _text(raw)

    async def current_versions(self) -> dict[str, str]:
        raw = await self._call(self._r.hgetall, CURRENT)
        return {_text(k): _text(v) for k, v in sorted(raw.items())}

    # -- links ----------------------------------------------------------------------------------------
    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        async def write(pipe: Any) -> bool:
            raw = await pipe.hget(LINKS, app_name)
            if raw is None:
                raise NotFound(f"Application '{app_name}' does not exist")
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
                raise NotFound(f"Application '{app_name}' does not exist")
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
            raise NotFound(f"Application '{app_name}' does not exist")
        return list(json.loads(raw))

    # -- replicas -------------------------------------------------------------------------------------
    async def add_replica(self, replica: Replica) -> None:
        field = f"{replica.model_name}{SEP}{replica.model_version}{SEP}{replica.replica_id}"
        await self._call(self._r.hset, REPLICAS, field, _dump(replica))
        await self._announce(ChangeEvent("replica", replica.model_name, replica.model_version))

    async def delete_replica(self, model_name: str, model_version: str, replica_id: int) -> None:
        field = f"{model_name}{SEP}{model_version}{SEP}{replica_id}"
        if await self._call(self._r.hdel, REPLICAS, field):
            await self._announce(ChangeEvent("replica", model_name, model_version))

    async def list_replicas(self, model_name: str | None = None, model_version: str | None = None
                            ) -> list[Replica]:
        raw = await self._call(self._r.hgetall, REPLICAS)
        replicas = [_replica(v) for v in raw.values()]
        return sorted((r for r in replicas if (model_name is None or r.model_name == model_name)
                       and (model_version is None or r.model_version == model_version)),
                      key=lambda r: (r.model_name, r.model_version, r.replica_id))

    async def clear_replicas(self, frontend: str) -> None:
        async def write(pipe: Any) -> list[tuple[str, str]]:
            gone = {k: _replica(v) for k, v in (await pipe.hgetall(REPLICAS)).items()}
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
        return int(await self._call(self._r.hincrby, REPLICA_IDS, model_name + SEP + model_version, 1)) - 1

    # -- query frontends ------------------------------------------------------------------------------
    # Expiry times use Redis's clock (TIME), so hosts with skewed clocks agree on who is alive.
    async def _server_time(self, client: Any) -> float:
        seconds, micros = await client.time()
        return float(seconds) + micros / 1e6

    async def register_frontend(self, rpc_addr: str, ttl: float = 10.0) -> None:
        async def write() -> None:
            expiry = await self._server_time(self._r) + ttl
            await self._r.hset(FRONTENDS, rpc_addr, repr(expiry))
        await self._call(write)

    async def unregister_frontend(self, rpc_addr: str) -> None:
        await self._call(self._r.hdel, FRONTENDS, rpc_addr)

    async def list_frontends(self) -> list[str]:
        """Live frontends, sorted; expired registrations are deleted (only if nobody refreshed them meanwhile)."""
        async def prune(pipe: Any) -> list[str]:
            now = await self._server_time(pipe)
            entries = {_text(k): float(v) for k, v in (await pipe.hgetall(FRONTENDS)).items()}
            expired = [addr for addr, expiry in entries.items() if expiry <= now]
            if expired:
                pipe.multi()
                pipe.hdel(FRONTENDS, *expired)
                await pipe.execute()
            else:
                await pipe.reset()
            return sorted(addr for addr, expiry in entries.items() if expiry > now)
        return await self._transaction(prune, FRONTENDS)

    # -- policy state and feedback --------------------------------------------------------------------
    async def get_policy_state(self, app_name: str, uid: int) -> bytes | None:
        raw = await self._call(self._r.hget, _policy_key(app_name), str(uid))
        return None if raw is None else (raw if isinstance(raw, bytes) else raw.encode())

    async def put_policy_state(self, app_name: str, uid: int, state: bytes) -> None:
        await self._call(self._r.hset, _policy_key(app_name), str(uid), bytes(state))

    async def append_feedback(self, feedback: Feedback) -> int:
        record = dataclasses.replace(feedback, received_at=feedback.received_at or time.time())
        data = dataclasses.asdict(record)
        del data["seq"]  # the list index is the seq
        payload = json.dumps(data, default=_json_default, separators=(",", ":"))

        async def write() -> int:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hincrby(FEEDBACK_SEQ, feedback.app_name, 1)
                pipe.rpush(_feedback_key(feedback.app_name), payload)
                seq, length = await pipe.execute()
            if int(seq) != int(length):  # only if someone edited the keys by hand
                log.error("feedback of '%s': seq %s but %s items in %s", feedback.app_name, seq, length,
                          _feedback_key(feedback.app_name))
            return int(length)
        return await self._call(write)

    async def list_feedback(self, app_name: str, *, after_seq: int = 0, limit: int = 1000) -> list[Feedback]:
        if limit <= 0:
            return []
        start = max(after_seq, 0)
        raw = await self._call(self._r.lrange, _feedback_key(app_name), start, start + limit - 1)
        return [_feedback(v, start + 1 + i) for i, v in enumerate(raw)]
