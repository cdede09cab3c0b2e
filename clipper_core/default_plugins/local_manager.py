"""The local container manager: clipper and its replicas as processes on this machine.

``start_clipper`` starts the embedded server (``clipper start --foreground``) as a background process in its
own session; that server runs the replicas (``python -m clipper_container``) and restarts them with back-off.
Everything lives under ``$CLIPPER_HOME`` (default ``~/.clipper``): the SQLite state, ``runtime.json`` (pid and
bound addresses), ``models/`` and ``logs/``, all owner-only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from clipper_core.client.admin_http import AdminClient, health_ok
from clipper_core.config import Config, clipper_home
from clipper_core.errors import ClipperException
from clipper_core.hookspecs import hookimpl
from clipper_core.interfaces import ContainerManager
from clipper_core.processes import pid_alive

__all__ = ["LocalContainerManager"]


def _copytree_private(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copytree(src, dst)
    for root, _dirs, files in os.walk(dst):
        os.chmod(root, 0o700)
        for name in files:
            os.chmod(os.path.join(root, name), 0o600)


class LocalContainerManager(ContainerManager):
    """Runs clipper and its model replicas as local processes, in the current Python environment.

    Every address argument left as None is the server's own default, read from its environment
    (:class:`~clipper_core.config.Config`: ``CLIPPER_HOST``, ``CLIPPER_QUERY_PORT`` ...; 1337, 1338, 7000 when
    unset); the addresses it actually bound are reported from its ``runtime.json``.

    :param clipper_home: state, logs and model directories (default ``$CLIPPER_HOME`` or ``~/.clipper``)
    :param host: address the query frontend binds
    :param clipper_query_port: query REST port (0 = any free port)
    :param clipper_management_port: management REST port (0 = any free port)
    :param clipper_rpc_port: the port model replicas connect to (0 = any free port)
    :param admin_token: bearer token for the management API (default ``$CLIPPER_ADMIN_TOKEN``)
    :param extra_env: environment variables for the server process, over this process's own
    """

    name: ClassVar[str] = "local"
    supports_build: ClassVar[bool] = True

    def __init__(self, clipper_home: str | os.PathLike[str] | None = None, host: str | None = None,
                 clipper_query_port: int | None = None, clipper_management_port: int | None = None,
                 clipper_rpc_port: int | None = None, admin_token: str | None = None, python: str = sys.executable,
                 extra_env: dict[str, str] | None = None, startup_timeout: float = 60.0) -> None:
        self.home = Path(clipper_home).expanduser() if clipper_home is not None else clipper_home_default()
        self.host = host
        self.query_port = clipper_query_port
        self.admin_port = clipper_management_port
        self.rpc_port = clipper_rpc_port
        self.admin_token = admin_token or os.environ.get("CLIPPER_ADMIN_TOKEN") or None
        self.python = python
        self.extra_env = dict(extra_env or {})
        self.startup_timeout = startup_timeout
        self.runtime: dict[str, Any] = {}

    def _server_config(self) -> Config:
        """What the server started by :meth:`start_clipper` uses for every address not given here."""
        return Config.from_env({**os.environ, **self.extra_env}, home=self.home)

    def _command(self) -> list[str]:
        cmd = [self.python, "-m", "clipper_core.cli", "start", "--foreground", "--home", str(self.home)]
        for flag, value in (("--host", self.host), ("--query-port", self.query_port),
                            ("--admin-port", self.admin_port), ("--rpc-port", self.rpc_port)):
            if value is not None:  # the rest is the server's Config: its environment, else the defaults
                cmd += [flag, str(value)]
        return cmd

    # -- clipper itself -------------------------------------------------------------------------------
    @property
    def runtime_file(self) -> Path:
        return self.home / "runtime.json"

    def _read_runtime(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.runtime_file.read_text())
        except (OSError, ValueError):
            return None
        return data if pid_alive(int(data.get("pid", -1))) else None

    def start_clipper(self, cache_size: int | None = None, num_frontend_replicas: int | str = 1,
                      state_store: str | None = None, **ignored: Any) -> None:
        """Start clipper in the background and wait until it answers (Clipper's Docker-only arguments, such as
        image names, are accepted and ignored). ``num_frontend_replicas`` > 1 runs that many query frontend
        processes sharing the query port (``clipper start --frontends N``); ``"auto"`` lets the server choose by
        its usable cores, as ``--frontends auto`` does (:func:`clipper_core.server.multi.auto_frontends`). They
        share the state store: the default SQLite file needs nothing else, a ``state_store`` of ``redis://...``
        is used as given, and only a store that cannot be shared (``memory``) gets a managed redis-server.

        :raises ClipperException: ``num_frontend_replicas`` is neither a whole number >= 1 nor ``"auto"``, or
            clipper is already running for this home, or it did not start"""
        frontends = _frontends_flag(num_frontend_replicas)
        running = self._read_runtime()
        if running is not None:
            raise ClipperException(f"clipper is already running for {self.home} (pid {running['pid']}); "
                                   "use connect() or stop_all()")
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        cmd = self._command()
        if cache_size is not None:
            cmd += ["--cache-size", str(cache_size)]
        cmd += frontends
        if state_store is not None:
            cmd += ["--state-store", state_store]
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        if self.admin_token:
            env["CLIPPER_ADMIN_TOKEN"] = self.admin_token
        log_path = logs / "clipper.log"
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env,
                                    start_new_session=True)
        finally:
            os.close(fd)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-40:])
                raise ClipperException(f"clipper exited with status {code} while starting; log {log_path}:\n{tail}")
            runtime = self._read_runtime()
            if runtime is not None and runtime.get("pid") == proc.pid:
                self.runtime = runtime
                if self._admin().ping() and self._query_ready():
                    return
            if time.monotonic() > deadline:
                proc.kill()
                raise ClipperException(f"clipper did not start within {self.startup_timeout:.0f} s; see {log_path}")
            time.sleep(0.05)  # polling another process's readiness, bounded by startup_timeout

    def _admin(self) -> AdminClient:
        if not self.runtime:
            raise ClipperException("not connected: call start_clipper() or connect() first")
        return AdminClient(f"http://{self.runtime['admin_addr']}", self.admin_token)

    def _query_ready(self) -> bool:
        """The query frontend answers /health (with several frontends, they start after the admin server)."""
        return health_ok(self.runtime["query_addr"])

    def connect(self) -> None:
        runtime = self._read_runtime()
        if runtime is None:
            raise ClipperException(f"no running clipper found for {self.home}; call start_clipper() first")
        self.runtime = runtime
        if not self._admin().ping():
            raise ClipperException(f"clipper (pid {runtime['pid']}) does not answer on {runtime['admin_addr']}")

    def get_admin_addr(self) -> str:
        if self.runtime:
            return str(self.runtime["admin_addr"])
        config = self._server_config()
        return f"{config.admin_host}:{config.admin_port if self.admin_port is None else self.admin_port}"

    def get_query_addr(self) -> str:
        if self.runtime:
            return str(self.runtime["query_addr"])
        config = self._server_config()
        return f"{self.host or config.query_host}:{config.query_port if self.query_port is None else self.query_port}"

    def get_metric_addr(self) -> str:
        return str(self.runtime["metrics_addr"]) if self.runtime else self.get_query_addr()

    def stop_all(self, graceful: bool = True) -> None:
        runtime = self._read_runtime()
        if runtime is None:
            with contextlib.suppress(FileNotFoundError):
                self.runtime_file.unlink()
            return
        pid = int(runtime["pid"])
        self.runtime = runtime  # a manager that never connected (``clipper stop``) still asks politely first
        if graceful:
            with contextlib.suppress(ClipperException):
                self._admin().post("/admin/shutdown", {})
            deadline = time.monotonic() + 30
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for another process to exit, bounded
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            self.runtime_file.unlink()
        self.runtime = {}

    # -- models ---------------------------------------------------------------------------------------
    def build_model(self, name: str, version: str, model_data_path: str, base_image: str | None = None,
                    pkgs_to_install: list[str] | None = None) -> str:
        """Copy the model directory to ``$CLIPPER_HOME/models/<name>/<version>`` and return that path.

        Replicas run in this environment, so ``pkgs_to_install`` must already be installed here."""
        missing = []
        for requirement in pkgs_to_install or []:
            dist = requirement.split("==")[0].split(">=")[0].split("<")[0].split("[")[0].strip()
            try:
                metadata.version(dist)
            except metadata.PackageNotFoundError:
                missing.append(requirement)
        if missing:
            raise ClipperException(f"the local container manager runs models in this Python environment "
                                   f"({sys.prefix}), where {missing} are not installed: install them first")
        target = self.home / "models" / name / str(version)
        _copytree_private(Path(model_data_path), target)
        return str(target)

    def deploy_model(self, name: str, version: str, input_type: str, image: str, num_replicas: int = 1) -> None:
        self.set_num_replicas(name, version, input_type, image, num_replicas)

    def set_num_replicas(self, name: str, version: str, input_type: str, image: str, num_replicas: int) -> None:
        self._admin().post("/admin/set_num_replicas", {"model_name": name, "model_version": str(version),
                                                       "num_replicas": num_replicas})

    def get_num_replicas(self, name: str, version: str) -> int:
        answer = self._admin().post("/admin/get_num_replicas", {"model_name": name, "model_version": str(version)})
        return int(answer["num_replicas"])

    def get_logs(self, logging_dir: str) -> list[str]:
        files = self._admin().post("/admin/get_logs", {})["files"]
        target = Path(logging_dir)
        target.mkdir(parents=True, exist_ok=True)
        copied = []
        for path in files:
            dst = target / Path(path).name
            with contextlib.suppress(FileNotFoundError):
                shutil.copyfile(path, dst)
                copied.append(str(dst))
        return copied

    def stop_models(self, models: dict[str, list[str]]) -> None:
        for name, versions in models.items():
            for version in versions:
                with contextlib.suppress(ClipperException):
                    self.set_num_replicas(name, version, "", "", 0)

    def stop_all_model_containers(self) -> None:
        models = self._admin().post("/admin/get_all_models", {"verbose": False})
        grouped: dict[str, list[str]] = {}
        for key in models:
            name, version = key.split(":", 1)
            grouped.setdefault(name, []).append(version)
        self.stop_models(grouped)


def _frontends_flag(num_frontend_replicas: int | str) -> list[str]:
    """``--frontends`` for the server's ``clipper start`` (none for one frontend). ``"auto"`` is passed on as it
    is: the server's command resolves it with the CLI's rule, for the cores the server may use."""
    if num_frontend_replicas == "auto":
        return ["--frontends", "auto"]
    if (isinstance(num_frontend_replicas, bool) or not isinstance(num_frontend_replicas, int)
            or num_frontend_replicas < 1):
        raise ClipperException("num_frontend_replicas must be a whole number >= 1 or 'auto', got "
                               f"{num_frontend_replicas!r}")
    return ["--frontends", str(num_frontend_replicas)] if num_frontend_replicas > 1 else []


def clipper_home_default() -> Path:
    return clipper_home()


@hookimpl
def clipper_register_container_managers() -> list[type[ContainerManager]]:
    return [LocalContainerManager]
