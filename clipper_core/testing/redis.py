"""A real ``redis-server`` for tests: loopback only, a free port, the append-only file on (``appendfsync
always``, no RDB snapshots), killable with SIGKILL and restartable on the same port and data directory, so
what was acknowledged before a crash is there after it.

The ``redis_server`` fixture (function scope) starts one per test and stops it afterwards; ``redis_url`` is its
URL. When ``redis-server`` is not installed they skip the test, except under ``CI=true``, where a missing
server is a failure (CI must not silently skip the Redis tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper_core.testing.services import service_unavailable

__all__ = ["RedisServer", "redis_server", "redis_url"]

_MISSING = "redis-server is not installed: apt-get install redis-server (scripts/test.sh installs it)"
_PORT_ATTEMPTS = 5


def _free_port() -> int:
    """A port that was free a moment ago (another process may take it before redis-server binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, its data (append-only file) and log in ``directory``.

    ``port=None`` picks a free port on the first :meth:`start` (and another one if that port was taken in
    the meantime); later starts reuse it, so URLs held by clients stay valid across :meth:`kill9` and
    :meth:`restart`.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(_MISSING)
        self.binary = binary
        self.directory = Path(directory)
        self.port = port or 0
        self._port_fixed = port is not None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the server and wait (at most ``timeout`` seconds) until it answers PING with PONG, i.e. it
        listens and has loaded its append-only file. Returns ``self``."""
        if self.running:
            raise RuntimeError(f"redis-server is already running on port {self.port}")
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if not self._port_fixed:
                self.port = _free_port()
            if self._spawn(timeout):
                self._port_fixed = True  # from now on: the same port, whatever happens
                return self
            bind_race = "Address already in use" in self._log_tail()
            if self._port_fixed or not bind_race or attempt == _PORT_ATTEMPTS:
                break
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self._log_tail()}")

    def _spawn(self, timeout: float) -> bool:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                 "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
                 "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.kill9()
                return False
            time.sleep(0.02)  # waiting for another process to get ready; bounded by the deadline
        return True

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def ping(self) -> bool:
        """True when the server answers PING with PONG (not while it is still loading its data)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill9(self) -> None:
        """SIGKILL the server (no shutdown, no final save) and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self, timeout: float = 20.0) -> RedisServer:
        """kill -9, then start again on the same port and directory (the data comes back from the AOF)."""
        self.kill9()
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (a hung server or a network partition)."""
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s). Safe to call when it is not running."""
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> RedisServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running :class:`RedisServer` with its data under ``tmp_path``; stopped after the test."""
    if shutil.which("redis-server") is None:
        service_unavailable(_MISSING)
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of the test's :class:`RedisServer`."""
    return redis_server.url
