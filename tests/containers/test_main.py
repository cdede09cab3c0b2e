"""`python -m clipper_container`'s command line as a real subprocess: environment fallbacks, options over the
manifest, exit statuses, and the runtime's own imports (the models, the fake frontend and the fixtures are fakes.py's
and conftest.py's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from clipper_container.protocol import MsgType

from tests.containers.fakes import FakeFrontend, log_text, sum_model

# -- configuration ----------------------------------------------------------------------------------------------

def test_environment_fallbacks(frontend: FakeFrontend, model_dir: Callable[..., Path],
                               container: Callable[..., subprocess.Popen[bytes]]) -> None:
    env = {"CLIPPER_MODEL_PATH": str(model_dir(sum_model)), "CLIPPER_IP": "127.0.0.1",
           "CLIPPER_PORT": str(frontend.port), "CLIPPER_MODEL_NAME": "env-model", "CLIPPER_MODEL_VERSION": "7",
           "CLIPPER_INPUT_TYPE": "floats"}
    container(None, None, env=env)
    _, hello = frontend.expect(MsgType.HELLO, timeout=15.0)
    assert (hello["model"], hello["version"], hello["input_type"]) == ("env-model", "7", "floats")


def test_options_override_the_manifest(frontend: FakeFrontend, model_dir: Callable[..., Path],
                                       container: Callable[..., subprocess.Popen[bytes]]) -> None:
    directory = model_dir(sum_model, max_batch_size=16)
    container(directory, frontend.port, "--name", "other", "--version", "3")
    _, hello = frontend.expect(MsgType.HELLO, timeout=15.0)
    assert (hello["model"], hello["version"], hello["max_batch_size"]) == ("other", "3", 16)


def test_incompatible_model_exits_4(model_dir: Callable[..., Path], tmp_path: Path,
                                    container: Callable[..., subprocess.Popen[bytes]]) -> None:
    directory = model_dir(sum_model)
    manifest = json.loads((directory / "clipper_model.json").read_text())
    manifest["requirements"]["cloudpickle"] = "1.0.0"
    (directory / "clipper_model.json").write_text(json.dumps(manifest))
    proc = container(directory, 1)
    assert proc.wait(timeout=15) == 4
    text = log_text(tmp_path)
    assert "cloudpickle 1.0.0" in text and "install cloudpickle==1.0.0" in text


def test_runtime_imports_only_its_own_dependencies() -> None:
    code = ("import sys, clipper_container.__main__, clipper_container.loaders.python_closure; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'clipper_core', 'aiohttp', 'pluggy'}); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_help_and_missing_model_dir() -> None:
    cmd = [sys.executable, "-m", "clipper_container"]
    assert subprocess.run([*cmd, "--help"], capture_output=True, timeout=30).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "CLIPPER_MODEL_PATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2 and "CLIPPER_MODEL_PATH" in done.stderr


def test_the_loaded_model_is_frozen_out_of_the_collectors_reach() -> None:
    import gc

    from clipper_container.__main__ import freeze_heap

    kept = [[i] for i in range(1000)]
    try:
        freeze_heap()
        assert gc.get_freeze_count() >= len(kept)
        assert not any(any(obj is k for k in kept[:3]) for obj in gc.get_objects())  # full collections skip them
    finally:
        gc.unfreeze()
