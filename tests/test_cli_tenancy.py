"""``clipper keys create | list | revoke`` and ``clipper limits set | show`` against a running server (an in-process
ServerThread found through runtime.json in its home): the key is printed once with a warning, ``limits set``
changes only what it is given, errors are one line on stderr with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clipper_core.cli import main
from clipper_core.state import ApiKey
from clipper_core.tenancy.keys import matches, parse_key_id
from clipper_core.testing import ServerThread, http_json

Result = tuple[int, str, str]
WARNING = "clipper: warning: this is the only time the key is shown"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], clipper_home: Path) -> Any:
    """``cli("keys", "list", "--json")`` → (exit code, stdout, stderr), with ``--home`` of the running server."""
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main([*argv, "--home", str(clipper_home)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def app(clipper_server: ServerThread) -> str:
    status, _ = http_json(f"{clipper_server.admin_url}/admin/add_app", {
        "name": "hello", "input_type": "doubles", "default_output": "-1.0", "latency_slo_micros": 100_000})
    assert status == 200
    return "hello"


def ok(result: Result) -> str:
    code, out, err = result
    assert (code, err) == (0, ""), result
    return out


def error(result: Result) -> str:
    code, out, err = result
    assert code == 1 and out == "", result
    assert err.startswith("clipper: error: ") and err.count("\n") == 1, err
    return err


def stored(server: ServerThread, key_id: str) -> ApiKey | None:
    import asyncio

    assert server.loop is not None
    future = asyncio.run_coroutine_threadsafe(server.server.ctx.store.get_api_key(key_id), server.loop)
    result: ApiKey | None = future.result(10)
    return result


def test_keys_create_prints_the_key_once_with_a_warning(clipper_server: ServerThread, app: str, cli: Any) -> None:
    code, out, err = cli("keys", "create", app, "--label", "ci jobs", "--rps", "10", "--max-concurrent", "2")
    assert code == 0
    secret = out.strip()
    assert out == secret + "\n"  # stdout: the key alone, for KEY=$(clipper keys create APP)
    key_id = parse_key_id(secret)
    assert key_id is not None
    record = stored(clipper_server, key_id)
    assert record is not None and matches(record, secret)
    assert err.splitlines() == [
        f"API key {key_id} of hello (ci jobs), limits: requests_per_second=10 requests_burst=10 max_concurrent=2",
        f"{WARNING}: clipper keeps a salted hash of it, nothing it could show it from again. Store it now."]

    listed = ok(cli("keys", "list", app))
    assert secret not in listed and key_id in listed
    header, row = listed.splitlines()
    assert header.split() == ["KEY_ID", "APP", "LABEL", "CREATED", "LIMITS"]
    assert row.startswith(f"{key_id}  hello  ci jobs  20") and row.endswith(
        "requests_per_second=10 requests_burst=10 max_concurrent=2")


def test_keys_create_json_list_json_and_revoke(clipper_server: ServerThread, app: str, cli: Any) -> None:
    code, out, err = cli("keys", "create", app, "--json")
    created = json.loads(out)
    assert code == 0 and err.startswith(WARNING)
    assert set(created) == {"key_id", "api_key", "app_name", "label", "limits", "created_at"}
    assert (created["app_name"], created["label"], created["limits"]) == (app, "", None)
    second = json.loads(cli("keys", "create", app, "--ips", "100", "--inputs-burst", "500", "-o", "json")[1])
    assert second["limits"] == {"inputs_per_second": 100.0, "inputs_burst": 500}
    listed = json.loads(ok(cli("keys", "list", "--json")))
    assert [k["key_id"] for k in listed] == [created["key_id"], second["key_id"]]
    assert all("api_key" not in k for k in listed)
    assert ok(cli("keys", "revoke", created["key_id"])) == f"revoked API key {created['key_id']} of hello\n"
    assert stored(clipper_server, created["key_id"]) is None
    revoked = json.loads(ok(cli("keys", "revoke", second["key_id"], "--json")))
    assert revoked["revoked"] is True and revoked["key_id"] == second["key_id"]
    assert ok(cli("keys", "list")) == "no API keys\n" and ok(cli("keys", "list", app)) == "no API keys of hello\n"
    assert json.loads(ok(cli("keys", "list", app, "--json"))) == []


def test_key_errors_are_one_line(clipper_server: ServerThread, app: str, cli: Any) -> None:
    assert "Application 'ghost' does not exist" in error(cli("keys", "create", "ghost"))
    assert "'limits.requests_per_second' is 0; expected a number above 0" in error(
        cli("keys", "create", app, "--rps", "0"))
    assert "'limits.requests_burst' is set without 'limits.requests_per_second'" in error(
        cli("keys", "create", app, "--burst", "5"))
    assert "'limits.max_concurrent' is float; expected an integer" in error(
        cli("keys", "create", app, "--max-concurrent", "1.5"))
    assert "API key 'ffffffffffff' does not exist" in error(cli("keys", "revoke", "ffffffffffff"))
    assert "expected the 12 lower-case hex characters of a key id" in error(cli("keys", "revoke", "nope"))
    assert "Application 'ghost' does not exist" in error(cli("keys", "list", "ghost"))
    assert json.loads(ok(cli("keys", "list", "--json"))) == []  # nothing half-made


def test_limits_set_changes_only_what_it_is_given(clipper_server: ServerThread, app: str, cli: Any) -> None:
    assert ok(cli("limits", "show", app)) == "hello: no API key required (0 keys), priority normal, no limits\n"
    out = ok(cli("limits", "set", app, "--rps", "100", "--max-batch-size", "64", "--max-body-bytes", "65536"))
    assert out.splitlines() == [
        "hello: no API key required (0 keys), priority normal",
        "  requests_per_second  100", "  requests_burst       100", "  max_batch_size       64",
        "  max_body_bytes       65536"]
    ok(cli("limits", "set", app, "--priority", "high"))
    ok(cli("limits", "set", app, "--rps", "5"))  # a new rate: its burst is one second's worth again
    shown = json.loads(ok(cli("limits", "show", app, "--json")))
    assert shown == {"app_name": app, "require_api_key": False, "priority": "high", "api_keys": 0,
                     "limits": {"requests_per_second": 5.0, "requests_burst": 5, "max_batch_size": 64,
                                "max_body_bytes": 65536}}
    ok(cli("limits", "set", app, "--burst", "20", "--ips", "1000", "--max-concurrent", "4"))
    ok(cli("limits", "set", app, "--max-batch-size", "off", "--max-input-length", "4096"))
    shown = json.loads(ok(cli("limits", "show", app, "--json")))
    assert shown["limits"] == {"requests_per_second": 5.0, "requests_burst": 20, "inputs_per_second": 1000.0,
                               "inputs_burst": 1000, "max_concurrent": 4, "max_input_length": 4096,
                               "max_body_bytes": 65536}
    ok(cli("limits", "set", app, "--rps", "off"))  # a rate's burst goes with it
    assert "requests_burst" not in json.loads(ok(cli("limits", "show", app, "--json")))["limits"]

    out = ok(cli("limits", "set", app, "--require-key"))
    assert out.splitlines()[:2] == [
        "hello: API key required (0 keys), priority high",
        "  every query is refused until a key is made: clipper keys create hello"]
    cli("keys", "create", app)
    assert ok(cli("limits", "show", app)).splitlines()[0] == "hello: API key required (1 key), priority high"
    answer = json.loads(ok(cli("limits", "set", app, "--clear", "--max-concurrent", "2", "--json")))
    assert answer["limits"] == {"max_concurrent": 2} and answer["require_api_key"] is True
    answer = json.loads(ok(cli("limits", "set", app, "--clear", "--no-require-key", "--priority", "low", "--json")))
    assert answer == {"app_name": app, "require_api_key": False, "priority": "low", "limits": None, "api_keys": 1}
    status, info = http_json(f"{clipper_server.admin_url}/admin/get_application", {"name": app})
    assert status == 200 and (info["require_api_key"], info["priority"], info["limits"]) == (False, "low", None)


def test_limits_errors_are_one_line(clipper_server: ServerThread, app: str, cli: Any) -> None:
    assert "nothing to set: give --require-key or --no-require-key, --priority" in error(cli("limits", "set", app))
    assert "Application 'ghost' does not exist" in error(cli("limits", "set", "ghost", "--priority", "low"))
    assert "Application 'ghost' does not exist" in error(cli("limits", "set", "ghost", "--rps", "3"))
    assert "Application 'ghost' does not exist" in error(cli("limits", "show", "ghost"))
    assert "'limits.max_batch_size' is 0; expected 1 to" in error(cli("limits", "set", app, "--max-batch-size", "0"))
    assert "'limits.inputs_burst' is set without 'limits.inputs_per_second'" in error(
        cli("limits", "set", app, "--inputs-burst", "9"))
    assert json.loads(ok(cli("limits", "show", app, "--json")))["limits"] is None  # nothing half-set


def test_bad_command_line_values_are_refused_by_argparse(app: str, cli: Any, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    for argv, message in ((("limits", "set", app, "--priority", "urgent"), "invalid choice: 'urgent'"),
                          (("limits", "set", app, "--rps", "fast"), "argument --rps: expected a number, got 'fast'"),
                          (("keys", "create", app, "--rps", "off"), "argument --rps: expected a number, got 'off'")):
        with pytest.raises(SystemExit) as exited:
            cli(*argv)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
