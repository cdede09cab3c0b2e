"""The change feed of the SQLite state store, across the processes that share one file.

Every write that announces events appends them to the table ``changes`` (``seq`` INTEGER PRIMARY KEY AUTOINCREMENT,
``origin``, ``event``, ``at``) inside the same ``BEGIN IMMEDIATE`` transaction as the change, so a change and its
announcement commit together or not at all; the writer calls its own subscribers after COMMIT. ``origin`` is a
random id of the store object and ``event`` the :class:`~clipper_core.state.ChangeEvent` as JSON ``{"kind", "name",
"version"}`` (:func:`clipper_core.state.codec.dumps`, the fields the Redis feed announces).

Each open store runs one :class:`Follower` task that asks its own connection for ``PRAGMA data_version`` (a read of
the WAL index in shared memory, about 2 µs, no file I/O): the value changes only when *another* connection
committed. Only then does it read the rows with ``seq`` above the last it saw and delivers those of other origins,
so each event reaches each store's subscribers once. It checks every :data:`POLL_INTERVAL` for :data:`BUSY_SECONDS`
after the feed last carried an event (read or written here), else every :data:`IDLE_POLL_INTERVAL`: on this VM a
wake of the loop costs 50-100 µs whatever it does, so 40 checks a second would cost 0.2-0.4 % of a core per idle
process, 4 a second cost about 0.04 %. The first change after a quiet spell is followed within
:data:`IDLE_POLL_INTERVAL`, the changes it sets off (a replica joining every frontend after a deploy) within
:data:`POLL_INTERVAL`. Commits that announce nothing (the frontends' registry refresh, feedback, policy state) do
not make a follower busy.

Writers serialise on the write lock, so a follower sees ``seq`` without holes; a hole means rows were trimmed before
it read them (it was stalled for longer than :data:`KEEP_SECONDS`, or more than :data:`KEEP_ROWS` changes came
between two of its checks), and it announces ``ChangeEvent("reload")`` instead: subscribers re-read everything, as
after a Redis reconnect.

Each write trims the feed to a bounded tail: rows older than :data:`KEEP_SECONDS` and all but the newest
:data:`KEEP_ROWS` go, in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable

from clipper_core.state import codec
from clipper_core.state.records import ChangeEvent

__all__ = ["BUSY_SECONDS", "IDLE_POLL_INTERVAL", "KEEP_ROWS", "KEEP_SECONDS", "POLL_INTERVAL", "SCHEMA", "Follower",
           "append", "decode", "encode"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.025
"""Seconds between two ``PRAGMA data_version`` checks while the feed is busy."""
IDLE_POLL_INTERVAL = 0.25
"""Seconds between two checks once the feed carried no event for :data:`BUSY_SECONDS`: how late the first change
after a quiet spell is followed at most (plus the time to read it)."""
BUSY_SECONDS = 2.0
"""How long the feed counts as busy after it last carried an event."""
KEEP_SECONDS = 60.0
"""Rows older than this are trimmed; a follower stalled for longer announces ``reload``."""
KEEP_ROWS = 10_000
"""At most this many rows are kept."""

SCHEMA = """
CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, event TEXT NOT NULL,
    at REAL NOT NULL);
"""
"""The feed's table (AUTOINCREMENT: a ``seq`` is never reused, even once its row is trimmed)."""


def encode(event: ChangeEvent) -> str:
    return codec.dumps({"kind": event.kind, "name": event.name, "version": event.version})


def decode(text: str) -> ChangeEvent:
    data = codec.loads(text)
    return ChangeEvent(str(data["kind"]), str(data.get("name", "")), str(data.get("version", "")))


def append(db: sqlite3.Connection, origin: str, events: Iterable[ChangeEvent]) -> tuple[int, int] | None:
    """Inside a write transaction: append ``events`` and trim the feed. Returns the first and last ``seq``
    written (None when there was nothing to write)."""
    now = time.time()
    seqs = [int(db.execute("INSERT INTO changes (origin, event, at) VALUES (?, ?, ?)",
                           (origin, encode(event), now)).lastrowid or 0) for event in events]
    if not seqs:
        return None
    db.execute("DELETE FROM changes WHERE seq <= ?", (seqs[-1] - KEEP_ROWS,))
    # Scans from the oldest row to the first young one: the rows it passes are the ones deleted now.
    young = db.execute("SELECT seq FROM changes WHERE at >= ? ORDER BY seq LIMIT 1", (now - KEEP_SECONDS,))
    first_young = young.fetchone()
    if first_young is not None:
        db.execute("DELETE FROM changes WHERE seq < ?", (first_young[0],))
    return seqs[0], seqs[-1]


class Follower:
    """Delivers the events other store objects (in any process) appended to the feed of ``db``.

    :param db: the store's own connection (``data_version`` ignores its commits), used on the loop's thread
    :param origin: the store's id; rows carrying it are the store's own (delivered already by the writer)
    :param deliver: the store's subscribers (``StateStore._notify``)
    :param clock: for the busy spell (``time.monotonic``)
    """

    def __init__(self, db: sqlite3.Connection, origin: str, deliver: Callable[[ChangeEvent], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.origin, self.clock = db, origin, clock
        self._deliver = deliver
        self._busy_until = 0.0
        self._version = int(db.execute("PRAGMA data_version").fetchone()[0])
        self.last_seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"clipper-sqlite-changes-{self.origin}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        loop = task.get_loop()
        if loop is not asyncio.get_running_loop():  # closed from another loop (a test's second asyncio.run)
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def wrote(self, seqs: tuple[int, int] | None) -> None:
        """The store committed rows ``seqs``: skip them later, unless rows of others came first (unread yet)."""
        if seqs is None:
            return
        self._busy_until = self.clock() + BUSY_SECONDS  # the other processes' answers are near
        if seqs[0] == self.last_seq + 1:
            self.last_seq = seqs[1]

    @property
    def interval(self) -> float:
        """Seconds until the next check."""
        return POLL_INTERVAL if self.clock() < self._busy_until else IDLE_POLL_INTERVAL

    def poll(self) -> int:
        """Deliver what other connections appended since the last poll; returns how many events."""
        version = int(self.db.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return 0
        rows = self.db.execute("SELECT seq, origin, event FROM changes WHERE seq > ? ORDER BY seq",
                               (self.last_seq,)).fetchall()
        self._version = version  # read before the rows: a commit in between is read twice, never missed
        if not rows:
            return 0
        self._busy_until = self.clock() + BUSY_SECONDS
        expected, self.last_seq = self.last_seq + 1, int(rows[-1][0])
        if rows[0][0] != expected:
            log.warning("the SQLite change feed was trimmed past seq %d before this process read it; "
                        "subscribers re-read everything", expected)
            self._deliver(ChangeEvent("reload"))
            return 1
        delivered = 0
        for _, origin, text in rows:
            if origin == self.origin:
                continue
            try:
                event = decode(text)
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("ignoring a malformed row in the SQLite change feed: %r", text[:200])
                continue
            self._deliver(event)
            delivered += 1
        return delivered

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # polling another process's commits: there is no cross-process wakeup
            try:
                self.poll()
            except sqlite3.Error as exc:
                if not self._failing:
                    log.warning("cannot read the SQLite change feed: %s; retrying", exc)
                self._failing = True
                continue
            if self._failing:
                log.warning("the SQLite change feed is readable again; subscribers re-read everything")
                self._failing = False
                self._deliver(ChangeEvent("reload"))
