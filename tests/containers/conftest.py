"""Fixtures of the container runtime's tests: a zmq context, a fake frontend bound to a random port, model
directories, and ``python -m clipper_container`` subprocesses (killed, and their logs printed, at teardown)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from clipper_container.loaders import python_closure

from tests.containers.fakes import HB, FakeFrontend


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def frontend(ctx: zmq.Context[Any]) -> Iterator[FakeFrontend]:
    ff = FakeFrontend(ctx)
    yield ff
    ff.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[..., Path]:
    def write(func: Callable[[Any], Any], input_type: str = "doubles", name: str = "m", **extra: Any) -> Path:
        directory = tmp_path / f"model-{name}"
        python_closure.save(directory, func, input_type=input_type, name=name, version="1", **extra)
        return directory
    return write


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(model: Path | None, port: int | None, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "clipper_container", "--heartbeat-interval", str(HB), "--log-level", "DEBUG"]
        if model is not None:
            cmd += ["--model-dir", str(model)]
        if port is not None:
            cmd += ["--frontend", f"tcp://127.0.0.1:{port}"]
        log_path = tmp_path / f"container-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([*cmd, *args], stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        procs.append((proc, log_path))
        return proc

    yield start
    for proc, log_path in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        print(f"---- {log_path.name} (exit {proc.returncode}) ----\n{log_path.read_text(errors='replace')}")
