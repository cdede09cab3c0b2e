"""The change feed of a Redis state store: announcements to and from every other store over the same Redis.

After each committed write the writer calls its own subscribers, then publishes each event on
``clipper:changes`` as JSON ``{"kind", "name", "version", "origin"}`` (``origin``: a random id of the store
object). Every open store runs one subscriber task that turns announcements from *other* origins into
:class:`~clipper_core.state.ChangeEvent` s. When that connection drops (Redis restarted, a network failure, or
no answer to a liveness PING) the task reconnects with back-off (0.1 s doubling to 2 s, forever) and, once Redis
answers again, announces ``ChangeEvent("reload")``: whatever was announced in between is lost, so subscribers
re-read everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clipper_core.state.records import ChangeEvent
from clipper_core.state.redis import connection
from clipper_core.state.redis.connection import RedisUnavailable, redact
from clipper_core.state.redis.layout import APPS, CHANNEL

__all__ = ["ChangeFeed"]

log = logging.getLogger(__name__)

_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 2.0
"""Reconnect back-off of the subscriber task (seconds)."""
_IDLE_PING = 5.0
"""The subscriber PINGs after this many quiet seconds and reconnects when the answer is ``timeout`` late."""


class ChangeFeed:
    """Publishes one store's events and delivers every other store's to ``deliver`` (the store's subscribers).

    :param store_client: the store's own client: announcements go out on it, and it checks that Redis serves
        data once subscribed
    :param origin: the store's id; announcements carrying it are the store's own (delivered already)
    """

    def __init__(self, url: str, timeout: float, origin: str, store_client: aioredis.Redis,
                 deliver: Callable[[ChangeEvent], None]) -> None:
        self.url, self.timeout, self.origin = url, timeout, origin
        self._store_client = store_client
        self._deliver = deliver
        # Its own client with no retry: a lost subscription must surface (and be followed by a "reload"
        # announcement), never be silently re-established with the changes in between missed.
        self._client: aioredis.Redis | None = connection.client(url, timeout, retries=0)
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the subscriber task; returns once it is subscribed. Raises :class:`RedisUnavailable` when it
        is not within ``3 * timeout``."""
        ready = asyncio.Event()
        listener = self._listener = asyncio.get_running_loop().create_task(
            self._listen(ready), name=f"clipper-redis-changes-{self.origin}")
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, listener}, timeout=self.timeout * 3, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not ready.is_set():
            raise RedisUnavailable(f"the state store (Redis at {redact(self.url)}) is unreachable: "
                                   f"could not subscribe to {CHANNEL}")

    async def stop(self) -> None:
        """Stop the subscriber task and disconnect. Safe to call twice."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def publish(self, *events: ChangeEvent) -> None:
        """Announce committed ``events`` to the other stores; a failure is logged, not raised."""
        try:
            async with self._store_client.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(CHANNEL, json.dumps({"kind": event.kind, "name": event.name,
                                                      "version": event.version, "origin": self.origin}))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Committed already, so the write succeeded. The other stores' feeds broke too unless this was a
            # blip of this connection alone; when they reconnect they announce "reload".
            log.warning("could not announce %s on Redis at %s: %s", events, redact(self.url), exc)

    # -- the subscriber task --------------------------------------------------------------------------
    async def _listen(self, ready: asyncio.Event) -> None:
        """Forever (until cancelled) subscribe, relay, and reconnect with back-off."""
        backoff = _BACKOFF_FIRST
        url = redact(self.url)
        while True:
            if self._client is None:
                raise RuntimeError(f"the change feed of Redis at {url} is stopped")
            pubsub = self._client.pubsub()
            try:
                await self._subscribe(pubsub)
                if ready.is_set():
                    log.warning("change feed from Redis at %s is back; subscribers re-read everything", url)
                    self._deliver(ChangeEvent("reload"))
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
        await self._store_client.hlen(APPS)  # BusyLoadingError while Redis is still reading its append-only file

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
            self._deliver(event)
