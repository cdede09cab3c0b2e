"""``ClipperConnection``'s multi-tenancy methods (docs/tenancy.md): API keys, and an application's key requirement,
priority class and limits, over the management API's tenancy endpoints."""

from __future__ import annotations

from typing import Any

__all__ = ["TenancyMethods"]


class TenancyMethods:
    """Mixed into :class:`~clipper_core.client.connection.ClipperConnection`, which provides :meth:`_post`."""

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def create_api_key(self, app_name: str, label: str | None = None, *,
                       requests_per_second: float | None = None, requests_burst: int | None = None,
                       inputs_per_second: float | None = None, inputs_burst: int | None = None,
                       max_concurrent: int | None = None) -> dict[str, Any]:
        """A new API key of ``app_name``, with the key's own limits where given (a burst left out is one second's
        worth of its rate). Returns ``{"key_id", "api_key", "app_name", "label", "limits", "created_at"}``:
        ``api_key`` is the secret a client sends (``Authorization: Bearer <api_key>``), returned this once only:
        the server keeps a salted hash of it, nothing it could be shown from again."""
        limits = {k: v for k, v in (("requests_per_second", requests_per_second), ("requests_burst", requests_burst),
                                    ("inputs_per_second", inputs_per_second), ("inputs_burst", inputs_burst),
                                    ("max_concurrent", max_concurrent)) if v is not None}
        body: dict[str, Any] = {"app_name": app_name}
        if label is not None:
            body["label"] = label
        if limits:
            body["limits"] = limits
        return dict(self._post("add_api_key", body))

    def list_api_keys(self, app_name: str | None = None) -> list[dict[str, Any]]:
        """The API keys (of ``app_name``; every app's when None), each ``{"key_id", "app_name", "label", "limits",
        "created_at"}``: never a secret."""
        return list(self._post("get_api_keys", {} if app_name is None else {"app_name": app_name}))

    def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key (its ``key_id``, as :meth:`list_api_keys` shows it): every query frontend refuses it as
        soon as the state store's change feed tells it (within a second). Returns what the key was."""
        return dict(self._post("revoke_api_key", {"key_id": key_id}))

    def set_app_limits(self, app_name: str, require_api_key: bool | None = None, priority: str | None = None,
                       limits: dict[str, Any] | None = None, *, clear_limits: bool = False) -> dict[str, Any]:
        """Change what is given: ``require_api_key`` (True: the query API answers only requests carrying one of
        the app's keys), ``priority`` (``high``, ``normal`` or ``low``), ``limits`` (a dict of
        ``requests_per_second``, ``requests_burst``, ``inputs_per_second``, ``inputs_burst``, ``max_concurrent``,
        ``max_input_length``, ``max_batch_size``, ``max_body_bytes``: it replaces the app's whole set; ``{}``
        removes it, as ``clear_limits=True`` does). None leaves a setting as it is. Returns what is now in force
        (see :meth:`get_app_limits`)."""
        body: dict[str, Any] = {"app_name": app_name}
        if require_api_key is not None:
            body["require_api_key"] = require_api_key
        if priority is not None:
            body["priority"] = priority
        if clear_limits:
            body["limits"] = None
        elif limits is not None:
            body["limits"] = dict(limits)
        return dict(self._post("set_app_limits", body))

    def get_app_limits(self, app_name: str) -> dict[str, Any]:
        """``{"app_name", "require_api_key", "priority", "limits" (None: none), "api_keys" (how many)}``."""
        return dict(self._post("get_app_limits", {"app_name": app_name}))
