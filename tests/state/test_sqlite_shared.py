"""The SQLite store shared by processes: a change committed in one process reaches the subscribers of another
within a bound, each event once; the registry of live frontends is shared and expires; the feed stays a
bounded tail, and a store that missed trimmed rows announces "reload"."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core.inputs import InputType
from clipper_core.state import Application, ChangeEvent, sqlite_feed
from clipper_core.state.sqlite import SqliteStateStore
from tests.state.recorder import Recorder

ROOT = Path(__file__).resolve().parents[2]
FOLLOW_BOUND = 1.0
"""Seconds within which another process's change must reach a subscriber (the feed checks every 250 ms when quiet)."""


def app(name: str) -> Application:
    return Application(name, InputType.DOUBLES, "-1.0", 100_000)


class Peer:
    """``python -m tests.state.sqlite_peer PATH``: a store in another process, driven over its stdin; what it
    prints (the events it was told of, command results) is read with a deadline."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[ChangeEvent] = []

    @classmethod
    async def start(cls, path: Path) -> Peer:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.state.sqlite_peer", str(path), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        peer = cls(process)
        assert await peer._line(20) == "ready"
        return peer

    async def _line(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise AssertionError(f"the peer exited ({await self.process.wait()})")
        data = json.loads(raw)
        if isinstance(data, dict) and "event" in data:
            self.events.append(ChangeEvent(*data["event"]))
        return data

    async def run(self, command: str, timeout: float = 10.0) -> Any:
        """Send ``command``; returns its result line (``{"frontends": ...}``) or None, once it is done."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        result = None
        deadline = time.monotonic() + timeout
        while True:
            data = await self._line(max(0.0, deadline - time.monotonic()))
            if data == {"done": command}:
                return result
            if isinstance(data, dict) and "frontends" in data:
                result = data["frontends"]

    async def wait_events(self, n: int, timeout: float = FOLLOW_BOUND) -> list[ChangeEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n:
            try:
                await self._line(max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise AssertionError(f"the peer heard {self.events} within {timeout} s, not {n} events") from None
        return self.events

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


@pytest.fixture
async def here(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    store = SqliteStateStore(tmp_path / "state.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def peer(here: SqliteStateStore) -> AsyncIterator[Peer]:
    process = await Peer.start(here.path)
    yield process
    await process.stop()


# -- across processes ---------------------------------------------------------------------------------
async def test_a_change_in_another_process_reaches_a_subscriber_here_within_the_bound(
        here: SqliteStateStore, peer: Peer) -> None:
    recorder = Recorder(here)
    started = time.monotonic()
    await peer.run("add_app there")
    await recorder.wait_for_count(1, timeout=FOLLOW_BOUND)
    assert time.monotonic() - started < FOLLOW_BOUND
    assert recorder.events == [ChangeEvent("app", "there")]
    assert [a.name for a in await here.list_apps()] == ["there"]  # committed before it was announced
    await peer.run("delete_app there")
    await recorder.wait_for_count(2, timeout=FOLLOW_BOUND)
    assert recorder.events == [ChangeEvent("app", "there")] * 2


async def test_rollout_changes_cross_processes_both_ways(here: SqliteStateStore, peer: Peer) -> None:
    recorder = Recorder(here)
    await peer.run("put_rollout m 0.25")
    await recorder.wait_for_count(1, timeout=FOLLOW_BOUND)
    assert recorder.events == [ChangeEvent("rollout", "m")]
    assert await here.get_rollout("m") == {"model": "m", "weight": 0.25}  # committed before it was announced
    await here.delete_rollout("m")
    await here.delete_rollout("m")  # nothing deleted: nothing announced, here or there
    await here.put_rollout({"model": "n", "weight": 1.0})
    await peer.wait_events(3)
    assert peer.events == [ChangeEvent("rollout", "m"), ChangeEvent("rollout", "m"), ChangeEvent("rollout", "n")]
    await peer.run("delete_rollout n")  # the peer hears its own at once
    await recorder.wait_for_count(4, timeout=FOLLOW_BOUND)
    assert recorder.events == peer.events == [ChangeEvent("rollout", n) for n in "mmnn"]
    assert await here.list_rollouts() == []


async def test_a_key_revoked_in_another_process_is_heard_here_within_the_bound(
        here: SqliteStateStore, peer: Peer) -> None:
    """What makes "a revoked key stops working within 1 s on every frontend" possible with SQLite: a frontend
    process hears the api_key event of a key another process revoked, and reads the change when it does."""
    await here.add_app(app("tenant"))
    await peer.wait_events(1)
    recorder = Recorder(here)
    await peer.run("add_api_key tenant 0123456789ab")
    await recorder.wait_for_count(1, timeout=FOLLOW_BOUND)
    assert recorder.events == [ChangeEvent("api_key", "tenant")]
    key = await here.get_api_key("0123456789ab")
    assert key is not None and (key.app_name, key.label) == ("tenant", "peer")
    started = time.monotonic()
    await peer.run("delete_api_key 0123456789ab")
    await recorder.wait_for_count(2, timeout=FOLLOW_BOUND)
    assert time.monotonic() - started < FOLLOW_BOUND
    assert recorder.events == [ChangeEvent("api_key", "tenant")] * 2
    assert await here.get_api_key("0123456789ab") is None  # committed before it was announced
    await peer.run("add_api_key tenant ba9876543210")
    await recorder.wait_for_count(3, timeout=FOLLOW_BOUND)
    await here.delete_app("tenant")  # the peer hears the app go, and its keys with it
    await peer.wait_events(6)
    assert peer.events[-2:] == [ChangeEvent("app", "tenant"), ChangeEvent("api_key", "tenant")]


async def test_every_store_hears_each_event_once(here: SqliteStateStore, peer: Peer) -> None:
    recorder = Recorder(here)
    await peer.run("add_app x")
    await recorder.wait_for_count(1, timeout=FOLLOW_BOUND)
    await here.add_app(app("y"))
    assert recorder.events == [ChangeEvent("app", "x"), ChangeEvent("app", "y")]  # its own at once
    await peer.wait_events(2)
    await peer.run("add_app z")
    # the feed is read in seq order: once z arrived here, an echo of y (or a second x) would have too
    await recorder.wait(lambda events: ChangeEvent("app", "z") in events, timeout=FOLLOW_BOUND)
    await peer.wait_events(3)
    assert recorder.events == peer.events == [ChangeEvent("app", n) for n in "xyz"]


async def test_the_frontend_registry_is_shared_across_processes_and_expires(
        here: SqliteStateStore, peer: Peer) -> None:
    await peer.run("register_frontend tcp://127.0.0.1:7001 0.3")
    await here.register_frontend("tcp://127.0.0.1:7002", ttl=30)
    await here.register_frontend("tcp://127.0.0.1:7003", ttl=30)
    assert await here.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002", "tcp://127.0.0.1:7003"]
    await here.unregister_frontend("tcp://127.0.0.1:7003")
    assert await peer.run("frontends") == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]
    await asyncio.sleep(0.4)  # let the first registration's TTL run out
    assert await here.list_frontends() == ["tcp://127.0.0.1:7002"]
    await here.register_frontend("tcp://127.0.0.1:7002", ttl=30)  # a write prunes expired entries
    with sqlite3.connect(here.path) as db:
        assert [r[0] for r in db.execute("SELECT rpc_addr FROM frontends")] == ["tcp://127.0.0.1:7002"]
    await peer.run("register_frontend tcp://127.0.0.1:7001 30")  # a refresh brings it back
    assert await here.list_frontends() == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]


# -- the feed's bounds (two stores in this process: the same SQL, deterministic polls) -----------------
@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SqliteStateStore, SqliteStateStore]]:
    a, b = SqliteStateStore(tmp_path / "state.db"), SqliteStateStore(tmp_path / "state.db")
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def feed_seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT seq FROM changes ORDER BY seq")]


