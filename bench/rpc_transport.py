"""The RPC round trip alone, TCP loopback vs IPC: one bare ROUTER bound on both, two real containers serving the
noop model (one dialling ``tcp://``, one ``ipc://``), one PREDICT (1 x 10 doubles) at a time, in turns.

    .venv/bin/python bench/rpc_transport.py            # 6 rounds of 3000 round trips per transport

Printed per transport: the median over rounds of the p50 and p99 round trip (µs) and of round trips per second.
No HTTP in the way, so this is the transport's share of a noop query's cost (``ipc.py`` measures the whole path).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from clipper_container.loaders import python_closure
from clipper_container.protocol import PROTOCOL_VERSION, MsgType, encode_inputs, pack, unpack


def noop(xs: Any) -> list[float]:
    """bench/models.py's noop, defined here so that cloudpickle saves it by value (a __main__ function)."""
    return [float(x.sum()) for x in xs]


def welcome_all(router: zmq.Socket[bytes], want: set[str], timeout: float = 60.0) -> dict[str, bytes]:
    """Answer HELLOs until a container dialled each address in ``want``; return identity by address."""
    found: dict[str, bytes] = {}
    deadline = time.monotonic() + timeout
    while set(found) != want:
        if not router.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            raise RuntimeError(f"no HELLO from {want - set(found)}")
        identity, header, *_ = router.recv_multipart()
        msg = unpack(header)
        if msg["t"] == MsgType.HELLO:
            found[str(msg.get("frontend"))] = identity
            router.send_multipart([identity, pack({"t": int(MsgType.WELCOME), "v": PROTOCOL_VERSION,
                                                   "replica_id": len(found), "heartbeat_interval": 0.5})])
    return found


def round_trips(router: zmq.Socket[bytes], identity: bytes, n: int) -> list[float]:
    fields, buffers = encode_inputs([np.arange(10, dtype="<f8")], np.dtype("<f8"))
    times = []
    for i in range(n):
        header = pack({**fields, "t": int(MsgType.PREDICT), "id": i})
        start = time.perf_counter()
        router.send_multipart([identity, header, *buffers], copy=False)
        while True:
            sender, reply, *_ = router.recv_multipart()
            msg = unpack(reply)
            if msg["t"] == MsgType.HEARTBEAT:
                router.send_multipart([sender, pack({"t": int(MsgType.HEARTBEAT), "unknown": False})])
            elif msg["t"] == MsgType.RESULT and sender == identity and msg["id"] == i:
                break
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clipper-rpc-"))
    os.chmod(tmp, 0o700)
    model_dir = tmp / "noop"
    python_closure.save(model_dir, noop, input_type="doubles", name="noop", version="1")
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    addresses = {"tcp": f"tcp://127.0.0.1:{port}", "ipc": f"ipc://{tmp}/rpc.sock"}
    router.bind(addresses["ipc"])
    procs = [subprocess.Popen([sys.executable, "-m", "clipper_container", "--model-dir", str(model_dir),
                               "--frontend", addr, "--log-level", "WARNING"]) for addr in addresses.values()]
    try:
        ids = welcome_all(router, set(addresses.values()))
        for name in addresses:  # warm-up
            round_trips(router, ids[addresses[name]], 500)
        stats: dict[str, list[tuple[float, float, float]]] = {name: [] for name in addresses}
        for r in range(args.rounds):
            for name in (list(addresses) if r % 2 == 0 else list(reversed(addresses))):
                times = sorted(round_trips(router, ids[addresses[name]], args.n))
                stats[name].append((times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6,
                                    len(times) / sum(times)))
        for name, rows in stats.items():
            p50, p99, rate = (statistics.median(row[k] for row in rows) for k in range(3))
            print(f"{name}: p50 {p50:.0f} µs, p99 {p99:.0f} µs, {rate:.0f} round trips/s "
                  f"(p50 over rounds {min(r[0] for r in rows):.0f}-{max(r[0] for r in rows):.0f} µs)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        router.close(linger=0)
        ctx.term()
        for path in sorted(tmp.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
