"""The API errors the emulator answers with: constructors of ``kmock.KubernetesError`` (rendered as v1 Status
objects) for 400 BadRequest, 404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists/Conflict, 415
UnsupportedMediaType and 422 Invalid (with its :class:`FieldError` causes), worded like a real kube-apiserver.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kmock

from .resources import JSON, ResourceType


def _details(rt: ResourceType, name: str | None, kind: str | None = None, **extra: Any) -> JSON:
    details: JSON = {"name": name} if name else {}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind or rt.plural
    details.update(extra)
    return details


def bad_request(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=400, reason="BadRequest", message=message)


def not_found(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'{rt.group_resource} "{name}" not found',
                                 details=_details(rt, name))


def namespace_not_found(namespace: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'namespaces "{namespace}" not found',
                                 details={"name": namespace, "kind": "namespaces"})


def no_such_resource() -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=404, reason="NotFound", message="the server could not find the requested resource",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def already_exists(rt: ResourceType, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="AlreadyExists",
                                 message=f'{rt.group_resource} "{name}" already exists', details=_details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "the object has been modified; please apply your changes to "
                                                      "the latest version and try again") -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="Conflict",
                                 message=f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                                 details=_details(rt, name))


def method_not_allowed() -> kmock.KubernetesError:
    return kmock.KubernetesError(status=405, reason="MethodNotAllowed",
                                 message="the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=415, reason="UnsupportedMediaType",
                                 message=f'the body of the request was in an unknown format - accepted media types '
                                         f'include: application/json-patch+json, application/merge-patch+json, '
                                         f'application/strategic-merge-patch+json (got "{content_type}")')


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One cause of a 422 Invalid answer: the field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def invalid(rt: ResourceType, name: str | None, errors: list[FieldError]) -> kmock.KubernetesError:
    texts = [error.render() for error in errors]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors]
    return kmock.KubernetesError(status=422, reason="Invalid",
                                 message=f'{rt.group_kind} "{name or ""}" is invalid: {summary}',
                                 details=_details(rt, name, kind=rt.kind, causes=causes))
