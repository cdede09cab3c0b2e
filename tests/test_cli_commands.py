"""The ``clipper`` command against a running server (found through runtime.json in its home)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipper_core.cli import main
from clipper_core.testing import ServerThread, http_json


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_deploy_link_scale_and_read(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(clipper_home)]
    model_file = tmp_path / "my_model.py"
    model_file.write_text("def predict(xs):\n    return [str(sum(x) * 2) for x in xs]\n")
    assert run(capsys, "register", "doubler", *home, "--input-type", "doubles", "--default-output", "-1",
               "--slo-micros", "2000000")[0] == 0
    code, out, _ = run(capsys, "deploy", f"{model_file}:predict", *home, "--name", "twice", "--version", "1",
                       "--input-type", "doubles", "--app", "doubler")
    assert code == 0 and "deployed twice:1" in out and "linked to doubler" in out
    clipper_server.wait_replicas("twice", "1", 1)
    assert http_json(f"{clipper_server.query_url}/doubler/predict", {"input": [1.0, 2.0]})[1]["output"] == 6.0

    code, out, _ = run(capsys, "apps", *home, "--json")
    apps = json.loads(out)
    assert code == 0 and apps[0]["name"] == "doubler" and apps[0]["linked_models"] == ["twice"]
    code, out, _ = run(capsys, "models", *home)
    assert code == 0 and "MODEL_NAME" in out and "twice" in out
    assert run(capsys, "scale", "twice", "2", *home)[0] == 0
    clipper_server.wait_replicas("twice", "1", 2)
    code, out, _ = run(capsys, "status", *home, "--json")
    assert code == 0 and json.loads(out)["replicas"] == 2
    code, out, _ = run(capsys, "logs", str(tmp_path / "logs"), *home)
    assert code == 0 and "twice_1_0.log" in out
    code, out, _ = run(capsys, "plugins", *home, "--json")
    assert code == 0 and {"local", "lru", "default_policy", "python_closure"} <= {p["name"] for p in json.loads(out)}


def test_errors_are_one_line_and_exit_1(clipper_server: ServerThread, clipper_home: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "link", "ghost-app", "ghost-model", "--home", str(clipper_home))
    assert code == 1 and err.startswith("clipper: error:") and "does not exist" in err
    code, _, err = run(capsys, "register", "x", "--home", str(clipper_home), "--input-type", "doubles",
                       "--policy-config", "{not json")
    assert code == 1 and "--policy-config is not JSON" in err


def test_no_running_clipper_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--home", str(tmp_path / "nothing"))
    assert code == 1 and "no running clipper found" in err
