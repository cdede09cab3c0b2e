"""The model directory's manifest, ``clipper_model.json``, and the container-side compatibility check.

A deployer writes the manifest next to the model's artefacts::

    {"deployer": "python_closure", "loader": "clipper_container.loaders.python_closure:load",
     "input_type": "doubles", "name": "sum-model", "version": "1",
     "python": "3.11.7", "requirements": {"cloudpickle": "3.1.3", "numpy": "2.4.6"}, ...free keys}

Pickled functions are not portable across Python minor versions nor across major versions of the pickling
library (Clipper's most frequent support issue), so :func:`check_compatible` refuses, with a message naming
both environments and the fix, before anything is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_NAME",
    "IncompatibleModel",
    "ManifestError",
    "check_compatible",
    "environment",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "clipper_model.json"
_REQUIRED = ("loader", "input_type")
_LOADER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?")


class ManifestError(ValueError):
    """The model directory has no readable, well-formed ``clipper_model.json``."""


class IncompatibleModel(RuntimeError):
    """The model was saved in an environment this container cannot load it in."""


def read_manifest(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``model_dir/clipper_model.json``; raise :class:`ManifestError` if unusable."""
    path = Path(model_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path} not found: is {model_dir} a model directory written by a deployer?") from None
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} must hold a JSON object, not {type(manifest).__name__}")
    _validate(manifest, str(path))
    return manifest


def write_manifest(model_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Validate and write ``manifest`` to ``model_dir/clipper_model.json`` (atomically); return its path."""
    data = dict(manifest)
    path = Path(model_dir) / MANIFEST_NAME
    _validate(data, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _validate(manifest: Mapping[str, Any], where: str) -> None:
    missing = [key for key in _REQUIRED if not manifest.get(key)]
    if missing:
        raise ManifestError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    loader = manifest["loader"]
    if not isinstance(loader, str) or not _LOADER.match(loader):
        raise ManifestError(f"{where}: 'loader' must be 'package.module:function', got {loader!r}")
    if not isinstance(manifest["input_type"], str):
        raise ManifestError(f"{where}: 'input_type' must be a string, got {manifest['input_type']!r}")
    requirements = manifest.get("requirements", {})
    if not isinstance(requirements, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in requirements.items()
    ):
        raise ManifestError(f"{where}: 'requirements' must map distribution names to version strings")
    python = manifest.get("python")
    if python is not None and not (isinstance(python, str) and _VERSION.match(python)):
        raise ManifestError(f"{where}: 'python' must be a version like '3.11.7', got {python!r}")


def environment(distributions: Iterable[str] = ("cloudpickle",)) -> dict[str, Any]:
    """The ``python`` and ``requirements`` entries a deployer records for the running environment.

    Distributions that are not installed are left out.
    """
    requirements: dict[str, str] = {}
    for dist in distributions:
        version = _installed_version(dist)
        if version is not None:
            requirements[dist] = version
    return {"python": _running_python(), "requirements": requirements}


def _running_python() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _series(version: str, *, minor: bool) -> tuple[int, ...] | None:
    """The part of a version that must match: major, or major.minor (always for 0.x, where minors break)."""
    m = _VERSION.match(version)
    if m is None:
        return None
    major, minor_part = int(m.group(1)), int(m.group(2) or 0)
    return (major, minor_part) if minor or major == 0 else (major,)


def _short_python(version: str) -> str:
    series = _series(version, minor=True)
    return ".".join(map(str, series)) if series else version


def check_compatible(manifest: Mapping[str, Any]) -> None:
    """Raise :class:`IncompatibleModel` unless the running environment can load a model with this manifest.

    Compares the recorded Python major.minor and, for each recorded requirement, the installed major version
    (major.minor for 0.x releases) with the running ones. Missing ``python``/``requirements`` keys are not
    checked. The message names both environments and what to do about it.
    """
    name = manifest.get("name") or "<unnamed>"
    running = _running_python()
    recorded = manifest.get("python")
    python_ok = recorded is None or _series(str(recorded), minor=True) == _series(running, minor=True)

    mismatched: list[tuple[str, str, str | None]] = []  # (dist, recorded, installed or None)
    for dist, wanted in (manifest.get("requirements") or {}).items():
        have = _installed_version(dist)
        want_series = _series(wanted, minor=False)
        if have is None or (want_series is not None and want_series != _series(have, minor=False)):
            mismatched.append((dist, wanted, have))
    if python_ok and not mismatched:
        return

    saved_python = _short_python(str(recorded)) if recorded is not None else None
    saved_parts = [f"{dist} {wanted}" for dist, wanted, _ in mismatched]
    have_parts = [f"{dist} {have}" if have else f"no {dist}" for dist, _, have in mismatched]
    saved = f"model {name!r} was saved"
    if saved_parts:
        saved += " with " + ", ".join(saved_parts)
    if saved_python is not None:
        saved += f" under Python {saved_python}"
    here = "this container has " + ", ".join(have_parts) if have_parts else "this container runs"
    here += f" under Python {_short_python(running)}" if have_parts else f" Python {_short_python(running)}"
    fixes = [f"install {dist}=={wanted}" for dist, wanted, _ in mismatched]
    if not python_ok:
        fixes.append(f"use Python {saved_python}")
    raise IncompatibleModel(
        f"{saved}; {here}: redeploy from a matching environment or {' and '.join(fixes)} in the container"
    )
