"""Baselines: the practical limit of a Python HTTP frontend on this machine.

``python bench/raw_server.py noop``: an aiohttp + uvloop handler that parses the JSON and returns the sum.
``python bench/raw_server.py binary``: a handler that receives a V2 binary-extension body (JSON header, then one
FP32 tensor) with ``request.read()``, views the tensor with numpy and returns its sum as a V2 answer
(bench/binary.py's baseline); ``binary-buffer``: the same, reading the body into one buffer of its length.
``noop-routed``: the noop handler as clipper's query app is built (``web.Application``, the dynamic route
``/{app}/predict``, one error middleware); ``noop-lowlevel``: the noop handler on aiohttp's low-level
``web.Server`` (no application, router or middleware: the handler matches the path itself).
``python bench/raw_server.py batchy``: the same handler, batching in-process: requests queue up, one worker
thread runs ``batchy`` on everything queued (at most 1024 items) while the next batch gathers.
``python bench/raw_server.py torch-mlp``: batching in process the same way, calling bench/frameworks.py's torch
MLP (64-256-256-10, built by ``frameworks.torch_mlp``, one torch thread) on at most 64 inputs a batch, a batch
going when it is full or when its oldest request has waited 3 ms; each answer is the input's 10 logits.
Prints ``PORT <n>`` once listening on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frameworks
from models import batchy

ONE_BUFFER = web.AppKey("one_buffer", bool)


async def noop_handler(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"query_id": 0, "output": float(sum(body["input"])),
                                           "default": False}), content_type="application/json")


@web.middleware
async def passing_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """As clipper's error middleware costs on a request that raises nothing: one more await."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise


async def lowlevel_noop(request: web.BaseRequest) -> web.Response:
    if request.method != "POST" or not request.path.endswith("/predict"):
        return web.Response(status=404)
    return await noop_handler(request)  # type: ignore[arg-type]


async def serve_lowlevel() -> None:
    runner = web.ServerRunner(web.Server(lowlevel_noop, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    print("PORT", runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


async def read_one_buffer(request: web.Request) -> bytearray:
    """The body read the way clipper's ``v2_binary.read_body`` does: one buffer of its Content-Length."""
    size = request.content_length or 0
    request.content.set_read_chunk_size(size)
    body, filled = bytearray(size), 0
    view = memoryview(body)
    while filled < size:
        chunk, _ = await request.content.readchunk()
        if not chunk:
            break
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    view.release()
    return body


async def binary_handler(request: web.Request) -> web.Response:
    body = await (read_one_buffer(request) if request.app[ONE_BUFFER] else request.read())
    header = int(request.headers["Inference-Header-Content-Length"])
    total = float(np.frombuffer(body, dtype="<f4", offset=header).sum())
    return web.Response(body=orjson.dumps({"model_name": "raw", "outputs": [
        {"name": "output", "shape": [1], "datatype": "FP64", "data": [total]}]}), content_type="application/json")


class InProcessBatcher:
    """Requests queue up; one worker thread runs ``model`` on up to ``max_batch`` of them at a time while the
    next batch gathers. With ``wait_s``, a batch goes when it is full or its oldest request has waited that
    long; without, whatever is queued goes as soon as the worker is free."""

    def __init__(self, model: Callable[[Any], Any] = batchy, max_batch: int = 1024, wait_s: float = 0.0,
                 thread_setup: Callable[[], None] | None = None) -> None:
        self.model, self.max_batch, self.wait_s = model, max_batch, wait_s
        self.pending: list[tuple[np.ndarray[Any, Any], asyncio.Future[Any], float]] = []
        self.wakeup = asyncio.Event()
        self.pool = ThreadPoolExecutor(1, initializer=thread_setup)
        """``thread_setup`` runs in the worker thread first (torch's thread count is per thread, as OpenMP's)."""

    async def gather(self) -> None:
        """Wait until ``max_batch`` requests are queued or the oldest has waited ``wait_s``."""
        loop = asyncio.get_running_loop()
        while len(self.pending) < self.max_batch:
            remaining = self.pending[0][2] + self.wait_s - loop.time()
            if remaining <= 0:
                return
            self.wakeup.clear()
            timer = loop.call_later(remaining, self.wakeup.set)
            await self.wakeup.wait()
            timer.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
            if self.wait_s:
                await self.gather()
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            outputs = await loop.run_in_executor(self.pool, self.model, np.stack([x for x, _, _ in batch]))
            for (_, fut, _), out in zip(batch, outputs, strict=True):
                fut.set_result(out)

    async def handler(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.pending.append((np.asarray(body["input"], dtype=np.float64), fut, loop.time()))
        if len(self.pending) == 1 or len(self.pending) >= self.max_batch:  # what the worker waits for
            self.wakeup.set()
        out = await fut
        return web.Response(body=orjson.dumps({"query_id": 0, "output": out, "default": False}),
                            content_type="application/json")


def torch_batcher() -> InProcessBatcher:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    call = frameworks.torch_caller(frameworks.torch_mlp())
    return InProcessBatcher(lambda batch: call(batch).tolist(), max_batch=64, wait_s=0.003,
                            thread_setup=lambda: torch.set_num_threads(1))  # in the thread that predicts too


async def main(kind: str) -> None:
    if kind == "noop-lowlevel":
        await serve_lowlevel()
    app = web.Application()
    if kind == "noop":
        app.router.add_post("/bench/predict", noop_handler)
    elif kind == "noop-routed":
        app = web.Application(middlewares=[passing_middleware])
        app.router.add_post("/{app}/predict", noop_handler)
    elif kind in ("binary", "binary-buffer"):
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[ONE_BUFFER] = kind == "binary-buffer"
        app.router.add_post("/bench/predict", binary_handler)
    elif kind in ("batchy", "torch-mlp"):
        batcher = InProcessBatcher() if kind == "batchy" else torch_batcher()
        app.router.add_post("/bench/predict", batcher.handler)
        asyncio.get_running_loop().create_task(batcher.run())
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print("PORT", runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "noop"))
