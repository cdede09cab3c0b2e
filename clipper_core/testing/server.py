"""A real clipper server for tests: the embedded server on its own event loop in a background thread, every
port picked by the OS, state under a temporary $CLIPPER_HOME. Synchronous clients (``ClipperConnection``,
urllib) can then drive it from the test thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from clipper_core.config import Config

__all__ = ["ServerThread", "http_json", "wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.02,
               what: str = "condition") -> None:
    """Poll ``condition`` (across a process boundary there is no event to await), bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_json(url: str, body: Any = None, *, method: str | None = None, token: str | None = None,
              raw: bytes | None = None, timeout: float = 30.0,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Send JSON (or ``raw`` bytes), with ``headers`` if given; return (status, decoded JSON body or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


class ServerThread:
    """``with ServerThread(home) as server:`` — a running embedded server; stopped gracefully on exit."""

    def __init__(self, home: Path, **config: Any) -> None:
        options: dict[str, Any] = {"home": home, "query_port": 0, "admin_port": 0, "rpc_port": 0}
        options.update(config)
        self.config = Config(**options)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: Any = None
        self._thread: threading.Thread | None = None
        self._started: Future[None] = Future()

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._main, name="clipper-test-server", daemon=True)
        self._thread.start()
        self._started.result(timeout=60)
        return self

    def _main(self) -> None:
        import uvloop

        from clipper_core.server.assembly import start_server

        loop = self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.server = loop.run_until_complete(start_server(self.config))
        except BaseException as exc:
            self._started.set_exception(exc)
            loop.close()
            return
        self._started.set_result(None)
        loop.run_until_complete(self.server.stopped.wait())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self, timeout: float = 60.0) -> None:
        if self.loop is None or self._thread is None or not self._thread.is_alive():
            return
        stopping = asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)
        try:
            stopping.result(timeout=timeout)
        except TimeoutError:
            stacks = self._task_stacks()
            raise TimeoutError(f"the server did not stop within {timeout} s; its tasks:\n{stacks}") from None
        self._thread.join(timeout)

    def _task_stacks(self) -> str:
        """Where each of the loop's tasks waits (what a hung stop is stuck on)."""
        import io

        def stacks() -> str:
            out = io.StringIO()
            for task in asyncio.all_tasks(self.loop):
                task.print_stack(limit=8, file=out)
            return out.getvalue()

        try:
            return self.call(stacks)
        except Exception as exc:  # the loop itself is blocked
            return f"(the loop does not answer: {type(exc).__name__})"

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop thread and return its result."""
        assert self.loop is not None
        result: Future[T] = Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:
                result.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return result.result(timeout=30)

    @property
    def query_url(self) -> str:
        return f"http://{self.server.query_addr}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.server.admin_addr}"

    def connected_replicas(self, name: str, version: str) -> int:
        def count() -> int:
            mr = self.server.ctx.query_path.models.get((name, str(version)))
            return mr.num_replicas if mr is not None else 0

        return self.call(count)

    def wait_replicas(self, name: str, version: str, n: int, timeout: float = 30.0) -> None:
        wait_until(lambda: self.connected_replicas(name, version) == n, timeout,
                   what=f"{n} connected replicas of {name}:{version}")

    def predict(self, app: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return http_json(f"{self.query_url}/{app}/predict", body, **kw)
