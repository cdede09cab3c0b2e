"""An OTLP/HTTP trace sink for benchmarks: accepts ``POST /v1/traces`` on 127.0.0.1 and discards the spans,
counting them (``--port``, default any; prints the endpoint, and the count when stopped)::

    .venv/bin/python bench/otlp_sink.py --port 4318 &
    .venv/bin/python bench/ab.py --before /tmp/before --after . --only noop --connections 16 \\
        --after-env OTEL_TRACES_EXPORTER=otlp --after-env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
"""

from __future__ import annotations

import argparse
import signal
import sys

from aiohttp import web


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    received = {"requests": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        received["requests"] += 1
        received["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)

    def report(*_: object) -> None:
        print(f"otlp sink: {received['requests']} exports, {received['bytes']} bytes", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, report)
    print(f"otlp sink on http://127.0.0.1:{args.port or '(any)'}/v1/traces", flush=True)
    try:
        web.run_app(app, host="127.0.0.1", port=args.port, print=None)
    finally:
        print(f"otlp sink: {received['requests']} exports, {received['bytes']} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
