"""noop over the V2 gRPC endpoint vs over REST: one clipper server, measured in turns with one load loop.

    .venv/bin/python bench/grpc.py                     # 3 rounds of 5 s a side at 1, 16 and 64 callers
    .venv/bin/python bench/grpc.py --quick             # 1 round of 2 s (figures are noisy)
    .venv/bin/python bench/grpc.py --wrk               # also wrk on /noop/predict (REST without a Python client)

One server of this tree (LocalContainerManager on free loopback ports, ``CLIPPER_GRPC_PORT=0``) with bench/run.py's
``noop`` app (the sum of 10 doubles, one replica). Each side is driven by the same load loop, in a process of its
own on uvloop: N callers, each sending its next request as soon as its last is answered, for ``--duration`` s;
every input differs (a counter in its first value), so the prediction cache never answers. Sides:

* ``rest``: ``POST /noop/predict`` with Clipper's JSON (aiohttp, a keep-alive connection per caller);
* ``rest-v2``: ``POST /v2/models/noop/infer`` with a JSON FP64 tensor of shape [1, 10];
* ``grpc``: ``ModelInfer`` with an FP64 [1, 10] tensor in ``raw_input_contents`` (grpc.aio; by default one
  channel: the callers' calls are streams of one HTTP/2 connection, as a gRPC client's usually are;
  ``--channels N`` spreads them over N connections);
* ``wrk`` (``--wrk``): wrk with bench/post.lua on ``/noop/predict``, the REST figure without the Python client;
* ``rest-live`` and ``grpc-live`` (``--floors``): ``GET /v2/health/live`` and ``ServerLive``, each protocol's cost
  of a call that does nothing (no query, no replica).

For each caller count: a warm-up run a side, then ``--rounds`` rounds of every side in turn, the first side
changing each round. Printed: req/s median (min-max), p50 and p99 (medians over the rounds, as the client saw
them), the server process's CPU per request (its /proc time over the run: what serving one request costs the
frontend, the client's own cost left out), the mean batch the replica got, and each side's req/s over rest's with
its per-round spread.

This file is named ``grpc``: run from bench/ (whose directory Python puts first on ``sys.path``), ``import grpc``
would find it. So it takes bench/ off ``sys.path`` before importing the library, and should anything import it
as ``grpc`` it hands over to the library (below).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if __name__ == "grpc":  # imported in place of the library: the import statement gets the library instead
    import importlib

    del sys.modules["grpc"]
    sys.modules["grpc"] = importlib.import_module("grpc")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

SIDES = ("rest", "rest-v2", "grpc")
BASELINE = "rest"


@dataclass
class Point:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    """Server process CPU per request, in µs."""
    errors: int
    batch: float = 0.0
    """Mean batch size the noop replica got during the run."""


# -- the load loop (a process of its own) -------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def _load(side: str, query_addr: str, grpc_addr: str, callers: int, duration: float, seed: int,
                channels: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    counter = itertools.count(seed * 10_000_000)
    tail = [float(i) for i in range(2, 11)]
    latencies: list[float] = []
    errors = 0
    cleanup: list[Any] = []
    if side.startswith("grpc"):
        from grpc import aio

        from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
        from clipper_core.frontend.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        # distinct options: grpcio would otherwise share one connection among channels to the same address
        opened = [aio.insecure_channel(grpc_addr, options=[("bench.channel", i)]) for i in range(channels)]
        cleanup.extend(channel.close for channel in opened)
        stubs = [pb_grpc.GRPCInferenceServiceStub(channel) for channel in opened]
        infers = itertools.cycle([stub.ModelInfer for stub in stubs])
        tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[1, 10])
        pack = struct.Struct("<10d").pack

        async def one() -> None:
            raw = pack(next(counter) + 0.5, *tail)
            await next(infers)(pb.ModelInferRequest(model_name="noop", inputs=[tensor], raw_input_contents=[raw]),
                               timeout=10)

        if side == "grpc-live":
            lives, live_request = itertools.cycle([stub.ServerLive for stub in stubs]), pb.ServerLiveRequest()

            async def one() -> None:
                await next(lives)(live_request, timeout=10)
    else:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=callers),
                                        timeout=aiohttp.ClientTimeout(total=10))
        cleanup.append(session.close)
        rest = ", ".join(map(str, tail))
        if side == "rest":
            url, template = f"http://{query_addr}/noop/predict", '{"input": [%s.5, ' + rest + "]}"
        else:
            url = f"http://{query_addr}/v2/models/noop/infer"
            template = ('{"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": [%s.5, '
                        + rest + "]}]}")
        headers = {"Content-Type": "application/json"}

        async def one() -> None:
            async with session.post(url, data=template % next(counter), headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")

        if side == "rest-live":
            live_url = f"http://{query_addr}/v2/health/live"

            async def one() -> None:
                async with session.get(live_url) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")

    stop_at = loop.time() + duration

    async def caller() -> None:
        nonlocal errors
        clock = time.perf_counter
        while loop.time() < stop_at:
            started = clock()
            try:
                await one()
            except Exception:
                errors += 1
                continue
            latencies.append(clock() - started)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - began
    for close in cleanup:
        await close()
    return {"count": len(latencies), "errors": errors, "elapsed": elapsed,
            "p50_ms": _percentile(latencies, 0.5) * 1000, "p99_ms": _percentile(latencies, 0.99) * 1000}


def client_main(argv: list[str]) -> int:
    side, query_addr, grpc_addr, callers, duration, seed, channels = argv
    import uvloop

    result = uvloop.run(_load(side, query_addr, grpc_addr, int(callers), float(duration), int(seed),
                              min(int(channels), int(callers))))
    print(json.dumps(result))
    return 0


# -- the runs ------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_seeds = itertools.count(int(time.time()) % 1000 * 100) if __name__ == "__main__" else None


def measure(side: str, runtime: dict[str, Any], callers: int, duration: float, channels: int = 1) -> Point:
    sys.path.insert(0, str(HERE))
    from prometheus import scrape
    from run import batch_stats

    pid = int(runtime["pid"])
    metrics = scrape(runtime["query_addr"])
    before = cpu_seconds(pid)
    if side == "wrk":
        from run import run_wrk

        rps, p50, p99, errors = run_wrk(f"http://{runtime['query_addr']}/noop/predict", callers, duration)
        count = rps * duration
    else:
        assert _seeds is not None
        done = subprocess.run([sys.executable, __file__, "--client", side, runtime["query_addr"], runtime["grpc_addr"],
                               str(callers), str(duration), str(next(_seeds)), str(channels)],
                              capture_output=True, text=True,
                              timeout=duration + 120, env={**os.environ, "PYTHONSAFEPATH": "1"})
        if done.returncode != 0:
            raise RuntimeError(f"the {side} load loop failed:\n{done.stderr}")
        result = json.loads(done.stdout)
        count, errors = result["count"], result["errors"]
        rps, p50, p99 = count / result["elapsed"], result["p50_ms"], result["p99_ms"]
    cpu = cpu_seconds(pid) - before
    batch = batch_stats(metrics, scrape(runtime["query_addr"]), "noop", "noop")[0]
    return Point(rps, p50, p99, cpu / max(count, 1) * 1e6, int(errors), batch)


def check_answers(runtime: dict[str, Any], timeout: float = 60.0) -> None:
    """Every side answers the model's output (the sum), not the default, once the replica is connected."""
    expected = 55.5
    deadline = time.monotonic() + timeout
    for side in SIDES:
        while True:
            done = subprocess.run([sys.executable, "-c", CHECK, side, runtime["query_addr"], runtime["grpc_addr"]],
                                  capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "PYTHONSAFEPATH": "1"})
            if done.returncode == 0 and float(done.stdout) == expected:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{side}: expected the noop model's {expected}, got {done.stdout!r} "
                                   f"{done.stderr}")
            time.sleep(0.2)  # the replica is still connecting: ask again (bounded by the deadline)


