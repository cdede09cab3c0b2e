"""What granian (2.x) does with what clipper's query frontend needs from its HTTP server (#13 item 1): each probe
prints what it saw. granian is not a clipper dependency (``pip install granian`` first).

* a chunked request body, and a body of 80 MB (granian has no body-size option: is it refused?);
* keep-alive (two requests on one connection);
* SIGTERM while a request is in flight (is it answered, does a new connection get in?);
* SO_REUSEPORT (can another process's socket share granian's port?), port 0 (what granian says it bound);
* the embedded server (``granian.server.embed.Server``, experimental): does the app run on the caller's uvloop
  loop, beside its other tasks?

    .venv/bin/python bench/granian_features.py
"""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
MAIN_LOOP: list[asyncio.AbstractEventLoop] = []
RELEASE: list[asyncio.Future[str]] = []


async def app(scope: Any, proto: Any) -> None:
    """``/len``: the body read chunk by chunk (its size and chunk count); ``/slow``: answers after 1.5 s;
    ``/loop``: whether this runs on the loop of ``MAIN_LOOP`` and gets what a task of that loop sends."""
    if scope.proto != "http":
        return
    if scope.path == "/len":
        size = chunks = 0
        async for chunk in proto:
            size, chunks = size + len(chunk), chunks + 1
        body = {"bytes": size, "chunks": chunks, "transfer-encoding": scope.headers.get("transfer-encoding")}
    elif scope.path == "/slow":
        await asyncio.sleep(1.5)
        body = {"slow": "done"}
    else:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        RELEASE.append(fut)
        body = {"same_loop": bool(MAIN_LOOP) and loop is MAIN_LOOP[0], "loop": type(loop).__module__,
                "from_task": await asyncio.wait_for(fut, 2)}
    proto.response_bytes(200, [("content-type", "application/json")], orjson.dumps(body))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop", "--http", "1", "--no-ws",
         "--workers", "1", "--log-level", "warning", "--working-dir", str(HERE), "--port", str(port),
         "granian_features:app"], text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("granian did not start")


def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None,
         encode_chunked: bool = False) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body, headers or {}, encode_chunked=encode_chunked)
    response = conn.getresponse()
    out = response.status, response.read()
    conn.close()
    return out


def probe_process(port: int) -> None:
    status, body = post(port, "/len", iter([b"x" * 1000] * 5), {"Transfer-Encoding": "chunked"},
                        encode_chunked=True)
    print("chunked body of 5x1000 bytes:", status, body.decode())
    status, body = post(port, "/len", b"x" * (80 << 20))
    print("80 MB body (no limit configured, none offered):", status, body.decode())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/len", b"ab")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("POST", "/len", b"abc")
    second = conn.getresponse()
    print("keep-alive: second request on the same socket:", conn.sock is sock, second.status, second.read().decode())
    conn.close()
    shared = socket.socket()
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        shared.bind(("127.0.0.1", port))
        shared.listen()
        print("SO_REUSEPORT: another socket with SO_REUSEPORT bound granian's port too")
    except OSError as exc:
        print("SO_REUSEPORT: another socket could not bind granian's port:", exc)
    finally:
        shared.close()


def probe_sigterm(port: int, proc: subprocess.Popen[str]) -> None:
    result: list[Any] = []
    slow = threading.Thread(target=lambda: result.append(post(port, "/slow", b"")))
    slow.start()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    time.sleep(0.3)
    try:
        late = post(port, "/len", b"late")
        print("a new connection after SIGTERM:", late)
    except OSError as exc:
        print("a new connection after SIGTERM:", type(exc).__name__, exc)
    slow.join()
    proc.wait(20)
    print(f"SIGTERM 0.3 s into a 1.5 s request: it got {result[0] if result else None}; "
          f"granian exited {time.monotonic() - sent:.2f} s after the signal, code {proc.returncode}")


def probe_port0() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "granian", "--interface", "rsgi", "--working-dir", str(HERE),
                             "--port", "0", "granian_features:app"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None  # granian logs to stdout
    said = [proc.stdout.readline().strip() for _ in range(2)]
    time.sleep(1)
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    pids = [proc.pid, *map(int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split())]
    ours = [line.split()[3] for line in listening if any(f"pid={pid}," in line for pid in pids)]
    print("port 0: granian said", said[1:], "and listens on", ours)
    proc.terminate()
    proc.wait(10)


async def probe_embedded() -> None:
    from granian.server.embed import Server

    MAIN_LOOP.append(asyncio.get_running_loop())
    port = free_port()
    server = Server(app, port=port, interface="rsgi", http="1", websockets=False)  # type: ignore[arg-type]
    serving = asyncio.get_running_loop().create_task(server.serve())

    async def release() -> None:
        while not RELEASE:
            await asyncio.sleep(0.01)
        RELEASE.pop().set_result("a task of the caller's loop")

    await asyncio.sleep(0.5)
    releaser = asyncio.get_running_loop().create_task(release())
    status, body = await asyncio.to_thread(post, port, "/loop", b"")
    await releaser
    print("embedded server:", status, body.decode())
    server.stop()
    await serving


def main() -> None:
    port = free_port()
    proc = start(port)
    try:
        probe_process(port)
        probe_sigterm(port, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    probe_port0()
    import uvloop

    uvloop.run(probe_embedded())


if __name__ == "__main__":
    main()
