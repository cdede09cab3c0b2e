"""Binary tensors: an image-sized input (224 x 224 x 3 float32, 602 KB, one request a query) sent in the V2
binary tensor data extension to clipper vs a raw aiohttp + uvloop handler that receives the same body, views the
tensor with numpy and returns its sum (``bench/raw_server.py binary``).

    .venv/bin/python bench/binary.py                          # 3 rounds of 5 s a side, 1 and 8 connections
    .venv/bin/python bench/binary.py --rounds 5 --duration 8 --connections 1,4,16
    .venv/bin/python bench/binary.py --raw buffer             # the raw handler reads into one buffer too

Both servers are up at once and wrk runs against them in turns (the first side alternating each round), so the
neighbours' load lands on both within seconds; the figure is the clipper/raw ratio of the median MB/s, with the
per-round ratios' spread. clipper serves a ``floats`` app with its cache off whose model sums each input.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models as bench_models  # noqa: E402
from prometheus import scrape  # noqa: E402
from run import RawServer, _ms, batch_stats, cpu_seconds, start_server  # noqa: E402

SHAPE = (1, 224, 224, 3)


def binary_body() -> tuple[bytes, int, float]:
    """The request body, its JSON header's length and the tensor's sum."""
    image = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    data = image.tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(SHAPE), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data)}}]}).encode()
    return header + data, len(header), float(image.reshape(-1).sum())


def post(url: str, body: bytes, header: int) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Inference-Header-Content-Length": str(header)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def deploy(conn: Any, url: str, body: bytes, header: int, expected: float) -> None:
    from clipper_core.deployers import python as python_deployer

    conn.register_application(name="image", input_type="floats", default_output="-1.0", slo_micros=1_000_000,
                              cache_enabled=False)
    python_deployer.deploy_python_closure(conn, name="imagesum", version=1, input_type="floats",
                                          func=bench_models.noop)
    conn.link_model_to_app(app_name="image", model_name="imagesum")
    deadline = time.monotonic() + 60
    while True:
        output = post(url, body, header)["outputs"][0]
        if not output["parameters"]["default"][0]:
            assert abs(output["data"][0] - expected) <= 1e-3 * abs(expected), (output, expected)
            return
        if time.monotonic() > deadline:
            raise RuntimeError("image: the replica never answered")
        time.sleep(0.1)


def run_wrk(url: str, connections: int, duration: float, body_file: Path, header: int) -> tuple[float, float, int]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout", "5s",
           "-s", str(HERE / "binary.lua"), url, "--", str(body_file), str(header)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses:|timeout|read|write|connect) (\d+)", out))
    return rps, p50, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", default="1,8")
    parser.add_argument("--raw", choices=["read", "buffer"], default="read",
                        help="the raw handler reads the body with request.read() (default) or into one buffer of its "
                             "Content-Length, as clipper does")
    parser.add_argument("--profile", type=int, metavar="CONNS", help="then py-spy the clipper server for 8 s at "
                                                                    "CONNS connections (self time by function)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    body, header, expected = binary_body()
    home = Path(tempfile.mkdtemp(prefix="clipper-bench-binary-"))
    body_file = home / "body.bin"
    body_file.write_bytes(body)
    conn = start_server(home)
    raw = RawServer("binary" if args.raw == "read" else "binary-buffer")
    rows: list[str] = []
    try:
        addr = conn.get_query_addr()
        urls = {"raw aiohttp": raw.url, "clipper V2": f"http://{addr}/v2/models/image/infer"}
        pids = {"raw aiohttp": raw.proc.pid, "clipper V2": json.loads((home / "runtime.json").read_text())["pid"]}
        deploy(conn, urls["clipper V2"], body, header, expected)
        assert abs(post(raw.url, body, header)["outputs"][0]["data"][0] - expected) < 1e-3 * abs(expected)
        for c in [int(c) for c in args.connections.split(",")]:
            for url in urls.values():  # warm-up at this concurrency
                run_wrk(url, c, 2, body_file, header)
            rps: dict[str, list[float]] = {side: [] for side in urls}
            p50: dict[str, list[float]] = {side: [] for side in urls}
            cpu: dict[str, list[float]] = {side: [] for side in urls}
            batches: list[float] = []
            errors = 0
            for r in range(args.rounds):
                order = list(urls) if r % 2 == 0 else list(urls)[::-1]
                for side in order:
                    start, metrics = cpu_seconds(pids[side]), scrape(addr)
                    got, latency, errs = run_wrk(urls[side], c, args.duration, body_file, header)
                    cpu[side].append((cpu_seconds(pids[side]) - start) / (got * args.duration) * 1e6)
                    if side == "clipper V2":
                        batches.append(batch_stats(metrics, scrape(addr), "imagesum", "image")[0])
                    rps[side].append(got)
                    p50[side].append(latency)
                    errors += errs
                    print(f"  c={c:<3} round {r + 1} {side:12} {got * len(body) / 1e6:8.1f} MB/s  "
                          f"p50 {latency:6.2f} ms  server CPU {cpu[side][-1]:5.0f} us/request", flush=True)
            rows.append(_row(c, rps, p50, cpu, len(body), errors) + f" {statistics.median(batches):.1f} |")
        if args.profile:
            _profile(home, urls["clipper V2"], args.profile, body_file, header)
    finally:
        raw.close()
        conn.stop_all()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nbody {len(body)} bytes ({'x'.join(map(str, SHAPE))} FP32 + {header}-byte JSON header), "
          f"{args.rounds} rounds of {args.duration:.0f} s a side; the raw handler reads with "
          f"{'request.read()' if args.raw == 'read' else 'one buffer'}\n")
    print("| conns | raw MB/s median (min–max) | clipper MB/s median (min–max) | clipper/raw | per-round ratio "
          "min–max | p50 ms raw / clipper | server CPU us/request raw / clipper frontend | errors "
          "| clipper mean batch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    return 0


def _profile(home: Path, url: str, c: int, body_file: Path, header: int) -> None:
    from spy import profile_under_load

    pid = json.loads((home / "runtime.json").read_text())["pid"]
    load = ["wrk", "-t1", f"-c{c}", "-d8s", "-s", str(HERE / "binary.lua"), url, "--", str(body_file), str(header)]
    profile = profile_under_load(pid, load, 8)
    print(f"\nclipper server at {c} connections, {profile.samples} samples; by package: "
          + ", ".join(f"{k} {v / max(1, profile.samples):.0%}" for k, v in profile.packages.most_common(8)))
    for name, share in profile.top(15):
        print(f"  {share:6.1%}  {name}")


def _row(c: int, rps: dict[str, list[float]], p50: dict[str, list[float]], cpu: dict[str, list[float]], size: int,
         errors: int) -> str:
    raw, clip = (np.array(rps[side]) * size / 1e6 for side in ("raw aiohttp", "clipper V2"))
    ratios = clip / raw
    return (f"| {c} | {statistics.median(raw):.0f} ({raw.min():.0f}–{raw.max():.0f}) | "
            f"{statistics.median(clip):.0f} ({clip.min():.0f}–{clip.max():.0f}) | "
            f"{statistics.median(clip) / statistics.median(raw):.2f} | {ratios.min():.2f}–{ratios.max():.2f} | "
            f"{statistics.median(p50['raw aiohttp']):.2f} / {statistics.median(p50['clipper V2']):.2f} | "
            f"{statistics.median(cpu['raw aiohttp']):.0f} / {statistics.median(cpu['clipper V2']):.0f} | {errors} |")


if __name__ == "__main__":
    sys.exit(main())
