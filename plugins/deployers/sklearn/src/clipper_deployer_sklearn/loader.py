"""Container side: load a scikit-learn model directory and predict whole batches with one call.

Imported by ``python -m clipper_container`` through the manifest's ``loader``; needs numpy, clipper_container
and (inside :func:`load`) scikit-learn with skops or joblib, never clipper_core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from clipper_container.frameworks import (
    BatchPredictor,
    check_version,
    load_func,
    load_sample,
    replica_threads,
    rows,
    writable,
)
from clipper_container.manifest import read_manifest

__all__ = ["DEPLOYER", "LOADER", "SklearnPredictor", "load"]

log = logging.getLogger("clipper_container")

DEPLOYER = "sklearn"
LOADER = "clipper_deployer_sklearn.loader:load"
FORMATS = {"skops": "model.skops", "joblib": "model.joblib"}


class SklearnPredictor(BatchPredictor):
    """``model.<method>(batch)`` on the whole batch (or ``func(model, batch)``), one output per input: a number,
    a string (class label) or a list (``predict_proba``). ``threads``: the BLAS/OpenMP limit, applied again in
    each thread the first time it predicts (OpenMP's thread count is per thread)."""

    def __init__(self, model: Any, method: str, n_features: int | None = None,
                 func: Callable[[Any, Any], Any] | None = None, *, threads: int | None = None) -> None:
        super().__init__(model, n_features, func)
        self.method = method
        self._call = getattr(model, method)
        self.threads = threads
        self._local = threading.local()

    def predict(self, batch: Any) -> list[Any]:
        """One output per input."""
        if self.threads is not None and not getattr(self._local, "limited", False):
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=self.threads)  # in this thread, for good (OpenMP's limit is per thread)
            self._local.limited = True
        return super().predict(batch)

    def _run(self, batch: Any) -> list[Any]:
        # numeric batches arrive as read-only views of the received frame; estimators may write in place, into
        # memory the container owns and no one reads after the model: a writable view of it, no copy
        return rows(self._call(writable(batch) if isinstance(batch, np.ndarray) else batch))


def _limit_threads(model: Any, threads: int) -> None:
    """BLAS/OpenMP pools to ``threads``; ``n_jobs=-1`` (all of the host's CPUs) to ``threads`` too."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # stays in force: the returned context is never exited
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return
    negative = {key: threads for key, value in get_params(deep=True).items()
                if key.split("__")[-1] == "n_jobs" and isinstance(value, int) and value < 0}
    if negative:
        model.set_params(**negative)


def _read_model(path: Path, manifest: dict[str, Any]) -> Any:
    name = str(manifest.get("name") or "<unnamed>")
    fmt = manifest.get("format")
    if fmt == "skops":
        import skops
        import skops.io

        check_version(name, "skops", manifest.get("format_version"), skops.__version__, "not-older")
        # the types the deploying user's own model held, recorded at save time: anything else is refused
        return skops.io.load(path, trusted=list(manifest.get("skops_trusted") or []))
    if fmt == "joblib":
        import joblib

        return joblib.load(path)  # a pickle: see README ("Formats and their risks")
    raise ValueError(f"unknown scikit-learn model format {fmt!r} (known: {sorted(FORMATS)})")


def load(model_dir: str) -> SklearnPredictor:
    """Load ``model_dir`` (written by :class:`clipper_deployer_sklearn.SklearnDeployer`), size its thread
    pools to the replica and warm it up with one call."""
    import sklearn

    directory = Path(model_dir)
    manifest = read_manifest(directory)
    name = str(manifest.get("name") or "<unnamed>")
    check_version(name, "scikit-learn", manifest.get("framework_version"), sklearn.__version__, "same-minor")
    model = _read_model(directory / str(manifest["model_file"]), manifest)
    func = load_func(directory, manifest)
    threads = replica_threads()
    _limit_threads(model, threads)
    predictor = SklearnPredictor(model, str(manifest.get("method") or "predict"), manifest.get("n_features"), func,
                                 threads=threads)
    _warm_up(predictor, directory, manifest)
    log.info("loaded scikit-learn %s %s (%s) with %d thread(s)", sklearn.__version__, type(model).__name__,
             manifest.get("format"), threads)
    return predictor


def _warm_up(predictor: SklearnPredictor, directory: Path, manifest: dict[str, Any]) -> None:
    """The first call pays for lazy imports and allocations: pay it now, not on the first query. A sample
    saved by the user must work; zeros made up here may legitimately fail (a log transform), so only warn."""
    sample = load_sample(directory, manifest)
    if sample is not None:
        outputs = predictor.predict(sample)
        failed = [o for o in outputs if isinstance(o, BaseException)]
        if failed:
            raise RuntimeError(f"the model failed on its own sample input: {failed[0]!r}")
        return
    if predictor.n_features is None or predictor.func is not None:
        return
    try:
        predictor.predict(np.zeros((1, predictor.n_features)))
    except Exception as exc:
        log.warning("warm-up on zeros failed (%s); the first query will be slower", exc)
