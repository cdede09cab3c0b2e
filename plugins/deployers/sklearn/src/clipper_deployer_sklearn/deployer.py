"""Admin side: save a fitted scikit-learn estimator as a model directory and deploy it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from clipper_container.frameworks import finish_manifest

from clipper_core.deployers.target import deploy_target
from clipper_core.interfaces import Deployer
from clipper_deployer_sklearn.loader import DEPLOYER, FORMATS, LOADER

__all__ = ["SklearnDeployer", "create_endpoint", "deploy_sklearn_model"]


def _read_file(path: Path) -> tuple[Any, str]:
    """The estimator saved at ``path`` and its format: a ``.skops`` file (its types trusted: deploying a file by
    path says it is trusted, as a pickle's would be) or a joblib pickle (``.joblib``, ``.pkl``)."""
    if path.suffix.lower() == ".skops":
        import skops.io

        return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path)), "skops"
    import joblib

    return joblib.load(path), "joblib"


class SklearnDeployer(Deployer):
    """Writes ``model.skops`` (default) or ``model.joblib`` and ``clipper_model.json``."""

    name: ClassVar[str] = DEPLOYER
    loader: ClassVar[str] = LOADER
    file_suffixes: ClassVar[tuple[str, ...]] = (".skops", ".joblib", ".pkl")

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Save the fitted estimator ``obj``, or the one in the file at path ``obj`` (``.skops``, ``.joblib``,
        ``.pkl``; saved again in its own format unless ``format`` says otherwise); return the manifest.

        Options: ``input_type`` (required); ``method`` (``"predict"``; or ``"predict_proba"``,
        ``"decision_function"``, ``"transform"``...); ``format`` (``"skops"`` or ``"joblib"``); ``func``
        (``func(model, inputs) -> list``, called instead of ``method``, cloudpickled); ``sample_input`` (a batch
        the container warms up with and must answer); ``name``, ``version``, ``pkgs_to_install``.
        """
        import sklearn

        input_type = str(options["input_type"])
        method = str(options.get("method") or "predict")
        file_format = None
        path = self.model_path(obj)
        if path is not None:
            obj, file_format = _read_file(path)
        fmt = str(options.get("format") or file_format or "skops")
        func: Callable[[Any, Any], Any] | None = options.get("func")
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
        if func is None and not callable(getattr(obj, method, None)):
            raise TypeError(f"{type(obj).__name__} has no method {method!r}; is it a fitted scikit-learn estimator?")
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FORMATS[fmt]
        manifest: dict[str, Any] = {
            "deployer": DEPLOYER, "loader": LOADER, "input_type": input_type,
            "framework": "scikit-learn", "framework_version": sklearn.__version__,
            "format": fmt, "model_file": path.name, "method": method,
        }
        if fmt == "skops":
            import skops
            import skops.io

            skops.io.dump(obj, path)
            manifest["format_version"] = skops.__version__
            # types beyond skops' defaults (e.g. sklearn.tree._tree.Tree) come from the user's own fitted
            # object; the container trusts exactly these and refuses a file holding anything else
            manifest["skops_trusted"] = sorted(skops.io.get_untrusted_types(file=path))
        else:
            import joblib

            joblib.dump(obj, path)
            manifest["format_version"] = joblib.__version__
        n_features = getattr(obj, "n_features_in_", None)
        if isinstance(n_features, int):
            manifest["n_features"] = n_features
        return finish_manifest(directory, manifest, options)


def deploy_sklearn_model(clipper_conn: Any, name: str, version: Any, input_type: str,
                         func: Callable[[Any, Any], Any] | None = None, sklearn_model: Any = None,
                         base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
                         num_replicas: int = 1, batch_size: int = -1, pkgs_to_install: list[str] | None = None, *,
                         method: str = "predict", format: str = "skops", sample_input: Any = None,
                         make_current: bool = True) -> None:
    """Save a fitted scikit-learn estimator, build it into a model the container manager runs, register it
    as the current version of ``name`` and start its replicas.

    The common case needs no ``func``: ``deploy_sklearn_model(conn, "digits", 1, "doubles",
    sklearn_model=clf, method="predict_proba")`` answers each input with ``clf.predict_proba`` of its row,
    computed for the whole batch in one call.

    :param clipper_conn: a started or connected ``ClipperConnection``
    :param func: optional ``func(model, inputs) -> list`` (Clipper's signature), instead of ``method``
    :param sklearn_model: the fitted estimator (a pipeline is an estimator)
    :param method: the estimator's method applied to a batch: ``"predict"``, ``"predict_proba"``, ...
    :param format: ``"skops"`` (no arbitrary code on load) or ``"joblib"`` (a pickle; see the README)
    :param sample_input: a batch the replica warms up with at load and must answer without error
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    if sklearn_model is None:
        raise TypeError("deploy_sklearn_model() needs sklearn_model, the fitted estimator")
    target = deploy_target(clipper_conn, make_current)
    SklearnDeployer().deploy(target, name, version, input_type, sklearn_model, base_image=base_image,
                             labels=labels, registry=registry, num_replicas=num_replicas, batch_size=batch_size,
                             pkgs_to_install=pkgs_to_install, func=func, method=method, format=format,
                             sample_input=sample_input)


def create_endpoint(clipper_conn: Any, name: str, input_type: str, func: Callable[[Any, Any], Any] | None = None,
                    sklearn_model: Any = None, default_output: str = "None", version: Any = 1,
                    slo_micros: int = 3000000, labels: list[str] | None = None, registry: str | None = None,
                    base_image: str = "default", num_replicas: int = 1, batch_size: int = -1,
                    pkgs_to_install: list[str] | None = None, *, method: str = "predict", format: str = "skops",
                    sample_input: Any = None) -> None:
    """Register an app named ``name``, deploy ``sklearn_model`` as model ``name`` and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_sklearn_model(clipper_conn, name, version, input_type, func, sklearn_model, base_image, labels, registry,
                         num_replicas, batch_size, pkgs_to_install, method=method, format=format,
                         sample_input=sample_input)
    clipper_conn.link_model_to_app(name, name)
