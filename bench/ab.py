"""A/B benchmark: two source trees of clipper served side by side in one run, measured in turns.

    git worktree add /tmp/before HEAD
    .venv/bin/python bench/ab.py --before /tmp/before --after .      # 8 s a run, 4 rounds, 1/16/64 conns

Both servers run at once from the same venv, each importing clipper_core, clipper_container (and the plugins
under ``plugins/``) from its own tree (``PYTHONPATH``; checked on the running server and replica processes).
For every scenario and connection count: a warm-up run on each side, then ``--rounds`` rounds, each a wrk run
against one side then the other (the side that goes first alternates). Throughput is compared as the ratio
of the medians (after / before) and as per-round ratios, whose spread shows how far the machine moved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import SETUPS, Point, cpu_seconds, deploy_apps, measure_point, run_wrk, start_server, warm, wrk_command  # noqa: E402
from spy import Profile, profile_under_load  # noqa: E402

SIDES = ("before", "after")
MODEL_OF = {app: model for app, model, _func, _batch in SETUPS}  # scenario = app name
# Run in a subprocess with a server's interpreter, environment and working directory: where each module comes from.
# clipper_core and clipper_container are imported; the plugins only located (some need optional dependencies).
CHECK = """
import importlib, importlib.util, sys
for name in sys.argv[1:]:
    try:
        if name in ("clipper_core", "clipper_container"):
            print(name, importlib.import_module(name).__file__)
        else:
            print(name, importlib.util.find_spec(name).origin)
    except Exception as exc:
        print(name, "!", repr(exc))
"""


@dataclass
class Side:
    name: str
    tree: Path
    home: Path
    conn: Any = None
    addr: str = ""
    commit: str = ""

    def url(self, app: str) -> str:
        return f"http://{self.addr}/{app}/predict"


@dataclass
class Row:
    scenario: str
    connections: int
    runs: dict[str, list[Point]] = field(default_factory=lambda: {side: [] for side in SIDES})
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    """Per run: CPU µs a request of the server and its replicas (less moved by a busy machine than req/s)."""

    def rps(self, side: str) -> list[float]:
        return [p.rps for p in self.runs[side]]

    def median(self, side: str, attr: str) -> float:
        return statistics.median(getattr(p, attr) for p in self.runs[side])

    def ratio(self) -> float:
        return self.median("after", "rps") / self.median("before", "rps")

    def round_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.rps("after"), self.rps("before"), strict=True)]

    def cpu_ratio(self) -> float:
        """before/after of the median CPU µs a request: above 1 when the after side spends less."""
        return statistics.median(self.cpu_us["before"]) / statistics.median(self.cpu_us["after"])


def side_cpu_seconds(side: Side) -> float:
    """CPU seconds so far of the side's server and every process it started (its replicas)."""
    server_pid = int(json.loads((side.home / "runtime.json").read_text())["pid"])
    total = 0.0
    for pid in [server_pid, *children(server_pid)]:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def tree_modules(tree: Path) -> dict[str, Path]:
    """The top-level packages a server must import from ``tree``, each with the directory it lives in."""
    modules = {"clipper_core": tree / "clipper_core", "clipper_container": tree / "containers" / "clipper_container"}
    for src in sorted(tree.glob("plugins/*/*/src")):
        for package in sorted(src.iterdir()):
            if (package / "__init__.py").is_file():
                modules[package.name] = package
    return modules


def _env_options(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict."""
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"expected NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def side_env(tree: Path) -> dict[str, str]:
    """PYTHONPATH puts the tree ahead of the venv's editable installs (those of /work/main). PYTHONSAFEPATH
    keeps ``python -m`` from putting the working directory first: run from a checkout, the server would
    otherwise import that checkout's clipper_core whatever PYTHONPATH says."""
    paths = [tree, tree / "containers", *sorted(tree.glob("plugins/*/*/src"))]
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths), "PYTHONSAFEPATH": "1"}


