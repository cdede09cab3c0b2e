"""The snapshot follows the store: a version switch flips routing, deleted versions' runtimes are closed."""

from __future__ import annotations

import pytest

from clipper_core.inputs import InputType
from clipper_core.serving.prediction import NO_MODELS
from clipper_core.state import Application, Model
from tests.serving.fakes import ServingHarness, doubles


async def test_set_current_version_flips_the_routed_version(serving: ServingHarness) -> None:
    await serving.add_app(cache_enabled=False)
    await serving.add_model(version="1", app="app")
    await serving.add_model(version="2")
    v1, v2 = await serving.connect(version="1"), await serving.connect(version="2")
    before = serving.predict_soon("app", [doubles(1.0)])
    (await v2.next_batch()).answer(["from v2"])
    assert (await before)[0].output == "from v2"
    await serving.store.set_current_version("m", "1")
    assert serving.snapshot.current["m"] == "2"  # the store's change is announced; the reload is pending
    await serving.snapshot.sync()
    assert serving.snapshot.current["m"] == "1"
    after = serving.predict_soon("app", [doubles(1.0)])
    (await v1.next_batch()).answer(["from v1"])
    assert (await after)[0].output == "from v1"
    assert (len(v1.batches), len(v2.batches)) == (1, 1)


async def test_store_changes_are_coalesced_into_one_reload(serving: ServingHarness,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[None] = []
    real_load = serving.snapshot.load

    async def counted_load() -> None:
        loads.append(None)
        await real_load()

    monkeypatch.setattr(serving.snapshot, "load", counted_load)
    store = serving.store
    await store.add_app(Application("a", InputType.DOUBLES, "-1.0", 100_000))
    await store.add_app(Application("b", InputType.DOUBLES, "-1.0", 300_000))
    await store.add_model(Model("m", "1", InputType.DOUBLES))
    await store.add_links("a", ["m"])
    await store.add_links("b", ["m"])
    assert serving.snapshot.apps == {}  # five changes announced, none loaded yet
    await serving.snapshot.sync()
    assert len(loads) == 1
    assert sorted(serving.snapshot.apps) == ["a", "b"]
    assert serving.snapshot.app("b").linked == ["m"]
    assert serving.snapshot.app("b").slo == pytest.approx(0.3)
    # the model's batch budget follows the tightest linked app's SLO
    assert serving.runtime().slo_budget == pytest.approx(0.5 * 0.1)


async def test_a_deleted_version_without_replicas_is_closed_at_once(serving: ServingHarness) -> None:
    await serving.add_app()
    await serving.add_model(version="1", app="app")
    await serving.add_model(version="2", make_current=False)
    assert ("m", "2") in serving.snapshot.models
    await serving.store.delete_model("m", "2")
    await serving.snapshot.sync()
    assert ("m", "2") not in serving.snapshot.models
    assert "2" not in serving.snapshot.versions["m"]


async def test_a_deleted_version_keeps_serving_its_connected_replica(serving: ServingHarness) -> None:
    await serving.add_app(cache_enabled=False)
    await serving.add_model(version="1", app="app")
    replica = await serving.connect(version="1")
    await serving.store.delete_model("m", "1")
    await serving.snapshot.sync()
    mr = serving.runtime("m", "1")
    assert mr.model is None and mr.num_replicas == 1
    # no current version any more: the app answers its default without asking the orphaned replica
    [prediction] = await serving.path.predict("app", [doubles(1.0)])
    assert (prediction.default, prediction.explanation) == (True, NO_MODELS)
    assert replica.batches == []


async def test_a_deleted_versions_runtime_is_closed_once_its_replicas_are_gone(serving: ServingHarness) -> None:
    """Snapshot used to close a deleted version's runtime only while reloading, and replica events do not
    reload: after its last replica left, the runtime stayed until an unrelated store change."""
    await serving.add_app()
    await serving.add_model(version="1", app="app")
    replica = await serving.connect(version="1")
    await serving.store.delete_model("m", "1")
    await serving.snapshot.sync()
    assert ("m", "1") in serving.snapshot.models  # still served by its replica
    await serving.disconnect(replica)
    await serving.snapshot.sync()
    assert ("m", "1") not in serving.snapshot.models
