"""clipper_model.json: reading, writing, the compatibility check and its messages, and load_model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from clipper_container import manifest as manifest_mod
from clipper_container.loaders import python_closure
from clipper_container.loading import Predictor, load_model
from clipper_container.manifest import (
    MANIFEST_NAME,
    IncompatibleModel,
    ManifestError,
    check_compatible,
    environment,
    read_manifest,
    write_manifest,
)

PY = "{}.{}".format(*sys.version_info[:2])
CLOUDPICKLE = cloudpickle.__version__


def base(**changes: Any) -> dict[str, Any]:
    manifest = {"deployer": "python_closure", "loader": python_closure.LOADER, "input_type": "doubles",
                "name": "m", "version": "1", **environment()}
    manifest.update(changes)
    return manifest


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """Pretend the container runs Python 3.12.1 with cloudpickle 3.0.0 and numpy 1.26.4."""
    installed: dict[str, str | None] = {"cloudpickle": "3.0.0", "numpy": "1.26.4", "lib0": "0.9.1"}
    monkeypatch.setattr(manifest_mod, "_running_python", lambda: "3.12.1")
    monkeypatch.setattr(manifest_mod, "_installed_version", lambda dist: installed.get(dist))
    return installed


# -- read / write -------------------------------------------------------------------------------------------------

def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    written = base(free_key={"anything": [1, 2]})
    path = write_manifest(tmp_path / "model", written)
    assert path == tmp_path / "model" / MANIFEST_NAME
    assert read_manifest(tmp_path / "model") == written
    assert not [p for p in path.parent.iterdir() if p.name != MANIFEST_NAME]  # no temporary file left


def test_environment_records_python_and_installed_versions() -> None:
    env = environment(("cloudpickle", "numpy", "surely-not-installed-dist"))
    assert env["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert env["requirements"] == {"cloudpickle": CLOUDPICKLE, "numpy": np.__version__}


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"clipper_model\.json not found"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object, not list"),
    (json.dumps({"input_type": "doubles"}), "lacks 'loader'"),
    (json.dumps({"loader": "a.b:c"}), "lacks 'input_type'"),
    (json.dumps({"loader": "no_function", "input_type": "doubles"}), "'package.module:function'"),
    (json.dumps({"loader": "a:b", "input_type": "doubles", "requirements": ["cloudpickle"]}), "'requirements'"),
    (json.dumps({"loader": "a:b", "input_type": "doubles", "python": 3.11}), "'python'"),
])
def test_malformed_manifest(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path)


def test_write_refuses_a_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="lacks 'loader'"):
        write_manifest(tmp_path, {"input_type": "doubles"})


# -- compatibility ------------------------------------------------------------------------------------------------

def test_the_running_environment_is_compatible() -> None:
    check_compatible(base())
    check_compatible({"loader": "a:b", "input_type": "doubles"})  # nothing recorded: nothing to check


def test_cloudpickle_major_and_python_minor_mismatch_message(fake_env: dict[str, str | None]) -> None:
    with pytest.raises(IncompatibleModel) as info:
        check_compatible(base(python="3.11.7", requirements={"cloudpickle": "2.1.0"}))
    assert str(info.value) == (
        "model 'm' was saved with cloudpickle 2.1.0 under Python 3.11; this container has cloudpickle 3.0.0 "
        "under Python 3.12: redeploy from a matching environment or install cloudpickle==2.1.0 and use "
        "Python 3.11 in the container")


def test_requirement_mismatch_only(fake_env: dict[str, str | None]) -> None:
    with pytest.raises(IncompatibleModel) as info:
        check_compatible(base(python="3.12.0", requirements={"cloudpickle": "2.1.0", "numpy": "1.20.0"}))
    assert str(info.value) == (
        "model 'm' was saved with cloudpickle 2.1.0 under Python 3.12; this container has cloudpickle 3.0.0 "
        "under Python 3.12: redeploy from a matching environment or install cloudpickle==2.1.0 in the container")


def test_python_mismatch_only(fake_env: dict[str, str | None]) -> None:
    with pytest.raises(IncompatibleModel) as info:
        check_compatible(base(name="sum-model", python="3.10.4", requirements={"cloudpickle": "3.1.0"}))
    assert str(info.value) == (
        "model 'sum-model' was saved under Python 3.10; this container runs Python 3.12: redeploy from a "
        "matching environment or use Python 3.10 in the container")


def test_missing_requirement(fake_env: dict[str, str | None]) -> None:
    with pytest.raises(IncompatibleModel, match=r"saved with torch 2\.2\.0 .* has no torch .* install torch==2\.2\.0"):
        check_compatible(base(python="3.12.1", requirements={"torch": "2.2.0"}))


def test_minor_and_patch_differences_are_compatible(fake_env: dict[str, str | None]) -> None:
    check_compatible(base(python="3.12.9", requirements={"cloudpickle": "3.5.2", "numpy": "1.24.0"}))


def test_zero_major_versions_compare_minor(fake_env: dict[str, str | None]) -> None:
    check_compatible(base(python="3.12.1", requirements={"lib0": "0.9.7"}))
    with pytest.raises(IncompatibleModel, match=r"lib0 0\.8\.0 .* has lib0 0\.9\.1"):
        check_compatible(base(python="3.12.1", requirements={"lib0": "0.8.0"}))


# -- load_model ---------------------------------------------------------------------------------------------------

def test_load_model_python_closure(tmp_path: Path) -> None:
    offset = 10.0
    python_closure.save(tmp_path, lambda xs: [float(sum(x)) + offset for x in xs], input_type="doubles", name="m")
    predictor = load_model(tmp_path)
    assert isinstance(predictor, Predictor)
    assert list(predictor.predict(np.array([[1.0, 2.0], [3.0, 4.0]]))) == [13.0, 17.0]
    saved = read_manifest(tmp_path)
    assert saved["loader"] == python_closure.LOADER and saved["requirements"] == {"cloudpickle": CLOUDPICKLE}


def test_load_model_checks_compatibility_before_unpickling(tmp_path: Path) -> None:
    python_closure.save(tmp_path, len, input_type="doubles", name="m")
    (tmp_path / python_closure.FUNC_FILE).write_bytes(b"not a pickle")  # never read
    manifest = read_manifest(tmp_path)
    manifest["requirements"]["cloudpickle"] = "1.6.0"
    write_manifest(tmp_path, manifest)
    with pytest.raises(IncompatibleModel, match=rf"cloudpickle 1\.6\.0 .* has cloudpickle {CLOUDPICKLE}"):
        load_model(tmp_path)


@pytest.mark.parametrize("loader, message", [
    ("no_such_module_xyz:load", "cannot import 'no_such_module_xyz'"),
    ("clipper_container.manifest:no_such_function", "has no function 'no_such_function'"),
    ("clipper_container.manifest:environment", "has no predict"),
])
def test_load_model_bad_loader(tmp_path: Path, loader: str, message: str) -> None:
    write_manifest(tmp_path, {"loader": loader, "input_type": "doubles"})
    with pytest.raises(ManifestError, match=message):
        load_model(tmp_path)
