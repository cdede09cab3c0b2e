"""Connecting to Redis, and what the store says when it cannot.

The clients have connect and read timeouts (``timeout``) and at most one immediate retry, so while Redis is
unreachable every call fails within about ``timeout`` with :class:`RedisUnavailable` (HTTP 503, "the state
store (Redis at <url>) is unreachable"); it never hangs. Messages name the URL without its password.

A call also keeps a cancellation: redis-py bounds each write with ``asyncio.wait_for``, which on Python 3.11
drops a ``cancel()`` that arrives as the write completes (CPython gh-86296); a task stopped at shutdown would
then go on looping and its owner would wait on it forever. :func:`call` raises it again.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clipper_core.errors import ModelUnavailable

__all__ = ["RedisUnavailable", "call", "client", "redact", "transaction", "unavailable"]

T = TypeVar("T")


class RedisUnavailable(ModelUnavailable):
    """Redis cannot be reached or refused the request (HTTP 503 with ``Retry-After: 1``); the message names
    the URL (without its password)."""

    title = "State store unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


def redact(url: str) -> str:
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


def unavailable(url: str, exc: BaseException) -> RedisUnavailable:
    """The 503 for a failed call to the Redis at ``url``: unreachable (connection, timeout) or refused."""
    where = redact(url)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        return RedisUnavailable(f"the state store (Redis at {where}) is unreachable: {exc}")
    return RedisUnavailable(f"the state store (Redis at {where}) refused the request: {exc}")


def client(url: str, timeout: float, *, retries: int) -> aioredis.Redis:
    """A client (no I/O yet) whose connecting and every reply are bounded by ``timeout`` seconds, retrying a
    failed command ``retries`` times at once on a fresh connection."""
    options: dict[str, Any] = dict(socket_connect_timeout=timeout, socket_timeout=timeout, socket_keepalive=True,
                                   decode_responses=False)
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), retries), **options)


async def call(url: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Await ``fn(*args)``, turning Redis failures into :class:`RedisUnavailable` (503), and raising a
    cancellation that arrived meanwhile even when redis-py returned as if there were none."""
    task = asyncio.current_task()
    before = _cancelling(task)
    try:
        result = await fn(*args)
    except (RedisError, OSError) as exc:
        raise unavailable(url, exc) from None
    if _cancelling(task) > before:
        raise asyncio.CancelledError("cancelled during a Redis call that did not say so")
    return result


def _cancelling(task: asyncio.Task[Any] | None) -> int:
    """How many cancellations ``task`` has pending (Python 3.11+; 0 on 3.10, which cannot tell)."""
    counter = getattr(task, "cancelling", None)
    return counter() if counter is not None else 0


async def transaction(redis: aioredis.Redis, url: str, fn: Callable[[Any], Awaitable[T]], *watch: str) -> T:
    """Run ``fn(pipe)`` with ``watch`` WATCHed: it reads through ``pipe``, raises if a precondition fails, else
    calls ``pipe.multi()``, queues the writes and executes them. Retried when a watched key changed."""
    async def run() -> T:
        async with redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*watch)
                    return await fn(pipe)
                except WatchError:
                    continue  # another writer committed in between: read again
    return await call(url, run)
