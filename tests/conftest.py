"""Shared test helpers: deploy toy models into a running ServerThread through the admin REST API; the plugin
tests' third-party distributions, installed by pip once a session (``sites``) and put on sys.path (``activate``);
the two live servers the OpenAPI tests share (``query_server``, ``admin_server``), started once a session."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clipper_container.loaders import python_closure

from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models
from tests.openapi_apps import APPS, BANDIT, MODEL, VERSION
from tests.plugin_dists import DISTS, Activate, write_project


class Deploy:
    """``deploy(name, version, func, input_type=..., replicas=1, app=None)``: save the closure, register it, start
    its replicas, link it to ``app`` if given, and wait until the replicas are connected."""

    def __init__(self, server: ServerThread, tmp_path: Path) -> None:
        self.server = server
        self.tmp_path = tmp_path

    def admin(self, endpoint: str, body: Any) -> Any:
        status, answer = http_json(f"{self.server.admin_url}/admin/{endpoint}", body)
        assert status == 200, (endpoint, status, answer)
        return answer

    def app(self, name: str, input_type: str = "doubles", default_output: str = "-1.0",
            slo_micros: int = 2_000_000, **extra: Any) -> None:
        self.admin("add_app", {"name": name, "input_type": input_type, "default_output": default_output,
                               "latency_slo_micros": slo_micros, **extra})

    def __call__(self, name: str, version: Any, func: Callable[..., Any], input_type: str = "doubles",
                 replicas: int = 1, app: str | None = None, batch_size: int = -1, wait: bool = True) -> Path:
        model_dir = self.tmp_path / "models" / f"{name}-{version}"
        python_closure.save(model_dir, func, input_type=input_type, name=name, version=str(version))
        self.admin("add_model", {"model_name": name, "model_version": str(version), "labels": [],
                                 "input_type": input_type, "container_name": str(model_dir),
                                 "model_data_path": "DEPRECATED", "batch_size": batch_size})
        self.admin("set_num_replicas", {"model_name": name, "model_version": str(version),
                                        "num_replicas": replicas})
        if app is not None:
            self.admin("add_model_links", {"app_name": app, "model_names": [name]})
        if wait:
            self.server.wait_replicas(name, str(version), replicas)
        return model_dir


Run = Callable[..., tuple[int, str, str]]
"""The ``cli`` fixture: ``cli("apps", "--json")`` → (exit code, stdout, stderr)."""


@pytest.fixture
def receiver() -> Iterator[Any]:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (``tests.otlp.Receiver``: the spans it was sent, decoded)."""
    from tests.otlp import started  # (the tracing extra's protobuf modules, only where a test asks for it)

    yield from started()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """The ``clipper`` command run in this process (``clipper_core.cli.main``), its output captured."""
    from clipper_core.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def ok(result: tuple[int, str, str]) -> str:
    """The stdout of a ``cli`` call that succeeded silently on stderr."""
    code, out, err = result
    assert (code, err) == (0, ""), (code, out, err)
    return out


@pytest.fixture
def deploy(clipper_server: ServerThread, tmp_path: Path) -> Deploy:
    return Deploy(clipper_server, tmp_path)


class SlowQueryInFlight:
    """A server stopping while a slow query (0.5 s, SLO 5 s) is in flight: start it with :meth:`begin`, which
    returns once the server drains; :meth:`finish` waits for the query and the stop. ``results`` holds the
    query's (status, body)."""

    def __init__(self, server: ServerThread, tmp_path: Path) -> None:
        from tests import models

        self.server = server
        deploy = Deploy(server, tmp_path)
        deploy.app("slowapp", slo_micros=5_000_000)
        deploy("slow", 1, models.slow_model, app="slowapp")
        self.query_path = server.server.ctx.query_path
        self.results: list[tuple[int, Any]] = []
        self._query = threading.Thread(target=lambda: self.results.append(server.predict("slowapp", {"input": [1.0]})))
        self._stopper = threading.Thread(target=server.stop)

    def begin(self) -> None:
        query_path, server = self.query_path, self.server
        self._query.start()
        wait_until(lambda: server.call(lambda: query_path.active) == 1, 10, what="the query to be in flight")
        self._stopper.start()
        wait_until(lambda: server.call(lambda: query_path.draining), 10, what="draining")

    def finish(self) -> None:
        self._query.join(10)
        self._stopper.join(60)


