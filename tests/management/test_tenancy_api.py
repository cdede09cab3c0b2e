"""The tenancy endpoints (/admin/add_api_key, get_api_keys, revoke_api_key, set_app_limits, get_app_limits),
get_application's new fields and the ``ClipperConnection`` methods over them, against a real server
(ServerThread, its SQLite store). Every answer is checked against the OpenAPI document's schema; every refusal is
a JSON 4xx naming what was wrong, and changes nothing; the secret is in the creation's answer and nowhere else,
not in the state file either."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from openapi_schema_validator import OAS30Validator

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.errors import ClipperException
from clipper_core.management.openapi import admin_openapi
from clipper_core.state import ApiKey
from clipper_core.tenancy.keys import matches, parse_key_id
from clipper_core.testing import ServerThread
from tests.management.admin_calls import call, ok, refused, resolved

_names = itertools.count(1)
TOKEN = "tenancy-admin-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("tenancy")) as server:
        yield server


@pytest.fixture(scope="module")
def conn(server: ServerThread) -> ClipperConnection:
    connection = ClipperConnection(LocalContainerManager(clipper_home=str(server.config.home)))
    connection.connect()
    return connection




def new_app(server: ServerThread, prefix: str = "t") -> str:
    name = f"{prefix}{next(_names)}"
    ok(server, "add_app", {"name": name, "input_type": "doubles", "default_output": "-1.0",
                           "latency_slo_micros": 100_000})
    return name


def stored_key(server: ServerThread, key_id: str) -> ApiKey | None:
    assert server.loop is not None
    store = server.server.ctx.store
    result: ApiKey | None = asyncio.run_coroutine_threadsafe(store.get_api_key(key_id), server.loop).result(10)
    return result


# -- the OpenAPI document's schemas, checked against every answer ---------------------------------------

DOC = admin_openapi()


def documented(endpoint: str, answer: Any) -> Any:
    """``answer``, once it is checked to be what the OpenAPI document says ``endpoint`` answers."""
    schema = DOC["paths"][f"/admin/{endpoint}"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    OAS30Validator(resolved(schema, DOC)).validate(answer)
    return answer


# -- API keys -----------------------------------------------------------------------------------------

def test_a_key_is_created_listed_and_revoked(server: ServerThread) -> None:
    app = new_app(server)
    created = documented("add_api_key", ok(server, "add_api_key", {"app_name": app, "label": "ci"}))
    secret = created["api_key"]
    assert set(created) == {"key_id", "api_key", "app_name", "label", "limits", "created_at"}
    assert (created["app_name"], created["label"], created["limits"]) == (app, "ci", None)
    assert parse_key_id(secret) == created["key_id"]
    record = stored_key(server, created["key_id"])
    assert record is not None and matches(record, secret)  # the store holds its salted digest ...
    assert secret not in repr(record)  # ... and not the secret

    listed = documented("get_api_keys", ok(server, "get_api_keys", {"app_name": app}))
    assert listed == [{k: v for k, v in created.items() if k != "api_key"}]  # never the secret again
    assert created["key_id"] in [k["key_id"] for k in ok(server, "get_api_keys", {})]
    assert ok(server, "get_api_keys", {"app_name": None}) == ok(server, "get_api_keys", {})

    revoked = documented("revoke_api_key", ok(server, "revoke_api_key", {"key_id": created["key_id"]}))
    assert revoked == {**listed[0], "revoked": True}
    assert stored_key(server, created["key_id"]) is None
    assert ok(server, "get_api_keys", {"app_name": app}) == []
    refused(server, "revoke_api_key", {"key_id": created["key_id"]}, 404,
            f"API key '{created['key_id']}' does not exist (or was revoked already)")


def test_a_key_with_its_own_limits(server: ServerThread) -> None:
    app = new_app(server)
    created = documented("add_api_key", ok(server, "add_api_key", {
        "app_name": app, "limits": {"requests_per_second": 2.5, "inputs_per_second": 100, "inputs_burst": 300,
                                    "max_concurrent": 2}}))
    assert created["label"] == ""
    assert created["limits"] == {"requests_per_second": 2.5, "requests_burst": 3, "inputs_per_second": 100.0,
                                 "inputs_burst": 300, "max_concurrent": 2}  # the burst left out: one second's worth
    assert ok(server, "get_api_keys", {"app_name": app})[0]["limits"] == created["limits"]
    assert ok(server, "add_api_key", {"app_name": app, "limits": None})["limits"] is None
    assert ok(server, "add_api_key", {"app_name": app, "limits": {}})["limits"] is None
    assert len(ok(server, "get_api_keys", {"app_name": app})) == 3


def test_keys_are_listed_by_app_then_age(server: ServerThread) -> None:
    a, b = new_app(server, "order-b"), new_app(server, "order-a")
    made = [ok(server, "add_api_key", {"app_name": app, "label": str(i)}) for i, app in enumerate([a, b, a])]
    assert [k["label"] for k in ok(server, "get_api_keys", {"app_name": a})] == ["0", "2"]
    everything = [k for k in ok(server, "get_api_keys", {}) if k["app_name"] in (a, b)]
    assert [k["key_id"] for k in everything] == [made[1]["key_id"], made[0]["key_id"], made[2]["key_id"]]


def test_deleting_an_app_deletes_its_keys(server: ServerThread) -> None:
    app = new_app(server)
    key_id = ok(server, "add_api_key", {"app_name": app})["key_id"]
    ok(server, "delete_app", {"name": app})
    assert stored_key(server, key_id) is None
    ok(server, "add_app", {"name": app, "input_type": "doubles", "default_output": "0", "latency_slo_micros": 1000})
    assert ok(server, "get_api_keys", {"app_name": app}) == []


def test_the_secret_is_not_in_the_state_file(server: ServerThread) -> None:
    app = new_app(server)
    created = ok(server, "add_api_key", {"app_name": app})
    home = Path(server.config.home)
    files = [p for p in home.rglob("*") if p.is_file() and p.name.startswith(server.config.state_path.name)]
    assert files, f"no state files under {home}"
    secret = created["api_key"].encode()
    random_part = secret[len("clk_0123456789ab_"):]
    for path in files:
        data = path.read_bytes()
        assert secret not in data and random_part not in data, path
    assert any(created["key_id"].encode() in p.read_bytes() for p in files)  # the record itself is there


# -- an app's limits and priority -----------------------------------------------------------------------

def test_set_app_limits_changes_only_what_is_given(server: ServerThread) -> None:
    app = new_app(server)
    fresh = documented("get_app_limits", ok(server, "get_app_limits", {"app_name": app}))
    assert fresh == {"app_name": app, "require_api_key": False, "priority": "normal", "limits": None, "api_keys": 0}
    limits = {"requests_per_second": 100, "max_concurrent": 16, "max_input_length": 1024, "max_batch_size": 64,
              "max_body_bytes": 65536}
    answer = documented("set_app_limits", ok(server, "set_app_limits", {"app_name": app, "limits": limits}))
    stored = {**limits, "requests_per_second": 100.0, "requests_burst": 100}
    assert answer == {**fresh, "limits": stored}
    answer = ok(server, "set_app_limits", {"app_name": app, "priority": "high"})
    assert answer == {**fresh, "priority": "high", "limits": stored}  # the limits stay
    ok(server, "add_api_key", {"app_name": app})
    answer = ok(server, "set_app_limits", {"app_name": app, "require_api_key": True})
    assert answer == {**fresh, "require_api_key": True, "priority": "high", "limits": stored, "api_keys": 1}
    answer = ok(server, "set_app_limits", {"app_name": app, "limits": {"max_batch_size": 8}})  # the whole set
    assert answer["limits"] == {"max_batch_size": 8} and answer["priority"] == "high"
    assert ok(server, "get_app_limits", {"app_name": app}) == answer

    info = documented("get_application", ok(server, "get_application", {"name": app}))
    assert (info["require_api_key"], info["priority"], info["limits"]) == (True, "high", {"max_batch_size": 8})
    verbose = [a for a in ok(server, "get_all_applications", {"verbose": True}) if a["name"] == app]
    assert verbose == [info]

    assert ok(server, "set_app_limits", {"app_name": app, "limits": None})["limits"] is None
    ok(server, "set_app_limits", {"app_name": app, "limits": {"max_concurrent": 1}})
    assert ok(server, "set_app_limits", {"app_name": app, "limits": {}})["limits"] is None
    final = ok(server, "set_app_limits", {"app_name": app, "require_api_key": False, "priority": "low"})
    assert final == {**fresh, "priority": "low", "api_keys": 1}


def test_a_new_app_has_no_key_requirement_normal_priority_and_no_limits(server: ServerThread) -> None:
    info = ok(server, "get_application", {"name": new_app(server)})
    assert (info["require_api_key"], info["priority"], info["limits"]) == (False, "normal", None)


# -- bad requests: a 400 or 404 naming what was wrong, and nothing changes ------------------------------

class Bad(NamedTuple):
    id: str
    endpoint: str
    body: Any
    status: int
    cause: str


BAD = [
    Bad("add: no app_name", "add_api_key", {"label": "x"}, 400, "JSON object does not have required key: app_name"),
    Bad("add: unknown app", "add_api_key", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("add: bad app name", "add_api_key", {"app_name": "a/b"}, 400, "'app_name' 'a/b' contains a character"),
    Bad("add: app name not text", "add_api_key", {"app_name": 3}, 400, "'app_name' is a number; expected a string"),
    Bad("add: label not text", "add_api_key", {"app_name": "{app}", "label": 7}, 400,
        "'label' is a number; expected a string"),
    Bad("add: label too long", "add_api_key", {"app_name": "{app}", "label": "x" * 257}, 400,
        "'label' is 257 characters long; expected at most 256"),
    Bad("add: label with a newline", "add_api_key", {"app_name": "{app}", "label": "a\nb"}, 400,
        "'label' contains a control character; expected printable text"),
    Bad("add: unknown key", "add_api_key", {"app_name": "{app}", "limit": {}}, 400,
        "unknown key(s) 'limit'; expected app_name, label, limits"),
    Bad("add: limits not an object", "add_api_key", {"app_name": "{app}", "limits": [1]}, 400,
        "'limits' is list; expected an object of limits or null"),
    Bad("add: an app's limit on a key", "add_api_key", {"app_name": "{app}", "limits": {"max_batch_size": 2}}, 400,
        "'limits' has the unknown setting(s) 'max_batch_size'"),
    Bad("add: zero rate", "add_api_key", {"app_name": "{app}", "limits": {"requests_per_second": 0}}, 400,
        "'limits.requests_per_second' is 0; expected a number above 0"),
    Bad("add: burst without rate", "add_api_key", {"app_name": "{app}", "limits": {"inputs_burst": 3}}, 400,
        "'limits.inputs_burst' is set without 'limits.inputs_per_second'"),
    Bad("add: unknown app before bad limits", "add_api_key", {"app_name": "ghost", "limits": {"max_concurrent": 0}},
        400, "'limits.max_concurrent' is 0; expected 1 to"),
    Bad("list: unknown app", "get_api_keys", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("list: bad app name", "get_api_keys", {"app_name": ".."}, 400, "'app_name' '..' contains a character"),
    Bad("list: unknown key", "get_api_keys", {"app": "x"}, 400, "unknown key(s) 'app'; expected app_name"),
    Bad("list: not an object", "get_api_keys", [], 400, "expected a JSON object"),
    Bad("revoke: no key_id", "revoke_api_key", {}, 400, "JSON object does not have required key: key_id"),
    Bad("revoke: key_id not text", "revoke_api_key", {"key_id": 12}, 400, "'key_id' is a number; expected a string"),
    Bad("revoke: short key_id", "revoke_api_key", {"key_id": "abc"}, 400,
        "'key_id' is 'abc'; expected the 12 lower-case hex characters of a key id"),
    Bad("revoke: upper-case key_id", "revoke_api_key", {"key_id": "0123456789AB"}, 400,
        "expected the 12 lower-case hex characters"),
    Bad("revoke: the whole secret", "revoke_api_key", {"key_id": "clk_0123456789ab_" + "a" * 43}, 400,
        "'key_id' is 'clk_0123456789ab_aaaaaaaaaaaaaaaaaaaaaaa...'; expected the 12"),
    Bad("revoke: unknown key", "revoke_api_key", {"key_id": "ffffffffffff"}, 404,
        "API key 'ffffffffffff' does not exist"),
    Bad("revoke: unknown field", "revoke_api_key", {"key_id": "ffffffffffff", "all": True}, 400,
        "unknown key(s) 'all'; expected key_id"),
    Bad("set: nothing to set", "set_app_limits", {"app_name": "{app}"}, 400,
        "nothing to set; expected at least one of require_api_key"),
    Bad("set: unknown app", "set_app_limits", {"app_name": "ghost", "priority": "low"}, 404,
        "Application 'ghost' does not exist"),
    Bad("set: no app_name", "set_app_limits", {"priority": "low"}, 400,
        "JSON object does not have required key: app_name"),
    Bad("set: require_api_key not a boolean", "set_app_limits", {"app_name": "{app}", "require_api_key": "yes"},
        400, "'require_api_key' is a string; expected a boolean"),
    Bad("set: unknown priority", "set_app_limits", {"app_name": "{app}", "priority": "urgent"}, 400,
        "'priority' is 'urgent'; expected one of high, normal, low"),
    Bad("set: null priority", "set_app_limits", {"app_name": "{app}", "priority": None}, 400,
        "'priority' is None; expected one of high, normal, low"),
    Bad("set: unknown limit", "set_app_limits", {"app_name": "{app}", "limits": {"rps": 1}}, 400,
        "'limits' has the unknown setting(s) 'rps'"),
    Bad("set: negative batch size", "set_app_limits", {"app_name": "{app}", "limits": {"max_batch_size": -1}}, 400,
        "'limits.max_batch_size' is -1; expected 1 to"),
    Bad("set: body bytes not an integer", "set_app_limits", {"app_name": "{app}", "limits": {"max_body_bytes": 1.5}},
        400, "'limits.max_body_bytes' is float; expected an integer"),
    Bad("set: one bad field spoils the rest", "set_app_limits",
        {"app_name": "{app}", "priority": "high", "limits": {"max_concurrent": "4"}}, 400,
        "'limits.max_concurrent' is str; expected an integer"),
    Bad("set: unknown field", "set_app_limits", {"app_name": "{app}", "priority": "low", "quota": 3}, 400,
        "unknown key(s) 'quota'; expected app_name, require_api_key, priority, limits"),
    Bad("show: unknown app", "get_app_limits", {"app_name": "ghost"}, 404, "Application 'ghost' does not exist"),
    Bad("show: no app_name", "get_app_limits", {}, 400, "JSON object does not have required key: app_name"),
]


def test_bad_case_ids_are_unique() -> None:
    assert len({c.id for c in BAD}) == len(BAD)


@pytest.fixture(scope="module")
def victim(server: ServerThread) -> str:
    """An app with a key and limits, which no bad request may change."""
    app = new_app(server, "victim")
    ok(server, "add_api_key", {"app_name": app, "label": "kept"})
    ok(server, "set_app_limits", {"app_name": app, "priority": "low", "limits": {"max_concurrent": 3}})
    return app


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_request(server: ServerThread, victim: str, case: Bad) -> None:
    def state() -> Any:
        return ok(server, "get_api_keys", {}), ok(server, "get_app_limits", {"app_name": victim}), \
            ok(server, "get_all_applications", {"verbose": True})

    before = state()
    body = {k: (victim if v == "{app}" else v) for k, v in case.body.items()} if isinstance(case.body, dict) \
        else case.body
    refused(server, case.endpoint, body, case.status, case.cause)
    assert state() == before


# -- the bearer token ---------------------------------------------------------------------------------

def test_the_admin_token_guards_every_tenancy_endpoint(tmp_path: Path) -> None:
    with ServerThread(tmp_path, admin_token=TOKEN) as server:
        assert call(server, "add_app", {"name": "app", "input_type": "doubles", "default_output": "0",
                                        "latency_slo_micros": 1000}, TOKEN)[0] == 200
        bodies = {"add_api_key": {"app_name": "app"}, "get_api_keys": {}, "revoke_api_key": {"key_id": "0" * 12},
                  "set_app_limits": {"app_name": "app", "priority": "high"}, "get_app_limits": {"app_name": "app"}}
        assert set(bodies) == {p.rsplit("/", 1)[1] for p in DOC["paths"] if p.endswith(("_api_key", "_api_keys",
                                                                                         "_app_limits"))}
        for endpoint, body in bodies.items():
            for token in (None, "wrong", TOKEN + "x"):
                status, answer = call(server, endpoint, body, token)
                assert status == 401 and set(answer) == {"error", "cause"}, (endpoint, token, answer)
                assert "Authorization: Bearer <CLIPPER_ADMIN_TOKEN>" in answer["cause"]
        assert call(server, "get_api_keys", {}, TOKEN) == (200, [])  # nothing was made without the token
        assert call(server, "get_app_limits", {"app_name": "app"}, TOKEN)[1]["priority"] == "normal"
        status, created = call(server, "add_api_key", {"app_name": "app"}, TOKEN)
        assert status == 200
        assert call(server, "set_app_limits", bodies["set_app_limits"], TOKEN)[1]["priority"] == "high"
        assert call(server, "revoke_api_key", {"key_id": created["key_id"]}, TOKEN)[0] == 200
        assert call(server, "revoke_api_key", bodies["revoke_api_key"], TOKEN)[0] == 404


# -- ClipperConnection ----------------------------------------------------------------------------------

def test_the_connection_creates_lists_and_revokes_keys(server: ServerThread, conn: ClipperConnection) -> None:
    app = new_app(server, "conn")
    created = conn.create_api_key(app, "batch jobs", requests_per_second=5, max_concurrent=2)
    assert created["label"] == "batch jobs" and parse_key_id(created["api_key"]) == created["key_id"]
    assert created["limits"] == {"requests_per_second": 5.0, "requests_burst": 5, "max_concurrent": 2}
    plain = conn.create_api_key(app)
    assert plain["label"] == "" and plain["limits"] is None
    listed = conn.list_api_keys(app)
    assert [k["key_id"] for k in listed] == [created["key_id"], plain["key_id"]]
    assert all("api_key" not in k for k in listed)
    assert {created["key_id"], plain["key_id"]} <= {k["key_id"] for k in conn.list_api_keys()}
    assert conn.revoke_api_key(created["key_id"])["revoked"] is True
    assert [k["key_id"] for k in conn.list_api_keys(app)] == [plain["key_id"]]
    with pytest.raises(ClipperException) as info:
        conn.revoke_api_key(created["key_id"])
    assert info.value.status == 404 and "does not exist" in info.value.msg
    with pytest.raises(ClipperException) as info:
        conn.create_api_key(app, inputs_burst=5)
    assert info.value.status == 400 and "'limits.inputs_burst' is set without" in info.value.msg
    with pytest.raises(ClipperException) as info:
        conn.create_api_key("ghost")
    assert info.value.status == 404


def test_the_connection_sets_and_reads_an_apps_limits(server: ServerThread, conn: ClipperConnection) -> None:
    app = new_app(server, "conn")
    assert conn.get_app_limits(app) == {"app_name": app, "require_api_key": False, "priority": "normal",
                                        "limits": None, "api_keys": 0}
    answer = conn.set_app_limits(app, require_api_key=True, priority="high",
                                 limits={"inputs_per_second": 50, "max_batch_size": 10})
    assert answer["limits"] == {"inputs_per_second": 50.0, "inputs_burst": 50, "max_batch_size": 10}
    assert (answer["require_api_key"], answer["priority"]) == (True, "high")
    assert conn.set_app_limits(app, priority="low")["limits"] == answer["limits"]  # None leaves it
    assert conn.set_app_limits(app, clear_limits=True)["limits"] is None
    conn.set_app_limits(app, limits={"max_concurrent": 1})
    assert conn.set_app_limits(app, limits={})["limits"] is None
    info = conn.get_app_info(app)
    assert info is not None and (info["require_api_key"], info["priority"], info["limits"]) == (True, "low", None)
    with pytest.raises(ClipperException) as raised:
        conn.set_app_limits(app)
    assert raised.value.status == 400 and "nothing to set" in raised.value.msg
    with pytest.raises(ClipperException) as raised:
        conn.set_app_limits(app, priority="urgent")
    assert raised.value.status == 400 and "'priority' is 'urgent'" in raised.value.msg
