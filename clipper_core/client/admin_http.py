"""A small synchronous JSON-over-HTTP client for the management API (stdlib only: the admin client must stay
importable without aiohttp)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from clipper_core.errors import ClipperException

__all__ = ["AdminClient", "health_ok"]


class AdminClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, str]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                cause = json.loads(payload).get("cause", payload.decode(errors="replace"))
            except (ValueError, AttributeError):
                cause = payload.decode(errors="replace")
            raise ClipperException(f"{method} {path} failed with {exc.code}: {cause}", status=exc.code,
                                   body=payload.decode(errors="replace")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClipperException(f"{method} {path}: cannot reach {self.base_url}: {exc}") from None

    def post(self, path: str, body: Any) -> Any:
        """POST JSON; return the decoded JSON answer, or the text for Clipper's plain-text answers."""
        _, payload, content_type = self._request("POST", path, body)
        if content_type == "application/json":
            return json.loads(payload)
        return payload.decode()

    def get_text(self, path: str) -> str:
        return self._request("GET", path)[1].decode()

    def ping(self) -> bool:
        """Whether the admin server answers /admin/ping; a refused token is an error, not "not yet"."""
        try:
            return self.get_text("/admin/ping") == "PONG"
        except ClipperException as exc:
            if exc.status == 401:
                raise
            return False

    def get_json(self, path: str) -> Any:
        return json.loads(self._request("GET", path)[1])


def health_ok(query_addr: str) -> bool:
    """Whether the query frontend at ``host:port`` answers /health with 200 (during startup: not yet)."""
    try:
        with urllib.request.urlopen(f"http://{query_addr}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False