# -- the plugin tests' third-party distributions (tests/plugin_dists.py) ------------------------------

@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test distribution (tests/plugin_dists.py), each installed by ``pip install --target`` into its own
    site dir: once a session, for every test_plugins*.py module."""
    root = tmp_path_factory.mktemp("plugin-dists")
    jobs = []
    for dist in DISTS.values():
        site = root / "site" / dist.name
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--no-index", "--no-compile", "--disable-pip-version-check", "--target", str(site),
                   str(write_project(root, dist))]
        jobs.append((dist.name, site, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    result = {}
    for name, site, process in jobs:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"pip install {name} failed:\n{output.decode()}"
        result[name] = site
    return result


@pytest.fixture
def activate(sites: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Activate]:
    """``activate("acme-clipper-policy", ...)``: put those distributions' site dirs on sys.path."""
    def on_path(*names: str) -> None:
        for name in names:
            monkeypatch.syspath_prepend(str(sites[name]))

    yield on_path
    ours = set().union(*(d.modules for d in DISTS.values()))
    for module in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[module]


# -- the OpenAPI tests' live servers (tests/openapi_apps.py) ------------------------------------------

def _deploy_fixture_apps(server: ServerThread, home: Path) -> None:
    deploy = Deploy(server, home)
    for name, input_type in APPS.items():
        deploy.app(name, input_type=input_type, default_output="" if input_type in ("strings", "bytes") else "-1.0")
    deploy(MODEL, VERSION, models.feature_sum, app="hello-world")
    deploy.app(BANDIT, policy="exp3")  # a policy with per-user state (kept in the state store)
    deploy.admin("add_model_links", {"app_name": BANDIT, "model_names": [MODEL]})


@pytest.fixture(scope="session")
def query_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The server the query API is tested on: nothing here calls the admin API after setup."""
    home = tmp_path_factory.mktemp("openapi-query")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        _deploy_fixture_apps(server, home)
        _deploy_tenant_app(server)
        yield server


TENANT = "tenant"
"""The query server's app with keys required and limits (issue #18): its key is ``server.tenant_key``."""


def _deploy_tenant_app(server: ServerThread) -> None:
    deploy = Deploy(server, Path("."))
    deploy.app(TENANT)
    deploy.admin("add_model_links", {"app_name": TENANT, "model_names": [MODEL]})
    deploy.admin("set_app_limits", {"app_name": TENANT, "require_api_key": True, "limits": {
        "requests_per_second": 100.0, "requests_burst": 20, "max_concurrent": 4, "max_input_length": 8,
        "max_batch_size": 3, "max_body_bytes": 4096}})
    server.tenant_key = deploy.admin("add_api_key", {"app_name": TENANT})["api_key"]  # type: ignore[attr-defined]
    wait_until(lambda: server.call(lambda: len(server.server.ctx.query_path.snapshot.keys.by_id)) == 1, 10,
               what="the tenant key in the snapshot")


@pytest.fixture(scope="session")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The server the admin API is tested on (examples may create, delete and resize anything here)."""
    home = tmp_path_factory.mktemp("openapi-admin")
    with ServerThread(home, max_body_bytes=64 * 1024) as server:
        _deploy_fixture_apps(server, home)
        yield server


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """``clipper start --frontends 2`` from Python (two query frontend processes), as
    ``(ClipperConnection, $CLIPPER_HOME)``; stopped after the test. The processes share the default SQLite file
    unless the test parametrizes the fixture (``indirect=True``) with ``"redis"``: then a real redis-server
    (``redis_url``, which fails rather than skips under ``CI=true``)."""
    from clipper_core import ClipperConnection, LocalContainerManager

    store = getattr(request, "param", "sqlite")
    assert store in ("sqlite", "redis"), store
    home = tmp_path / "home"
    conn = ClipperConnection(LocalContainerManager(clipper_home=home, clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper(num_frontend_replicas=2,
                       state_store=request.getfixturevalue("redis_url") if store == "redis" else None)
    try:
        yield conn, home
    finally:
        conn.stop_all()
