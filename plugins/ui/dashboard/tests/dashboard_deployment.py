"""A real clipper to look at: the embedded server (``ServerThread``) with two apps, ``pick`` (exp3 over three toy
models, taught by feedback which one is right) and ``sum`` (the default policy over one model), and bounded
traffic from a thread. The dashboard's tests, its screenshot script and ``bench/dashboard.py`` use it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json

__all__ = ["LEARNER_UID", "TOKEN", "Deployment", "Traffic"]

TOKEN = "dashboard-test-token"
"""The admin token the tests' server requires."""

LEARNER_UID = 7
"""The user whose feedback teaches ``pick`` (the policy panel looks this user up)."""


def label_of(x: Any) -> int:
    return 1 if x[0] > 0 else 0


def right(xs: Any) -> list[str]:
    return [str(float(1 if x[0] > 0 else 0)) for x in xs]


def ones(xs: Any) -> list[str]:
    return ["1.0" for _ in xs]


def zeros(xs: Any) -> list[str]:
    return ["0.0" for _ in xs]


def add(xs: Any) -> list[str]:
    return [str(float(sum(x))) for x in xs]


class Deployment:
    """``with Deployment(home, token) as d:`` a started server with both apps deployed and their replicas up."""

    def __init__(self, home: Path, token: str | None = None, **config: Any) -> None:
        self.token = token
        self.server = ServerThread(home, admin_token=token, **config)
        self.home = home

    def __enter__(self) -> Deployment:
        self.server.start()
        try:
            self._deploy()
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def _deploy(self) -> None:
        conn = ClipperConnection(LocalContainerManager(clipper_home=str(self.home), admin_token=self.token))
        conn.connect()
        conn.register_application("pick", "doubles", "-1.0", 2_000_000, policy="exp3",
                                  policy_config={"gamma": 0.1, "seed": 1})
        conn.register_application("sum", "doubles", "0.0", 100_000)
        for name, func in (("right", right), ("ones", ones), ("zeros", zeros)):
            python_deployer.deploy_python_closure(conn, name=name, version=1, input_type="doubles", func=func)
            conn.link_model_to_app("pick", name)
        python_deployer.deploy_python_closure(conn, name="adder", version=1, input_type="doubles", func=add)
        conn.link_model_to_app("sum", "adder")
        for name in ("right", "ones", "zeros", "adder"):
            self.server.wait_replicas(name, "1", 1)

    @property
    def admin_url(self) -> str:
        return self.server.admin_url

    def admin(self, endpoint: str, body: Any) -> tuple[int, Any]:
        return http_json(f"{self.server.admin_url}/admin/{endpoint}", body, token=self.token)

    def traffic(self, **kw: Any) -> Traffic:
        return Traffic(self.server.query_url, **kw)


class Traffic:
    """Queries to both apps from a thread, with feedback on ``pick`` (as ``LEARNER_UID``) so exp3 learns;
    bounded by ``max_requests`` and ``max_seconds``, stopped by :meth:`stop` or on leaving ``with``."""

    def __init__(self, query_url: str, *, max_requests: int = 20_000, max_seconds: float = 120.0) -> None:
        self.query_url = query_url
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.sent = 0
        self.taught = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        i = 0
        while not self._stop.is_set() and self.sent < self.max_requests and time.monotonic() < deadline:
            i += 1
            x = (1.0 if i % 2 else -1.0) * (1.0 + i * 1e-4)  # distinct inputs: no answer from the cache
            self._ask("sum", {"input": [x, 0.5]})
            answer = self._ask("pick", {"input": [x, 0.5], "uid": LEARNER_UID})
            if answer is not None:
                status, body = http_json(f"{self.query_url}/pick/update",
                                         {"uid": LEARNER_UID, "input": [x, 0.5], "label": label_of([x]),
                                          "query_id": answer["query_id"]})
                if status == 200:
                    self.taught += 1
                else:
                    self.failures.append(f"update: {status} {body}")

    def _ask(self, app: str, body: dict[str, Any]) -> dict[str, Any] | None:
        status, answer = http_json(f"{self.query_url}/{app}/predict", body)
        self.sent += 1
        if status != 200:
            self.failures.append(f"{app}: {status} {answer}")
            return None
        return dict(answer)
