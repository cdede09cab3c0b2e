"""Admin side: save Keras models (``.keras``) and TensorFlow SavedModels as model directories and deploy them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from clipper_container.frameworks import finish_manifest, require_numeric

from clipper_core.deployers.target import deploy_target
from clipper_core.interfaces import Deployer
from clipper_deployer_tensorflow.loader import KERAS_FILE, LOADER, SAVED_MODEL_DIR

__all__ = ["KerasDeployer", "TensorFlowDeployer", "create_endpoint", "create_keras_endpoint",
           "deploy_keras_model", "deploy_tensorflow_model"]


def _input_keys(shape: Any, dtype: Any) -> dict[str, Any]:
    """Manifest keys for one input of ``shape`` (batch first): its dtype, and its size and shape when known."""
    item = list(shape)[1:]
    keys: dict[str, Any] = {"input_dtype": str(getattr(dtype, "name", dtype))}
    if item and all(isinstance(d, int) for d in item):
        size = 1
        for d in item:
            size *= d
        keys["n_features"] = size
        if len(item) > 1:
            keys["item_shape"] = item
    return keys


class KerasDeployer(Deployer):
    """Writes ``model.keras`` (the Keras 3 format: architecture as JSON, weights as HDF5; no pickles) and
    ``clipper_model.json``."""

    name: ClassVar[str] = "keras"
    loader: ClassVar[str] = LOADER
    file_suffixes: ClassVar[tuple[str, ...]] = (".keras", ".h5", ".hdf5")

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Save ``obj``, a ``keras.Model`` or the path of a ``.keras`` (or legacy ``.h5``) file; return the
        manifest. Options: ``input_type`` (required); ``func`` (``func(model, inputs) -> list``, cloudpickled,
        instead of ``predict_on_batch``); ``sample_input``; ``name``, ``version``, ``pkgs_to_install``."""
        import keras

        input_type = str(options["input_type"])
        require_numeric(input_type, options.get("func"))
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / KERAS_FILE
        if isinstance(obj, (str, os.PathLike)):
            source = Path(obj)
            if source.suffix == ".keras":
                shutil.copyfile(source, path)
                obj = keras.models.load_model(path, compile=False)
            elif source.suffix in (".h5", ".hdf5"):
                obj = keras.models.load_model(source, compile=False)  # re-saved below in the current format
            else:
                raise ValueError(f"{source}: expected a .keras or .h5 file (a SavedModel goes to the tensorflow "
                                 "deployer)")
        if not isinstance(obj, keras.Model):
            raise TypeError(f"expected a keras.Model or a .keras path, got {type(obj).__module__}."
                            f"{type(obj).__name__}")
        if not path.exists():
            obj.save(path)
        manifest: dict[str, Any] = {
            "deployer": self.name, "loader": LOADER, "input_type": input_type,
            "framework": "keras", "framework_version": keras.__version__, "format": "keras", "model_file": KERAS_FILE,
            "keras_backend": keras.backend.backend(),
        }
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            manifest["tensorflow_version"] = tf.__version__
        if len(obj.inputs) == 1:
            manifest.update(_input_keys(obj.inputs[0].shape, obj.inputs[0].dtype))
        elif options.get("func") is None:
            raise ValueError(f"the model has {len(obj.inputs)} inputs: pass func(model, inputs) to build them")
        return finish_manifest(directory, manifest, options)


def _write_saved_model(obj: Any, path: Path) -> None:
    """Write ``obj`` as a SavedModel at ``path`` (replacing what is there): a SavedModel directory is copied, a
    Keras 3 model exported, a ``tf.Module`` saved."""
    import tensorflow as tf

    if path.exists():
        shutil.rmtree(path)
    if isinstance(obj, (str, os.PathLike)):
        if not (Path(obj) / "saved_model.pb").is_file():
            raise ValueError(f"{obj} is not a SavedModel directory (no saved_model.pb)")
        shutil.copytree(obj, path)
    elif hasattr(obj, "run") and hasattr(obj, "graph"):
        raise TypeError("TensorFlow 1 sessions are not supported: save the model as a SavedModel "
                        "(tf.saved_model.save) and deploy its directory")
    elif callable(getattr(obj, "export", None)) and hasattr(obj, "inputs"):  # a Keras 3 model
        obj.export(str(path), format="tf_saved_model", verbose=False)
    elif isinstance(obj, tf.Module):
        tf.saved_model.save(obj, str(path))
    else:
        raise TypeError(f"expected a SavedModel path, a keras.Model or a tf.Module, got "
                        f"{type(obj).__module__}.{type(obj).__name__}")


