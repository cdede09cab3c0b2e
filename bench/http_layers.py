"""How much the HTTP layer costs a small request (#13 item 1): the same noop handler (parse the JSON, answer
the sum) on three aiohttp + uvloop servers and, when granian is installed, on two granian servers, all up at
once, measured with wrk in turns.

* ``app``: ``web.Application`` with a static route, no middleware (bench/run.py's raw baseline);
* ``routed``: ``web.Application`` built as clipper's query app is: the dynamic route ``/{app}/predict`` and
  one middleware;
* ``lowlevel``: aiohttp's low-level ``web.Server``: no application, router or middleware;
* ``rsgi``: granian (Rust HTTP, one worker, uvloop, HTTP/1) running bench/granian_app.py's RSGI app;
* ``asgi``: the same granian running the handler as a plain ASGI app.

Each server's CPU time (every thread of its processes, read from /proc) per request is printed too: granian
parses HTTP on a Rust runtime thread beside the Python one, so it can use more than one core.

    .venv/bin/python bench/http_layers.py [--duration 6] [--rounds 4] [--connections 1,16,64] [--no-granian]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import RawServer, run_wrk, warm  # noqa: E402

KINDS = {"app": "noop", "routed": "noop-routed", "lowlevel": "noop-lowlevel"}
GRANIAN = {"rsgi": "granian_app:rsgi_app", "asgi": "granian_app:asgi_app"}
TICK = os.sysconf("SC_CLK_TCK")


class GranianServer:
    """granian serving a bench/granian_app.py app on a free port: granian does not say which port it bound
    when given port 0 (it logs ``127.0.0.1:0``), so one is picked here and polled until it accepts."""

    def __init__(self, interface: str, target: str, extra: tuple[str, ...] = ()) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", interface, "--loop", "uvloop", "--http", "1",
             "--workers", "1", "--no-ws", "--no-access-log", "--log-level", "warning", "--backlog", "1024",
             "--working-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port), *extra, target])
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"granian {interface} did not start on port {port}") from None
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port}/hello/predict"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (all their threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK + sum(cpu_seconds(int(c)) for c in children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--no-granian", action="store_true", help="only the aiohttp servers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    use_granian = not args.no_granian and importlib.util.find_spec("granian") is not None
    if not args.no_granian and not use_granian:
        print("granian is not installed (pip install granian): measuring the aiohttp servers only", file=sys.stderr)
    servers: dict[str, RawServer | GranianServer] = {}
    try:
        for name, kind in KINDS.items():
            servers[name] = RawServer(kind)
        for name, target in GRANIAN.items() if use_granian else ():
            servers[name] = GranianServer(name, target)
        for name, server in servers.items():
            server.url = server.url.replace("/bench/predict", "/hello/predict") if name != "app" else server.url
            warm(server.url)
        others = [n for n in servers if n != "app"]
        print("| conns | " + " | ".join(f"{n} req/s (min–max)" for n in servers) + " | "
              + " | ".join(f"{n}/app" for n in others) + " | CPU µs/request: " + ", ".join(servers) + " |")
        print("|---|" + "---|" * (len(servers) + len(others) + 1))
        for conns in (int(c) for c in args.connections.split(",")):
            runs: dict[str, list[float]] = {name: [] for name in servers}
            cpu: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    before = cpu_seconds(servers[name].proc.pid)
                    rps = run_wrk(servers[name].url, conns, args.duration)[0]
                    runs[name].append(rps)
                    cpu[name].append((cpu_seconds(servers[name].proc.pid) - before) / (rps * args.duration) * 1e6)
            med = {name: statistics.median(v) for name, v in runs.items()}
            cells = [f"{med[n]:.0f} ({min(runs[n]):.0f}–{max(runs[n]):.0f})" for n in servers]
            ratios = [f"{med[n] / med['app']:.3f}" for n in others]
            per_request = ", ".join(f"{statistics.median(cpu[n]):.0f}" for n in servers)
            print(f"| {conns} | " + " | ".join(cells + ratios) + f" | {per_request} |", flush=True)
    finally:
        for server in servers.values():
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
