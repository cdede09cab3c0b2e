"""Helpers for testing framework deployer plugins: a served local cluster, batch answers, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clipper_core.client.connection import ClipperConnection
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.testing.server import ServerThread

__all__ = ["assert_imports_are_lazy", "batch_outputs", "served_cluster"]


@contextmanager
def served_cluster(home: Path, deploy: Callable[[ClipperConnection], list[str]], *, timeout: float = 90
                   ) -> Iterator[tuple[ServerThread, ClipperConnection]]:
    """A real server in ``home`` and a connected ``ClipperConnection``; ``deploy(conn)`` deploys models and
    returns their names, each of which must have its version-1 replica connected within ``timeout``."""
    with ServerThread(home) as server:
        conn = ClipperConnection(LocalContainerManager(clipper_home=str(home)))
        conn.connect()
        for name in deploy(conn):
            server.wait_replicas(name, "1", 1, timeout=timeout)
        yield server, conn


def batch_outputs(server: ServerThread, app: str, batch: list[Any]) -> list[Any]:
    """``input_batch`` through REST; every answer must be the model's (no default output)."""
    status, answer = server.predict(app, {"input_batch": batch})
    assert status == 200, answer
    results = answer["batch_predictions"]
    assert not any(r["default"] for r in results), results
    return [r["output"] for r in results]


def assert_imports_are_lazy(loader: str, deployer: str, heavy: tuple[str, ...]) -> None:
    """In a fresh interpreter: importing the container-side ``loader`` module imports neither clipper_core nor
    the framework (``heavy`` top-level modules), and plugin discovery registers ``deployer`` without importing
    the framework either."""
    code = (
        "import sys\n"
        f"import {loader}\n"
        f"heavy = {heavy!r}\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('clipper_core', 'pluggy', *heavy)], 'loader'\n"
        "from clipper_core.plugins import PluginRegistry\n"
        f"assert {deployer!r} in PluginRegistry.create().deployers\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in heavy], 'registry'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
