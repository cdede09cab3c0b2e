"""pytest fixtures for end-to-end tests against a real embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core.testing.server import ServerThread

__all__ = ["clipper_conn", "clipper_home", "clipper_server"]


@pytest.fixture
def clipper_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "clipper-home"
    monkeypatch.setenv("CLIPPER_HOME", str(home))
    return home


@pytest.fixture
def clipper_server(clipper_home: Path) -> Iterator[ServerThread]:
    with ServerThread(clipper_home) as server:
        yield server


@pytest.fixture
def clipper_conn(clipper_server: ServerThread, clipper_home: Path) -> Any:
    from clipper_core.client.connection import ClipperConnection
    from clipper_core.default_plugins.local_manager import LocalContainerManager

    conn = ClipperConnection(LocalContainerManager(clipper_home=str(clipper_home)))
    conn.connect()
    return conn
