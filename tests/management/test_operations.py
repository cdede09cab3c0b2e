"""ManagementOperations without HTTP: each rule raises its clipper_core.errors class (with the status the admin
API answers), and nothing changes when one refuses. The endpoints' answers are test_endpoints.py's and
test_bad_requests.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core import hookimpl
from clipper_core.config import Config
from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.errors import (
    AppNotFound,
    ClipperError,
    Conflict,
    InvalidInput,
    ModelNotFound,
    ModelVersionNotFound,
    PluginError,
    VersionNotFound,
)
from clipper_core.inputs import InputType
from clipper_core.interfaces import SelectionPolicy
from clipper_core.management.operations import AppInfo, ManagementOperations, ModelInfo, ReplicaCounts
from clipper_core.plugins import PluginRegistry, make_plugin_manager
from clipper_core.state import Application, Model
from clipper_core.state.memory import MemoryStateStore
from tests.management.harness import RecordingSupervisor, TestPolicies, seed

D = InputType.DOUBLES


class Strict(DefaultPolicy):
    """A policy that refuses any policy_config."""

    name = "strict"

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        if config:
            raise ValueError(f"takes no config; got {sorted(config)}")
        super().__init__(app, config)


class StrictPolicy:
    __name__ = "strict-policy"

    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [Strict]


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[ManagementOperations]:
    model_dir = tmp_path / "models" / "dm-1"
    model_dir.mkdir(parents=True)
    store = MemoryStateStore()
    await store.open()
    await seed(store, model_dir)
    config = Config(home=tmp_path / "home", state_store="memory")
    registry = PluginRegistry.create(make_plugin_manager(extra=[TestPolicies(), StrictPolicy()]))
    yield ManagementOperations(store, registry, RecordingSupervisor(config.logs_dir), config)
    await store.close()


async def snapshot(ops: ManagementOperations) -> Any:
    return await ops.app_infos(), await ops.model_infos(), await ops.replicas()


REFUSALS: list[tuple[str, str, tuple[Any, ...], type[ClipperError], int, str]] = [
    ("policy of unknown app", "set_app_policy", ("ghost", "default", {}), AppNotFound, 404,
     "Application 'ghost' does not exist"),
    ("state of unknown app", "default_output", ("ghost",), AppNotFound, 404, "Application 'ghost' does not exist"),
    ("link to unknown app", "link_models", ("ghost", ["m"]), AppNotFound, 404, "Application 'ghost' does not exist"),
    ("link unknown model", "link_models", ("app", ["ghost"]), ModelNotFound, 400, "No model with name 'ghost' exists"),
    ("link second model", "link_models", ("full", ["m2"]), Conflict, 400, "at most one model under policy 'default'"),
    ("version of unknown model", "set_model_version", ("ghost", "1"), ModelNotFound, 400,
     "No model with name 'ghost' exists"),
    ("unknown version", "set_model_version", ("m", "9"), VersionNotFound, 400,
     "Requested version: 9 does not exist for model: m"),
    ("delete unknown version", "delete_versioned_model", ("m", "9"), ModelVersionNotFound, 400,
     "model with name 'm' and version '9' does not exist"),
    ("resize unknown version", "set_num_replicas", ("m", "9", 1), ModelVersionNotFound, 404,
     "model with name 'm' and version '9' does not exist"),
    ("count unknown version", "replica_counts", ("m", "9"), ModelVersionNotFound, 404,
     "model with name 'm' and version '9' does not exist"),
    ("resize containerless", "set_num_replicas", ("m", "1", 1), Conflict, 400,
     "Cannot resize the containerless model m:1"),
    ("policy refusing its config", "add_app", (Application("x", D, "0", 1000, policy="strict",
                                                           policy_config={"k": 1}),),
     InvalidInput, 400, "policy_config {'k': 1} is refused by policy 'strict': takes no config; got ['k']"),
    ("unknown policy", "set_app_policy", ("app", "zzz", {}), PluginError, 400, "no selection policy named 'zzz'"),
    ("model of another type than its app", "add_model", (Model("m", "3", InputType.STRINGS),), Conflict, 400,
     "is linked to application 'full' of input type 'doubles'"),
]


@pytest.mark.parametrize(("method", "args", "error", "status", "message"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
async def test_a_refusal_is_its_error_class_and_changes_nothing(
        ops: ManagementOperations, method: str, args: tuple[Any, ...], error: type[ClipperError], status: int,
        message: str) -> None:
    before = await snapshot(ops)
    with pytest.raises(error) as raised:
        await getattr(ops, method)(*args)
    assert raised.value.status == status and message in raised.value.message
    assert await snapshot(ops) == before


async def test_reads(ops: ManagementOperations) -> None:
    assert await ops.app_names() == ["app", "full", "mixedapp", "multi", "open", "strs"]
    info = await ops.app_info("multi")
    assert isinstance(info, AppInfo) and info.links == ["m", "m2"] and await ops.app_info("ghost") is None
    assert await ops.default_output("strs") == "none"
    assert await ops.model_info("m", "2") == ModelInfo(Model("m", "2", D), False)
    assert await ops.replica_counts("dm", "1") == ReplicaCounts(2, 2, 2)
    replica = await ops.replica("dm", "1", 1)
    assert replica is not None and replica.info == {"pid": 4243} and await ops.replica("dm", "1", 7) is None


async def test_changes(ops: ManagementOperations) -> None:
    await ops.add_model(Model("n", "1", D))
    info = await ops.model_info("n", "1")
    assert info is not None and info.is_current and info.model.created_at > 0  # stamped at registration
    await ops.link_models("app", ["n"])
    assert await ops.linked_models("app") == ["n"]
    app = await ops.set_app_policy("full", "any-number", {"k": 2})
    assert (app.policy, app.policy_config) == ("any-number", {"k": 2})
    resized = await ops.set_num_replicas("dm", "1", 3)
    assert resized.num_replicas == 3 and (await ops.replica_counts("dm", "1")).num_replicas == 3
    await ops.delete_versioned_model("dm", "1")
    assert await ops.model_info("dm", "1") is None
    assert isinstance(ops.supervisor, RecordingSupervisor)
    assert ops.supervisor.calls == [("dm", "1", 3), ("dm", "1", 0)]  # deleting stops its replicas


async def test_without_a_supervisor(ops: ManagementOperations) -> None:
    ops.supervisor = None
    for call in (ops.set_num_replicas("dm", "1", 1), ops.replica_counts("dm", "1")):
        with pytest.raises(Conflict, match="does not run replicas itself"):
            await call
    await ops.delete_versioned_model("dm", "1")  # nothing to stop
    assert ops.log_files() == []  # and no server log in this home yet
