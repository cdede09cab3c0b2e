"""Test helpers for clipper backends, also loaded as a pytest plugin (entry point ``pytest11``).

:class:`StateStoreContract` is the behaviour every :class:`~clipper_core.state.StateStore` must have. A backend
package reuses it by subclassing it in one of its own test modules and overriding the ``store`` fixture (an
async fixture yielding an *opened* store, closing it afterwards) and, for a durable backend, ``persistent`` and
:meth:`~StateStoreContract.reopen`::

    from clipper_core.testing import StateStoreContract

    class TestRedisStateStore(StateStoreContract):
        persistent = True

        @pytest.fixture
        async def store(self, redis_url):
            store = RedisStateStore(redis_url)
            await store.open()
            yield store
            await store.close()

        async def reopen(self, store):
            await store.close()
            fresh = RedisStateStore(redis_url)
            await fresh.open()
            return fresh          # the subclass closes it too (e.g. keep a list and close it in the fixture)

The tests are async; the backend's test suite needs pytest-asyncio in ``auto`` mode (or the equivalent
markers). This module imports only pytest, so it can be loaded where pytest-asyncio is not installed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from clipper_core.errors import AlreadyExists, NotFound
from clipper_core.inputs import InputType
from clipper_core.state.base import StateStore
from clipper_core.state.records import ApiKey, Application, ChangeEvent, Feedback, Model, Replica

__all__ = ["StateStoreContract"]


def _app(name: str = "app", **changes: Any) -> Application:
    return Application(name, InputType.DOUBLES, "0.0", 100_000).replace(**changes)


def _model(name: str = "m", version: str = "1", **changes: Any) -> Model:
    return Model(name, version, InputType.DOUBLES).replace(**changes)


def _replica(name: str = "m", version: str = "1", replica_id: int = 0, frontend: str = "fe:7000",
             **info: Any) -> Replica:
    return Replica(name, version, replica_id, InputType.DOUBLES, frontend, info)


def _feedback(app: str = "app", uid: int = 0, label: Any = 1.0, **changes: Any) -> Feedback:
    return Feedback(app, uid, [1.0, 2.0], label, **changes)


def _rollout(model: str = "m", **fields: Any) -> dict[str, Any]:
    """A rollout record as the management server's controller might keep one (the store reads only "model")."""
    return {"model": model, "stable": "1", "candidate": "2", "mode": "canary", "weight": 0.1,
            "steps": [{"weight": 0.1, "hold_s": 60}, {"weight": 0.5, "hold_s": 300}], "started_at": 1.7e9,
            "paused": False, "error": None, **fields}


def _key(key_id: str = "0123456789ab", app: str = "app", created_at: float = 1.7e9, **changes: Any) -> ApiKey:
    """An API key record as clipper_core.tenancy.keys.new_key makes one (the store checks only its app and id)."""
    return ApiKey(key_id, app, "ci", "00" * 16, "ab" * 32, created_at).replace(**changes)


