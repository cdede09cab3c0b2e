"""Admin side: save an XGBoost booster or scikit-learn-API model as a model directory and deploy it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from clipper_container.frameworks import finish_manifest, require_numeric

from clipper_core.deployers.target import deploy_target
from clipper_core.interfaces import Deployer
from clipper_deployer_xgboost.loader import BOOSTER, DEPLOYER, ESTIMATORS, LOADER, MODEL_FILE

__all__ = ["XGBoostDeployer", "create_endpoint", "deploy_xgboost_model"]


_ESTIMATOR_TYPES = {"classifier": "XGBClassifier", "regressor": "XGBRegressor", "ranker": "XGBRanker"}
"""The scikit-learn-API class of a saved model, by the ``_estimator_type`` its file records."""


def _read_file(path: Path) -> Any:
    """The model saved at ``path`` (XGBoost's JSON or UBJSON): the scikit-learn-API estimator it was saved from
    (the file records its type), else a Booster."""
    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    try:
        estimator_type = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
    except ValueError:
        estimator_type = None
    if estimator_type not in _ESTIMATOR_TYPES:
        return booster
    estimator = getattr(xgboost, _ESTIMATOR_TYPES[estimator_type])()
    estimator.load_model(str(path))
    return estimator


class XGBoostDeployer(Deployer):
    """Writes ``model.json`` (XGBoost's own JSON model format) and ``clipper_model.json``."""

    name: ClassVar[str] = DEPLOYER
    loader: ClassVar[str] = LOADER
    file_suffixes: ClassVar[tuple[str, ...]] = (".json", ".ubj")

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Save ``obj``, an ``xgboost.Booster`` or a fitted ``XGBClassifier``/``XGBRegressor``/..., or the model
        saved in the file at path ``obj`` (``.json``, ``.ubj``: ``save_model``'s); return the manifest.

        Options: ``input_type`` (required); ``method`` (a booster: ``"inplace_predict"``, the objective's
        output, e.g. probabilities for ``binary:logistic``; an estimator: ``"predict"`` or ``"predict_proba"``);
        ``func`` (``func(model, inputs) -> list``, cloudpickled, instead of ``method``); ``sample_input`` (a batch
        the container warms up with and must answer); ``name``, ``version``, ``pkgs_to_install``.
        """
        import xgboost

        input_type = str(options["input_type"])
        func: Callable[[Any, Any], Any] | None = options.get("func")
        require_numeric(input_type, func)
        path = self.model_path(obj)
        if path is not None:
            obj = _read_file(path)
        if isinstance(obj, xgboost.Booster):
            estimator, booster = BOOSTER, obj
        elif type(obj).__name__ in ESTIMATORS and isinstance(obj, xgboost.XGBModel):
            estimator, booster = type(obj).__name__, obj.get_booster()
        else:
            raise TypeError(f"expected an xgboost.Booster or one of xgboost.{', '.join(ESTIMATORS)}, got "
                            f"{type(obj).__module__}.{type(obj).__name__}")
        method = str(options.get("method") or ("inplace_predict" if estimator == BOOSTER else "predict"))
        if func is None and not callable(getattr(obj, method, None)):
            raise TypeError(f"{type(obj).__name__} has no method {method!r}")
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        obj.save_model(str(directory / MODEL_FILE))  # the estimator's own attributes are stored in the JSON
        manifest: dict[str, Any] = {
            "deployer": DEPLOYER, "loader": LOADER, "input_type": input_type,
            "framework": "xgboost", "framework_version": xgboost.__version__, "format": "json",
            "model_file": MODEL_FILE, "estimator": estimator, "method": method,
            "n_features": int(booster.num_features()),
        }
        return finish_manifest(directory, manifest, options)


def deploy_xgboost_model(clipper_conn: Any, name: str, version: Any, input_type: str,
                         func: Callable[[Any, Any], Any] | None = None, xgboost_model: Any = None,
                         base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
                         num_replicas: int = 1, batch_size: int = -1, pkgs_to_install: list[str] | None = None, *,
                         method: str | None = None, sample_input: Any = None, make_current: bool = True) -> None:
    """Save an XGBoost model as JSON, build it into a model the container manager runs, register it as the
    current version of ``name`` and start its replicas.

    The common case needs no ``func``: ``deploy_xgboost_model(conn, "churn", 1, "doubles",
    xgboost_model=booster)`` answers each input with ``booster.inplace_predict`` of its row, computed for the
    whole batch in one call (``XGBClassifier``: its class, or with ``method="predict_proba"`` its
    probabilities).

    :param func: optional ``func(model, inputs) -> list`` (Clipper's signature), instead of ``method``
    :param xgboost_model: an ``xgboost.Booster`` or a fitted scikit-learn-API model
    :param method: the model's method applied to a batch (default: ``inplace_predict`` / ``predict``)
    :param sample_input: a batch the replica warms up with at load and must answer without error
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    if xgboost_model is None:
        raise TypeError("deploy_xgboost_model() needs xgboost_model, a Booster or a fitted XGBModel")
    target = deploy_target(clipper_conn, make_current)
    XGBoostDeployer().deploy(target, name, version, input_type, xgboost_model, base_image=base_image,
                             labels=labels, registry=registry, num_replicas=num_replicas, batch_size=batch_size,
                             pkgs_to_install=pkgs_to_install, func=func, method=method, sample_input=sample_input)


def create_endpoint(clipper_conn: Any, name: str, input_type: str, func: Callable[[Any, Any], Any] | None = None,
                    xgboost_model: Any = None, default_output: str = "None", version: Any = 1,
                    slo_micros: int = 3000000, labels: list[str] | None = None, registry: str | None = None,
                    base_image: str = "default", num_replicas: int = 1, batch_size: int = -1,
                    pkgs_to_install: list[str] | None = None, *, method: str | None = None,
                    sample_input: Any = None) -> None:
    """Register an app named ``name``, deploy ``xgboost_model`` as model ``name`` and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_xgboost_model(clipper_conn, name, version, input_type, func, xgboost_model, base_image, labels, registry,
                         num_replicas, batch_size, pkgs_to_install, method=method, sample_input=sample_input)
    clipper_conn.link_model_to_app(name, name)
