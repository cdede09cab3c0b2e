"""Carrying a plan out against a real server: waiting for replicas shows its progress and gives up after its
timeout (on an injected clock) naming what is missing; a failed action says what was done before it."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from clipper_core.client.connection import ClipperConnection
from clipper_core.declarative.apply import ApplyFailed, apply_plan, wait_for_replicas
from clipper_core.declarative.load import load_text
from clipper_core.declarative.plan import make_plan
from clipper_core.declarative.running import read_running
from clipper_core.errors import ClipperException
from clipper_core.plugins import PluginRegistry
from clipper_core.progress import Progress


class FakeTime:
    """A clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_for_replicas_that_never_come(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_model("m", "1", "doubles")  # no container: no replica will ever connect
    stream, time = io.StringIO(), FakeTime()
    progress = Progress(stream, enabled=True)
    with pytest.raises(ClipperException) as info:
        wait_for_replicas(clipper_conn, "m", "1", 1, timeout=1.0, progress=progress, interval=0.5,
                          clock=time.clock, sleep=time.sleep)
    assert str(info.value) == ("m:1: 0 of 1 replica(s) connected after 1 s; the replicas' logs say why "
                               "(clipper logs)")
    # at 0 s and 0.5 s the same text (written once), at 1 s the timeout: the line is cleared
    assert stream.getvalue() == "\r\x1b[Km:1: waiting for replicas, 0/1 ready (0 s)\r\x1b[K"


def test_a_failed_action_names_what_was_done(clipper_conn: ClipperConnection, tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def predict(xs):\n    raise SystemExit('no')\n")
    desired = load_text(textwrap.dedent("""
        applications:
          - {name: a, input_type: doubles}
        models:
          - {name: m, version: 1, input_type: doubles, module: m.py:nope}
        """), "c.yaml", tmp_path)
    plan = make_plan(desired, read_running(clipper_conn))
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan, clipper_conn, PluginRegistry.create(), progress=Progress(io.StringIO()))
    assert [a.kind for a in info.value.done] == ["add_app"]
    assert str(info.value) == (f"model m:1: deploy failed: {tmp_path / 'm.py'} has no function 'nope' (1 earlier "
                               "change(s) were made; run clipper diff to see what is left)")
    assert [app["name"] for app in clipper_conn.get_all_apps(verbose=True)] == ["a"]
