"""The helpers every framework deployer shares (``clipper_container.frameworks``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from clipper_container import frameworks
from clipper_container.frameworks import by_length, check_version, replica_threads, rows, version_key
from clipper_container.manifest import IncompatibleModel


def test_threads_from_the_environment_then_the_cgroup_quota(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLIPPER_NUM_THREADS", "3")
    assert replica_threads() == 3
    monkeypatch.setenv("CLIPPER_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="CLIPPER_NUM_THREADS must be a positive integer"):
        replica_threads()
    monkeypatch.delenv("CLIPPER_NUM_THREADS")
    assert 1 <= replica_threads() <= len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    assert frameworks._cgroup_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert frameworks._cgroup_cpus(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert frameworks._cgroup_cpus(tmp_path) == 2.0
    monkeypatch.setattr(frameworks, "_cgroup_cpus", lambda: 0.5)
    assert replica_threads() == 1


@pytest.mark.parametrize(("saved", "installed", "rule", "ok"), [
    ("1.5.2", "1.5.0", "same-minor", True),
    ("1.5.2", "1.6.0", "same-minor", False),
    ("2.1.0", "3.0.0", "not-older", True),
    ("2.1.0", "2.0.9", "not-older", False),
    ("2.13.0", "2.14.1+cpu", "same-major-not-older", True),
    ("2.13.0", "3.0.0", "same-major-not-older", False),
    ("3.15.1", "3.9.0", "same-major-not-older", False),
])
def test_version_rules(saved: str, installed: str, rule: frameworks.Rule, ok: bool) -> None:
    if ok:
        check_version("m", "fw", saved, installed, rule)
    else:
        with pytest.raises(IncompatibleModel, match=f"'m' was saved with fw {saved}; this container has fw "):
            check_version("m", "fw", saved, installed, rule)
    check_version("m", "fw", None, installed, rule)  # nothing recorded: nothing checked
    assert version_key("2.13.0+cpu") == (2, 13, 0) and version_key("v3") == (3, 0, 0)


def test_by_length_calls_once_per_length_and_fails_items_alone() -> None:
    calls: list[tuple[int, ...]] = []

    def run(batch: np.ndarray) -> list[float]:
        calls.append(batch.shape)
        return rows(batch.sum(axis=1))

    assert by_length(np.ones((4, 3)), run, width=3) == [3.0] * 4 and calls == [(4, 3)]
    calls.clear()
    out = by_length([np.ones(3), np.ones(2), np.ones(3)], run)
    assert out == [3.0, 2.0, 3.0] and sorted(calls) == [(1, 2), (2, 3)]
    out = by_length([np.ones(3), np.ones(2)], run, width=3)
    assert out[0] == 3.0 and isinstance(out[1], ValueError) and "inputs of 3 values, got 2" in str(out[1])
    assert by_length(["a", "bb"], lambda xs: [len(x) for x in xs]) == [1, 2]
    with pytest.raises(ValueError, match="returned 1 outputs for a batch of 2"):
        by_length(np.ones((2, 3)), lambda b: [0])


def test_writable_views_a_received_frame_and_copies_only_read_only_memory() -> None:
    from clipper_container.protocol import decode_inputs, encode_inputs

    header, buffers = encode_inputs([np.arange(3.0), np.arange(3.0, 6.0)], np.dtype("<f8"))
    frame = bytearray(buffers[0].tobytes())  # what the container receives: memory of its own
    batch = decode_inputs(header, [frame])
    view = frameworks.writable(batch)
    assert not batch.flags.writeable and view.flags.writeable and view.shape == (2, 3)
    assert np.shares_memory(view, np.frombuffer(frame, dtype="<f8"))
    view[0, 0] = 9.0  # an estimator scaling in place writes into the frame, which no one reads afterwards
    assert batch[0, 0] == 9.0
    assert frameworks.writable(view) is view
    frozen = decode_inputs(header, [bytes(frame)])  # read-only memory under it: a copy
    copied = frameworks.writable(frozen)
    assert copied.flags.writeable and not np.shares_memory(copied, frozen)
    np.testing.assert_array_equal(copied, frozen)
    column = frameworks.writable(batch[:, 1])  # not contiguous: a copy
    assert column.flags.writeable and not np.shares_memory(column, batch)
