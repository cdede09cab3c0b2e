"""Helpers shared by clipper's framework deployers (clipper-deployer-sklearn, -pytorch, -tensorflow, -xgboost),
container side and admin side. It lives here, in the container package, because every model image has it; it
needs only numpy and cloudpickle, never clipper_core or a framework.

* :func:`replica_threads`: how many threads a replica's framework should use;
* :func:`check_version`: refuse, with :class:`~clipper_container.manifest.IncompatibleModel`, a model saved
  with a framework version this container cannot read;
* :func:`by_length`: one framework call per batch (per input length, when lengths differ);
* :func:`rows`: a framework's batch output as one Python value per input;
* :func:`writable`: a received batch as an array a framework may write to, without a copy where possible;
* :func:`save_sample` / :func:`load_sample`: the sample batch used to warm a replica up;
* :func:`finish_manifest` (admin side): what every framework deployer records, then ``clipper_model.json``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cloudpickle
import numpy as np

from clipper_container.manifest import IncompatibleModel, environment, write_manifest

__all__ = ["FUNC_FILE", "SAMPLE_FILE", "THREADS_ENV", "BatchPredictor", "by_length", "check_version",
           "finish_manifest", "load_func", "load_sample", "replica_threads", "require_numeric", "rows",
           "save_sample", "version_key", "writable"]

THREADS_ENV = "CLIPPER_NUM_THREADS"
SAMPLE_FILE = "sample_input.npy"
FUNC_FILE = "func.pkl"
Rule = Literal["same-minor", "not-older", "same-major-not-older"]


# -- threads ------------------------------------------------------------------------------------------
def replica_threads() -> int:
    """Threads for one replica: ``$CLIPPER_NUM_THREADS`` if set, else the CPUs this process may run on,
    capped by its cgroup CPU quota (``docker run --cpus``, a Kubernetes CPU limit)."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {text!r}")
        return int(text)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: quota -1 means unlimited
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


# -- versions -----------------------------------------------------------------------------------------
_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_RULES: dict[str, str] = {
    "same-minor": "the same major.minor release",
    "not-older": "the same release or a newer one",
    "same-major-not-older": "the same major release, at least as new",
}


