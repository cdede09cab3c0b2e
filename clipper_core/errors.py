"""One exception hierarchy for clipper; each class carries the HTTP status it is rendered with.

The frontends render every :class:`ClipperError` as ``{"error": <title>, "cause": <message>}`` in exactly one
middleware, so handlers simply raise.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ClipperError",
    "ClipperException",
    "Conflict",
    "InvalidInput",
    "ModelUnavailable",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginError",
    "Unauthorized",
    "UnconnectedException",
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


class AlreadyExists(ClipperError):
    status = 400
    title = "Already exists"


class Conflict(ClipperError):
    status = 400
    title = "Management operation error"


class Unauthorized(ClipperError):
    status = 401
    title = "Unauthorized"


class PayloadTooLarge(ClipperError):
    status = 413
    title = "Payload too large"


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