async def test_the_feed_keeps_a_bounded_tail(pair: tuple[SqliteStateStore, SqliteStateStore],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = pair
    monkeypatch.setattr(sqlite_feed, "KEEP_ROWS", 5)
    for i in range(12):
        await a.add_app(app(f"a{i:02}"))
    assert feed_seqs(a.path) == list(range(8, 13))  # the newest five
    with sqlite3.connect(a.path) as db:  # rows older than KEEP_SECONDS go at the next write
        db.execute("UPDATE changes SET at = at - ? WHERE seq <= 10", (sqlite_feed.KEEP_SECONDS + 1,))
    await b.add_app(app("b"))
    assert feed_seqs(a.path) == [11, 12, 13]


async def test_a_store_that_missed_trimmed_rows_announces_reload(
        pair: tuple[SqliteStateStore, SqliteStateStore], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = pair
    monkeypatch.setattr(sqlite_feed, "KEEP_ROWS", 3)
    at_b = Recorder(b)
    for i in range(10):  # no await yields to the loop in between: b's follower polls only afterwards
        await a.add_app(app(f"a{i}"))
    await at_b.wait_for_reload(timeout=FOLLOW_BOUND)
    assert at_b.events == [ChangeEvent("reload")]
    await a.add_app(app("after"))  # and it follows again
    await at_b.wait_for_count(2, timeout=FOLLOW_BOUND)
    assert at_b.events == [ChangeEvent("reload"), ChangeEvent("app", "after")]


async def test_own_writes_only_do_not_look_like_a_gap(pair: tuple[SqliteStateStore, SqliteStateStore],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that wrote everything itself skips its rows at once: once they are trimmed, the next change by
    another store is an event, not a reload."""
    a, b = pair
    monkeypatch.setattr(sqlite_feed, "KEEP_ROWS", 2)
    at_a = Recorder(a)
    for i in range(6):
        await a.add_app(app(f"a{i}"))
    await b.add_app(app("b"))
    await at_a.wait(lambda events: ChangeEvent("app", "b") in events, timeout=FOLLOW_BOUND)
    assert ChangeEvent("reload") not in at_a.events and len(at_a.events) == 7


async def test_an_idle_follower_reads_no_rows(pair: tuple[SqliteStateStore, SqliteStateStore]) -> None:
    """Polls only ask ``data_version``: without another connection's commit, no row is read."""
    _, b = pair
    assert b._follower is not None
    assert b._follower.poll() == 0
    await b.add_app(app("own"))  # its own commit leaves its data_version alone
    statements: list[str] = []
    b._conn.set_trace_callback(statements.append)
    try:
        assert b._follower.poll() == 0
    finally:
        b._conn.set_trace_callback(None)
    assert statements == ["PRAGMA data_version"]


async def test_a_follower_checks_often_only_while_the_feed_carries_events(
        pair: tuple[SqliteStateStore, SqliteStateStore]) -> None:
    a, b = pair
    follower = b._follower
    assert follower is not None
    now = [1000.0]
    follower.clock = lambda: now[0]
    follower._busy_until = 0.0
    assert follower.interval == sqlite_feed.IDLE_POLL_INTERVAL
    await a.add_app(app("x"))
    assert follower.poll() == 1 and follower.interval == sqlite_feed.POLL_INTERVAL
    now[0] += sqlite_feed.BUSY_SECONDS
    assert follower.interval == sqlite_feed.IDLE_POLL_INTERVAL
    await a.register_frontend("tcp://127.0.0.1:7000", ttl=30)  # a commit that announces nothing
    assert follower.poll() == 0 and follower.interval == sqlite_feed.IDLE_POLL_INTERVAL
    await b.add_app(app("own"))  # its own change: the other processes' answers are near
    assert follower.interval == sqlite_feed.POLL_INTERVAL
