"""Multi-tenancy in the management API (docs/tenancy.md): API keys and an application's limits and priority.

* ``POST /admin/add_api_key {"app_name", "label"?, "limits"?}``: a new key; the answer carries its secret
  (``api_key``), the only time it is shown;
* ``POST /admin/get_api_keys {"app_name"?}``: the keys (of one app), never their secrets or digests;
* ``POST /admin/revoke_api_key {"key_id"}``: delete a key; every query frontend hears it through the store's
  change feed;
* ``POST /admin/set_app_limits {"app_name", "require_api_key"?, "priority"?, "limits"?}``: change what is given
  (``"limits": null`` or ``{}`` removes every limit) and answer what is now in force, as
  ``POST /admin/get_app_limits {"app_name"}`` does.

:class:`TenancyOperations` holds the rules (nothing here knows HTTP but the handlers); :func:`tenancy_routes` gives
:data:`clipper_core.management.handlers.ROUTES` the handlers. Each body is checked whole before anything is read
from the store: an unknown key, a wrong type or a limit out of range is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from clipper_core.context import ServerContext
from clipper_core.errors import AppNotFound, InvalidInput, NotFound
from clipper_core.http_api import json_response, read_json_object
from clipper_core.management.fields import Body
from clipper_core.state import ApiKey, Application, StateStore
from clipper_core.tenancy.keys import KEY_ID_LENGTH, new_key
from clipper_core.tenancy.limits import AppLimits, KeyLimits, check_priority

__all__ = ["MAX_LABEL_LENGTH", "TenancyOperations", "tenancy_routes"]

MAX_LABEL_LENGTH = 256
"""Longest label of an API key, in characters."""
_HEX = frozenset("0123456789abcdef")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TenancyOperations:
    """API keys and an app's limits over the state store, each operation checking its rules first.

    :param store: where applications and API keys are kept
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    @classmethod
    def of(cls, ctx: ServerContext) -> TenancyOperations:
        return cls(ctx.store)

    async def _app(self, name: str) -> Application:
        app = await self.store.get_app(name)
        if app is None:
            raise AppNotFound(name)
        return app

    async def create_key(self, app_name: str, label: str = "", limits: KeyLimits | None = None
                         ) -> tuple[ApiKey, str]:
        """A new key of ``app_name`` (404 when there is no such app): its record, stored, and its secret."""
        record, secret = new_key(app_name, label, limits)
        await self.store.add_api_key(record)  # AppNotFound from the store: checked in the same write
        return record, secret

    async def keys(self, app_name: str | None = None) -> list[ApiKey]:
        """Every key, or one app's (404 when there is no such app)."""
        if app_name is not None:
            await self._app(app_name)
        return await self.store.list_api_keys(app_name)

    async def revoke(self, key_id: str) -> ApiKey:
        """Delete the key; returns what it was. 404 when there is no such key (or it was revoked already)."""
        record = await self.store.get_api_key(key_id)
        if record is None or not await self.store.delete_api_key(key_id):
            raise NotFound(f"API key '{key_id}' does not exist (or was revoked already)")
        return record

    async def set_limits(self, app_name: str, *, require_api_key: bool | None = None, priority: str | None = None,
                         limits: AppLimits | None = None, clear_limits: bool = False) -> Application:
        """Change what is given of the app's key requirement, priority class and limits (``limits`` replaces
        the app's whole set; ``clear_limits`` removes it); returns the app as now stored."""
        app = await self._app(app_name)
        changes: dict[str, Any] = {}
        if require_api_key is not None:
            changes["require_api_key"] = require_api_key
        if priority is not None:
            changes["priority"] = priority
        if clear_limits:
            changes["limits"] = None
        elif limits is not None:
            changes["limits"] = None if limits.unlimited else limits.to_json()
        updated = app.replace(**changes)
        if updated != app:
            await self.store.update_app(updated)  # announces ChangeEvent("app"): the frontends reload
        return updated

    async def limits(self, app_name: str) -> tuple[Application, int]:
        """The app and how many API keys it has."""
        app = await self._app(app_name)
        return app, len(await self.store.list_api_keys(app_name))


# -- reading the bodies ---------------------------------------------------------------------------------

