"""A request with two faults is answered with the one Clipper checks first: the app, policy or model a request
names is looked up before the fields read after it (policy_config, labels, num_replicas)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.management.harness import Admin, start_admin


class TwoFaults(NamedTuple):
    id: str
    endpoint: str
    body: dict[str, Any]
    status: int
    title: str
    cause: str


CASES = [
    TwoFaults("unknown app before a bad policy_config", "set_app_policy",
              {"name": "ghost", "policy": "default", "policy_config": []}, 404, "Not found",
              "Application 'ghost' does not exist"),
    TwoFaults("unknown policy before a bad policy_config", "set_app_policy",
              {"name": "app", "policy": "nope", "policy_config": []}, 400, "Plugin error", "no selection policy"),
    TwoFaults("too many links before a bad policy_config", "set_app_policy",
              {"name": "multi", "policy": "default", "policy_config": []}, 400, "Management operation error",
              "serves at most 1 linked model"),
    TwoFaults("linked app's input type before bad labels", "add_model",
              {"model_name": "m", "model_version": "9", "input_type": "strings", "batch_size": -1, "labels": [1]},
              400, "Management operation error", "is linked to application 'full'"),
    TwoFaults("unknown model before a missing num_replicas", "set_num_replicas",
              {"model_name": "ghost", "model_version": "1"}, 404, "Not found",
              "model with name 'ghost' and version '1' does not exist"),
    TwoFaults("unknown model before an out-of-range num_replicas", "set_num_replicas",
              {"model_name": "ghost", "model_version": "1", "num_replicas": 9999}, 404, "Not found",
              "model with name 'ghost' and version '1' does not exist"),
]


@pytest.fixture
async def unsupervised(tmp_path: Path) -> AsyncIterator[Admin]:
    admin = await start_admin(tmp_path, supervised=False)
    yield admin
    await admin.client.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_the_first_fault_clipper_checks_is_reported(admin: Admin, case: TwoFaults) -> None:
    before = await admin.snapshot()
    reply = await admin.call("POST", f"/admin/{case.endpoint}", case.body)
    assert reply.status == case.status, reply
    assert reply.body["error"] == case.title
    assert case.cause in reply.body["cause"]
    assert await admin.snapshot() == before


async def test_no_supervisor_before_an_out_of_range_num_replicas(unsupervised: Admin) -> None:
    reply = await unsupervised.call("POST", "/admin/set_num_replicas",
                                    {"model_name": "dm", "model_version": "1", "num_replicas": 9999})
    assert (reply.status, reply.body["error"]) == (400, "Management operation error")
    assert "does not run replicas itself" in reply.body["cause"]
