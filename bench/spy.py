"""Where a clipper server spends its CPU under load: py-spy samples the server process while wrk drives it, and
the samples are summed by the function they were taken in (self time) and by the package that function is in.

Used by ``bench/ab.py --profile SCENARIO:CONNS`` to profile both sides of an A/B run the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Profile", "profile_under_load"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
_PACKAGES = ("clipper_core", "clipper_container", "aiohttp", "zmq", "asyncio", "uvloop", "orjson", "numpy",
             "msgpack", "multidict", "yarl")


@dataclass
class Profile:
    samples: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    """Self samples by ``package.module:function``."""
    packages: Counter[str] = field(default_factory=Counter)
    """Self samples by package (``other`` for the rest, ``idle`` for samples with no Python frame)."""

    def top(self, n: int) -> list[tuple[str, float]]:
        return [(name, count / max(1, self.samples)) for name, count in self.functions.most_common(n)]


def _where(file: str) -> tuple[str, str]:
    parts = Path(file).with_suffix("").parts
    for package in _PACKAGES:
        if package in parts:
            i = parts.index(package)
            return package, ".".join(parts[i:])
    return "other", Path(file).stem


def parse_collapsed(text: str) -> Profile:
    """py-spy's ``--format raw`` output: one ``frame;frame;...;leaf count`` line a stack."""
    profile = Profile()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        profile.samples += count
        leaf = _FRAME.match(stack.split(";")[-1])
        if leaf is None:
            profile.packages["idle"] += count
            continue
        package, module = _where(leaf["file"])
        profile.packages[package] += count
        profile.functions[f"{module}:{leaf['func']}"] += count
    return profile


def profile_under_load(pid: int, load: list[str], seconds: float) -> Profile:
    """Sample ``pid`` for ``seconds`` (py-spy, 200 Hz, native frames off) while ``load`` (a wrk command) runs."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        recorder = threading.Thread(target=subprocess.run, kwargs={
            "args": [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                     "--format", "raw", "--output", str(out), "--nonblocking"],
            "capture_output": True, "check": False})
        recorder.start()
        subprocess.run(load, capture_output=True, check=False, timeout=seconds + 30)
        recorder.join(seconds + 30)
        return parse_collapsed(out.read_text()) if out.exists() else Profile()
