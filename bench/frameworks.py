"""Framework deployers: a scikit-learn model and a small torch MLP served through clipper vs the same model
called directly in this process on the same batches (clipper's overhead as a ratio).

    .venv/bin/python bench/frameworks.py             # 8 s a point
    .venv/bin/python bench/frameworks.py --quick     # 2 s a point (a smoke run)

Needs clipper-deployer-sklearn and clipper-deployer-pytorch (scripts/setup-venv.sh installs them with their
test extras). Models, trained at start on scikit-learn's bundled digits data:

* ``sklearn``: StandardScaler + LogisticRegression, ``predict_proba`` (10 floats per input);
* ``torch``: MLP 64-256-256-10 (torch.export), logits (10 floats per input).

Each point sends ``input_batch`` requests of B inputs from C concurrent aiohttp connections for the duration,
the prediction cache off (every input would otherwise repeat); the in-process figure calls the model on the
same B-input batches back to back in one thread. The load generator runs on the same machine (2 cores
shared by the client, the frontend and the replica; the in-process loop has them to itself), so the ratio
is a floor for what a separate client machine would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prometheus import scrape

POINTS = [(1, 1), (1, 16), (32, 4)]  # (inputs per request, concurrent connections)


@dataclass
class Point:
    model: str
    batch: int
    conns: int
    clipper_ips: float
    p50_ms: float
    p99_ms: float
    mean_batch: float
    inproc_ips: float

    @property
    def ratio(self) -> float:
        return self.clipper_ips / self.inproc_ips if self.inproc_ips else 0.0


def torch_mlp() -> Any:
    """The benchmark's torch model: MLP 64-256-256-10, seeded (the same weights in every process), eval mode."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()


def torch_caller(mlp: Any) -> Callable[[np.ndarray], Any]:
    """Calling ``mlp`` in process on a batch (n x 64, any float dtype): its logits as an n x 10 numpy array."""
    import torch

    def torch_call(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return mlp(torch.from_numpy(np.array(batch, dtype=np.float32))).numpy()

    return torch_call


def train() -> tuple[np.ndarray, dict[str, Callable[[np.ndarray], Any]], dict[str, Any]]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
    mlp = torch_mlp()
    direct = {"sklearn": lambda batch: clf.predict_proba(np.array(batch)), "torch": torch_caller(mlp)}
    return x, direct, {"sklearn": clf, "torch": mlp}


def batches(x: np.ndarray, size: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(x[rng.integers(0, len(x), size)] + rng.normal(0, 0.01, (size, x.shape[1]))).astype(np.float64)
            for _ in range(count)]


def in_process(call: Callable[[np.ndarray], Any], data: list[np.ndarray], duration: float) -> float:
    for batch in data[:20]:
        call(batch)
    done, i, start = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration:
        call(data[i % len(data)])
        done += len(data[i % len(data)])
        i += 1
    return done / elapsed


async def through_clipper(url: str, bodies: list[bytes], conns: int, duration: float) -> tuple[float, list[float]]:
    import aiohttp

    latencies: list[float] = []
    inputs = 0
    per_body = len(json.loads(bodies[0])["input_batch"])
    stop = time.perf_counter() + duration

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal inputs
        i = offset
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            async with session.post(url, data=bodies[i % len(bodies)],
                                    headers={"Content-Type": "application/json"}) as response:
                answer = await response.json()
            latencies.append((time.perf_counter() - t0) * 1e3)
            results = answer.get("batch_predictions", [answer])
            if response.status != 200 or any(r.get("default") for r in results):
                raise RuntimeError(f"bad answer: {str(answer)[:200]}")
            inputs += per_body
            i += conns

    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:
        for body in bodies[:20]:  # warm the path
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                await response.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker(session, k) for k in range(conns)))
        elapsed = time.perf_counter() - start
    return inputs / elapsed, latencies




def mean_batch(before: dict[str, float], after: dict[str, float], model: str) -> float:
    labels = f'{{model="{model}",version="1"}}'
    count = after.get(f"clipper_model_batch_size_count{labels}", 0) - before.get(
        f"clipper_model_batch_size_count{labels}", 0)
    total = after.get(f"clipper_model_batch_size_sum{labels}", 0) - before.get(
        f"clipper_model_batch_size_sum{labels}", 0)
    return total / count if count else 0.0


def wait_answered(url: str, body: bytes, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            if not json.loads(response.read()).get("default", True):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: the replica never answered")
        time.sleep(0.2)  # polling a replica in another process: nothing to await


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s a point instead of 8 s")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--only", default="sklearn,torch", help="comma-separated models")
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 8.0)
    only = [m for m in ("sklearn", "torch") if m in args.only.split(",")]

    from clipper_deployer_pytorch import create_endpoint as torch_endpoint
    from clipper_deployer_sklearn import create_endpoint as sklearn_endpoint

    from clipper_core import ClipperConnection, LocalContainerManager

    x, direct, models = train()
    home = Path(tempfile.mkdtemp(prefix="clipper-bench-frameworks-"))
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home), clipper_query_port=0,
                                                   clipper_management_port=0, clipper_rpc_port=0))
    conn.start_clipper(cache_size=0)
    points: list[Point] = []
    try:
        addr = conn.get_query_addr()
        if "sklearn" in only:
            sklearn_endpoint(conn, "bench-sklearn", "doubles", sklearn_model=models["sklearn"],
                             method="predict_proba", slo_micros=5_000_000)
        if "torch" in only:
            torch_endpoint(conn, "bench-torch", "doubles", pytorch_model=models["torch"], slo_micros=5_000_000)
        probe = json.dumps({"input": x[0].astype(float).tolist()}).encode()
        for model in only:
            wait_answered(f"http://{addr}/bench-{model}/predict", probe)
        for model in only:
            url = f"http://{addr}/bench-{model}/predict"
            for size, conns in POINTS:
                data = batches(x, size, 400, seed=size * 100 + conns)
                bodies = [json.dumps({"input_batch": b.tolist()}).encode() for b in data]
                before = scrape(addr)
                ips, latencies = asyncio.run(through_clipper(url, bodies, conns, duration))
                after = scrape(addr)
                q = statistics.quantiles(latencies, n=100)
                point = Point(model, size, conns, ips, statistics.median(latencies), q[98],
                              mean_batch(before, after, f"bench-{model}"), in_process(direct[model], data, duration))
                points.append(point)
                print(f"{model} B={size} C={conns}: clipper {ips:.0f} inputs/s, in-process "
                      f"{point.inproc_ips:.0f} inputs/s, ratio {point.ratio:.3f}", file=sys.stderr)
    finally:
        conn.stop_all()

    print("| model | inputs/request | conns | clipper inputs/s | p50 ms | p99 ms | mean model batch | "
          "in-process inputs/s (same batches) | clipper / in-process |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in points:
        print(f"| {p.model} | {p.batch} | {p.conns} | {p.clipper_ips:.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | "
              f"{p.mean_batch:.1f} | {p.inproc_ips:.0f} | {p.ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
