"""``inference.GRPCInferenceService`` over the query path: the third adapter, beside Clipper REST and V2 REST.

Each RPC does what its V2 REST route does, through the same functions: ServerLive (``/v2/health/live``),
ServerReady (``/v2/health/ready``: false while the server drains or its state store is unreachable),
ServerMetadata (``/v2``), ModelMetadata and ModelReady (``/v2/models/{app}[/versions/{v}][/ready]``), ModelInfer
(``/v2/models/{app}[/versions/{v}]/infer``: ``QueryPath.open_app``, then ``QueryPath.predict`` with the request's
rows, ``parameters["uid"]`` and ``model_version``). A :class:`~clipper_core.errors.ClipperError` ends the call
with the gRPC status of its HTTP status (:data:`CODES`) and, as details, the message the REST API puts in its
``cause``; a Retry-After the REST answer would carry travels as trailing metadata ``retry-after``. Anything else
is INTERNAL with the REST API's ``"{type}: {message}"``, and is logged.

The RPCs run on the server's event loop, where the query path runs (``grpc.aio``): no thread, no plugin hook,
no validation library on the way.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import grpc
from grpc import aio

from clipper_core.context import ServerContext
from clipper_core.errors import ClipperError
from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
from clipper_core.frontend.grpc.tensors import infer_response, request_items, request_uid
from clipper_core.frontend.health import server_not_ready
from clipper_core.frontend.v2 import SERVER_METADATA, app_and_version, metadata
from clipper_core.serving.tenancy import presented_key
from clipper_core.tracing import STATE as TRACING

__all__ = ["CODES", "SERVICE", "InferenceService", "add_to_server", "status_code"]

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
"""The gRPC status of each HTTP status a :class:`ClipperError` carries; other 4xx are FAILED_PRECONDITION, other
5xx INTERNAL."""


def status_code(http_status: int) -> grpc.StatusCode:
    code = CODES.get(http_status)
    if code is not None:
        return code
    return grpc.StatusCode.FAILED_PRECONDITION if 400 <= http_status < 500 else grpc.StatusCode.INTERNAL


async def _abort(context: aio.ServicerContext[Any, Any], exc: Exception, method: str) -> NoReturn:
    """End the call with the status and message the REST API would give ``exc``."""
    if isinstance(exc, ClipperError):
        retry = (exc.headers or {}).get("Retry-After")
        await context.abort(status_code(exc.status), exc.message, (("retry-after", retry),) if retry else ())
    log.error("unhandled error in gRPC %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    raise AssertionError("context.abort returned")  # it raises: the call ends with the status above


class InferenceService:
    """The six RPCs of ``inference.GRPCInferenceService`` for the server ``ctx`` (its query path)."""

    def __init__(self, ctx: ServerContext) -> None:
        assert ctx.query_path is not None, "the gRPC endpoint needs a query path"
        self.ctx = ctx
        self.path = ctx.query_path
        meta = SERVER_METADATA
        self._server_metadata = pb.ServerMetadataResponse(name=str(meta["name"]), version=str(meta["version"]),
                                                          extensions=list(meta["extensions"]))

    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: aio.ServicerContext[Any, Any]) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: aio.ServicerContext[Any, Any]) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await server_not_ready(self.ctx) is None)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: aio.ServicerContext[Any, Any]) -> pb.ServerMetadataResponse:
        return self._server_metadata

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: aio.ServicerContext[Any, Any]) -> pb.ModelMetadataResponse:
        try:
            snapshot = self.path.snapshot
            return pb.ModelMetadataResponse(**metadata(snapshot, app_and_version(snapshot, request.name,
                                                                                 request.version or None)))
        except Exception as exc:
            await _abort(context, exc, "ModelMetadata")

    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: aio.ServicerContext[Any, Any]) -> pb.ModelReadyResponse:
        try:
            snapshot = self.path.snapshot
            version = request.version or None
            rt = app_and_version(snapshot, request.name, version)
            return pb.ModelReadyResponse(ready=snapshot.serving(rt, version))
        except Exception as exc:
            await _abort(context, exc, "ModelReady")

    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: aio.ServicerContext[Any, Any]) -> pb.ModelInferResponse:
        try:
            path = self.path
            rt = path.open_app(request.model_name)
            guard = rt.guard
            api_key = None
            if guard is not None:  # its key (call metadata) and message size before its tensors are read
                api_key = guard.precheck(_api_key(context),
                                         request.ByteSize() if guard.max_body is not None else None)
            items, raw = request_items(request, rt.app.input_type)
            version = request.model_version or None
            traceparent = _traceparent(context) if TRACING.enabled else None
            predictions = await path.predict(rt, items, uid=request_uid(request), version=version,
                                             traceparent=traceparent, api_key=api_key)
            return infer_response(request, predictions, version, raw)
        except Exception as exc:
            await _abort(context, exc, "ModelInfer")


_MESSAGES: dict[str, tuple[Any, Any]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}


def add_to_server(server: aio.Server, service: InferenceService) -> None:
    """Register the service's RPCs (what the generated ``add_GRPCInferenceServiceServicer_to_server`` does,
    without its check that grpcio is at least the grpcio-tools that generated it)."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(service, name), request_deserializer=req.FromString,
                                                  response_serializer=resp.SerializeToString)
        for name, (req, resp) in _MESSAGES.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def _api_key(context: Any) -> str | None:
    """The API key in the call's metadata: ``x-api-key``, or ``authorization: Bearer <key>``."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in ("authorization", "x-api-key"):
            found[key] = str(value)
    return presented_key(found.get("authorization"), found.get("x-api-key"))


def _traceparent(context: Any) -> str | None:
    """The caller's W3C ``traceparent`` from the call's metadata (None without one)."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent":
            return str(value)
    return None