CHECK = r'''
import json, struct, sys, urllib.request
side, query, grpc_addr = sys.argv[1:]
values = [1.5] + [float(i) for i in range(2, 11)]
if side == "grpc":
    import grpc
    from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pb_grpc
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_addr))
    answer = stub.ModelInfer(pb.ModelInferRequest(model_name="noop", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP64", shape=[1, 10])], raw_input_contents=[struct.pack("<10d", *values)]))
    assert json.loads(answer.outputs[0].parameters["default"].string_param) == [False]
    print(struct.unpack("<d", answer.raw_output_contents[0])[0])
else:
    path, body = (("/noop/predict", {"input": values}) if side == "rest" else ("/v2/models/noop/infer",
        {"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": values}]}))
    request = urllib.request.Request(f"http://{query}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
    if side == "rest":
        assert answer["default"] is False
        print(answer["output"])
    else:
        assert answer["outputs"][0]["parameters"]["default"] == [False]
        print(answer["outputs"][0]["data"][0])
'''


def _med(points: list[Point], attr: str) -> float:
    return statistics.median(getattr(p, attr) for p in points)


def report(callers: int, runs: dict[str, list[Point]]) -> list[str]:
    base = runs[BASELINE]
    lines = [f"| side | callers | req/s median (min-max) | p50 ms | p99 ms | server CPU µs/req | mean batch | "
             f"req/s / {BASELINE} (rounds) | errors |", "|---|---|---|---|---|---|---|---|---|"]
    for side, points in runs.items():
        ratios = [p.rps / b.rps for p, b in zip(points, base, strict=True)]
        lines.append(f"| {side} | {callers} | {_med(points, 'rps'):.0f} ({min(p.rps for p in points):.0f}-"
                     f"{max(p.rps for p in points):.0f}) | {_med(points, 'p50_ms'):.2f} | {_med(points, 'p99_ms'):.2f} "
                     f"| {_med(points, 'cpu_us'):.0f} | {_med(points, 'batch'):.1f} "
                     f"| {_med(points, 'rps') / _med(base, 'rps'):.2f} "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) | {sum(p.errors for p in points)} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,16,64", help="concurrent callers, comma-separated")
    parser.add_argument("--wrk", action="store_true", help="also wrk on /noop/predict (needs wrk)")
    parser.add_argument("--floors", action="store_true",
                        help="also each protocol's floor: GET /v2/health/live and ServerLive (no query)")
    parser.add_argument("--channels", type=int, default=1,
                        help="gRPC channels (connections) the callers share, round robin (default 1)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    sides = [*SIDES, *(("wrk",) if args.wrk else ()), *(("rest-live", "grpc-live") if args.floors else ())]
    if args.wrk and shutil.which("wrk") is None:
        raise SystemExit("--wrk needs wrk (Debian package wrk)")
    sys.path.insert(0, str(HERE))
    from run import deploy_apps, start_server

    home = Path(tempfile.mkdtemp(prefix="clipper-grpc-bench-"))
    conn = start_server(home, {"CLIPPER_GRPC_PORT": "0"})
    lines: list[str] = []
    try:
        deploy_apps(conn, ("noop",))
        runtime = json.loads((home / "runtime.json").read_text())
        print(f"server pid {runtime['pid']}: REST on {runtime['query_addr']}, gRPC on {runtime['grpc_addr']}",
              flush=True)
        check_answers(runtime)
        for callers in (int(c) for c in args.connections.split(",")):
            for side in sides:  # warm-up
                measure(side, runtime, callers, min(1.0, args.duration), args.channels)
            runs: dict[str, list[Point]] = {side: [] for side in sides}
            for r in range(args.rounds):
                order = sides[r % len(sides):] + sides[:r % len(sides)]
                for side in order:
                    runs[side].append(measure(side, runtime, callers, args.duration, args.channels))
            table = report(callers, runs)
            print("\n".join(table[2:] if lines else table), flush=True)
            lines.extend(table[2:] if lines else table)
    finally:
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(client_main(sys.argv[2:]) if sys.argv[1:2] == ["--client"] else main())
