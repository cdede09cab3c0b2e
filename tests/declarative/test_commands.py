"""``clipper apply | diff | export | schema`` against real servers (ServerThread: the embedded server, real model
replica processes): idempotent applies, one field changed is one action, immutable fields refused with their line,
prune, a rollout started once, and an export applied to a fresh clipper reproducing the first."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from clipper_core.client.connection import ClipperConnection
from clipper_core.declarative.schema import SCHEMA
from clipper_core.default_plugins.local_manager import LocalContainerManager
from clipper_core.testing import ServerThread
from tests.conftest import Run, ok

REPO = Path(__file__).resolve().parents[2]

DOUBLE = "def predict(xs):\n    return [str(sum(x) * 2) for x in xs]\n"
TRIPLE = "def predict(xs):\n    return [str(sum(x) * 3) for x in xs]\n"

FILE = """
    apiVersion: clipper/v1
    applications:
      - name: calc
        input_type: doubles
        slo_micros: 2000000
        default_output: "-1"
    models:
      - name: twice
        version: 1
        input_type: doubles
        module: double.py:predict
        replicas: 1
        batch_size: 4
        batch_wait_timeout_micros: 200
        labels: [team-a]
    links:
      - {app: calc, model: twice}
    """






@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "double.py").write_text(DOUBLE)
    (directory / "triple.py").write_text(TRIPLE)
    (directory / "clipper.yaml").write_text(textwrap.dedent(FILE).lstrip())
    return directory


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def add_version(path: Path, version: int, module: str, *fields: str) -> None:
    """Declare another version of model twice in the file at ``path`` (before its links)."""
    block = "".join(f"    {line}\n" for line in (f"version: {version}", "input_type: doubles", f"module: {module}",
                                                   *fields))
    edit(path, "\nlinks:", f"\n  - name: twice\n{block}links:")


def connection(home: Path) -> ClipperConnection:
    conn = ClipperConnection(LocalContainerManager(clipper_home=str(home)))
    conn.connect()
    return conn


def state(home: Path) -> dict[str, Any]:
    """What clipper holds, without what depends on its home (the model directories' paths)."""
    conn = connection(home)
    models = [{k: v for k, v in m.items() if k != "container_name"} for m in conn.get_all_models(verbose=True)]
    return {"apps": conn.get_all_apps(verbose=True), "models": sorted(models, key=lambda m: (
        m["model_name"], m["model_version"]))}


def test_apply_twice_then_one_change_then_a_refused_one(clipper_server: ServerThread, clipper_home: Path,
                                                         project: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    file = str(project / "clipper.yaml")
    out = ok(cli("diff", *home, "-f", file))
    assert out.splitlines() == [
        f"{file}: 3 change(s)",
        "+ application calc: doubles, slo_micros 2000000, default_output '-1', policy default",
        f"+ model twice:1: deploy module {project / 'double.py'}:predict with python_closure, 1 replica(s)",
        "  model twice:1: 1 replica(s) ready",
        "+ link twice -> calc"]
    out = ok(cli("apply", *home, "-f", file))
    assert out.splitlines()[-1] == f"{file}: applied 3 change(s)"
    status, answer = clipper_server.predict("calc", {"input": [1.0, 2.0]})
    assert status == 200 and answer["output"] == 6.0 and not answer["default"]
    (model,) = connection(clipper_home).get_all_models(verbose=True)
    assert (model["batch_size"], model["batch_wait_timeout_micros"], model["num_replicas"]) == (4, 200, 1)
    assert model["labels"][0] == "team-a" and model["labels"][1].startswith("source-sha256=")

    no_changes = f"{file}: no changes (1 application(s), 1 model version(s), 1 link(s) as declared)\n"
    assert ok(cli("apply", *home, "-f", file)) == no_changes
    assert ok(cli("diff", *home, "-f", file, "--exit-code")) == no_changes

    edit(project / "clipper.yaml", "replicas: 1", "replicas: 2")
    code, out, err = cli("diff", *home, "-f", file, "--exit-code")
    assert (code, err) == (2, "") and out.splitlines() == [
        f"{file}: 1 change(s)", "~ model twice:1: replicas 1 -> 2", "  model twice:1: 2 replica(s) ready"]
    applied = json.loads(ok(cli("apply", *home, "-f", file, "--output", "json")))
    assert [a["action"] for a in applied["applied"]] == ["scale", "wait"]
    assert clipper_server.connected_replicas("twice", "1") == 2

    (project / "double.py").write_text(TRIPLE)  # the model changed, its version did not
    edit(project / "clipper.yaml", "batch_size: 4", "batch_size: 8")
    code, out, err = cli("apply", *home, "-f", file)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"clipper: error: {file}:13: models[0].batch_size: fixed once registered (running: 4, file: 8); a change "
        "needs a new version",
        f"clipper: error: {file}:11: models[0].module: the model's source changed since twice:1 was registered "
        f"(sha256 {model['labels'][1][14:26]}... running, " + err.split("running, ")[1].split("...")[0]
        + "... in the file); a changed model needs a new version"]
    assert clipper_server.predict("calc", {"input": [1.0, 2.0]})[1]["output"] == 6.0  # nothing was changed
    code, out, err = cli("apply", *home, "-f", file, "--output", "json")
    assert code == 1 and len(err.splitlines()) == 2
    assert json.loads(out) == {"applied": [], "errors": [line.removeprefix("clipper: error: ")
                                                         for line in err.splitlines()], "notes": []}


def test_a_new_version_and_prune(clipper_server: ServerThread, clipper_home: Path, project: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    file = str(project / "clipper.yaml")
    ok(cli("apply", *home, "-f", file))
    add_version(project / "clipper.yaml", 2, "triple.py:predict")
    out = ok(cli("apply", *home, "-f", file)).splitlines()
    assert out == [f"+ model twice:2: deploy module {project / 'triple.py'}:predict with python_closure, 1 "
                   "replica(s), without traffic",
                   "  model twice:2: 1 replica(s) ready", "~ model twice: current version 1 -> 2",
                   f"{file}: applied 2 change(s)"]
    assert clipper_server.predict("calc", {"input": [1.0, 2.0]})[1]["output"] == 9.0

    edit(project / "clipper.yaml", "  - name: twice\n    version: 1\n", "  - name: gone\n    version: 1\n")
    text = (project / "clipper.yaml").read_text()  # the whole entry of version 1 out, its lines and all
    start, end = text.index("  - name: gone"), text.index("  - name: twice")
    (project / "clipper.yaml").write_text(text[:start] + text[end:])
    assert "no changes" in ok(cli("apply", *home, "-f", file))  # kept: the file no longer declares it
    assert ok(cli("apply", *home, "-f", file, "--prune")).splitlines() == [
        "- model twice:1: not in the file", f"{file}: applied 1 change(s)"]
    assert [m["model_version"] for m in connection(clipper_home).get_all_models(verbose=True)] == ["2"]

    (project / "empty.yaml").write_text("apiVersion: clipper/v1\n")
    assert ok(cli("diff", *home, "-f", str(project / "empty.yaml"), "--prune")).splitlines() == [
        f"{project / 'empty.yaml'}: 3 change(s)", "- link twice -> calc: not in the file",
        "- model twice:2: not in the file", "- application calc: not in the file"]


def test_a_rollout_is_started_once(clipper_server: ServerThread, clipper_home: Path, project: Path,
                                   cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    file = str(project / "clipper.yaml")
    add_version(project / "clipper.yaml", 2, "triple.py:predict",
                "rollout: {mode: shadow, steps: [100], step_seconds: 3600}")
    out = ok(cli("apply", *home, "-f", file)).splitlines()
    assert out[-2:] == ["+ rollout twice:2: shadow against 1, 100", f"{file}: applied 5 change(s)"]
    rollout = connection(clipper_home).get_rollout("twice")
    assert (rollout["candidate"], rollout["baseline"], rollout["state"]) == ("2", "1", "running")
    again = ok(cli("apply", *home, "-f", file)).splitlines()
    assert again[-1].endswith("no changes (1 application(s), 2 model version(s), 1 link(s) as declared)")
    assert again[0].startswith("note: model twice:2: its rollout has started (running: ")
    assert clipper_server.predict("calc", {"input": [1.0, 2.0]})[1]["output"] == 6.0  # the shadow answers no one


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[ServerThread, Path]]:
    home = tmp_path / "fresh-home"
    with ServerThread(home) as server:
        yield server, home


def test_an_export_applied_to_a_fresh_clipper_reproduces_it(clipper_server: ServerThread, clipper_home: Path,
                                                            project: Path, fresh: tuple[ServerThread, Path],
                                                            cli: Run, tmp_path: Path) -> None:
    home = ["--home", str(clipper_home)]
    file = str(project / "clipper.yaml")
    add_version(project / "clipper.yaml", 2, "triple.py:predict", "current: false", "replicas: 0",
                "autoscaling: {min_replicas: 0, max_replicas: 2, downscale_delay_s: 600}")
    ok(cli("apply", *home, "-f", file))
    exported = tmp_path / "export.yaml"
    assert ok(cli("export", *home, str(exported))) == f"wrote {exported}: 1 application(s), 2 model version(s)\n"
    text = exported.read_text()
    assert text.startswith(f"# clipper export of http://{clipper_server.server.admin_addr}; apply with: ")
    assert json.loads(ok(cli("export", *home, "--json")))["models"][0]["model_dir"] == str(
        clipper_home / "models" / "twice" / "1")
    assert "no changes" in ok(cli("diff", *home, "-f", str(exported)))  # the export is what runs

    server, fresh_home = fresh
    out = ok(cli("apply", "--home", str(fresh_home), "-f", str(exported)))
    assert out.splitlines()[-1] == f"{exported}: applied 4 change(s)"
    assert state(fresh_home) == state(clipper_home)
    assert server.predict("calc", {"input": [1.0, 2.0]})[1]["output"] == 6.0
    assert (fresh_home / "models" / "twice" / "1" / "clipper_model.json").is_file()  # its own copy
    # the digests came along: the original file finds the fresh clipper as it declares
    assert "no changes" in ok(cli("diff", "--home", str(fresh_home), "-f", file))


def test_schema_is_published_and_checks_itself(cli: Run) -> None:
    printed = json.loads(ok(cli("schema")))
    assert printed == SCHEMA
    jsonschema.Draft202012Validator.check_schema(printed)
    assert json.loads((REPO / "docs" / "clipper.schema.json").read_text()) == printed, (
        "docs/clipper.schema.json is stale: clipper schema > docs/clipper.schema.json")


def test_errors_of_the_file_come_before_any_connection(clipper_home: Path, tmp_path: Path, cli: Run) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications:\n  - name: a\n    input_type: doubles\n    slo: 5\n")
    code, out, err = cli("diff", "--home", str(clipper_home), "-f", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"clipper: error: {bad}:4: applications[0].slo: unknown field; expected one of: name, ")


def test_recreate_registers_a_changed_application_again(clipper_server: ServerThread, clipper_home: Path,
                                                        project: Path, cli: Run) -> None:
    home = ["--home", str(clipper_home)]
    file = str(project / "clipper.yaml")
    ok(cli("apply", *home, "-f", file))
    edit(project / "clipper.yaml", "slo_micros: 2000000", "slo_micros: 3000000")
    code, out, err = cli("apply", *home, "-f", file)
    assert out == ""
    assert code == 1 and err.startswith(f"clipper: error: {file}:5: applications[0].slo_micros: fixed once "
                                        "registered (running: 2000000, file: 3000000); give the application ")
    assert ok(cli("apply", *home, "-f", file, "--recreate")).splitlines() == [
        "~ application calc: delete and register again: slo_micros 2000000 -> 3000000", "+ link twice -> calc",
        f"{file}: applied 2 change(s)"]
    (app,) = connection(clipper_home).get_all_apps(verbose=True)
    assert (app["latency_slo_micros"], app["linked_models"]) == (3000000, ["twice"])
    assert clipper_server.predict("calc", {"input": [1.0, 2.0]})[1]["output"] == 6.0
