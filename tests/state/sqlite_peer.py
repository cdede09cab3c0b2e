"""Another process on the same SQLite file, for tests/state/test_sqlite_shared.py.

    python -m tests.state.sqlite_peer PATH

Opens a :class:`SqliteStateStore` on PATH, subscribes, prints ``ready``, then prints every event it is told of
as one JSON line (``{"event": [kind, name, version]}``) while it runs the commands it reads on stdin, one a
line: ``add_app NAME``, ``delete_app NAME``, ``put_rollout MODEL WEIGHT`` (stores ``{"model": MODEL, "weight":
WEIGHT}``), ``delete_rollout MODEL``, ``add_api_key APP KEY_ID`` (a key record with a fixed salt and digest),
``delete_api_key KEY_ID``, ``register_frontend ADDR TTL``, ``frontends`` (prints ``{"frontends": [...]}``), ``quit``.
After each command it prints ``{"done": COMMAND}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from clipper_core.inputs import InputType
from clipper_core.state import ApiKey, Application, ChangeEvent
from clipper_core.state.sqlite import SqliteStateStore


def _say(data: object) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def main(path: str) -> None:
    store = SqliteStateStore(path)
    await store.open()
    store.subscribe(lambda e: _say({"event": [e.kind, e.name, e.version]}) if isinstance(e, ChangeEvent) else None)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _say("ready")
    try:
        while line := (await reader.readline()).decode().strip():
            command, *args = line.split()
            if command == "quit":
                break
            if command == "add_app":
                await store.add_app(Application(args[0], InputType.DOUBLES, "-1.0", 100_000))
            elif command == "delete_app":
                await store.delete_app(args[0])
            elif command == "put_rollout":
                await store.put_rollout({"model": args[0], "weight": float(args[1])})
            elif command == "delete_rollout":
                await store.delete_rollout(args[0])
            elif command == "add_api_key":
                await store.add_api_key(ApiKey(args[1], args[0], "peer", "00" * 16, "ab" * 32, 1.0))
            elif command == "delete_api_key":
                await store.delete_api_key(args[0])
            elif command == "register_frontend":
                await store.register_frontend(args[0], ttl=float(args[1]))
            elif command == "frontends":
                _say({"frontends": await store.list_frontends()})
            _say({"done": line})
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
