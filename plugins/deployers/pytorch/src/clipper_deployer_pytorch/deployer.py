"""Admin side: save a ``torch.nn.Module`` with torch.export (or TorchScript) and deploy it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from clipper_container.frameworks import finish_manifest, require_numeric

from clipper_core.deployers.target import deploy_target
from clipper_core.interfaces import Deployer
from clipper_deployer_pytorch.loader import DEPLOYER, FORMATS, LOADER

__all__ = ["PyTorchDeployer", "create_endpoint", "deploy_pytorch_model"]


def _param_dtype(module: Any) -> Any:
    import torch

    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _example(module: Any, sample: Any, input_shape: Sequence[int] | None, input_dtype: str | None) -> Any:
    """A tensor ``[n >= 2, *item_shape]`` to trace with (n >= 2: a batch of 1 would be specialised to 1), or
    None when nothing says what the model takes."""
    import torch

    if sample is not None:
        array = np.asarray(sample)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if input_shape:
            array = array.reshape(len(array), *input_shape)
        x = torch.from_numpy(np.array(array))
    else:
        shape = tuple(input_shape) if input_shape else None
        if shape is None:  # an MLP says what it takes: its first Linear layer's in_features
            first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
            shape = (first.in_features,) if first is not None else None
        if shape is None:
            return None
        x = torch.zeros((2, *shape))
    dtype = getattr(torch, input_dtype) if input_dtype else (
        torch.int64 if not x.is_floating_point() else _param_dtype(module))
    x = x.to(dtype)
    return x.repeat(2, *([1] * (x.dim() - 1))) if len(x) == 1 else x


def _program_input(path: Path) -> tuple[list[int], str] | None:
    """(one input's shape, dtype name) of the torch.export program saved at ``path``, when it takes one tensor."""
    import torch

    program = torch.export.load(path)
    user_inputs = set(program.graph_signature.user_inputs)
    values = [node.meta.get("val") for node in program.graph.nodes
              if node.op == "placeholder" and node.name in user_inputs]
    if len(values) != 1 or not hasattr(values[0], "shape"):
        return None
    item = values[0].shape[1:]
    if not all(isinstance(d, int) for d in item):
        return None
    return [int(d) for d in item], str(values[0].dtype).removeprefix("torch.")


class PyTorchDeployer(Deployer):
    """Writes ``model.pt2`` (torch.export, the default) or ``model.pt`` (TorchScript) and ``clipper_model.json``."""

    name: ClassVar[str] = DEPLOYER
    loader: ClassVar[str] = LOADER
    file_suffixes: ClassVar[tuple[str, ...]] = (".pt2", ".pt")

    def save(self, model_dir: Path, obj: Any, **options: Any) -> dict[str, Any]:
        """Save the module ``obj`` (in eval mode), or copy the program saved at path ``obj`` (``.pt2``:
        ``torch.export.save``'s, whose input shape and dtype it records; ``.pt``: TorchScript, whose input the
        ``input_shape`` and ``input_dtype`` options say); return the manifest.

        Options: ``input_type`` (required); ``format`` (``"export"``: torch.export with a dynamic batch
        dimension; ``"torchscript"``: torch.jit.script, else torch.jit.trace, for older containers);
        ``sample_input`` (a batch of inputs, flat or in the model's shape: traced with, and the replica's
        warm-up); ``input_shape`` (one input's shape for the model, e.g. ``(1, 8, 8)``: flat inputs are reshaped
        to it); ``input_dtype`` (``"float32"``...; default the model's parameter dtype, ``int64`` for integer
        samples); ``func`` (``func(model, inputs) -> list``, cloudpickled, called instead of ``forward``);
        ``name``, ``version``, ``pkgs_to_install``.
        """
        import torch

        path = self.model_path(obj)
        if path is not None:
            return self._save_file(Path(model_dir), path, options)
        if not isinstance(obj, torch.nn.Module):
            raise TypeError(f"expected a torch.nn.Module, got {type(obj).__module__}.{type(obj).__name__}")
        input_type = str(options["input_type"])
        require_numeric(input_type, options.get("func"))
        fmt = str(options.get("format") or "export")
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
        example = _example(obj, options.get("sample_input"), options.get("input_shape"), options.get("input_dtype"))
        directory = Path(model_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FORMATS[fmt]
        was_training = obj.training
        obj.eval()
        try:
            self._write(obj, fmt, example, path)
        finally:
            obj.train(was_training)
        manifest: dict[str, Any] = {
            "deployer": DEPLOYER, "loader": LOADER, "input_type": input_type,
            "framework": "torch", "framework_version": torch.__version__, "format": fmt, "model_file": path.name,
        }
        if example is not None:
            item_shape = list(example.shape[1:])
            manifest.update(input_dtype=str(example.dtype).removeprefix("torch."),
                            n_features=int(np.prod(item_shape)))
            if len(item_shape) > 1:
                manifest["item_shape"] = item_shape
        sample = options.get("sample_input")
        if sample is not None and np.ndim(sample) > 1:  # stored flat, as inputs arrive
            sample = np.asarray(sample).reshape(len(sample), -1)
        return finish_manifest(directory, manifest, options, sample)

    def _save_file(self, directory: Path, source: Path, options: dict[str, Any]) -> dict[str, Any]:
        import torch

        input_type = str(options["input_type"])
        require_numeric(input_type, options.get("func"))
        formats = {".pt2": "export", ".pt": "torchscript"}
        fmt = formats.get(source.suffix.lower())
        if fmt is None:
            raise ValueError(f"{source}: expected a .pt2 (torch.export) or .pt (TorchScript) file")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FORMATS[fmt]
        shutil.copyfile(source, path)
        manifest: dict[str, Any] = {
            "deployer": DEPLOYER, "loader": LOADER, "input_type": input_type,
            "framework": "torch", "framework_version": torch.__version__, "format": fmt, "model_file": path.name,
        }
        found = _program_input(path) if fmt == "export" else None
        item_shape = list(options.get("input_shape") or (found[0] if found else []))
        dtype = options.get("input_dtype") or (found[1] if found else None)
        if dtype:
            manifest["input_dtype"] = str(dtype)
        if item_shape:
            manifest["n_features"] = int(np.prod(item_shape))
            if len(item_shape) > 1:
                manifest["item_shape"] = item_shape
        sample = options.get("sample_input")
        if sample is not None and np.ndim(sample) > 1:
            sample = np.asarray(sample).reshape(len(sample), -1)
        return finish_manifest(directory, manifest, options, sample)

    @staticmethod
    def _write(module: Any, fmt: str, example: Any, path: Path) -> None:
        import torch

        if fmt == "export":
            if example is None:
                raise ValueError("torch.export needs an example input: pass sample_input (a batch) or input_shape "
                                 "(one input's shape), or format='torchscript'")
            batch = torch.export.Dim("batch")
            program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, path)
            return
        try:
            scripted = torch.jit.script(module)
        except Exception as exc:
            if example is None:
                raise ValueError(f"torch.jit.script failed ({exc}); pass sample_input so that the module can be "
                                 "traced instead") from exc
            scripted = torch.jit.trace(module, example)
        torch.jit.save(scripted, str(path))


def deploy_pytorch_model(clipper_conn: Any, name: str, version: Any, input_type: str,
                         func: Callable[[Any, Any], Any] | None = None, pytorch_model: Any = None,
                         base_image: str = "default", labels: list[str] | None = None, registry: str | None = None,
                         num_replicas: int = 1, batch_size: int = -1, pkgs_to_install: list[str] | None = None, *,
                         format: str = "export", sample_input: Any = None, input_shape: Sequence[int] | None = None,
                         input_dtype: str | None = None, make_current: bool = True) -> None:
    """Save a PyTorch module, build it into a model the container manager runs, register it as the current
    version of ``name`` and start its replicas.

    The common case needs no ``func``: ``deploy_pytorch_model(conn, "mlp", 1, "floats", pytorch_model=net)``
    answers each input with its row of ``net(batch)``, one forward pass per batch under
    ``torch.inference_mode``. Clipper's ``func(model, inputs) -> list`` is still accepted.

    :param func: optional ``func(model, inputs) -> list``; ``model`` is the loaded program (callable like
        the module's ``forward``), ``inputs`` the batch as numpy
    :param pytorch_model: the ``torch.nn.Module``
    :param format: ``"export"`` (torch.export, default) or ``"torchscript"``
    :param sample_input: a batch the module is traced with and the replica warms up with; needed by
        torch.export unless ``input_shape`` is given or the module starts with a ``Linear`` layer
    :param input_shape: one input's shape as the module takes it (flat inputs are reshaped to it)
    :param input_dtype: the input tensor's dtype name (default: the module's parameters' dtype)
    :param make_current: False: register the version without making it current (its replicas start, the
        current version keeps every query), e.g. to roll it out with ``start_rollout``
    """
    if pytorch_model is None:
        raise TypeError("deploy_pytorch_model() needs pytorch_model, a torch.nn.Module")
    target = deploy_target(clipper_conn, make_current)
    PyTorchDeployer().deploy(target, name, version, input_type, pytorch_model, base_image=base_image,
                             labels=labels, registry=registry, num_replicas=num_replicas, batch_size=batch_size,
                             pkgs_to_install=pkgs_to_install, func=func, format=format, sample_input=sample_input,
                             input_shape=input_shape, input_dtype=input_dtype)


def create_endpoint(clipper_conn: Any, name: str, input_type: str, func: Callable[[Any, Any], Any] | None = None,
                    pytorch_model: Any = None, default_output: str = "None", version: Any = 1,
                    slo_micros: int = 3000000, labels: list[str] | None = None, registry: str | None = None,
                    base_image: str = "default", num_replicas: int = 1, batch_size: int = -1,
                    pkgs_to_install: list[str] | None = None, *, format: str = "export", sample_input: Any = None,
                    input_shape: Sequence[int] | None = None, input_dtype: str | None = None) -> None:
    """Register an app named ``name``, deploy ``pytorch_model`` as model ``name`` and link the two."""
    clipper_conn.register_application(name, input_type, default_output, slo_micros)
    deploy_pytorch_model(clipper_conn, name, version, input_type, func, pytorch_model, base_image, labels, registry,
                         num_replicas, batch_size, pkgs_to_install, format=format, sample_input=sample_input,
                         input_shape=input_shape, input_dtype=input_dtype)
    clipper_conn.link_model_to_app(name, name)
