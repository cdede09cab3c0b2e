"""The local container manager against the container-manager contract: a real background clipper process and
real replica processes under a temporary $CLIPPER_HOME, every port picked by the OS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.interfaces import ContainerManager
from clipper_core.testing import ContainerManagerContract


def _processes_under(home: Path) -> list[str]:
    """The live processes whose command line names ``home`` (the server: --home, replicas: --model-dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # exited meanwhile
        if state != "Z" and any(str(home).encode() in arg for arg in cmdline):
            found.append(f"{proc.name}: {b' '.join(cmdline).decode(errors='replace')}")
    return found


class TestLocalContainerManager(ContainerManagerContract):
    @pytest.fixture(scope="class")
    @classmethod
    def manager_factory(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], ContainerManager]]:
        home = tmp_path_factory.mktemp("contract") / "clipper-home"

        def make() -> ContainerManager:
            return LocalContainerManager(clipper_home=home, clipper_query_port=0, clipper_management_port=0,
                                         clipper_rpc_port=0)

        with pytest.MonkeyPatch.context() as env:
            env.setenv("CLIPPER_HOME", str(home))
            yield make
        LocalContainerManager(clipper_home=home).stop_all(graceful=False)

    def running(self, manager: ContainerManager) -> list[str]:
        assert isinstance(manager, LocalContainerManager)
        return _processes_under(manager.home)
