"""One exception hierarchy for clipper; each class carries the HTTP status it is rendered with.

The frontends render every :class:`ClipperError` as ``{"error": <title>, "cause": <message>}`` in exactly one
middleware, so handlers simply raise.
"""

from __future__ import annotations

import math

__all__ = [
    "AlreadyExists",
    "AppNotFound",
    "ClipperError",
    "ClipperException",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "ModelNotFound",
    "ModelUnavailable",
    "ModelVersionNotFound",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginError",
    "RateLimited",
    "Unauthorized",
    "UnconnectedException",
    "UnknownQueryApp",
    "VersionNotFound",
]


class ClipperError(Exception):
    """Base class: an error with an HTTP status and a short title."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, str]:
        return {"error": self.title, "cause": self.message}


class InvalidInput(ClipperError):
    """A request body or argument is malformed; the message says what was expected."""

    status = 400
    title = "Json error"


class QueryError(ClipperError):
    """A well-formed query that cannot be processed as asked (Clipper's 'Query processing error')."""

    status = 400
    title = "Query processing error"


class NotFound(ClipperError):
    status = 404
    title = "Not found"


class AppNotFound(NotFound):
    """No application of that name (Clipper's management wording)."""

    template = "Application '{name}' does not exist"

    def __init__(self, name: str, *, status: int | None = None) -> None:
        super().__init__(self.template.format(name=name), status=status)
        self.name = name


class UnknownQueryApp(AppNotFound):
    """No application of that name, as the query frontend says it."""

    template = "application '{name}' does not exist"


class ModelNotFound(NotFound):
    """No version of that model is registered (or none is current). Clipper answers 400 here."""

    status = 400

    def __init__(self, name: str) -> None:
        super().__init__(f"No model with name '{name}' exists")
        self.name = name


class ModelVersionNotFound(NotFound):
    """That (model, version) is not registered."""

    def __init__(self, name: str, version: str, *, status: int | None = None) -> None:
        super().__init__(f"model with name '{name}' and version '{version}' does not exist", status=status)
        self.name, self.version = name, version


def version_missing(model: str, version: str) -> str:
    """Clipper's message for a request naming a version the model does not have."""
    return f"Requested version: {version} does not exist for model: {model}"


class VersionNotFound(NotFound):
    """A request names a version the model does not have (management API and stores: 400 on the API)."""

    def __init__(self, model: str, version: str, *, status: int | None = None) -> None:
        super().__init__(version_missing(model, version), status=status)
        self.model, self.version = model, version


class AlreadyExists(ClipperError):
    status = 400
    title = "Already exists"


class Conflict(ClipperError):
    status = 400
    title = "Management operation error"


class Unauthorized(ClipperError):
    status = 401
    title = "Unauthorized"


class Forbidden(ClipperError):
    """Authenticated, but not for this (an API key of another application)."""

    status = 403
    title = "Forbidden"


class PayloadTooLarge(ClipperError):
    status = 413
    title = "Payload too large"


class RateLimited(ClipperError):
    """Over a rate limit or quota (HTTP 429 with ``Retry-After``); the body names the limit and whose it is."""

    status = 429
    title = "Too many requests"

    def __init__(self, message: str, *, limit: str, scope: str, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        self.limit = limit
        self.scope = scope

    def to_json(self) -> dict[str, str]:
        return {**super().to_json(), "limit": self.limit, "scope": self.scope}


class Overloaded(ClipperError):
    status = 503
    title = "Overloaded"


class ModelUnavailable(ClipperError):
    status = 503
    title = "Model unavailable"


class PluginError(ClipperError):
    """A plugin is missing, duplicated or broken; raised at startup, never on the request path."""

    status = 500
    title = "Plugin error"


class ClipperException(Exception):
    """Raised by the admin client (:class:`clipper_core.ClipperConnection`), as in Clipper's ``clipper_admin``.

    ``status`` and ``body`` are set when a REST call failed.
    """

    def __init__(self, msg: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.body = body


class UnconnectedException(ClipperException):
    def __init__(self) -> None:
        super().__init__("No connection to Clipper cluster. Call ClipperConnection.start_clipper or connect first")