async def _body(request: web.Request, *known: str) -> Body:
    """The request's JSON object, refusing keys other than ``known`` (a misspelt limit must not pass unseen)."""
    data = await read_json_object(request)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(known)}")
    return Body(data)


def _label(body: Body) -> str:
    label: str = body.text("label", "")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"'label' is {len(label)} characters long; expected at most {MAX_LABEL_LENGTH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise InvalidInput("'label' contains a control character; expected printable text")
    return label


def _key_id(body: Body) -> str:
    key_id: str = body.text("key_id")
    if len(key_id) != KEY_ID_LENGTH or not set(key_id) <= _HEX:
        shown = key_id if len(key_id) <= 40 else key_id[:40] + "..."
        raise InvalidInput(f"'key_id' is {shown!r}; expected the {KEY_ID_LENGTH} lower-case hex characters of a key "
                           "id (as add_api_key and get_api_keys answer)")
    return key_id


def _optional_name(body: Body, key: str) -> str | None:
    return None if body.data.get(key) is None else body.name(key)


def key_json(record: ApiKey, secret: str | None = None) -> dict[str, Any]:
    """A key as the API answers with it: :meth:`ApiKey.public`, and the secret once, at creation."""
    data = record.public()
    if secret is not None:
        data["api_key"] = secret
    return data


def limits_json(app: Application, api_keys: int | None = None) -> dict[str, Any]:
    """What set_app_limits and get_app_limits answer."""
    data: dict[str, Any] = {"app_name": app.name, "require_api_key": app.require_api_key, "priority": app.priority,
                            "limits": app.limits}
    if api_keys is not None:
        data["api_keys"] = api_keys
    return data


# -- the handlers ---------------------------------------------------------------------------------------

def tenancy_routes(ctx_of: Callable[[web.Request], ServerContext]) -> list[tuple[str, str, Handler]]:
    """The tenancy endpoints as ``(method, path, handler)``; ``ctx_of`` finds a request's server context."""

    def ops(request: web.Request) -> TenancyOperations:
        return TenancyOperations.of(ctx_of(request))

    async def add_api_key(request: web.Request) -> web.Response:
        body = await _body(request, "app_name", "label", "limits")
        app_name, label = body.name("app_name"), _label(body)
        limits = body.data.get("limits")
        key_limits = None if limits is None else KeyLimits.from_json(limits)
        record, secret = await ops(request).create_key(app_name, label, key_limits)
        return json_response(key_json(record, secret))

    async def get_api_keys(request: web.Request) -> web.Response:
        body = await _body(request, "app_name")
        return json_response([key_json(k) for k in await ops(request).keys(_optional_name(body, "app_name"))])

    async def revoke_api_key(request: web.Request) -> web.Response:
        body = await _body(request, "key_id")
        record = await ops(request).revoke(_key_id(body))
        return json_response({**key_json(record), "revoked": True})

    async def set_app_limits(request: web.Request) -> web.Response:
        body = await _body(request, "app_name", "require_api_key", "priority", "limits")
        app_name = body.name("app_name")
        data = body.data
        if not {"require_api_key", "priority", "limits"} & set(data):
            raise InvalidInput("nothing to set; expected at least one of require_api_key (a boolean), priority "
                               "(high, normal or low) and limits (an object of limits, or null to remove them)")
        require = body.boolean("require_api_key", False) if "require_api_key" in data else None
        priority = check_priority(data["priority"]) if "priority" in data else None
        clear = "limits" in data and (data["limits"] is None or data["limits"] == {})
        limits = AppLimits.from_json(data["limits"]) if "limits" in data and not clear else None
        app = await ops(request).set_limits(app_name, require_api_key=require, priority=priority, limits=limits,
                                            clear_limits=clear)
        _, count = await ops(request).limits(app_name)
        return json_response(limits_json(app, count))

    async def get_app_limits(request: web.Request) -> web.Response:
        body = await _body(request, "app_name")
        app, count = await ops(request).limits(body.name("app_name"))
        return json_response(limits_json(app, count))

    return [("POST", "/admin/add_api_key", add_api_key), ("POST", "/admin/get_api_keys", get_api_keys),
            ("POST", "/admin/revoke_api_key", revoke_api_key), ("POST", "/admin/set_app_limits", set_app_limits),
            ("POST", "/admin/get_app_limits", get_app_limits)]
