"""The noop handler of bench/raw_server.py (parse the JSON, answer the sum) as granian apps (#13 item 1).

``rsgi_app``: granian's own interface (RSGI): the body comes whole from ``await proto()``, the answer goes with
``proto.response_bytes``; ``asgi_app``: the same as a plain ASGI 3 app (no framework). Both match the path
themselves, as ``raw_server.py noop-lowlevel`` does. granian is not a clipper dependency; bench/http_layers.py
starts these with it when it is installed (``pip install granian``)::

    granian --interface rsgi --loop uvloop --http 1 --workers 1 --no-ws --no-access-log \
        --working-dir bench --port 8000 granian_app:rsgi_app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

JSON = [("content-type", "application/json")]
ASGI_JSON = [(b"content-type", b"application/json")]


def answer(body: bytes) -> bytes:
    return orjson.dumps({"query_id": 0, "output": float(sum(orjson.loads(body)["input"])), "default": False})


async def rsgi_app(scope: Any, proto: Any) -> None:
    if scope.proto != "http":
        return
    if scope.method != "POST" or not scope.path.endswith("/predict"):
        proto.response_empty(404, [])
        return
    proto.response_bytes(200, JSON, answer(await proto()))


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def asgi_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST" or not scope["path"].endswith("/predict"):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = answer(b"".join(chunks))
    await send({"type": "http.response.start", "status": 200, "headers": ASGI_JSON})
    await send({"type": "http.response.body", "body": body})