def process_imports(pid: int, modules: list[str]) -> dict[str, str]:
    """Where the running process ``pid`` imports each of ``modules`` from: asked of its own interpreter
    (argv[0]) with its environment and working directory, read from /proc."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="surrogateescape")
    environ = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    python = str(Path(cwd, os.fsdecode(argv[0])))
    out = subprocess.run([python, "-c", CHECK, *modules], env=environ, cwd=cwd, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def verify_imports(side: Side, replicas_expected: int) -> None:
    """Fail unless the side's server and every replica import clipper (and the tree's plugins) from its tree."""
    server_pid = int(json.loads((side.home / "runtime.json").read_text())["pid"])
    replicas = [pid for pid in children(server_pid)
                if b"clipper_container" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    if len(replicas) < replicas_expected:
        raise RuntimeError(f"{side.name}: found {len(replicas)} replica processes of server {server_pid}, "
                           f"expected {replicas_expected}")
    expected = tree_modules(side.tree)
    for pid in [server_pid, *replicas]:
        found = process_imports(pid, list(expected))
        for name, directory in expected.items():
            path = found.get(name, "(not reported)")
            if path.startswith("!") or not Path(path).resolve().is_relative_to(directory.resolve()):
                raise RuntimeError(f"{side.name}: process {pid} imports {name} from {path}, not from {directory}")
    print(f"{side.name}: server {server_pid} and replicas {replicas} import clipper_core, clipper_container"
          f"{' and ' + str(len(expected) - 2) + ' plugins' if len(expected) > 2 else ''} from {side.tree}",
          flush=True)


def describe(tree: Path) -> str:
    """Short commit of ``tree`` (+dirty when tracked files differ), read-only: no index refresh."""
    try:
        commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(tree), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True, timeout=30,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return commit + ("+dirty" if dirty else "")


def kill_leftovers(home: Path) -> None:
    """SIGKILL the process group of any server still running for ``home`` (one whose start was interrupted
    before it wrote runtime.json); the server leads its own session, its replicas are in its group."""
    needle = ["--home", str(home)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")]
            if any(args[i:i + 2] == needle for i in range(len(args) - 1)) and os.getpgid(int(entry.name)) == int(
                    entry.name):
                os.killpg(int(entry.name), signal.SIGKILL)


def stop(side: Side) -> None:
    from clipper_core import LocalContainerManager

    try:
        if side.conn is not None:
            side.conn.stop_all()
        else:
            LocalContainerManager(clipper_home=str(side.home)).stop_all(graceful=False)
    finally:
        kill_leftovers(side.home)
        shutil.rmtree(side.home, ignore_errors=True)


def measure(sides: list[Side], scenarios: list[str], conns: list[int], rounds: int, duration: float,
            warmup: float) -> list[Row]:
    rows = []
    for scenario in scenarios:
        model = MODEL_OF[scenario]
        for c in conns:
            row = Row(scenario, c)
            for side in sides:  # warm-up: the batch size adapts to this concurrency, caches and pools fill
                warm(side.url(scenario), 100)
                run_wrk(side.url(scenario), c, warmup)
            for r in range(rounds):
                for side in sides if r % 2 == 0 else sides[::-1]:
                    cpu = side_cpu_seconds(side)
                    point = measure_point(side.addr, scenario, f"{side.name} r{r + 1}", side.url(scenario), c,
                                          duration, model, scenario)
                    cpu = side_cpu_seconds(side) - cpu  # includes measure_point's 100 warm-up requests
                    row.runs[side.name].append(point)
                    row.cpu_us[side.name].append(cpu * 1e6 / max(1.0, point.rps * duration + 100))
            rows.append(row)
    return rows


def print_table(sides: list[Side], rows: list[Row], duration: float, rounds: int) -> None:
    def spread(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    print()
    for side in sides:
        print(f"{side.name}: {side.tree} ({side.commit})")
    print(f"{rounds} rounds of {duration:.0f} s a side, the first side alternating; medians over the rounds")
    print()
    print("| scenario | conns | before req/s median (min–max) | after req/s median (min–max) | after/before "
          "| per-round ratio min–max | before p50/p99 ms | after p50/p99 ms | CPU µs/req before / after | "
          "CPU before/after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratios = row.round_ratios()
        print(f"| {row.scenario} | {row.connections} | {spread(row.rps('before'), '.0f')} | "
              f"{spread(row.rps('after'), '.0f')} | {row.ratio():.3f} | {min(ratios):.3f}–{max(ratios):.3f} | "
              f"{row.median('before', 'p50_ms'):.2f} / {row.median('before', 'p99_ms'):.2f} | "
              f"{row.median('after', 'p50_ms'):.2f} / {row.median('after', 'p99_ms'):.2f} | "
              f"{statistics.median(row.cpu_us['before']):.0f} / {statistics.median(row.cpu_us['after']):.0f} | "
              f"{row.cpu_ratio():.3f} |")
    for row in rows:
        for side in SIDES:
            errors = sum(p.errors for p in row.runs[side])
            defaults = max((p.default_ratio or 0.0) for p in row.runs[side])
            if errors or defaults:
                print(f"warning: {row.scenario} c={row.connections} {side}: {errors} wrk errors, "
                      f"default ratio up to {defaults:.3f}")


def profile_sides(sides: list[Side], spec: str, duration: float) -> dict[str, Profile]:
    scenario, _, conns = spec.partition(":")
    result = {}
    for side in sides:
        pid = int(side.conn.cm.runtime["pid"])
        url = side.url(scenario)
        run_wrk(url, int(conns), 2)  # warm-up
        result[side.name] = profile_under_load(pid, wrk_command(url, int(conns), duration), duration)
    return result


def print_profiles(profiles: dict[str, Profile], spec: str, duration: float) -> None:
    print(f"\nserver CPU under {spec} ({duration:.0f} s of py-spy at 200 Hz): share of samples")
    packages = sorted({p for prof in profiles.values() for p in prof.packages},
                      key=lambda p: -max(prof.packages[p] for prof in profiles.values()))
    print("\n| package | " + " | ".join(profiles) + " |\n|---|" + "---|" * len(profiles))
    for package in packages:
        cells = [f"{prof.packages[package] / max(1, prof.samples):.1%}" for prof in profiles.values()]
        print(f"| {package} | " + " | ".join(cells) + " |")
    for name, prof in profiles.items():
        print(f"\n{name}: {prof.samples} samples; top functions by self time")
        for function, share in prof.top(15):
            print(f"  {share:6.1%}  {function}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="checkout of the tree before the change")
    parser.add_argument("--after", type=Path, required=True, help="checkout of the tree after the change")
    parser.add_argument("--duration", type=int, default=8, help="seconds a wrk run (default 8)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds a point (default 4: even)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up a side and point (default 2)")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--only", default="noop,batchy", help=f"comma-separated scenarios of {sorted(MODEL_OF)}")
    parser.add_argument("--json", type=Path, help="also write every run and the summary to this file")
    parser.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable of the before side's server (repeatable)")
    parser.add_argument("--after-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable of the after side's server and its replicas (repeatable), "
                             "e.g. OTEL_TRACES_EXPORTER=otlp to measure tracing")
    parser.add_argument("--profile", metavar="SCENARIO:CONNS", help="after measuring, sample each server with "
                        "py-spy for --duration s under that load and print where its CPU goes")
    parser.add_argument("--no-measure", action="store_true", help="only profile (with --profile)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    scenarios = args.only.split(",")
    conns = [int(c) for c in args.connections.split(",")]
    if unknown := [s for s in scenarios if s not in MODEL_OF]:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(MODEL_OF)}")
    if args.duration < 1 or args.warmup < 1 or args.rounds < 1 or min(conns) < 1:
        parser.error("--duration, --warmup, --rounds and every connection count must be at least 1")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, tree in trees.items():
        missing = [str(p) for p in list(tree_modules(tree).values())[:2] if not (p / "__init__.py").is_file()]
        if missing:
            parser.error(f"--{name} {tree} is not a clipper checkout (no {', '.join(missing)})")

    sides: list[Side] = []
    try:
        for name in SIDES:
            side = Side(name, trees[name], Path(tempfile.mkdtemp(prefix=f"clipper-ab-{name}-")),
                        commit=describe(trees[name]))
            sides.append(side)
            side.conn = start_server(side.home, {**side_env(side.tree), **_env_options(getattr(args, f"{name}_env"))})
            side.addr = side.conn.get_query_addr()
            deploy_apps(side.conn, scenarios)
            verify_imports(side, len(scenarios))
        started = time.monotonic()
        rows = [] if args.no_measure else measure(sides, scenarios, conns, args.rounds, args.duration, args.warmup)
        print(f"measured in {time.monotonic() - started:.0f} s", flush=True)
        profiles = profile_sides(sides, args.profile, args.duration) if args.profile else {}
    finally:
        for side in sides:
            try:
                stop(side)
            except Exception as exc:  # still stop the other side
                print(f"warning: stopping the {side.name} server ({side.home}): {exc!r}", file=sys.stderr)
    if rows:
        print_table(sides, rows, args.duration, args.rounds)
    if profiles:
        print_profiles(profiles, args.profile, args.duration)
    if args.json:
        summary = [{"scenario": r.scenario, "connections": r.connections, "ratio": r.ratio(),
                    "round_ratios": r.round_ratios(), "cpu_us": r.cpu_us,
                    "runs": {s: [asdict(p) for p in r.runs[s]] for s in SIDES}}
                   for r in rows]
        report: dict[str, Any] = {side.name: {"tree": str(side.tree), "commit": side.commit} for side in sides}
        report |= {"duration": args.duration, "rounds": args.rounds, "warmup": args.warmup, "rows": summary}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; both servers stopped", file=sys.stderr)
        sys.exit(130)
