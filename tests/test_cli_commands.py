"""The ``clipper`` command against a running server, found through runtime.json in its home (``--home``), through
the container manager ``--manager`` (or ``$CLIPPER_CONTAINER_MANAGER``) names; and ``start``'s own errors.

Most tests talk to an in-process ServerThread; ``start`` and ``stop`` of a real background server are at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import pytest

from clipper_core import hookimpl, plugins
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.interfaces import ContainerManager
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import ServerThread, http_json, wait_until
from tests.conftest import Run, ok

MODEL_SOURCE = "def predict(xs):\n    return [str(sum(x) * 2) for x in xs]\n"






def test_status_apps_and_models_of_an_empty_clipper(clipper_server: ServerThread, clipper_home: Path,
                                                    cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    status = json.loads(ok(cli("status", *home, "--json")))
    assert status["pid"] == os.getpid()  # the ServerThread runs in this process
    assert status["query_addr"] == clipper_server.server.query_addr
    assert status["admin_addr"] == clipper_server.server.admin_addr
    assert status["home"] == str(clipper_home)
    assert (status["apps"], status["models"], status["replicas"]) == (0, 0, 0)
    assert json.loads(ok(cli("apps", *home, "--json"))) == []
    assert json.loads(ok(cli("models", *home, "--json"))) == []
    text = ok(cli("status", *home))
    assert f"query_addr: {clipper_server.server.query_addr}\n" in text and "apps: 0\n" in text
    # --home is also accepted before the subcommand
    assert json.loads(ok(cli("--home", str(clipper_home), "apps", "--json"))) == []


def test_deploy_link_scale_and_logs(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                    cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    model_file = tmp_path / "my_model.py"
    model_file.write_text(MODEL_SOURCE)
    assert ok(cli("register", "doubler", *home, "--input-type", "doubles", "--default-output", "-1",
                  "--slo-micros", "2000000")) == "registered application doubler\n"
    assert ok(cli("register", "other", *home, "--input-type", "doubles")) == "registered application other\n"

    out = ok(cli("deploy", f"{model_file}:predict", *home, "--name", "twice", "--version", "1",
                 "--input-type", "doubles", "--app", "doubler"))
    assert out == "deployed twice:1 with 1 replica(s), linked to doubler\n"
    clipper_server.wait_replicas("twice", "1", 1)
    status, answer = http_json(f"{clipper_server.query_url}/doubler/predict", {"input": [1.0, 2.0]})
    assert status == 200 and answer["output"] == 6.0 and answer["default"] is False

    assert ok(cli("link", "other", "twice", *home)) == "linked twice to other\n"
    assert http_json(f"{clipper_server.query_url}/other/predict", {"input": [2.0, 2.0]})[1]["output"] == 8.0
    apps = {a["name"]: a for a in json.loads(ok(cli("apps", *home, "--json")))}
    assert set(apps) == {"doubler", "other"}
    assert apps["doubler"]["linked_models"] == ["twice"] and apps["other"]["linked_models"] == ["twice"]
    assert (apps["doubler"]["input_type"], apps["doubler"]["latency_slo_micros"],
            apps["doubler"]["default_output"], apps["doubler"]["policy"]) == ("doubles", 2000000, "-1", "default")
    table = ok(cli("apps", *home)).splitlines()
    assert table[0].split() == ["NAME", "INPUT_TYPE", "LATENCY_SLO_MICROS", "DEFAULT_OUTPUT", "POLICY",
                                "LINKED_MODELS"]
    assert table[1].split()[:5] == ["doubler", "doubles", "2000000", "-1", "default"]

    [model] = json.loads(ok(cli("models", *home, "--json")))
    assert {k: model[k] for k in ("model_name", "model_version", "input_type", "is_current_version",
                                  "num_replicas", "batch_size")} == {
        "model_name": "twice", "model_version": "1", "input_type": "doubles", "is_current_version": True,
        "num_replicas": 1, "batch_size": -1}

    assert ok(cli("scale", "twice", "2", *home)) == "twice: 2 replica(s)\n"
    clipper_server.wait_replicas("twice", "1", 2)
    assert json.loads(ok(cli("models", *home, "--json")))[0]["num_replicas"] == 2
    table = ok(cli("models", *home)).splitlines()
    assert table[0].split() == ["MODEL_NAME", "MODEL_VERSION", "INPUT_TYPE", "IS_CURRENT_VERSION", "NUM_REPLICAS",
                                "BATCH_SIZE"]
    assert table[1].split() == ["twice", "1", "doubles", "True", "2", "-1"]
    status = json.loads(ok(cli("status", *home, "--json")))
    assert (status["apps"], status["models"], status["replicas"]) == (2, 1, 2)

    logs = tmp_path / "copied-logs"
    copied = ok(cli("logs", str(logs), *home)).split()
    assert {Path(p).name for p in copied} >= {"twice_1_0.log", "twice_1_1.log"}
    assert sorted(copied) == sorted(str(p) for p in logs.iterdir())


def test_autoscale_sets_shows_and_turns_off_autoscaling(clipper_server: ServerThread, clipper_home: Path,
                                                         tmp_path: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    model_file = tmp_path / "my_model.py"
    model_file.write_text(MODEL_SOURCE)
    ok(cli("register", "doubler", *home, "--input-type", "doubles"))
    ok(cli("deploy", f"{model_file}:predict", *home, "--name", "twice", "--version", "1", "--input-type", "doubles",
           "--app", "doubler"))
    assert ok(cli("autoscale", "twice", *home, "--min", "1", "--max", "3", "--downscale-delay", "60")) == (
        "twice: autoscaling 1..3 replicas, 4 outstanding inputs per replica\n")
    assert ok(cli("autoscale", "twice", *home, "--target-latency", "0.5")) == (
        "twice: autoscaling 1..4 replicas, p99 at 0.5 of the SLO\n")

    def decided() -> bool:
        shown = json.loads(ok(cli("autoscale", "twice", *home, "--show", "--json")))
        return shown["status"] is not None and shown["autoscaling"]["target_latency_fraction"] == 0.5

    wait_until(decided, 30, what="the autoscaler's first decision")
    status = json.loads(ok(cli("status", *home, "--json")))
    assert "replica" in status["autoscaling twice:1"], status
    code, out, err = cli("autoscale", "twice", *home, "--min", "5", "--max", "2")
    assert (code, out) == (1, "") and err == (
        "clipper: error: POST /admin/set_autoscaling failed with 400: 'min_replicas' (5) is above 'max_replicas' "
        "(2); expected min <= max\n"), err
    assert ok(cli("autoscale", "twice", *home, "--off")) == "twice: autoscaling off\n"
    assert "autoscaling twice:1" not in json.loads(ok(cli("status", *home, "--json")))


FAILING_SOURCE = "def predict(xs):\n    raise ValueError('this version always fails')\n"


def _versions(server: ServerThread, cli: Run, home: list[str], tmp_path: Path, name: str, *versions: str,
              candidate: str = MODEL_SOURCE, app: str | None = None) -> None:
    """``clipper deploy`` of each version of ``name``: the first current (linked to ``app``, registered here),
    the others ``--not-current`` (from ``candidate``); one replica each, connected before this returns."""
    for kind, source in (("model", MODEL_SOURCE), ("candidate", candidate)):
        (tmp_path / f"{name}_{kind}.py").write_text(source)
    if app is not None:
        ok(cli("register", app, *home, "--input-type", "doubles", "--slo-micros", "2000000"))
    for i, version in enumerate(versions):
        flags = (["--app", app] if app else []) if i == 0 else ["--not-current"]
        source = tmp_path / f"{name}_{'model' if i == 0 else 'candidate'}.py"
        ok(cli("deploy", f"{source}:predict", *home, "--name", name, "--version", version, "--input-type",
               "doubles", *flags))
    for version in versions:
        server.wait_replicas(name, version, 1)


def test_rollout_start_status_pause_resume_and_promote(clipper_server: ServerThread, clipper_home: Path,
                                                      tmp_path: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    assert ok(cli("rollout", "status", *home)) == "no rollouts\n"
    assert json.loads(ok(cli("rollout", "status", *home, "--json"))) == []
    _versions(clipper_server, cli, home, tmp_path, "m", "1", "2")
    assert ok(cli("rollout", "start", "m", "2", *home, "--steps", "10,50,100", "--step-seconds", "30",
                  "--min-queries", "5", "--max-error-rate", "off", "--max-p99-ms", "80", "--max-default-rate",
                  "0.5", "--min-feedback-reward", "0.2", "--min-feedback", "3", "--reward", "abs_error")) == (
        "m: rollout of 2 against 1 started (canary, 10% of the queries)\n")
    view = json.loads(ok(cli("rollout", "status", "m", *home, "--json")))
    assert (view["candidate"], view["baseline"], view["state"], view["weights"]) == ("2", "1", "running",
                                                                                       {"2": 0.1, "1": 0.9})
    assert {k: view["settings"][k] for k in ("steps", "step_seconds", "min_queries_per_step", "max_error_rate",
                                             "max_p99_ms", "max_default_rate", "min_feedback_reward",
                                             "min_feedback", "reward", "min_agreement")} == {
        "steps": [10.0, 50.0, 100.0], "step_seconds": 30.0, "min_queries_per_step": 5, "max_error_rate": None,
        "max_p99_ms": 80.0, "max_default_rate": 0.5, "min_feedback_reward": 0.2, "min_feedback": 3,
        "reward": "abs_error", "min_agreement": None}

    def judged() -> bool:
        return "judged_at" in json.loads(ok(cli("rollout", "status", "m", *home, "--json")))

    wait_until(judged, 15, what="the rollout controller's first look")
    lines = ok(cli("rollout", "status", "m", *home)).splitlines()
    assert lines[0].split() == ["m", "running", "step", "1", "of", "3", "(10%)", "weights", "2=0.1", "1=0.9"]
    assert lines[1].startswith("  step 1 of 3 (10%): ") and lines[1].endswith(" of 30 s, 0 queries"), lines
    assert lines[2:] == ["  2 (candidate): 0 queries, errors 0.0%, defaults 0.0%, p99 - ms",
                         "  1 (baseline):  0 queries, errors 0.0%, defaults 0.0%, p99 - ms"]
    status = json.loads(ok(cli("status", *home, "--json")))
    assert status["rollout m:2"].startswith("step 1 of 3 (10%): "), status
    assert "rollout m:2: step 1 of 3 (10%): " in ok(cli("status", *home))

    assert ok(cli("rollout", "pause", "m", *home)) == "m: paused (paused by an operator at step 1)\n"
    assert error(cli("rollout", "pause", "m", *home)) == (
        "clipper: error: POST /admin/pause_rollout failed with 400: the rollout of model 'm' is paused already\n")
    assert ok(cli("rollout", "resume", "m", *home)) == "m: running (resumed by an operator: step 1 starts over)\n"
    assert "is not paused (running)" in error(cli("rollout", "resume", "m", *home))
    assert ok(cli("rollout", "promote", "m", *home)) == (
        "m: promoted (promoted by an operator at step 1: 2 is the current version)\n")
    models = {m["model_version"]: m["is_current_version"] for m in json.loads(ok(cli("models", *home, "--json")))}
    assert models == {"1": False, "2": True}
    assert "rollout m:2" not in json.loads(ok(cli("status", *home, "--json")))  # only active rollouts
    assert ok(cli("rollout", "status", "m", *home)).splitlines() == [
        "m  promoted  step 1 of 3  weights 2=1 1=0",
        "  promoted by an operator at step 1: 2 is the current version"]
    assert "has ended (promoted: " in error(cli("rollout", "abort", "m", *home))

    # a shadow rollout of version 1, now not current; then every rollout, and abort
    assert ok(cli("rollout", "start", "m", "1", *home, "--mode", "shadow", "--min-agreement", "0.99",
                  "--tolerance", "1e-4")) == (
        "m: rollout of 1 against 2 started (shadow, 100% of the queries mirrored)\n")
    _versions(clipper_server, cli, home, tmp_path, "n", "1", "2")
    ok(cli("rollout", "start", "n", "2", *home, "--json"))
    lines = ok(cli("rollout", "status", *home)).splitlines()
    assert lines[0] == "m  running  step 1 of 1 (100%)  weights 1=0 2=1  mirrored 100%", lines
    assert [line.split("  ")[0] for line in lines if not line.startswith(" ")] == ["m", "n"]
    assert [r["model"] for r in json.loads(ok(cli("rollout", "status", *home, "--json")))] == ["m", "n"]
    out = ok(cli("rollout", "abort", "m", *home, "--json"))
    assert json.loads(out)["state"] == "aborted"
    assert ok(cli("rollout", "abort", "n", *home)) == (
        "n: aborted (aborted by an operator at step 1; 1 keeps every query)\n")


def test_rollout_status_shows_the_figures_and_why_it_was_rolled_back(clipper_server: ServerThread,
                                                                      clipper_home: Path, tmp_path: Path,
                                                                      cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    _versions(clipper_server, cli, home, tmp_path, "m", "1", "2", candidate=FAILING_SOURCE, app="app")
    ok(cli("rollout", "start", "m", "2", *home, "--steps", "50,100", "--min-queries", "5"))
    for uid in range(1, 41):  # the candidate fails every input its users send
        assert clipper_server.predict("app", {"input": [1.0, float(uid)], "uid": uid})[0] == 200

    def rolled_back() -> bool:
        return bool(json.loads(ok(cli("rollout", "status", "m", *home, "--json")))["state"] == "rolled_back")

    wait_until(rolled_back, 15, what="the rollback")
    figures = json.loads(ok(cli("rollout", "status", "m", *home, "--json")))["figures"]
    n, base = figures["candidate"]["queries"], figures["baseline"]
    lines = ok(cli("rollout", "status", "m", *home)).splitlines()
    assert lines[:3] == [
        "m  rolled_back  step 1 of 2  weights 2=0 1=1",
        f"  rolled back: max_error_rate: {n} of {n} queries failed (100.0% > 1.0%) in step 1 (50%)",
        f"  2 (candidate): {n} queries, errors 100.0%, defaults 0.0%, p99 - ms"]
    assert lines[3:] == [f"  1 (baseline):  {base['queries']} queries, errors 0.0%, defaults 0.0%, "
                         f"p99 {base['p99_ms']:g} ms"]


def test_rollout_errors_are_one_line_too(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                        cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    _versions(clipper_server, cli, home, tmp_path, "m", "1", "2")
    assert error(cli("rollout", "start", "m", "2", *home, "--steps", "5,x")) == (
        "clipper: error: --steps is '5,x'; expected percentages separated by commas, e.g. 5,25,50,100\n")
    assert error(cli("rollout", "start", "m", "2", *home, "--steps", "50,10")) == (
        "clipper: error: POST /admin/start_rollout failed with 400: 'steps' is [50.0, 10.0]; expected increasing "
        "percentages\n")
    assert "'min_agreement' is a shadow rollout's guard" in error(
        cli("rollout", "start", "m", "2", *home, "--min-agreement", "0.9"))
    assert "version '1' is already the current version of model 'm'" in error(
        cli("rollout", "start", "m", "1", *home))
    assert "model with name 'm' and version '7' does not exist" in error(cli("rollout", "start", "m", "7", *home))
    assert "No model with name 'ghost' exists" in error(cli("rollout", "start", "ghost", "1", *home))
    for command in ("status", "pause", "resume", "abort", "promote"):
        assert error(cli("rollout", command, "m", *home)) == (
            f"clipper: error: POST /admin/{'get' if command == 'status' else command}_rollout failed with 404: "
            "model 'm' has no rollout; start one with start_rollout\n")
    assert json.loads(ok(cli("rollout", "status", *home, "--json"))) == []  # nothing was started


def test_deploy_not_current_keeps_the_current_version(clipper_server: ServerThread, clipper_home: Path,
                                                      tmp_path: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    model_file = tmp_path / "my_model.py"
    model_file.write_text(MODEL_SOURCE)
    ok(cli("register", "doubler", *home, "--input-type", "doubles", "--slo-micros", "2000000"))
    ok(cli("deploy", f"{model_file}:predict", *home, "--name", "twice", "--version", "1", "--input-type", "doubles",
           "--app", "doubler"))
    assert ok(cli("deploy", f"{model_file}:predict", *home, "--name", "twice", "--version", "2", "--input-type",
                  "doubles", "--not-current")) == "deployed twice:2 with 1 replica(s) (not current)\n"
    models = {m["model_version"]: m["is_current_version"] for m in json.loads(ok(cli("models", *home, "--json")))}
    assert models == {"1": True, "2": False}
    clipper_server.wait_replicas("twice", "2", 1)
    assert ok(cli("rollout", "start", "twice", "2", *home)) == (
        "twice: rollout of 2 against 1 started (canary, 5% of the queries)\n")


def test_plugins_lists_name_distribution_version_and_hooks(clipper_server: ServerThread, clipper_home: Path,
                                                          cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPPER_DISABLE_PLUGINS", raising=False)
    rows = {p["name"]: p for p in json.loads(ok(cli("plugins", "--home", str(clipper_home), "--json")))}
    version = metadata.version("clipper-core")
    assert {name: rows[name] for name in ("local", "python_closure", "default_policy", "lru")} == {
        "local": {"name": "local", "distribution": "clipper-core", "version": version,
                  "hooks": "clipper_register_container_managers"},
        "python_closure": {"name": "python_closure", "distribution": "clipper-core", "version": version,
                           "hooks": "clipper_register_deployers"},
        "default_policy": {"name": "default_policy", "distribution": "clipper-core", "version": version,
                           "hooks": "clipper_register_policies"},
        "lru": {"name": "lru", "distribution": "clipper-core", "version": version,
                "hooks": "clipper_register_caches"}}
    table = ok(cli("plugins", "--home", str(clipper_home))).splitlines()
    assert table[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "HOOKS"]
    assert ["lru", "clipper-core", version, "clipper_register_caches"] in [line.split() for line in table]
    monkeypatch.setenv("CLIPPER_DISABLE_PLUGINS", "lru")
    assert "lru" not in {p["name"] for p in json.loads(ok(cli("plugins", "--home", str(clipper_home), "--json")))}


def error(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 1 and out == "", (code, out, err)
    assert err.startswith("clipper: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_errors_are_one_line_on_stderr_and_exit_1(clipper_server: ServerThread, clipper_home: Path,
                                                  tmp_path: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    assert "Application 'ghost-app' does not exist" in error(cli("link", "ghost-app", "ghost-model", *home))
    ok(cli("register", "app", *home, "--input-type", "doubles"))
    assert "No model with name 'ghost-model' exists" in error(cli("link", "app", "ghost-model", *home))
    assert "application 'app' already exists" in error(cli("register", "app", *home, "--input-type", "doubles"))
    assert "no selection policy named 'zzz'; installed: [" in error(
        cli("register", "app2", *home, "--input-type", "doubles", "--policy", "zzz"))
    assert "--policy-config is not JSON" in error(
        cli("register", "app3", *home, "--input-type", "doubles", "--policy-config", "{not json"))
    assert "No model with name 'ghost'" in error(cli("scale", "ghost", "2", *home))
    model_file = tmp_path / "m.py"
    model_file.write_text(MODEL_SOURCE)
    assert "has no function 'nope'" in error(cli("deploy", f"{model_file}:nope", *home, "--name", "m",
                                                 "--version", "1", "--input-type", "doubles"))
    assert "expected FILE.py:FUNCTION" in error(cli("deploy", "model.txt:f", *home, "--name", "m", "--version",
                                                    "1", "--input-type", "doubles"))
    # nothing half-done was left behind
    apps = json.loads(ok(cli("apps", *home, "--json")))
    assert [a["name"] for a in apps] == ["app"] and apps[0]["linked_models"] == []
    assert json.loads(ok(cli("models", *home, "--json"))) == []


@pytest.mark.parametrize("case", ["missing file", "syntax error", "bad input type"])
def test_deploy_errors_are_one_line_too(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run,
                                        case: str) -> None:
    model_file = tmp_path / "m.py"
    model_file.write_text("def predict(:\n" if case == "syntax error" else MODEL_SOURCE)
    target = str(tmp_path / "missing.py") if case == "missing file" else str(model_file)
    input_type = "tensor" if case == "bad input type" else "doubles"
    error(cli("deploy", f"{target}:predict", "--home", str(clipper_home), "--name", "m", "--version", "1",
              "--input-type", input_type))


def test_no_running_clipper_is_a_clear_error(tmp_path: Path, cli: Run) -> None:
    assert "no running clipper found" in error(cli("status", "--home", str(tmp_path / "nothing")))


# -- the container manager: --manager, $CLIPPER_CONTAINER_MANAGER, the registry ---------------------------

class RecordingManager(LocalContainerManager):
    """The local manager under another name, with a narrower constructor; records what the CLI did with it."""

    name = "acme-local"
    made: ClassVar[list[RecordingManager]] = []

    def __init__(self, clipper_home: str | None = None) -> None:
        super().__init__(clipper_home=clipper_home)
        self.stopped: list[bool] = []
        RecordingManager.made.append(self)

    def stop_all(self, graceful: bool = True) -> None:
        self.stopped.append(graceful)  # the test's ServerThread runs in this process: never stop it for real


class AcmeManagers:
    __name__ = "acme-managers"

    @hookimpl
    def clipper_register_container_managers(self) -> list[type[ContainerManager]]:
        return [RecordingManager]


@pytest.fixture
def acme_manager(monkeypatch: pytest.MonkeyPatch) -> type[RecordingManager]:
    """``acme-local`` installed as if by a plugin distribution."""
    original = plugins.make_plugin_manager
    monkeypatch.setattr(plugins, "make_plugin_manager",
                        lambda **kw: original(**{**kw, "extra": [*kw.get("extra", []), AcmeManagers()]}))
    RecordingManager.made.clear()
    return RecordingManager


def test_every_command_that_talks_to_clipper_uses_the_chosen_manager(
        clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run,
        acme_manager: type[RecordingManager], monkeypatch: pytest.MonkeyPatch) -> None:
    home = ["--home", str(clipper_home)]
    model_file = tmp_path / "m.py"
    model_file.write_text(MODEL_SOURCE)
    commands = [["status", "--json"], ["apps"], ["models"], ["register", "app", "--input-type", "doubles"],
                ["deploy", f"{model_file}:predict", "--name", "m", "--version", "1", "--input-type", "doubles"],
                ["link", "app", "m"], ["set-policy", "app", "default"], ["scale", "m", "1"],
                ["rollout", "status"], ["logs", str(tmp_path / "logs")], ["stop", "--kill"]]
    for i, command in enumerate(commands):
        ok(cli(*command, *home, "--manager", "acme-local"))
        assert len(acme_manager.made) == i + 1, command  # one manager per command, and it was ours
    assert [m.home for m in acme_manager.made] == [clipper_home] * len(commands)  # --home reached it
    assert acme_manager.made[-1].stopped == [False]
    # before the subcommand too, and from the environment
    ok(cli("--manager", "acme-local", "apps", *home))
    monkeypatch.setenv("CLIPPER_CONTAINER_MANAGER", "acme-local")
    ok(cli("stop", *home))
    assert len(acme_manager.made) == len(commands) + 2 and acme_manager.made[-1].stopped == [True]


def test_an_unknown_manager_lists_what_is_installed(tmp_path: Path, cli: Run, acme_manager: type[RecordingManager],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    installed = PluginRegistry.create().container_managers.names()
    assert {"acme-local", "local"} <= set(installed)
    expected = f"clipper: error: no container manager named 'zzz'; installed: {installed}\n"
    assert error(cli("status", "--home", str(tmp_path), "--manager", "zzz")) == expected
    assert error(cli("stop", "--manager", "zzz")) == expected
    monkeypatch.setenv("CLIPPER_CONTAINER_MANAGER", "zzz")
    assert error(cli("start", "--home", str(tmp_path))) == expected
    assert not (tmp_path / "runtime.json").exists()


def test_options_the_manager_does_not_take_are_refused(tmp_path: Path, cli: Run,
                                                       acme_manager: type[RecordingManager]) -> None:
    assert error(cli("start", "--home", str(tmp_path), "--manager", "acme-local", "--query-port", "0")) == (
        "clipper: error: container manager 'acme-local' takes no --query-port\n")
    assert acme_manager.made == [] and not (tmp_path / "runtime.json").exists()


@pytest.mark.parametrize("foreground", [False, True])
def test_start_with_an_unknown_state_store_is_one_line(tmp_path: Path, cli: Run, foreground: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    flags = ["--foreground"] if foreground else []
    message = (f"clipper: error: no state store for scheme 'foo'; installed schemes: "
               f"{sorted(PluginRegistry.create()._schemes)}\n")
    assert error(cli("start", *flags, "--home", str(tmp_path), "--state-store", "foo://x")) == message
    monkeypatch.setenv("CLIPPER_STATE_STORE", "foo://y")
    assert error(cli("start", *flags, "--home", str(tmp_path))) == message
    assert not (tmp_path / "runtime.json").exists()


def test_start_with_redis_but_without_the_redis_package_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['redis'] = None; from clipper_core.cli import main; "
            f"sys.exit(main(['start', '--home', {str(tmp_path)!r}, '--state-store', 'redis://h:1/0']))")
    # the plugins in this repository that need redis (and depend on it) are not installed without it either
    env = {**os.environ, "CLIPPER_DISABLE_PLUGINS": "docker,redis_cache"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    assert proc.stderr == ("clipper: error: state store scheme 'redis' needs the redis package, which is not "
                           "installed: pip install 'clipper-core[redis]'\n")


def test_start_in_the_background_passes_the_state_store_on(tmp_path: Path, cli: Run) -> None:
    home = ["--home", str(tmp_path / "home")]
    out = ok(cli("start", *home, "--query-port", "0", "--admin-port", "0", "--rpc-port", "0",
                 "--state-store", "memory"))
    try:
        assert out.startswith("clipper started (pid ") and "queries on http://127.0.0.1:" in out
        status = json.loads(ok(cli("status", *home, "--json")))
        assert status["pid"] != os.getpid() and status["apps"] == 0
        ok(cli("register", "app", *home, "--input-type", "doubles"))
    finally:
        assert ok(cli("stop", *home)) == "clipper stopped\n"
    assert not (tmp_path / "home" / "state.db").exists()  # the memory store, not the default SQLite file
