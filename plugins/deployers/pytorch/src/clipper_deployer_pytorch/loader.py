"""Container side: load a PyTorch model (torch.export program or TorchScript) and run whole batches through
``forward`` in one call under ``torch.inference_mode``.

Imported by ``python -m clipper_container`` through the manifest's ``loader``; needs numpy, clipper_container
and (inside :func:`load`) torch, never clipper_core.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from clipper_container.frameworks import BatchPredictor, check_version, load_func, load_sample, replica_threads, rows
from clipper_container.manifest import read_manifest

__all__ = ["DEPLOYER", "FORMATS", "LOADER", "TorchPredictor", "load"]

log = logging.getLogger("clipper_container")

DEPLOYER = "pytorch"
LOADER = "clipper_deployer_pytorch.loader:load"
FORMATS = {"export": "model.pt2", "torchscript": "model.pt"}


class TorchPredictor(BatchPredictor):
    """``model(batch tensor)`` for the whole batch (or ``func(model, batch)``), one output per input.

    Inputs (flat vectors) become one ``[n, *item_shape]`` tensor of ``dtype``; the output's rows become
    numbers or (nested) lists.
    """

    def __init__(self, model: Any, dtype: Any, item_shape: Sequence[int] | None = None,
                 n_features: int | None = None, func: Callable[[Any, Any], Any] | None = None) -> None:
        super().__init__(model, n_features, func)
        self.dtype = dtype
        self.item_shape = tuple(item_shape) if item_shape else None

    def _run(self, batch: np.ndarray) -> list[Any]:
        import torch

        # np.array copies: the batch is a read-only view of the received frame, and torch wants writable memory
        x = torch.from_numpy(np.array(batch, dtype=self.dtype))
        if self.item_shape is not None:
            x = x.reshape(len(batch), *self.item_shape)
        with torch.inference_mode():
            y = self.model(x)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"the model returned a {type(y).__name__}, not a tensor: deploy it with a func that "
                            "turns its output into one output per input")
        return rows(y.detach().cpu().numpy())

    def predict(self, batch: Any) -> list[Any]:
        """One output per input: a number (a scalar per row) or a list (a vector per row). A user's ``func``
        runs under ``torch.inference_mode`` too."""
        if self.func is None:
            return super().predict(batch)
        import torch

        with torch.inference_mode():
            return super().predict(batch)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    # batches run one at a time: no inter-op parallelism to exploit (RuntimeError: set already, or too late)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def load(model_dir: str) -> TorchPredictor:
    """Load ``model_dir`` (written by :class:`clipper_deployer_pytorch.PyTorchDeployer`) with as many intra-op
    threads as the replica has CPUs, and warm it up (twice: TorchScript optimises on its second call)."""
    import torch

    directory = Path(model_dir)
    manifest = read_manifest(directory)
    name = str(manifest.get("name") or "<unnamed>")
    check_version(name, "torch", manifest.get("framework_version"), torch.__version__, "same-major-not-older")
    threads = replica_threads()
    _set_threads(threads)
    fmt = manifest.get("format")
    path = directory / str(manifest.get("model_file") or FORMATS.get(str(fmt), ""))
    model: Any
    if fmt == "export":
        model = torch.export.load(path).module()
    elif fmt == "torchscript":
        model = torch.jit.load(str(path), map_location="cpu").eval()
    else:
        raise ValueError(f"unknown PyTorch model format {fmt!r} (known: {sorted(FORMATS)})")
    func = load_func(directory, manifest)
    dtype = np.dtype(str(manifest.get("input_dtype") or "float32"))
    predictor = TorchPredictor(model, dtype, manifest.get("item_shape"), manifest.get("n_features"), func)
    sample = load_sample(directory, manifest)
    if sample is None and predictor.n_features and func is None:
        sample = np.zeros((1, predictor.n_features), dtype=dtype)
    if sample is not None:
        for _ in range(2):
            failed = [o for o in predictor.predict(sample) if isinstance(o, BaseException)]
            if failed:
                raise RuntimeError(f"the model failed on its warm-up input: {failed[0]!r}")
    log.info("loaded torch %s %s model with %d thread(s)", torch.__version__, fmt, threads)
    return predictor
