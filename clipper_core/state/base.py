"""The StateStore ABC: everything clipper must not forget across restarts.

Lifecycle, in call order::

    store = SqliteStateStore(path)      # constructing does no I/O
    await store.open()                  # connect, create schema
    unsubscribe = store.subscribe(cb)   # cb(ChangeEvent) after every committed change (any process)
    ... reads and writes ...
    await store.close()

Writes are atomic per call. Reads return copies (frozen records). Feedback inputs/labels, policy_config,
replica info and rollout records must be JSON values. Backends check only what the data model needs (duplicates,
missing apps and versions, a rollout's model name); the management frontend checks the rest (links to existing
models, input types). Writes that violate the model (a duplicate, a missing app) raise :mod:`clipper_core.errors`
classes with Clipper's messages. Every backend passes :class:`clipper_core.testing.StateStoreContract`.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from clipper_core.state import codec
from clipper_core.state.records import ApiKey, Application, ChangeEvent, Feedback, LoadFigures, Model, Replica

if TYPE_CHECKING:
    from clipper_core.config import Config

__all__ = ["ChangeCallback", "StateStore"]

log = logging.getLogger(__name__)

ChangeCallback = Callable[[ChangeEvent], None]


class StateStore(abc.ABC):
    name: ClassVar[str]
    shared: ClassVar[bool] = False
    """True when several processes can share the store and see each other's changes."""
    url_schemes: ClassVar[tuple[str, ...]] = ()
    """What ``CLIPPER_STATE_STORE`` values this class opens: URL schemes (``redis`` for ``redis://host/0``) or
    bare names (``sqlite``, ``memory``). The plugin registry picks the class by the value's scheme."""

    @classmethod
    def from_url(cls, url: str, config: Config) -> StateStore:
        """The store a ``CLIPPER_STATE_STORE`` value names (``url`` has one of :attr:`url_schemes`); constructing
        does no I/O."""
        raise NotImplementedError(f"state store {cls.__name__} does not say how to open {url!r}")

    def __init__(self) -> None:
        self._subscribers: list[ChangeCallback] = []
        self._frontends: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def check(self) -> None:
        """Raise when the store cannot be reached now (server readiness asks this). The default is one small
        read; a backend may override it with a cheaper probe."""
        await self.current_versions()

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` after each committed change; returns a function that unsubscribes.

        Backends with ``shared = True`` (SQLite across the processes of a host, Redis across hosts) also announce
        changes made by other processes; the others only their own."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _notify(self, event: ChangeEvent) -> None:
        # The change is committed already: a failing subscriber must not turn it into an error for the writer.
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("state-store subscriber %r failed on %s", callback, event)

    # -- applications ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_app(self, app: Application) -> None:
        """Raises AlreadyExists("application '<n>' already exists")."""

    @abc.abstractmethod
    async def update_app(self, app: Application) -> None:
        """Replace an existing app's record. Raises NotFound."""

    @abc.abstractmethod
    async def delete_app(self, name: str) -> None:
        """Delete the app, its links, its policy state and its API keys (announcing ``ChangeEvent("api_key",
        name)`` after the app's event when it had any). Raises NotFound("Application '<n>' does not exist")."""

    @abc.abstractmethod
    async def get_app(self, name: str) -> Application | None: ...

    @abc.abstractmethod
    async def list_apps(self) -> list[Application]:
        """Sorted by name."""

    # -- models ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_model(self, model: Model, *, make_current: bool = True) -> None:
        """Raises AlreadyExists for a duplicate (name, version). Makes it current unless told otherwise."""

    @abc.abstractmethod
    async def update_model(self, model: Model) -> None:
        """Replace an existing model version's record (e.g. its desired replica count). Raises NotFound."""

    @abc.abstractmethod
    async def delete_model(self, name: str, version: str) -> None:
        """Delete one version and its replicas. If it was current, the model has no current version.
        Raises NotFound."""

    @abc.abstractmethod
    async def get_model(self, name: str, version: str) -> Model | None: ...

    @abc.abstractmethod
    async def list_models(self, name: str | None = None) -> list[Model]:
        """All versions (of one model when ``name`` is given), sorted by (name, created order)."""

    @abc.abstractmethod
    async def set_current_version(self, name: str, version: str) -> None:
        """Raises NotFound when that version is not registered."""

    @abc.abstractmethod
    async def get_current_version(self, name: str) -> str | None: ...

    @abc.abstractmethod
    async def current_versions(self) -> dict[str, str]:
        """model name -> current version, for every model that has one."""

    # -- rollouts (a model's canary or shadow rollout of a candidate version) --------------------------
    # One record per model name, a JSON object the store keeps as given: only its "model" key (the model's name, a
    # non-empty string) means something here. The management server's rollout controller owns the rest. A record
    # outlives the model's versions: deleting a version (even the last) leaves it, the controller decides.
    @staticmethod
    def _encode_rollout(rollout: dict[str, Any]) -> tuple[str, str]:
        """(model name, the record as JSON text) of a rollout record, checked before any write: ValueError when
        it is not a dict or its ``"model"`` is not a non-empty string, TypeError (from the codec) when a value is
        not JSON."""
        if not isinstance(rollout, dict):
            raise ValueError(f"a rollout record is a JSON object (a dict), not a {type(rollout).__name__}")
        model = rollout.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(f"a rollout record needs 'model', a non-empty string (the model's name); got {model!r}")
        return model, codec.dumps(rollout)

    @abc.abstractmethod
    async def put_rollout(self, rollout: dict[str, Any]) -> None:
        """Create or replace the rollout record of the model ``rollout["model"]`` (a copy: the caller may change
        ``rollout`` afterwards). Raises ValueError when ``rollout["model"]`` is missing or not a non-empty string,
        TypeError when a value is not JSON; nothing is stored then. Announces ``ChangeEvent("rollout", model)``.
        The record is stored as JSON, so it reads back as JSON gives it (tuples as lists, keys as strings)."""

    @abc.abstractmethod
    async def get_rollout(self, model: str) -> dict[str, Any] | None:
        """The model's rollout record (a copy), None when it has none."""

    @abc.abstractmethod
    async def list_rollouts(self) -> list[dict[str, Any]]:
        """Every rollout record (copies), sorted by model name."""

    @abc.abstractmethod
    async def delete_rollout(self, model: str) -> None:
        """Delete the model's rollout record; no error when it has none. Announces ``ChangeEvent("rollout",
        model)`` only when a record was deleted."""

    # -- API keys (clipper_core.tenancy.keys makes them; the query path checks them) --------------------
    # Each write announces ChangeEvent("api_key", <the key's app>), so every frontend's snapshot reloads its keys at
    # once (a revoked key stops working as soon as the change feed delivers the event).
    @abc.abstractmethod
    async def add_api_key(self, key: ApiKey) -> None:
        """Store ``key``. Raises AppNotFound when its app does not exist, AlreadyExists for a duplicate
        ``key_id``, TypeError when its limits are not JSON; nothing is stored then."""

    @abc.abstractmethod
    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The key with that id (a copy), None when there is none."""

    @abc.abstractmethod
    async def list_api_keys(self, app_name: str | None = None) -> list[ApiKey]:
        """Every key (of one app when ``app_name`` is given), sorted by (app name, created_at, key id)."""

    @abc.abstractmethod
    async def delete_api_key(self, key_id: str) -> bool:
        """Delete (revoke) the key; returns whether there was one. Announces only when there was."""

    # -- links ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_links(self, app_name: str, model_names: list[str]) -> None:
        """Raises NotFound for a missing app."""

    @abc.abstractmethod
    async def delete_links(self, app_name: str, model_names: list[str]) -> None:
        """Raises NotFound for a missing app or a model that is not linked."""

    @abc.abstractmethod
    async def get_links(self, app_name: str) -> list[str]:
        """Linked model names in link order. Raises NotFound for a missing app."""

    # -- replicas (connected model containers) --------------------------------------------------------
    @abc.abstractmethod
    async def add_replica(self, replica: Replica) -> None: ...

    @abc.abstractmethod
    async def delete_replica(self, model_name: str, model_version: str, replica_id: int) -> None:
        """Missing replicas are ignored."""

    @abc.abstractmethod
    async def list_replicas(self, model_name: str | None = None, model_version: str | None = None
                            ) -> list[Replica]:
        """Sorted by (model name, version, replica id)."""

    @abc.abstractmethod
    async def clear_replicas(self, frontend: str) -> None:
        """Forget every replica recorded for ``frontend`` (used when that frontend starts afresh)."""

    @abc.abstractmethod
    async def next_replica_id(self, model_name: str, model_version: str) -> int:
        """A per-model-version counter starting at 0, never reused (survives restarts)."""

    # -- query frontends (where model replicas connect) --------------------------------------------------
    # Not abstract: a store that is not ``shared`` serves one process, so a dict is the whole truth. Shared
    # backends override these so every frontend, admin server and replica sees the same set.
    async def register_frontend(self, rpc_addr: str, ttl: float = 10.0) -> None:
        """Announce or refresh a query frontend's RPC address; it expires ``ttl`` seconds after the last call."""
        self._frontends[rpc_addr] = time.time() + ttl

    async def unregister_frontend(self, rpc_addr: str) -> None:
        self._frontends.pop(rpc_addr, None)

    async def list_frontends(self) -> list[str]:
        """The RPC addresses of live query frontends, sorted."""
        now = time.time()
        return sorted(addr for addr, expiry in self._frontends.items() if expiry > now)

    # -- load reports (what each query frontend is doing now; the autoscaler reads them) ------------------
    @abc.abstractmethod
    async def put_load(self, frontend: str, figures: LoadFigures, ttl: float = 5.0) -> None:
        """Replace ``frontend``'s load report with ``figures`` (``"name:version"`` -> figure -> number, see
        :data:`~clipper_core.state.records.LoadFigures`; JSON numbers only); it expires ``ttl`` seconds after
        this call. Frontends call this about once a second, so a backend writes it without waiting for the disk
        where it has that choice; a lost report is replaced a second later."""

    @abc.abstractmethod
    async def list_load(self) -> dict[str, LoadFigures]:
        """frontend -> its last report, for every report that has not expired (copies)."""

    # -- policy state and feedback --------------------------------------------------------------------
    @abc.abstractmethod
    async def get_policy_state(self, app_name: str, uid: int) -> bytes | None: ...

    @abc.abstractmethod
    async def put_policy_state(self, app_name: str, uid: int, state: bytes) -> None: ...

    @abc.abstractmethod
    async def append_feedback(self, feedback: Feedback) -> int:
        """Durably store feedback; returns its sequence number (1, 2, ... per app)."""

    @abc.abstractmethod
    async def list_feedback(self, app_name: str, *, after_seq: int = 0, limit: int = 1000) -> list[Feedback]:
        """Feedback of one app in sequence order, with seq > after_seq."""