def _raises(error: type[Exception], message: str) -> AbstractContextManager[Any]:
    """Expect ``error`` with exactly ``message``."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


def _ev(kind: str, name: str = "", version: str = "") -> ChangeEvent:
    return ChangeEvent(kind, name, version)


class StateStoreContract:
    """Contract tests for a :class:`StateStore`; subclass it (with a ``Test`` name) and override ``store``."""

    persistent: bool = False
    """True when :meth:`reopen` gives a new store over the same data (tests of durability run only then)."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[StateStore]:
        raise NotImplementedError("override the 'store' fixture: yield an opened store, close it afterwards")
        yield  # pragma: no cover

    async def reopen(self, store: StateStore) -> StateStore:
        """Close ``store`` and return a fresh, opened store over the same data. Non-persistent: ``store``."""
        return store

    async def _reopened(self, store: StateStore) -> StateStore:
        if not self.persistent:
            pytest.skip(f"{type(store).__name__} is not persistent")
        return await self.reopen(store)

    # -- applications ---------------------------------------------------------------------------------
    async def test_app_roundtrip(self, store: StateStore) -> None:
        app = _app(input_type=InputType.STRINGS, policy="exp3", policy_config={"eta": 0.5, "n": [1, 2]},
                   cache_enabled=False, latency_slo_micros=20_000, default_output="none")
        await store.add_app(app)
        assert await store.get_app("app") == app
        assert await store.get_app("other") is None

    async def test_add_app_duplicate(self, store: StateStore) -> None:
        await store.add_app(_app())
        with _raises(AlreadyExists, "application 'app' already exists"):
            await store.add_app(_app(default_output="1"))
        assert (await store.get_app("app")) == _app()

    async def test_update_app(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.update_app(_app(latency_slo_micros=5))
        assert (await store.get_app("app")) == _app(latency_slo_micros=5)
        with _raises(NotFound, "Application 'nope' does not exist"):
            await store.update_app(_app("nope"))

    async def test_update_app_drops_policy_state_only_when_the_policy_changes(self, store: StateStore) -> None:
        await store.add_app(_app(policy="exp3", policy_config={"gamma": 0.1}))
        await store.put_policy_state("app", 0, b"learned")
        await store.update_app(_app(policy="exp3", policy_config={"gamma": 0.1}, latency_slo_micros=5))
        assert await store.get_policy_state("app", 0) == b"learned"  # an SLO change keeps what was learned
        await store.update_app(_app(policy="exp3", policy_config={"gamma": 0.2}))
        assert await store.get_policy_state("app", 0) is None
        await store.put_policy_state("app", 0, b"learned again")
        await store.update_app(_app(policy="ucb1", policy_config={"gamma": 0.2}))
        assert await store.get_policy_state("app", 0) is None

    async def test_delete_app(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.add_links("app", ["m"])
        await store.put_policy_state("app", 0, b"state")
        await store.append_feedback(_feedback())
        await store.delete_app("app")
        assert await store.get_app("app") is None
        assert await store.get_policy_state("app", 0) is None
        assert len(await store.list_feedback("app")) == 1  # feedback is never lost
        with _raises(NotFound, "Application 'app' does not exist"):
            await store.delete_app("app")
        await store.add_app(_app())
        assert await store.get_links("app") == []
        assert await store.append_feedback(_feedback()) == 2

    async def test_list_apps_sorted(self, store: StateStore) -> None:
        for name in ("b", "c", "a"):
            await store.add_app(_app(name))
        assert [a.name for a in await store.list_apps()] == ["a", "b", "c"]

    async def test_reads_are_copies(self, store: StateStore) -> None:
        config: dict[str, Any] = {"k": 1}
        await store.add_app(_app(policy_config=config))
        config["k"] = 2
        got = await store.get_app("app")
        assert got is not None and got.policy_config == {"k": 1}
        got.policy_config["k"] = 3
        assert (await store.list_apps())[0].policy_config == {"k": 1}

    # -- models ---------------------------------------------------------------------------------------
    async def test_model_roundtrip(self, store: StateStore) -> None:
        model = _model(labels=("a", "b"), container_name="img:1", batch_size=8, batch_wait_timeout_micros=50,
                       num_replicas=2, created_at=1234.5, input_type=InputType.BYTES, model_data_path="/d")
        await store.add_model(model)
        got = await store.get_model("m", "1")
        assert got == model and got is not None and isinstance(got.labels, tuple)
        assert await store.get_model("m", "2") is None

    async def test_add_model_duplicate(self, store: StateStore) -> None:
        await store.add_model(_model())
        with _raises(AlreadyExists, "model with name 'm' and version '1' already exists"):
            await store.add_model(_model(batch_size=3))

    async def test_current_version_rules(self, store: StateStore) -> None:
        await store.add_model(_model(version="1"), make_current=False)
        assert await store.get_current_version("m") is None
        await store.add_model(_model(version="2"))
        await store.add_model(_model(version="3"), make_current=False)
        assert await store.get_current_version("m") == "2"
        await store.set_current_version("m", "1")
        await store.add_model(_model("n", "a"))
        assert await store.current_versions() == {"m": "1", "n": "a"}
        with _raises(NotFound, "Requested version: 9 does not exist for model: m"):
            await store.set_current_version("m", "9")
        assert await store.get_current_version("m") == "1"
        assert await store.get_current_version("zzz") is None

    async def test_update_model(self, store: StateStore) -> None:
        await store.add_model(_model())
        await store.update_model(_model(num_replicas=4))
        assert await store.get_model("m", "1") == _model(num_replicas=4)
        with _raises(NotFound, "model with name 'm' and version '2' does not exist"):
            await store.update_model(_model(version="2"))

    async def test_delete_model(self, store: StateStore) -> None:
        await store.add_model(_model(version="1"))
        await store.add_model(_model(version="2"), make_current=False)
        await store.add_replica(_replica(version="1"))
        await store.add_replica(_replica(version="2"))
        await store.delete_model("m", "2")
        assert await store.get_current_version("m") == "1"
        assert [r.model_version for r in await store.list_replicas("m")] == ["1"]
        await store.delete_model("m", "1")
        assert await store.get_current_version("m") is None
        assert await store.current_versions() == {}
        assert await store.list_models() == [] and await store.list_replicas() == []
        with _raises(NotFound, "model with name 'm' and version '1' does not exist"):
            await store.delete_model("m", "1")

    async def test_list_models_order(self, store: StateStore) -> None:
        for name, version in [("b", "10"), ("a", "x"), ("b", "2"), ("b", "1"), ("a", "a")]:
            await store.add_model(_model(name, version))
        await store.update_model(_model("b", "10", num_replicas=1))  # an update keeps the creation order
        keys = [m.key for m in await store.list_models()]
        assert keys == [("a", "x"), ("a", "a"), ("b", "10"), ("b", "2"), ("b", "1")]
        assert [m.version for m in await store.list_models("b")] == ["10", "2", "1"]
        await store.delete_model("b", "10")
        await store.add_model(_model("b", "10"))  # re-created: now the newest
        assert [m.version for m in await store.list_models("b")] == ["2", "1", "10"]
        assert await store.list_models("zzz") == []

    async def test_model_autoscaling_roundtrip(self, store: StateStore) -> None:
        settings = {"min_replicas": 0, "max_replicas": 4, "target_inflight_per_replica": 2.5,
                    "scale_down_delay_s": 30, "extra": {"nested": [1, "a", None, True]}}
        await store.add_model(_model(autoscaling=settings))
        await store.add_model(_model(version="2"))
        got = await store.get_model("m", "1")
        assert got is not None and got.autoscaling == settings
        assert (await store.get_model("m", "2")) == _model(version="2")  # None: not autoscaled
        assert [m.autoscaling for m in await store.list_models("m")] == [settings, None]
        got.autoscaling["max_replicas"] = 99  # reads are copies
        again = await store.get_model("m", "1")
        assert again is not None and again.autoscaling == settings

    async def test_update_model_autoscaling(self, store: StateStore) -> None:
        await store.add_model(_model(num_replicas=1))
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        model = await store.get_model("m", "1")
        assert model is not None
        await store.update_model(model.replace(autoscaling={"max_replicas": 3}))
        assert await store.get_model("m", "1") == _model(num_replicas=1, autoscaling={"max_replicas": 3})
        await store.update_model(model.replace(autoscaling={"max_replicas": 5, "min_replicas": 1}))
        got = await store.get_model("m", "1")
        assert got is not None and got.autoscaling == {"max_replicas": 5, "min_replicas": 1}
        await store.update_model(model.replace(autoscaling=None))  # off again
        assert await store.get_model("m", "1") == _model(num_replicas=1)
        assert events == [_ev("model", "m", "1")] * 3  # what any update announces: frontends re-read the version

    async def test_model_autoscaling_survives_reopen(self, store: StateStore) -> None:
        await store.add_model(_model(autoscaling={"max_replicas": 2, "target_latency_fraction": 0.5}))
        await store.add_model(_model(version="2"), make_current=False)
        await store.update_model(_model(version="2", autoscaling={"min_replicas": 1}))
        store = await self._reopened(store)
        assert [m.autoscaling for m in await store.list_models()] == [
            {"max_replicas": 2, "target_latency_fraction": 0.5}, {"min_replicas": 1}]

    # -- rollouts -------------------------------------------------------------------------------------
    async def test_rollout_roundtrip(self, store: StateStore) -> None:
        record = _rollout(extra={"nested": [1, "a", None, True, {"x": -2.5}]}, text="ünïcode")
        assert await store.get_rollout("m") is None and await store.list_rollouts() == []
        await store.put_rollout(record)
        assert await store.get_rollout("m") == record
        assert await store.list_rollouts() == [record]
        assert await store.get_rollout("other") is None

    async def test_put_rollout_replaces(self, store: StateStore) -> None:
        await store.put_rollout(_rollout(weight=0.1, extra="dropped later"))
        await store.put_rollout({"model": "m", "weight": 0.5})  # the whole record, not a merge
        assert await store.get_rollout("m") == {"model": "m", "weight": 0.5}
        assert await store.list_rollouts() == [{"model": "m", "weight": 0.5}]

    async def test_list_rollouts_sorted(self, store: StateStore) -> None:
        for name in ("b", "c", "a", "B"):
            await store.put_rollout(_rollout(name))
        assert [r["model"] for r in await store.list_rollouts()] == ["B", "a", "b", "c"]

    async def test_delete_rollout(self, store: StateStore) -> None:
        await store.put_rollout(_rollout("m"))
        await store.put_rollout(_rollout("n"))
        await store.delete_rollout("m")
        assert await store.get_rollout("m") is None
        await store.delete_rollout("m")  # absent: no error
        await store.delete_rollout("never")
        assert await store.list_rollouts() == [_rollout("n")]
        await store.put_rollout(_rollout("m", weight=1.0))  # and it can be created again
        assert await store.get_rollout("m") == _rollout("m", weight=1.0)

    async def test_rollout_reads_are_copies(self, store: StateStore) -> None:
        record = _rollout()
        await store.put_rollout(record)
        record["weight"] = 0.9
        record["steps"][0]["weight"] = 0.9
        got = await store.get_rollout("m")
        assert got == _rollout()
        assert got is not None
        got["weight"] = 0.8
        got["steps"].append({"weight": 1.0})
        listed = await store.list_rollouts()
        assert listed == [_rollout()]
        listed[0]["steps"][1]["hold_s"] = 0
        assert await store.get_rollout("m") == _rollout()

    async def test_rollout_needs_a_model_name(self, store: StateStore) -> None:
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        for bad in ({}, {"model": ""}, {"model": None}, {"model": 5}, {"model": ["m"]}, {"name": "m"}):
            with pytest.raises(ValueError, match="'model'"):
                await store.put_rollout(bad)
        with pytest.raises(ValueError, match="JSON object"):
            await store.put_rollout(["m"])  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await store.put_rollout({"model": "m", "unstorable": object()})
        assert await store.list_rollouts() == [] and events == []

    async def test_deleting_a_model_keeps_its_rollout(self, store: StateStore) -> None:
        await store.add_model(_model(version="1"))
        await store.add_model(_model(version="2"), make_current=False)
        await store.put_rollout(_rollout())
        await store.delete_model("m", "2")
        await store.delete_model("m", "1")  # the last version: the controller decides what becomes of the record
        assert await store.list_models("m") == []
        assert await store.get_rollout("m") == _rollout()

    async def test_rollouts_survive_reopen(self, store: StateStore) -> None:
        await store.put_rollout(_rollout("m"))
        await store.put_rollout(_rollout("n", mode="shadow"))
        await store.put_rollout(_rollout("gone"))
        await store.delete_rollout("gone")
        store = await self._reopened(store)
        assert await store.list_rollouts() == [_rollout("m"), _rollout("n", mode="shadow")]
        await store.put_rollout(_rollout("m", weight=0.5))  # and stay writable
        assert await store.get_rollout("m") == _rollout("m", weight=0.5)

    async def test_rollout_notifications(self, store: StateStore) -> None:
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.put_rollout(_rollout("m"))
        await store.put_rollout(_rollout("m", weight=0.5))
        await store.put_rollout(_rollout("n"))
        await store.get_rollout("m")
        await store.list_rollouts()
        await store.delete_rollout("m")
        await store.delete_rollout("m")  # nothing deleted: nothing announced
        await store.delete_rollout("never")
        assert events == [_ev("rollout", "m"), _ev("rollout", "m"), _ev("rollout", "n"), _ev("rollout", "m")]

    # -- tenancy: an app's key requirement, priority and limits; API keys --------------------------------
    async def test_app_tenancy_fields_roundtrip(self, store: StateStore) -> None:
        limits = {"requests_per_second": 12.5, "requests_burst": 13, "max_batch_size": 8, "max_body_bytes": 65536}
        await store.add_app(_app(require_api_key=True, priority="high", limits=limits))
        await store.add_app(_app("plain"))
        got = await store.get_app("app")
        assert got == _app(require_api_key=True, priority="high", limits=limits)
        assert got is not None and got.limits is not None and got.require_api_key is True
        plain = await store.get_app("plain")
        assert plain is not None and (plain.require_api_key, plain.priority, plain.limits) == (False, "normal", None)
        got.limits["requests_burst"] = 99  # reads are copies
        again = await store.get_app("app")
        assert again is not None and again.limits == limits

    async def test_update_app_tenancy_fields(self, store: StateStore) -> None:
        await store.add_app(_app(policy="exp3", policy_config={"gamma": 0.1}))
        await store.put_policy_state("app", 0, b"learned")
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        changed = _app(policy="exp3", policy_config={"gamma": 0.1}, require_api_key=True, priority="low",
                       limits={"max_concurrent": 4})
        await store.update_app(changed)
        assert await store.get_app("app") == changed
        assert await store.get_policy_state("app", 0) == b"learned"  # limits are not the policy's business
        await store.update_app(changed.replace(limits=None, require_api_key=False))
        assert await store.get_app("app") == changed.replace(limits=None, require_api_key=False)
        assert events == [_ev("app", "app")] * 2  # the frontends' snapshots reload on it

    async def test_app_tenancy_fields_survive_reopen(self, store: StateStore) -> None:
        await store.add_app(_app(require_api_key=True, priority="low", limits={"inputs_per_second": 100.0}))
        await store.add_app(_app("b"))
        store = await self._reopened(store)
        assert await store.list_apps() == [_app(require_api_key=True, priority="low",
                                                limits={"inputs_per_second": 100.0}), _app("b")]

    async def test_api_key_roundtrip(self, store: StateStore) -> None:
        await store.add_app(_app())
        key = _key(label="ünïcode label", limits={"requests_per_second": 5.0, "requests_burst": 5})
        assert await store.get_api_key(key.key_id) is None and await store.list_api_keys() == []
        await store.add_api_key(key)
        assert await store.get_api_key(key.key_id) == key
        assert await store.list_api_keys() == [key] and await store.list_api_keys("app") == [key]
        assert await store.list_api_keys("other") == []
        assert await store.get_api_key("ffffffffffff") is None
        got = await store.get_api_key(key.key_id)
        assert got is not None and got.limits is not None
        got.limits["requests_burst"] = 50  # reads are copies
        assert await store.get_api_key(key.key_id) == key

    async def test_add_api_key_needs_the_app_and_a_new_id(self, store: StateStore) -> None:
        with _raises(NotFound, "Application 'app' does not exist"):
            await store.add_api_key(_key())
        await store.add_app(_app())
        await store.add_app(_app("b"))
        await store.add_api_key(_key())
        with _raises(AlreadyExists, "API key '0123456789ab' already exists"):
            await store.add_api_key(_key(app="b", label="other"))
        with pytest.raises(TypeError):
            await store.add_api_key(_key("aaaaaaaaaaaa", limits={"x": object()}))
        assert await store.list_api_keys() == [_key()]

    async def test_list_api_keys_sorted_and_filtered(self, store: StateStore) -> None:
        for name in ("b", "a"):
            await store.add_app(_app(name))
        keys = [_key("000000000003", "b", 5.0), _key("000000000002", "a", 9.0), _key("000000000001", "a", 9.0),
                _key("00000000000f", "a", 1.0)]
        for key in keys:
            await store.add_api_key(key)
        assert [k.key_id for k in await store.list_api_keys()] == [
            "00000000000f", "000000000001", "000000000002", "000000000003"]  # app, created_at, key id
        assert [k.key_id for k in await store.list_api_keys("a")] == ["00000000000f", "000000000001", "000000000002"]
        assert [k.key_id for k in await store.list_api_keys("b")] == ["000000000003"]

    async def test_delete_api_key(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.add_api_key(_key("000000000001"))
        await store.add_api_key(_key("000000000002"))
        assert await store.delete_api_key("000000000001") is True
        assert await store.delete_api_key("000000000001") is False  # revoked already
        assert await store.delete_api_key("never") is False
        assert await store.get_api_key("000000000001") is None
        assert [k.key_id for k in await store.list_api_keys("app")] == ["000000000002"]

    async def test_deleting_an_app_deletes_its_keys(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.add_app(_app("b"))
        await store.add_api_key(_key("000000000001"))
        await store.add_api_key(_key("000000000002", "b"))
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.delete_app("app")
        assert await store.get_api_key("000000000001") is None
        assert await store.list_api_keys() == [_key("000000000002", "b")]
        await store.delete_app("b")
        await store.add_app(_app())  # a new app of the old name has no keys of the old one
        assert await store.list_api_keys("app") == []
        await store.delete_app("app")  # no keys: only the app's event
        assert events == [_ev("app", "app"), _ev("api_key", "app"), _ev("app", "b"), _ev("api_key", "b"),
                          _ev("app", "app"), _ev("app", "app")]

    async def test_api_key_notifications(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.add_app(_app("b"))
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.add_api_key(_key("000000000001"))
        await store.add_api_key(_key("000000000002", "b"))
        await store.get_api_key("000000000001")
        await store.list_api_keys()
        await store.delete_api_key("000000000002")
        await store.delete_api_key("000000000002")  # nothing deleted: nothing announced
        with pytest.raises(AlreadyExists):
            await store.add_api_key(_key("000000000001"))
        with pytest.raises(NotFound):
            await store.add_api_key(_key("000000000009", "ghost"))
        assert events == [_ev("api_key", "app"), _ev("api_key", "b"), _ev("api_key", "b")]

    async def test_api_keys_survive_reopen(self, store: StateStore) -> None:
        await store.add_app(_app())
        kept = _key("000000000001", limits={"max_concurrent": 2})
        await store.add_api_key(kept)
        await store.add_api_key(_key("000000000002"))
        await store.delete_api_key("000000000002")
        store = await self._reopened(store)
        assert await store.list_api_keys() == [kept]
        assert await store.get_api_key("000000000001") == kept
        assert await store.delete_api_key("000000000001") is True  # and stay writable
        assert await store.list_api_keys() == []

    # -- links ----------------------------------------------------------------------------------------
    async def test_links_order_and_idempotence(self, store: StateStore) -> None:
        await store.add_app(_app())
        assert await store.get_links("app") == []
        await store.add_links("app", ["c", "a"])
        await store.add_links("app", ["a", "b", "b"])
        assert await store.get_links("app") == ["c", "a", "b"]
        await store.delete_links("app", ["a"])
        await store.add_links("app", ["a"])
        assert await store.get_links("app") == ["c", "b", "a"]

    async def test_links_missing_app(self, store: StateStore) -> None:
        for call in (store.get_links("x"), store.add_links("x", ["m"]), store.delete_links("x", ["m"])):
            with _raises(NotFound, "Application 'x' does not exist"):
                await call

    async def test_delete_links_not_linked(self, store: StateStore) -> None:
        await store.add_app(_app())
        await store.add_links("app", ["a", "b"])
        with _raises(NotFound, "model 'z' is not linked to application 'app'"):
            await store.delete_links("app", ["a", "z"])
        assert await store.get_links("app") == ["a", "b"]  # nothing deleted by the failed call

    # -- replicas -------------------------------------------------------------------------------------
    async def test_replicas_list_sorted_and_filtered(self, store: StateStore) -> None:
        for name, version, rid in [("b", "1", 0), ("a", "2", 1), ("a", "2", 0), ("a", "1", 10), ("a", "1", 9)]:
            await store.add_replica(_replica(name, version, rid, addr=f"{name}{version}{rid}"))
        keys = [(r.model_name, r.model_version, r.replica_id) for r in await store.list_replicas()]
        assert keys == [("a", "1", 9), ("a", "1", 10), ("a", "2", 0), ("a", "2", 1), ("b", "1", 0)]
        assert [r.replica_id for r in await store.list_replicas("a", "2")] == [0, 1]
        assert len(await store.list_replicas("a")) == 4
        assert (await store.list_replicas("b"))[0] == _replica("b", "1", 0, addr="b10")

    async def test_delete_replica(self, store: StateStore) -> None:
        await store.add_replica(_replica(replica_id=0))
        await store.add_replica(_replica(replica_id=1))
        await store.delete_replica("m", "1", 0)
        await store.delete_replica("m", "1", 0)  # missing: ignored
        await store.delete_replica("zz", "1", 0)
        assert [r.replica_id for r in await store.list_replicas()] == [1]

    async def test_clear_replicas(self, store: StateStore) -> None:
        await store.add_replica(_replica(replica_id=0, frontend="fe1"))
        await store.add_replica(_replica("n", "1", 0, frontend="fe2"))
        await store.add_replica(_replica("n", "1", 1, frontend="fe1"))
        await store.clear_replicas("fe1")
        assert [(r.model_name, r.frontend) for r in await store.list_replicas()] == [("n", "fe2")]
        await store.clear_replicas("unknown")

    async def test_next_replica_id(self, store: StateStore) -> None:
        assert [await store.next_replica_id("m", "1") for _ in range(3)] == [0, 1, 2]
        assert await store.next_replica_id("m", "2") == 0
        assert await store.next_replica_id("n", "1") == 0
        await store.add_model(_model())
        await store.delete_model("m", "1")
        assert await store.next_replica_id("m", "1") == 3  # never reused, even for a re-created model

    async def test_next_replica_id_survives_reopen(self, store: StateStore) -> None:
        assert await store.next_replica_id("m", "1") == 0
        store = await self._reopened(store)
        assert await store.next_replica_id("m", "1") == 1

    # -- load reports ---------------------------------------------------------------------------------
    async def test_load_two_frontends_and_overwrite(self, store: StateStore) -> None:
        assert await store.list_load() == {}
        one = {"m:1": {"queued": 3.0, "inflight": 2.0, "arrivals": 10.5, "at": 1.7e9}, "n:a.b": {"queued": 0.0}}
        await store.put_load("tcp://10.0.0.1:7000", one)
        await store.put_load("tcp://10.0.0.2:7000", {"m:1": {"queued": 1.0}})
        assert await store.list_load() == {"tcp://10.0.0.1:7000": one, "tcp://10.0.0.2:7000": {"m:1": {"queued": 1.0}}}
        await store.put_load("tcp://10.0.0.1:7000", {})  # a report replaces the frontend's last one
        await store.put_load("tcp://10.0.0.2:7000", {"m:2": {"queued": 4.0}})
        assert await store.list_load() == {"tcp://10.0.0.1:7000": {}, "tcp://10.0.0.2:7000": {"m:2": {"queued": 4.0}}}

    async def test_load_reads_are_copies(self, store: StateStore) -> None:
        figures = {"m:1": {"queued": 1.0}}
        await store.put_load("fe", figures)
        figures["m:1"]["queued"] = 2.0
        listed = await store.list_load()
        assert listed == {"fe": {"m:1": {"queued": 1.0}}}
        listed["fe"]["m:1"]["queued"] = 3.0
        assert await store.list_load() == {"fe": {"m:1": {"queued": 1.0}}}

    async def test_load_expires(self, store: StateStore) -> None:
        await store.put_load("short", {"m:1": {"queued": 1.0}}, ttl=0.2)
        await store.put_load("long", {"m:1": {"queued": 2.0}}, ttl=30)
        assert set(await store.list_load()) == {"short", "long"}
        deadline = time.monotonic() + 5.0
        while "short" in await store.list_load():
            assert time.monotonic() < deadline, "a load report outlived its ttl by 5 s"
            await asyncio.sleep(0.05)
        assert await store.list_load() == {"long": {"m:1": {"queued": 2.0}}}
        await store.put_load("short", {"m:1": {"queued": 5.0}}, ttl=30)  # a new report brings it back
        assert await store.list_load() == {"long": {"m:1": {"queued": 2.0}}, "short": {"m:1": {"queued": 5.0}}}

    async def test_load_reports_announce_nothing(self, store: StateStore) -> None:
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.put_load("fe", {"m:1": {"queued": 1.0}})
        await store.list_load()
        assert events == []

    # -- policy state and feedback --------------------------------------------------------------------
    async def test_policy_state(self, store: StateStore) -> None:
        assert await store.get_policy_state("app", 0) is None
        await store.put_policy_state("app", 0, b"\x00one")
        await store.put_policy_state("app", 1, b"two")
        await store.put_policy_state("app", 0, b"three")
        assert await store.get_policy_state("app", 0) == b"three"
        assert await store.get_policy_state("app", 1) == b"two"
        assert await store.get_policy_state("other", 0) is None

    async def test_feedback_seq_and_listing(self, store: StateStore) -> None:
        assert [await store.append_feedback(_feedback(label=float(i))) for i in range(5)] == [1, 2, 3, 4, 5]
        assert await store.append_feedback(_feedback("other")) == 1
        one = _feedback(uid=7, label={"y": [1, "a"]}, query_id=42, received_at=99.5)
        assert await store.append_feedback(one) == 6
        listed = await store.list_feedback("app")
        assert [f.seq for f in listed] == [1, 2, 3, 4, 5, 6]
        assert listed[5] == Feedback("app", 7, [1.0, 2.0], {"y": [1, "a"]}, 42, 99.5, 6)
        assert all(f.received_at > 0 for f in listed)
        assert [f.seq for f in await store.list_feedback("app", after_seq=2, limit=2)] == [3, 4]
        assert await store.list_feedback("app", after_seq=6) == []
        assert await store.list_feedback("nobody") == []

    async def test_feedback_survives_reopen(self, store: StateStore) -> None:
        await store.append_feedback(_feedback())
        store = await self._reopened(store)
        assert await store.append_feedback(_feedback(label=2.0)) == 2
        assert [f.label for f in await store.list_feedback("app")] == [1.0, 2.0]

    # -- change notifications -------------------------------------------------------------------------
    async def test_notifications(self, store: StateStore) -> None:
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.add_app(_app())
        await store.update_app(_app(latency_slo_micros=1))
        await store.add_links("app", ["m"])
        await store.delete_links("app", ["m"])
        await store.add_model(_model())
        await store.add_model(_model(version="2"), make_current=False)
        await store.update_model(_model(version="2", num_replicas=1))
        await store.set_current_version("m", "2")
        await store.add_replica(_replica(version="2"))
        await store.delete_replica("m", "2", 0)
        await store.add_replica(_replica(version="1", frontend="fe"))
        await store.clear_replicas("fe")
        await store.add_replica(_replica(version="2"))
        await store.delete_model("m", "2")
        await store.delete_app("app")
        await store.put_rollout(_rollout("m"))
        await store.delete_rollout("m")
        assert events == [
            _ev("app", "app"), _ev("app", "app"), _ev("link", "app"), _ev("link", "app"),
            _ev("model", "m", "1"), _ev("current_version", "m"), _ev("model", "m", "2"),
            _ev("model", "m", "2"), _ev("current_version", "m"),
            _ev("replica", "m", "2"), _ev("replica", "m", "2"), _ev("replica", "m", "1"),
            _ev("replica", "m", "1"), _ev("replica", "m", "2"),
            _ev("model", "m", "2"), _ev("current_version", "m"), _ev("replica", "m", "2"),
            _ev("app", "app"), _ev("rollout", "m"), _ev("rollout", "m"),
        ]

    async def test_no_notifications_for_reads_failures_state_and_feedback(self, store: StateStore) -> None:
        await store.add_app(_app())
        events: list[ChangeEvent] = []
        store.subscribe(events.append)
        await store.put_policy_state("app", 0, b"s")
        await store.append_feedback(_feedback())
        await store.next_replica_id("m", "1")
        await store.get_app("app")
        await store.list_models()
        await store.get_rollout("m")
        await store.list_rollouts()
        await store.delete_rollout("m")  # none to delete
        with pytest.raises(AlreadyExists):
            await store.add_app(_app())
        with pytest.raises(NotFound):
            await store.delete_model("m", "1")
        with pytest.raises(ValueError):
            await store.put_rollout({"model": ""})
        assert events == []

    async def test_unsubscribe(self, store: StateStore) -> None:
        first: list[ChangeEvent] = []
        second: list[ChangeEvent] = []
        unsubscribe = store.subscribe(first.append)
        store.subscribe(second.append)
        await store.add_app(_app("a"))
        unsubscribe()
        unsubscribe()  # twice is harmless
        await store.add_app(_app("b"))
        assert first == [_ev("app", "a")]
        assert second == [_ev("app", "a"), _ev("app", "b")]

    # -- durability and concurrency -------------------------------------------------------------------
    async def test_everything_survives_reopen(self, store: StateStore) -> None:
        app = _app(policy_config={"a": [1, 2]})
        model = _model(labels=("x",), num_replicas=3)
        replica = _replica(addr="tcp://h:1")
        await store.add_app(app)
        await store.add_links("app", ["m", "k"])
        await store.add_model(model)
        await store.add_model(_model(version="2"), make_current=False)
        await store.add_replica(replica)
        await store.put_policy_state("app", 3, b"p")
        await store.put_rollout(_rollout())
        store = await self._reopened(store)
        assert await store.list_apps() == [app]
        assert await store.get_links("app") == ["m", "k"]
        assert await store.list_models() == [model, _model(version="2")]
        assert await store.current_versions() == {"m": "1"}
        assert await store.list_replicas() == [replica]
        assert await store.get_policy_state("app", 3) == b"p"
        assert await store.list_rollouts() == [_rollout()]

    async def test_concurrent_writes(self, store: StateStore) -> None:
        n = 40
        await asyncio.gather(*(store.add_app(_app(f"app{i:02}")) for i in range(n)))
        await asyncio.gather(*(store.add_model(_model("m", str(i))) for i in range(n)))
        ids = await asyncio.gather(*(store.next_replica_id("m", "0") for _ in range(n)))
        seqs = await asyncio.gather(*(store.append_feedback(_feedback(uid=i)) for i in range(n)))
        await asyncio.gather(*(store.add_links("app00", [f"m{i % 5}"]) for i in range(n)))
        await asyncio.gather(*(store.put_rollout(_rollout(f"m{i % 10}", weight=i)) for i in range(n)))
        assert [a.name for a in await store.list_apps()] == [f"app{i:02}" for i in range(n)]
        assert len(await store.list_models("m")) == n
        assert sorted(ids) == list(range(n)) and sorted(seqs) == list(range(1, n + 1))
        assert [f.seq for f in await store.list_feedback("app", limit=n)] == list(range(1, n + 1))
        assert sorted(await store.get_links("app00")) == [f"m{i}" for i in range(5)]
        assert [r["model"] for r in await store.list_rollouts()] == [f"m{i}" for i in range(10)]
