"""Container side: load a Keras model (``.keras``) or a TensorFlow SavedModel and run whole batches with one
call (Keras ``predict_on_batch``; the SavedModel's serving signature).

Imported by ``python -m clipper_container`` through the manifest's ``loader``; needs numpy, clipper_container
and (inside :func:`load`) TensorFlow/Keras, never clipper_core.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from clipper_container.frameworks import BatchPredictor, check_version, load_func, load_sample, replica_threads, rows
from clipper_container.manifest import read_manifest

__all__ = ["KERAS_FILE", "LOADER", "SAVED_MODEL_DIR", "TFPredictor", "load"]

log = logging.getLogger("clipper_container")

LOADER = "clipper_deployer_tensorflow.loader:load"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
WARM_UP_SIZES = (1, 2, 3)
"""Batch sizes run at load: Keras and tf.function trace again for each new shape until, from the second or
third, they trace one with an unknown batch dimension that then serves every batch."""


class TFPredictor(BatchPredictor):
    """``call(batch array)`` for the whole batch (or ``func(model, batch)``), one output per input: a number or a
    (nested) list."""

    def __init__(self, model: Any, call: Callable[[np.ndarray], Any], dtype: Any,
                 item_shape: Sequence[int] | None = None, n_features: int | None = None,
                 func: Callable[[Any, Any], Any] | None = None) -> None:
        super().__init__(model, n_features, func)
        self.call = call
        self.dtype = dtype
        self.item_shape = tuple(item_shape) if item_shape else None

    def _run(self, batch: np.ndarray) -> list[Any]:
        x = np.array(batch, dtype=self.dtype)  # a writable copy in the model's dtype
        if self.item_shape is not None:
            x = x.reshape(len(batch), *self.item_shape)
        y = self.call(x)
        if isinstance(y, (list, tuple, dict)):
            raise TypeError(f"the model returned a {type(y).__name__} of outputs: deploy it with a func that "
                            "turns them into one output per input")
        return rows(np.asarray(y))


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    try:  # only possible before the TensorFlow runtime has started
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)  # one batch at a time
    except RuntimeError as exc:
        log.warning("cannot size TensorFlow's thread pools (%s)", exc)


def _keras(path: Path, manifest: dict[str, Any]) -> tuple[Any, Callable[[np.ndarray], Any], str]:
    os.environ.setdefault("KERAS_BACKEND", str(manifest.get("keras_backend") or "tensorflow"))
    import keras

    check_version(str(manifest.get("name") or "<unnamed>"), "keras", manifest.get("framework_version"),
                  keras.__version__, "same-major-not-older")
    model = keras.models.load_model(path, compile=False, safe_mode=True)  # safe_mode: no lambda bytecode
    return model, model.predict_on_batch, f"keras {keras.__version__} ({keras.backend.backend()})"


def _saved_model(path: Path, manifest: dict[str, Any]) -> tuple[Any, Callable[[np.ndarray], Any], str]:
    import tensorflow as tf

    check_version(str(manifest.get("name") or "<unnamed>"), "tensorflow", manifest.get("framework_version"),
                  tf.__version__, "same-major-not-older")
    model = tf.saved_model.load(str(path))
    signature = model.signatures[str(manifest.get("signature") or "serving_default")]
    input_key, output_key = str(manifest["input_key"]), str(manifest["output_key"])

    def call(x: np.ndarray) -> Any:
        return signature(**{input_key: tf.constant(x)})[output_key].numpy()

    return model, call, f"tensorflow {tf.__version__}"


def load(model_dir: str) -> TFPredictor:
    """Load ``model_dir`` (written by the ``keras`` or ``tensorflow`` deployer) with TensorFlow's intra-op pool
    sized to the replica, and warm it up on batches of 1, 2 and 3."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no banner about CPU instructions in every replica log
    directory = Path(model_dir)
    manifest = read_manifest(directory)
    threads = replica_threads()
    if (manifest.get("keras_backend") or "tensorflow") == "tensorflow":
        _set_threads(threads)
    fmt = manifest.get("format")
    if fmt == "keras":
        model, call, what = _keras(directory / str(manifest.get("model_file") or KERAS_FILE), manifest)
    elif fmt == "saved_model":
        model, call, what = _saved_model(directory / str(manifest.get("model_file") or SAVED_MODEL_DIR), manifest)
    else:
        raise ValueError(f"unknown TensorFlow model format {fmt!r} (known: 'keras', 'saved_model')")
    func = load_func(directory, manifest)
    dtype = np.dtype(str(manifest.get("input_dtype") or "float32"))
    predictor = TFPredictor(model, call, dtype, manifest.get("item_shape"), manifest.get("n_features"), func)
    sample = load_sample(directory, manifest)
    if sample is None and predictor.n_features and func is None:
        sample = np.zeros((max(WARM_UP_SIZES), predictor.n_features), dtype=dtype)
    if sample is not None:
        for n in WARM_UP_SIZES:
            part = sample[np.arange(n) % len(sample)] if isinstance(sample, np.ndarray) else sample
            failed = [o for o in predictor.predict(part) if isinstance(o, BaseException)]
            if failed:
                raise RuntimeError(f"the model failed on its warm-up input: {failed[0]!r}")
    log.info("loaded %s %s model with %d thread(s)", what, fmt, threads)
    return predictor
