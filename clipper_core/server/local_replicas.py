"""The server-side half of the local container manager: replica subprocesses, restarted with back-off.

Each replica slot is a supervision task: start ``python -m clipper_container`` (same interpreter, same
environment), wait for it to exit, and unless it was asked to stop, start it again after a back-off that
doubles from 0.5 s to 30 s and resets once a replica has stayed up for 30 s. Logs go to
``$CLIPPER_HOME/logs/<model>_<version>_<slot>.log`` (owner-only).

Each slot's pid is kept in ``$CLIPPER_HOME/run/``. When the server itself was killed (``kill -9``), its
replicas live on and keep trying to reconnect; the restarted server *adopts* them instead of starting
duplicates, watching them by pid until they exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipper_core.names import NO_CONTAINER
from clipper_core.processes import pid_alive
from clipper_core.state import Model

__all__ = ["LocalReplicaSupervisor"]

log = logging.getLogger(__name__)
# Exit codes of python -m clipper_container that a restart cannot fix.
_PERMANENT_FAILURES = {2: "bad arguments", 3: "rejected by the frontend", 4: "the model cannot be loaded"}
_ADOPTED_POLL = 0.5


def _is_replica_of(pid: int, model: Model) -> bool:
    """True when ``pid`` runs ``python -m clipper_container`` for this model version (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    return ("clipper_container" in args and _arg(args, "--name") == model.name
            and _arg(args, "--version") == model.version)


def _arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


@dataclass
class _Slot:
    model: Model
    index: int
    log_path: Path
    pid_path: Path
    process: asyncio.subprocess.Process | None = None
    adopted_pid: int | None = None
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    restarts: int = 0
    started_at: float = 0.0

    @property
    def pid(self) -> int | None:
        if self.process is not None and self.process.returncode is None:
            return self.process.pid
        if self.adopted_pid is not None and pid_alive(self.adopted_pid):
            return self.adopted_pid
        return None


class LocalReplicaSupervisor:
    """Runs and supervises model replicas as local subprocesses connecting to ``rpc_addr`` (comma-separated
    frontends; the server names those on this host by their ``ipc://`` address, see docs/rpc.md "Transports")."""

    def __init__(self, logs_dir: Path, rpc_addr: str, *, run_dir: Path | None = None,
                 heartbeat_interval: float = 0.5, python: str = sys.executable, stop_timeout: float = 10.0,
                 max_backoff: float = 30.0) -> None:
        self.logs_dir = logs_dir
        self.run_dir = run_dir or logs_dir.parent / "run"
        self.rpc_addr = rpc_addr
        self.heartbeat_interval = heartbeat_interval
        self.python = python
        self.stop_timeout = stop_timeout
        self.max_backoff = max_backoff
        self._slots: dict[tuple[str, str], list[_Slot]] = {}
        self._lock = asyncio.Lock()

    # -- ReplicaSupervisor protocol -------------------------------------------------------------------
    async def set_replicas(self, model: Model, num_replicas: int) -> None:
        if num_replicas < 0:
            raise ValueError("num_replicas must be >= 0")
        if num_replicas > 0 and model.container_name == NO_CONTAINER:
            raise ValueError(f"model {model.name}:{model.version} is a containerless model")
        async with self._lock:
            slots = self._slots.setdefault(model.key, [])
            while len(slots) < num_replicas:
                slots.append(self._new_slot(model, len(slots)))
            surplus = slots[num_replicas:]
            del slots[num_replicas:]
            if not slots:
                self._slots.pop(model.key, None)
        await asyncio.gather(*(self._stop(slot) for slot in surplus))

    def desired(self, name: str, version: str) -> int:
        return len(self._slots.get((name, version), ()))

    def running(self, name: str, version: str) -> int:
        return sum(1 for s in self._slots.get((name, version), ()) if s.pid is not None)

    def log_files(self) -> list[Path]:
        return sorted(self.logs_dir.glob("*.log")) if self.logs_dir.exists() else []

    def slots(self) -> list[dict[str, Any]]:
        """Every replica slot now, for a dashboard: ``model``, ``version``, ``slot``, ``pid`` (None while no
        process runs), ``state`` (``running``; ``restarting`` while it backs off or starts; ``failed`` after an
        exit a restart cannot fix), ``restarts``, ``uptime_s`` of the running process (None) and ``log``."""
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        for (name, version), slots in sorted(self._slots.items()):
            for slot in slots:
                pid = slot.pid
                state = "running" if pid is not None else (
                    "failed" if slot.task is not None and slot.task.done() else "restarting")
                out.append({"model": name, "version": version, "slot": slot.index, "pid": pid, "state": state,
                            "restarts": slot.restarts,
                            "uptime_s": now - slot.started_at if pid is not None and slot.started_at else None,
                            "log": str(slot.log_path)})
        return out

    def kill(self, pid: int) -> bool:
        """SIGKILL the managed replica with this pid (a stuck one); its slot restarts it. False if not ours."""
        for slots in self._slots.values():
            for slot in slots:
                if slot.pid == pid:
                    log.warning("killing stuck replica %d of %s:%s (pid %d)", slot.index, slot.model.name,
                                slot.model.version, pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    return True
        return False

    # -- lifecycle ------------------------------------------------------------------------------------
    async def restore(self, models: list[Model]) -> None:
        """Bring back the replicas every registered model version asked for (after a restart), adopting
        replicas that outlived a killed server."""
        for model in models:
            if model.num_replicas > 0 and model.container_name != NO_CONTAINER:
                await self.set_replicas(model, model.num_replicas)

    async def stop_all(self) -> None:
        async with self._lock:
            slots = [s for group in self._slots.values() for s in group]
            self._slots.clear()
        await asyncio.gather(*(self._stop(slot) for slot in slots))

    # -- internals ------------------------------------------------------------------------------------
    def _new_slot(self, model: Model, index: int) -> _Slot:
        stem = f"{model.name}_{model.version}_{index}"
        slot = _Slot(model, index, self.logs_dir / f"{stem}.log", self.run_dir / f"{stem}.pid")
        with contextlib.suppress(OSError, ValueError):
            pid = int(slot.pid_path.read_text())
            if pid_alive(pid) and _is_replica_of(pid, model):
                slot.adopted_pid = pid
                log.info("adopting replica %d of %s:%s (pid %d) that outlived the previous server", index,
                         model.name, model.version, pid)
        slot.task = asyncio.get_running_loop().create_task(self._supervise(slot))
        return slot

    def _command(self, model: Model) -> list[str]:
        return [self.python, "-m", "clipper_container", "--model-dir", model.container_name,
                "--frontend", self.rpc_addr, "--name", model.name, "--version", model.version,
                "--input-type", model.input_type.value, "--heartbeat-interval", str(self.heartbeat_interval)]

    async def _start(self, slot: _Slot) -> int | None:
        """Start the slot's process and wait for it to exit; return its status (None: not started)."""
        fd = os.open(slot.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            slot.process = await asyncio.create_subprocess_exec(
                *self._command(slot.model), stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=fd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            log.error("cannot start replica %d of %s:%s: %s", slot.index, slot.model.name, slot.model.version, exc)
            slot.process = None
            return None
        finally:
            os.close(fd)
        _write_private(slot.pid_path, str(slot.process.pid))
        return await slot.process.wait()

    async def _watch_adopted(self, slot: _Slot) -> None:
        pid = slot.adopted_pid
        assert pid is not None
        while pid_alive(pid):
            await asyncio.sleep(_ADOPTED_POLL)  # not our child: no wait() possible, so poll its pid
        slot.adopted_pid = None

    async def _supervise(self, slot: _Slot) -> None:
        backoff = 0.5
        self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        while not self.rpc_addr and not slot.stopping:
            await asyncio.sleep(0.2)  # an admin-only server: no query frontend has registered yet
        while not slot.stopping:
            slot.started_at = time.monotonic()
            if slot.adopted_pid is not None:
                await self._watch_adopted(slot)
                code: int | None = -1
            else:
                code = await self._start(slot)
            if slot.stopping:
                return
            if code in _PERMANENT_FAILURES:
                log.error("replica %d of %s:%s exited with %s (%s); not restarting it (see %s)", slot.index,
                          slot.model.name, slot.model.version, code, _PERMANENT_FAILURES[code], slot.log_path)
                return
            uptime = time.monotonic() - slot.started_at
            backoff = 0.5 if uptime > 30 else min(self.max_backoff, backoff * 2 if slot.restarts else backoff)
            slot.restarts += 1
            log.warning("replica %d of %s:%s exited with %s after %.1f s; restarting in %.1f s (see %s)",
                        slot.index, slot.model.name, slot.model.version, code, uptime, backoff, slot.log_path)
            await asyncio.sleep(backoff)  # restart back-off, not an ordering wait

    async def _stop(self, slot: _Slot) -> None:
        slot.stopping = True
        pid = slot.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not await self._exited(slot, pid, self.stop_timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await self._exited(slot, pid, self.stop_timeout)
        if slot.task is not None:
            slot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task
        with contextlib.suppress(FileNotFoundError):
            slot.pid_path.unlink()

    @staticmethod
    async def _exited(slot: _Slot, pid: int, timeout: float) -> bool:
        if slot.process is not None and slot.process.pid == pid:
            try:
                await asyncio.wait_for(slot.process.wait(), timeout)
                return True
            except asyncio.TimeoutError:
                return False
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)  # an adopted replica is not our child: poll until its pid is gone
        return True


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
