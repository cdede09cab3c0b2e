"""The threaded runner: :func:`running_api_server` serves a fresh :class:`KubeApiEmulator` with a kmock.Server on
127.0.0.1 in a daemon thread with its own event loop, writes a kubeconfig (:func:`write_kubeconfig`) and
yields an :class:`ApiServerHandle` through which tests reach the server's state from their own thread: objects,
requests and who made them (:meth:`ApiServerHandle.requests_by`), service-account tokens, and HTTPS listeners
of the same server on other addresses (:meth:`ApiServerHandle.serve_https`, for clients inside pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import shutil
import tempfile
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import kmock
import yaml

from .auth import AuditEvent
from .emulator import KubeApiEmulator, LogSource
from .resources import JSON
from .tls import HttpsEndpoint, TlsListeners

T = TypeVar("T")


def write_kubeconfig(path: Path, url: str, token: str | None) -> Path:
    """Write a kubeconfig with one cluster/user/context named ``emulated`` (current-context)."""
    user: JSON = {"token": token} if token is not None else {}
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "emulated",
        "clusters": [{"name": "emulated", "cluster": {"server": url}}],
        "users": [{"name": "emulated", "user": user}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "emulated",
                                                      "namespace": "default"}}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class _ServerThread:
    """Runs the emulator and a kmock.Server in a daemon thread with its own event loop."""

    def __init__(self, emulator_kwargs: Mapping[str, Any]) -> None:
        self._kwargs = dict(emulator_kwargs)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="kube-api-emulator", daemon=True)
        self._failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.emulator: KubeApiEmulator | None = None
        self.tls: TlsListeners | None = None
        self.port: int | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the emulated kube-apiserver did not start within {timeout} s")
        if self._failure is not None or self.emulator is None:
            raise RuntimeError(f"the emulated kube-apiserver failed to start: {self._failure!r}") from self._failure

    def stop(self, timeout: float, *, check: bool = True) -> None:
        """Stop the server and the loop, join the thread (bounded); with ``check``, report a crash or a hang."""
        if self.loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if check and self._thread.is_alive():
            raise RuntimeError(f"the emulated kube-apiserver did not stop within {timeout} s")
        if check and self._failure is not None:
            raise RuntimeError(f"the emulated kube-apiserver crashed: {self._failure!r}") from self._failure

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._failure = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with KubeApiEmulator(**self._kwargs) as emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            self.loop, self.emulator, self.port = asyncio.get_running_loop(), emulator, server.port
            self.tls = TlsListeners(emulator)
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await emulator.close()  # end watches before the HTTP servers wait for their handlers
                await self.tls.close()


@dataclasses.dataclass
class ApiServerHandle:
    """What a test gets from :func:`running_api_server`."""

    url: str
    kubeconfig: str
    token: str | None
    server: KubeApiEmulator
    loop: asyncio.AbstractEventLoop
    timeout: float = 10.0
    tls: TlsListeners | None = None

    def call(self, fn: Callable[[], T]) -> T:
        """Run a sync callable on the server's loop thread and return its result (or raise its error)."""

        async def invoke() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(self.timeout)

    def call_async(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine function on the server's loop and return its result."""

        async def invoke() -> T:
            result = fn()
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(self.timeout)

    def objects(self, plural: str, namespace: str | None = None) -> list[JSON]:
        """A snapshot (deep copies) of the stored objects of one resource, e.g. ``objects("pods", "default")``."""
        return self.call(lambda: self.server.list_objects(plural, namespace))

    def get_object(self, plural: str, namespace: str | None, name: str) -> JSON | None:
        return self.call(lambda: self.server.get_object(plural, namespace, name))

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "") -> None:
        """403 the admin token's matching requests (:meth:`KubeApiEmulator.deny`); service accounts have RBAC."""
        self.server.deny(verb, resource, namespace=namespace, group=group)

    def allow_all(self) -> None:
        self.server.allow_all()

    def fail_next(self, verb: str, resource: str, **kwargs: Any) -> None:
        """Fail the next matching requests (:meth:`KubeApiEmulator.fail_next`; ``user=`` for one user's only)."""
        self.server.fail_next(verb, resource, **kwargs)

    def set_log_source(self, fn: LogSource | None) -> None:
        def assign() -> None:
            self.server.log_source = fn

        self.call(assign)

    def requests(self) -> list[kmock.Request]:
        """The requests served so far (kmock's records: method, url, params, headers, data, resource, ...)."""
        return self.call(lambda: list(self.server))

    def requests_by(self, user: str) -> list[AuditEvent]:
        """What ``user`` (e.g. ``system:serviceaccount:ns:sa``) asked for, oldest first: each an
        :class:`~kube_api.auth.AuditEvent` with ``verb``, ``resource`` (``plural[/sub]``, ``""`` for a path),
        ``namespace``, ``name``, ``group``, ``path`` and ``code`` (the HTTP status: 403 when RBAC denied it)."""
        return self.call(lambda: self.server.audit_events(user))

    def denied_requests(self, user: str) -> list[AuditEvent]:
        """The requests of ``user`` answered 403 Forbidden."""
        return [event for event in self.requests_by(user) if event.code == 403]

    def service_account_token(self, namespace: str, name: str) -> str:
        """A bearer token of the ServiceAccount ``namespace/name`` (it must exist: else a 404
        ``kmock.KubernetesError``); valid until that ServiceAccount is deleted. Thread-safe."""
        return self.call(lambda: self.server.issue_service_account_token(namespace, name))

    def serve_https(self, host: str, port: int = 0) -> HttpsEndpoint:
        """Serve this same server over TLS on ``host`` (an IP address of this machine, never a wildcard) and an
        ephemeral port (or ``port``); the certificate, from this server's test CA (``HttpsEndpoint.ca_pem``), is
        valid for ``host`` and ``kubernetes.default.svc[.cluster.local]``. It stops with :meth:`stop_https` or
        when the server stops. Thread-safe."""
        tls = self.tls
        assert tls is not None, "this handle has no TLS listeners (made by running_api_server)"
        return self.call_async(lambda: tls.start(host, port))

    def stop_https(self, endpoint: HttpsEndpoint) -> None:
        """Stop one listener made by :meth:`serve_https`. Thread-safe."""
        tls = self.tls
        if tls is not None:
            self.call_async(lambda: tls.stop(endpoint))

    def errors(self) -> list[str]:
        """Unexpected exceptions inside the emulator (its bugs), formatted; API errors are not counted."""
        return self.call(lambda: ["".join(traceback.format_exception(e)) for e in self.server.errors])


@contextlib.contextmanager
def running_api_server(token: str | None = "test-token", *, startup_timeout: float = 10.0,
                       stop_timeout: float = 10.0, **emulator_kwargs: Any) -> Iterator[ApiServerHandle]:
    """Serve a fresh :class:`KubeApiEmulator` on http://127.0.0.1:<free port> for the duration of the block."""
    runner = _ServerThread({"token": token, **emulator_kwargs})
    try:
        runner.start(startup_timeout)
    except BaseException:
        runner.stop(stop_timeout, check=False)
        raise
    assert runner.emulator is not None and runner.loop is not None
    tmpdir = Path(tempfile.mkdtemp(prefix="kube-api-"))
    try:
        url = f"http://127.0.0.1:{runner.port}"
        kubeconfig = write_kubeconfig(tmpdir / "kubeconfig.yaml", url, token)
        yield ApiServerHandle(url=url, kubeconfig=str(kubeconfig), token=token, server=runner.emulator,
                              loop=runner.loop, tls=runner.tls)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        runner.stop(stop_timeout)