class TensorFlowDeployer(Deployer):
    """Writes a SavedModel (``saved_model/``: a graph and its variables, no Python code) and
    ``clipper_model.json``; the container calls its serving signature."""

    name: ClassVar[str] = "tensorflow"
    loader: ClassVar[str] = LOADER
    accepts_directory: ClassVar[bool] = True

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Save ``obj``: the path of a SavedModel directory, a ``keras.Model`` (exported with
        ``model.export``) or a ``tf.Module`` whose ``__call__`` is a ``tf.function`` with an
        ``input_signature``; return the manifest.

        Options: ``input_type`` (required); ``signature`` (``"serving_default"``); ``output_key`` (which output
        of the signature to return, needed when it has several); ``func`` (``func(model, inputs) -> list``,
        cloudpickled; ``model`` is the loaded SavedModel); ``sample_input``; ``name``, ``version``,
        ``pkgs_to_install``.
        """
        import tensorflow as tf

        input_type = str(options["input_type"])
        func: Callable[[Any, Any], Any] | None = options.get("func")
        require_numeric(input_type, func)
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / SAVED_MODEL_DIR
        _write_saved_model(obj, path)
        signature_name = str(options.get("signature") or "serving_default")
        signatures = tf.saved_model.load(str(path)).signatures
        if signature_name not in signatures:
            raise ValueError(f"the SavedModel has no signature {signature_name!r}; it has {sorted(signatures)}")
        signature = signatures[signature_name]
        inputs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        if len(inputs) != 1 and func is None:
            raise ValueError(f"signature {signature_name!r} takes {sorted(inputs)}: without func the model must "
                             "take one input tensor")
        output_key = options.get("output_key")
        if output_key is None:
            if len(outputs) != 1 and func is None:
                raise ValueError(f"signature {signature_name!r} returns {sorted(outputs)}: pass output_key")
            output_key = next(iter(outputs))
        elif output_key not in outputs:
            raise ValueError(f"signature {signature_name!r} has no output {output_key!r}; it has {sorted(outputs)}")
        manifest: dict[str, Any] = {
            "deployer": self.name, "loader": LOADER, "input_type": input_type,
            "framework": "tensorflow", "framework_version": tf.__version__, "format": "saved_model",
            "model_file": SAVED_MODEL_DIR, "signature": signature_name, "output_key": str(output_key),
        }
        if len(inputs) == 1:
            (input_key, spec), = inputs.items()
            manifest["input_key"] = input_key
            manifest.update(_input_keys(spec.shape.as_list(), spec.dtype))
        return finish_manifest(directory, manifest, options)


def deploy_keras_model(clipper_conn: Any, name: str, version: Any, input_type: str,
                       func: Callable[[Any, Any], Any] | None = None, model_path_or_object: Any = None,
                       base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
                       num_replicas: int = 1, batch_size: int = -1, pkgs_to_install: list[str] | None = None, *,
                       sample_input: Any = None, make_current: bool = True) -> None:
    """Save a Keras model as ``.keras``, build it into a model the container manager runs, register it as the
    current version of ``name`` and start its replicas.

    The common case needs no ``func``: ``deploy_keras_model(conn, "mnist", 1, "floats",
    model_path_or_object=model)`` answers each input with its row of ``model.predict_on_batch(batch)``, one
    call per batch; flat inputs are reshaped to the model's input shape.

    :param func: optional ``func(model, inputs) -> list`` (Clipper's signature), instead of ``predict_on_batch``
    :param model_path_or_object: a ``keras.Model``, or the path of a ``.keras`` / legacy ``.h5`` file
    :param sample_input: a batch the replica warms up with at load (default: zeros of the input shape)
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    if model_path_or_object is None:
        raise TypeError("deploy_keras_model() needs model_path_or_object, a keras.Model or a .keras path")
    target = deploy_target(clipper_conn, make_current)
    KerasDeployer().deploy(target, name, version, input_type, model_path_or_object, base_image=base_image,
                           labels=labels, registry=registry, num_replicas=num_replicas, batch_size=batch_size,
                           pkgs_to_install=pkgs_to_install, func=func, sample_input=sample_input)


def deploy_tensorflow_model(clipper_conn: Any, name: str, version: Any, input_type: str,
                            func: Callable[[Any, Any], Any] | None = None, tf_sess_or_saved_model_path: Any = None,
                            base_image: str = "default", labels: list[str] | None = None,
                            registry: str | None = None, num_replicas: int = 1, batch_size: int = -1,
                            pkgs_to_install: list[str] | None = None, *, signature: str = "serving_default",
                            output_key: str | None = None, sample_input: Any = None,
                            make_current: bool = True) -> None:
    """Save a TensorFlow model as a SavedModel, build it into a model the container manager runs, register it
    as the current version of ``name`` and start its replicas.

    Without ``func`` each batch is one call of the SavedModel's ``signature`` on a ``[n, ...]`` tensor and each
    input is answered with its row of the output ``output_key``.

    :param func: optional ``func(model, inputs) -> list``; ``model`` is the loaded SavedModel (Clipper passed a
        TF1 session here; TF1 sessions are not supported)
    :param tf_sess_or_saved_model_path: a SavedModel directory, a ``keras.Model`` or a ``tf.Module``
    :param signature: the serving signature to call
    :param output_key: the signature's output to return, when it has several
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    if tf_sess_or_saved_model_path is None:
        raise TypeError("deploy_tensorflow_model() needs tf_sess_or_saved_model_path, a SavedModel directory, "
                        "a keras.Model or a tf.Module")
    target = deploy_target(clipper_conn, make_current)
    TensorFlowDeployer().deploy(target, name, version, input_type, tf_sess_or_saved_model_path,
                                base_image=base_image, labels=labels, registry=registry, num_replicas=num_replicas,
                                batch_size=batch_size, pkgs_to_install=pkgs_to_install, func=func,
                                signature=signature, output_key=output_key, sample_input=sample_input)


def create_keras_endpoint(clipper_conn: Any, name: str, input_type: str, func: Callable[[Any, Any], Any] | None = None,
                          model_path_or_object: Any = None, default_output: str = "None", version: Any = 1,
                          slo_micros: int = 3000000, labels: list[str] | None = None, registry: str | None = None,
                          base_image: str = "default", num_replicas: int = 1, batch_size: int = -1,
                          pkgs_to_install: list[str] | None = None, *, sample_input: Any = None) -> None:
    """Register an app named ``name``, deploy the Keras model as model ``name`` and link the two (Clipper's
    ``clipper_admin.deployers.keras.create_endpoint``)."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_keras_model(clipper_conn, name, version, input_type, func, model_path_or_object, base_image, labels,
                       registry, num_replicas, batch_size, pkgs_to_install, sample_input=sample_input)
    clipper_conn.link_model_to_app(name, name)


def create_endpoint(clipper_conn: Any, name: str, input_type: str, func: Callable[[Any, Any], Any] | None = None,
                    tf_sess_or_saved_model_path: Any = None, default_output: str = "None", version: Any = 1,
                    slo_micros: int = 3000000, labels: list[str] | None = None, registry: str | None = None,
                    base_image: str = "default", num_replicas: int = 1, batch_size: int = -1,
                    pkgs_to_install: list[str] | None = None, *, signature: str = "serving_default",
                    output_key: str | None = None, sample_input: Any = None) -> None:
    """Register an app named ``name``, deploy the TensorFlow model as model ``name`` and link the two
    (Clipper's ``clipper_admin.deployers.tensorflow.create_endpoint``)."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_tensorflow_model(clipper_conn, name, version, input_type, func, tf_sess_or_saved_model_path, base_image,
                            labels, registry, num_replicas, batch_size, pkgs_to_install, signature=signature,
                            output_key=output_key, sample_input=sample_input)
    clipper_conn.link_model_to_app(name, name)
