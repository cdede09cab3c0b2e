"""Container side: load an XGBoost model (XGBoost's JSON format) and predict whole batches with one call.

Imported by ``python -m clipper_container`` through the manifest's ``loader``; needs numpy, clipper_container
and (inside :func:`load`) xgboost, never clipper_core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipper_container.frameworks import BatchPredictor, check_version, load_func, load_sample, replica_threads, rows
from clipper_container.manifest import read_manifest

__all__ = ["DEPLOYER", "ESTIMATORS", "LOADER", "MODEL_FILE", "XGBoostPredictor", "load"]

log = logging.getLogger("clipper_container")

DEPLOYER = "xgboost"
LOADER = "clipper_deployer_xgboost.loader:load"
MODEL_FILE = "model.json"
BOOSTER = "Booster"
ESTIMATORS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
"""scikit-learn-API classes rebuilt from the JSON file (the file records their extra attributes)."""


class XGBoostPredictor(BatchPredictor):
    """``booster.inplace_predict(batch)`` or ``estimator.<method>(batch)`` on the whole batch (or
    ``func(model, batch)``), one output per input: a number (regression, class) or a list (probabilities)."""

    def __init__(self, model: Any, method: str, n_features: int | None = None,
                 func: Callable[[Any, Any], Any] | None = None) -> None:
        super().__init__(model, n_features, func)
        self.method = method
        self._call = getattr(model, method)

    def _run(self, batch: Any) -> list[Any]:
        return rows(self._call(batch))  # XGBoost reads the (read-only) array in place, no copy


def load(model_dir: str) -> XGBoostPredictor:
    """Load ``model_dir`` (written by :class:`clipper_deployer_xgboost.XGBoostDeployer`) with as many threads
    as the replica has CPUs, and warm it up with one call."""
    import numpy as np
    import xgboost

    directory = Path(model_dir)
    manifest = read_manifest(directory)
    name = str(manifest.get("name") or "<unnamed>")
    # XGBoost reads JSON models written by any earlier release, not necessarily by a later one
    check_version(name, "xgboost", manifest.get("framework_version"), xgboost.__version__, "not-older")
    threads = replica_threads()
    estimator = str(manifest.get("estimator") or BOOSTER)
    path = str(directory / str(manifest.get("model_file") or MODEL_FILE))
    model: Any
    if estimator == BOOSTER:
        model = xgboost.Booster(model_file=path)
        model.set_param({"nthread": threads})
    elif estimator in ESTIMATORS:
        model = getattr(xgboost, estimator)(n_jobs=threads)
        model.load_model(path)
    else:
        raise ValueError(f"unknown XGBoost estimator {estimator!r} (known: {[BOOSTER, *ESTIMATORS]})")
    func = load_func(directory, manifest)
    method = str(manifest.get("method") or ("inplace_predict" if estimator == BOOSTER else "predict"))
    predictor = XGBoostPredictor(model, method, manifest.get("n_features"), func)
    sample = load_sample(directory, manifest)
    if sample is not None:
        predictor.predict(sample)  # the user's own sample must work: let it raise
    elif predictor.n_features and func is None:
        predictor.predict(np.zeros((1, predictor.n_features), dtype=np.float32))
    log.info("loaded xgboost %s %s with %d thread(s)", xgboost.__version__, estimator, threads)
    return predictor