def version_key(version: str) -> tuple[int, int, int]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; raise ValueError for something that is not a version."""
    m = _VERSION.match(version)
    if m is None:
        raise ValueError(f"not a version: {version!r}")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


def _compatible(saved: tuple[int, int, int], have: tuple[int, int, int], rule: Rule) -> bool:
    if rule == "same-minor":
        return saved[:2] == have[:2]
    if rule == "not-older":
        return have[:2] >= saved[:2]
    return have[0] == saved[0] and have[:2] >= saved[:2]


def check_version(model: str, framework: str, saved: str | None, installed: str, rule: Rule) -> None:
    """Raise :class:`IncompatibleModel` unless ``installed`` may read what ``framework`` ``saved`` wrote.

    ``rule`` says what may read it: ``"same-minor"`` (pickles of library objects), ``"not-older"``
    (formats readable by any later release), ``"same-major-not-older"``. A model without a recorded
    version is not checked.
    """
    if saved is None:
        return
    if _compatible(version_key(saved), version_key(installed), rule):
        return
    want = {"same-minor": "{0}.{1}.*", "not-older": ">={0}.{1}", "same-major-not-older": ">={0}.{1},<{2}"}[rule]
    major, minor, _ = version_key(saved)
    pin = want.format(major, minor, major + 1)
    requirement = f"{framework}=={pin}" if rule == "same-minor" else f"{framework}{pin}"
    raise IncompatibleModel(
        f"model {model!r} was saved with {framework} {saved}; this container has {framework} {installed}, and "
        f"{framework} models in this format load only in {_RULES[rule]}: install {requirement} in the container "
        f"or redeploy the model from an environment with {framework} {installed}")


# -- batches ------------------------------------------------------------------------------------------
def by_length(batch: Any, run: Callable[[Any], Sequence[Any]], width: int | None = None) -> list[Any]:
    """Run ``run`` over ``batch`` with as few framework calls as possible and return one output per input.

    A 2-D array (inputs of equal length, the usual case) is one call; inputs of different lengths are grouped
    by length, one call per group, so that a malformed query cannot fail the others batched with it. When the
    model's input ``width`` is known, inputs of another length fail alone with a message saying so. Strings
    and bytes batches are passed whole. ``run`` gets a read-only 2-D array (or the list) and returns a
    sequence of outputs, one per row.
    """
    if isinstance(batch, np.ndarray) and (width is None or batch.shape[1] == width):
        return _checked(run(batch), len(batch))
    if not isinstance(batch, np.ndarray) and batch and not isinstance(batch[0], np.ndarray):
        return _checked(run(batch), len(batch))
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(batch):
        groups.setdefault(len(item), []).append(i)
    outputs: list[Any] = [None] * len(batch)
    for length, indices in groups.items():
        if width is not None and length != width:
            error = ValueError(f"this model takes inputs of {width} values, got {length}")
            for i in indices:
                outputs[i] = error
            continue
        try:
            results = _checked(run(np.stack([batch[i] for i in indices])), len(indices))
        except Exception as exc:  # this group only: the other lengths still get their answers
            results = [exc] * len(indices)
        for i, result in zip(indices, results, strict=True):
            outputs[i] = result
    return outputs


class BatchPredictor:
    """What a framework loader returns: ``predict(batch)`` calls ``func(model, batch)`` when the model was deployed
    with one, else :meth:`_run` once per group of equal-length inputs (:func:`by_length`, checked against
    ``n_features`` when known). Subclasses implement :meth:`_run`: one framework call on a 2-D batch."""

    def __init__(self, model: Any, n_features: int | None = None,
                 func: Callable[[Any, Any], Any] | None = None) -> None:
        self.model = model
        self.n_features = n_features
        self.func = func

    def _run(self, batch: Any) -> list[Any]:
        raise NotImplementedError

    def predict(self, batch: Any) -> list[Any]:
        """One output per input."""
        if self.func is not None:
            return list(self.func(self.model, batch))
        return by_length(batch, self._run, self.n_features)


def _checked(outputs: Sequence[Any], n: int) -> list[Any]:
    result = list(outputs)
    if len(result) != n:
        raise ValueError(f"the model returned {len(result)} outputs for a batch of {n} inputs")
    return result


def rows(output: Any) -> list[Any]:
    """A batch output (an array with the batch on axis 0) as a list of Python numbers, strings or lists."""
    if isinstance(output, np.ndarray):
        return list(output.tolist())
    if hasattr(output, "numpy"):  # a framework tensor
        return list(np.asarray(output.numpy()).tolist())
    return list(output)


def writable(array: np.ndarray) -> np.ndarray:
    """``array`` as an array frameworks may write to (scikit-learn estimators may, torch refuses read-only
    arrays): itself when writable; a writable view when it is a read-only view of writable memory (a batch
    :func:`~clipper_container.protocol.decode_inputs` took from a received frame: numpy marks it read-only,
    but the container owns that memory and nothing reads it after the model); else a copy."""
    if array.flags.writeable:
        return array
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    if isinstance(base.base, memoryview) and not base.base.readonly and array.flags.c_contiguous:
        offset = array.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return np.frombuffer(base.base, dtype=array.dtype, count=array.size, offset=offset).reshape(array.shape)
    return np.array(array)


# -- warm-up samples ----------------------------------------------------------------------------------
def save_sample(model_dir: Path, sample: Any, input_type: str) -> dict[str, Any]:
    """Store a sample batch for the container's warm-up; return the manifest keys that point to it.

    Numeric samples go to ``sample_input.npy`` (read back with ``allow_pickle=False``), strings into the
    manifest. A single input (1-D) becomes a batch of one.
    """
    if input_type.lower() in ("strings", "string", "str", "strs", "s"):
        items = [sample] if isinstance(sample, str) else [str(s) for s in sample]
        return {"sample_input": items}
    if input_type.lower() in ("bytes", "byte", "b"):
        return {}
    array = np.asarray(sample)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    np.save(model_dir / SAMPLE_FILE, np.ascontiguousarray(array), allow_pickle=False)
    return {"sample_file": SAMPLE_FILE}


def load_sample(model_dir: Path, manifest: dict[str, Any]) -> Any:
    """The sample batch saved by :func:`save_sample`, or None."""
    if manifest.get("sample_file"):
        return np.load(model_dir / str(manifest["sample_file"]), allow_pickle=False)
    if manifest.get("sample_input"):
        return list(manifest["sample_input"])
    return None


def load_func(directory: Path, manifest: Mapping[str, Any]) -> Any:
    """The user's ``func(model, inputs)`` if the model was deployed with one, else None."""
    if not manifest.get("func_file"):
        return None
    with (directory / str(manifest["func_file"])).open("rb") as f:
        return cloudpickle.load(f)


# -- admin side ---------------------------------------------------------------------------------------
_TEXT_TYPES = frozenset({"strings", "string", "str", "strs", "s", "bytes", "byte", "b"})


def require_numeric(input_type: str, func: Any) -> None:
    """Without a ``func``, a model is fed numeric arrays: refuse a strings or bytes app up front."""
    if func is None and input_type.lower() in _TEXT_TYPES:
        raise ValueError(f"input type {input_type!r}: without func only numeric inputs (ints, floats, doubles) "
                         "are fed to the model; pass func(model, inputs) to handle strings or bytes")


def finish_manifest(directory: Path, manifest: dict[str, Any], options: Mapping[str, Any],
                    sample: Any = None) -> dict[str, Any]:
    """Complete a framework deployer's ``manifest`` from its save ``options``, write it and return it.

    ``func`` is cloudpickled to ``func.pkl`` and only then are Python and cloudpickle recorded as requirements
    (a framework's own file format does not depend on them); numpy always is. ``sample`` (default: the
    ``sample_input`` option) is stored for the warm-up; ``name``, ``version`` and ``pkgs_to_install`` are copied.
    """
    func = options.get("func")
    requirements = ["numpy"]
    if func is not None:
        if not callable(func):
            raise TypeError(f"func must be a function func(model, inputs) -> list, got {type(func).__name__}")
        with (directory / FUNC_FILE).open("wb") as f:
            cloudpickle.dump(func, f)
        manifest["func_file"] = FUNC_FILE
        requirements.append("cloudpickle")
    env = environment(requirements)
    manifest["requirements"] = env["requirements"]
    if func is not None:
        manifest["python"] = env["python"]
    sample = options.get("sample_input") if sample is None else sample
    if sample is not None:
        manifest.update(save_sample(directory, sample, str(manifest["input_type"])))
    for key in ("name", "version"):
        if options.get(key) is not None:
            manifest[key] = str(options[key])
    if options.get("pkgs_to_install"):
        manifest["pkgs_to_install"] = list(options["pkgs_to_install"])
    write_manifest(directory, manifest)
    return manifest
