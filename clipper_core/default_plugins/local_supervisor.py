"""The server-side half of the local container manager: replica subprocesses, restarted with back-off.

Each replica slot is a supervision task: start ``python -m clipper_container`` (same interpreter, same
environment), wait for it to exit, and unless it was asked to stop, start it again after a back-off that
doubles from 0.5 s to 30 s and resets once a replica has stayed up for 30 s. Logs go to
``$CLIPPER_HOME/logs/<model>_<version>_<slot>.log`` (owner-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from clipper_core.state import Model

__all__ = ["LocalReplicaSupervisor"]

log = logging.getLogger(__name__)
CONTAINERLESS = "NO_CONTAINER"
# Exit codes of python -m clipper_container that a restart cannot fix.
_PERMANENT_FAILURES = {2: "bad arguments", 3: "rejected by the frontend", 4: "the model cannot be loaded"}


@dataclass
class _Slot:
    model: Model
    index: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    restarts: int = 0
    started_at: float = 0.0
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class LocalReplicaSupervisor:
    """Runs and supervises model replicas as local subprocesses connecting to ``rpc_addr``."""

    def __init__(self, logs_dir: Path, rpc_addr: str, *, heartbeat_interval: float = 0.5,
                 python: str = sys.executable, stop_timeout: float = 10.0, max_backoff: float = 30.0) -> None:
        self.logs_dir = logs_dir
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
        if num_replicas > 0 and model.container_name == CONTAINERLESS:
            raise ValueError(f"model {model.name}:{model.version} is a containerless model")
        async with self._lock:
            slots = self._slots.setdefault(model.key, [])
            while len(slots) < num_replicas:
                slot = _Slot(model, len(slots), self.logs_dir / f"{model.name}_{model.version}_{len(slots)}.log")
                slot.task = asyncio.get_running_loop().create_task(self._supervise(slot))
                slots.append(slot)
            surplus = slots[num_replicas:]
            del slots[num_replicas:]
            if not slots:
                self._slots.pop(model.key, None)
        await asyncio.gather(*(self._stop(slot) for slot in surplus))

    def desired(self, name: str, version: str) -> int:
        return len(self._slots.get((name, version), ()))

    def running(self, name: str, version: str) -> int:
        return sum(1 for s in self._slots.get((name, version), ())
                   if s.process is not None and s.process.returncode is None)

    def log_files(self) -> list[Path]:
        return sorted(self.logs_dir.glob("*.log")) if self.logs_dir.exists() else []

    # -- lifecycle ------------------------------------------------------------------------------------
    async def restore(self, models: list[Model]) -> None:
        """Bring back the replicas every registered model version asked for (after a restart)."""
        for model in models:
            if model.num_replicas > 0 and model.container_name != CONTAINERLESS:
                await self.set_replicas(model, model.num_replicas)

    async def stop_all(self) -> None:
        async with self._lock:
            slots = [s for group in self._slots.values() for s in group]
            self._slots.clear()
        await asyncio.gather(*(self._stop(slot) for slot in slots))

    # -- internals ------------------------------------------------------------------------------------
    def _command(self, model: Model) -> list[str]:
        return [self.python, "-m", "clipper_container", "--model-dir", model.container_name,
                "--frontend", self.rpc_addr, "--name", model.name, "--version", model.version,
                "--input-type", model.input_type.value, "--heartbeat-interval", str(self.heartbeat_interval)]

    async def _supervise(self, slot: _Slot) -> None:
        backoff = 0.5
        self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        while not slot.stopping:
            fd = os.open(slot.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                slot.exited.clear()
                slot.started_at = time.monotonic()
                slot.process = await asyncio.create_subprocess_exec(
                    *self._command(slot.model), stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=fd,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            except OSError as exc:
                log.error("cannot start replica %d of %s:%s: %s", slot.index, slot.model.name,
                          slot.model.version, exc)
                slot.process = None
            finally:
                os.close(fd)
            code = await slot.process.wait() if slot.process is not None else -1
            slot.exited.set()
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
        proc = slot.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if slot.task is not None:
            slot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task
