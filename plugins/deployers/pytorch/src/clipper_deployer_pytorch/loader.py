"""Container side: load a PyTorch model (torch.export program or TorchScript) and run whole batches through
``forward`` in one call under ``torch.inference_mode``.

Two things keep a batch's cost near the model's own: torch's thread count is set in every thread that runs
batches (OpenMP's is per thread: the container's worker thread would otherwise run every op on a team of all
the host's CPUs, its idle members spinning), and a torch.export program with one tensor input runs as a plain
``GraphModule`` of its graph (:func:`lean_module`), without the pytree flattening, input checks and hooks of
``ExportedProgram.module()`` that cost several times a small model's forward pass; whatever fails there is run
again through the checked module, so errors read as torch.export's own.

Imported by ``python -m clipper_container`` through the manifest's ``loader``; needs numpy, clipper_container
and (inside :func:`load`) torch, never clipper_core.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
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

__all__ = ["DEPLOYER", "FORMATS", "LOADER", "TorchPredictor", "lean_module", "load"]

log = logging.getLogger("clipper_container")

DEPLOYER = "pytorch"
LOADER = "clipper_deployer_pytorch.loader:load"
FORMATS = {"export": "model.pt2", "torchscript": "model.pt"}


class TorchPredictor(BatchPredictor):
    """``model(batch tensor)`` for the whole batch (or ``func(model, batch)``), one output per input.

    Inputs (flat vectors) become one ``[n, *item_shape]`` tensor of ``dtype``; the output's rows become
    numbers or (nested) lists. ``threads``: torch's intra-op threads, set in each thread the first time it
    predicts. ``fast``: a cheaper callable computing what ``model`` does (:func:`lean_module`), tried first.
    """

    def __init__(self, model: Any, dtype: Any, item_shape: Sequence[int] | None = None,
                 n_features: int | None = None, func: Callable[[Any, Any], Any] | None = None, *,
                 threads: int | None = None, fast: Callable[[Any], Any] | None = None) -> None:
        super().__init__(model, n_features, func)
        self.dtype = np.dtype(dtype)
        self.item_shape = tuple(item_shape) if item_shape else None
        self.threads = threads
        self.fast = fast
        self._local = threading.local()

    def _run(self, batch: np.ndarray) -> list[Any]:
        import torch

        # np.asarray converts (one copy) when the dtypes differ; an input of the model's dtype is viewed: torch
        # gets the received frame itself (read-only to numpy only: the container owns that memory)
        x = torch.from_numpy(writable(np.asarray(batch, dtype=self.dtype)))
        if self.item_shape is not None:
            x = x.reshape(len(batch), *self.item_shape)
        with torch.inference_mode():
            y = self._forward(x)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"the model returned a {type(y).__name__}, not a tensor: deploy it with a func that "
                            "turns its output into one output per input")
        return rows(y.detach().cpu().numpy())

    def _forward(self, x: Any) -> Any:
        if self.fast is not None:
            try:
                return self.fast(x)
            except Exception:  # the checked module below says why, in torch.export's words
                pass
        return self.model(x)

    def predict(self, batch: Any) -> list[Any]:
        """One output per input: a number (a scalar per row) or a list (a vector per row). A user's ``func``
        runs under ``torch.inference_mode`` too."""
        if self.threads is not None and not getattr(self._local, "threads_set", False):
            import torch

            torch.set_num_threads(self.threads)  # OpenMP's thread count is per thread: set it in this one
            self._local.threads_set = True
        if self.func is None:
            return super().predict(batch)
        import torch

        with torch.inference_mode():
            return super().predict(batch)


def lean_module(program: Any) -> Any | None:
    """A plain ``torch.fx.GraphModule`` of ``program``'s graph (a ``torch.export.ExportedProgram``) taking its
    one tensor input and returning its output, sharing the parameters of ``program.module()``; None when the
    program takes anything else (several inputs, keyword inputs, nested structures) or torch cannot build one.

    ``ExportedProgram.module()`` flattens the inputs with pytree, checks them against the program's input
    specification and range constraints and unflattens the outputs on every call: ~0.1 ms a call here, more
    than a small MLP's forward pass. The lean module runs the same graph without those steps.
    """
    import torch

    try:
        in_spec, out_spec = program.call_spec.in_spec, program.call_spec.out_spec
        if in_spec is None or in_spec.num_leaves != 1 or out_spec is None:
            return None
        try:
            unlifted = program.module(check_guards=False)
        except TypeError:  # torch before 2.9: no guards function in the graph anyway
            unlifted = program.module()
        graph = unlifted.graph  # a module of our own, given up for the plain one
        if len(graph.find_nodes(op="placeholder")) != 1:
            return None
        graph.set_codegen(torch.fx.graph.CodeGen())
        plain = torch.fx.GraphModule(unlifted, graph)
    except Exception as exc:  # an internal API changed: run the checked module, slower but right
        log.info("torch.export program served through ExportedProgram.module() (%s)", exc)
        return None
    unflatten = torch.utils._pytree.tree_unflatten

    def lean(x: Any) -> Any:
        return unflatten(list(plain(x)), out_spec)

    lean.module = plain  # type: ignore[attr-defined]
    return lean


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
    fast = None
    if fmt == "export":
        program = torch.export.load(path)
        model = program.module()
        fast = lean_module(program)
    elif fmt == "torchscript":
        model = torch.jit.load(str(path), map_location="cpu").eval()
    else:
        raise ValueError(f"unknown PyTorch model format {fmt!r} (known: {sorted(FORMATS)})")
    func = load_func(directory, manifest)
    dtype = np.dtype(str(manifest.get("input_dtype") or "float32"))
    predictor = TorchPredictor(model, dtype, manifest.get("item_shape"), manifest.get("n_features"), func,
                               threads=threads, fast=fast)
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
