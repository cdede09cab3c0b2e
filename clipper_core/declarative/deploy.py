"""``clipper deploy MODEL``: a ``FILE.py:FUNCTION`` closure, or a framework model file (``model.skops``,
``model.json``, ``model.pt2``, ``model.keras``, a SavedModel directory...) through an installed deployer, as one
model version; then it waits for the replicas (a progress line on a terminal)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipper_core.declarative.sources import CLOSURE_DEPLOYER
from clipper_core.errors import ClipperException

if TYPE_CHECKING:
    from clipper_core.client.connection import ClipperConnection
    from clipper_core.plugins import PluginRegistry

__all__ = ["add_deploy_arguments", "deploy_command", "deployers_epilog"]


def is_function(model: str) -> bool:
    """Whether ``model`` is ``FILE.py:FUNCTION`` (rather than a model file)."""
    path, sep, func = model.rpartition(":")
    return bool(sep) and path.endswith(".py") and func.isidentifier()


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs as the deployer's save options: a VALUE that is JSON is read as JSON
    (``sample_input=[[1,2]]``, ``input_shape=[1,8,8]``), any other as text (``method=predict_proba``)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ClipperException(f"--option {pair!r}: expected KEY=VALUE, e.g. method=predict_proba")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def deployers_epilog(registry: PluginRegistry) -> str:
    """The installed deployers and the model files each takes, for ``clipper deploy --help``."""
    lines = ["installed deployers (--deployer; third-party deployer plugins appear here once installed):"]
    for name in registry.deployers.names():
        cls = registry.deployers.get(name)
        takes = [*cls.file_suffixes, *(["a directory"] if cls.accepts_directory else [])]
        if name == CLOSURE_DEPLOYER:
            takes = ["FILE.py:FUNCTION"]
        lines.append(f"  {name:<16} {', '.join(takes) or 'Python API only'}  ({registry.deployers.owner(name)})")
    return "\n".join(lines)


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="FILE.py:FUNCTION (python_closure), or a model file or directory for a deployer")
    parser.add_argument("--deployer", default=None,
                        help="default: python_closure for FILE.py:FUNCTION, else the one deployer taking the file")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--input-type", required=True)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=-1)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a save option of the deployer (JSON or text): method=predict_proba, "
                             "sample_input=[[0,1]], input_shape=[1,8,8], signature=serving_default ...")
    parser.add_argument("--app", default=None, help="link the model to this app")
    parser.add_argument("--not-current", action="store_true",
                        help="keep the model's current version: the new one runs without traffic (to roll it out)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the replicas to connect (300; 0: do not wait)")


def deploy_command(args: argparse.Namespace, conn: ClipperConnection, registry: PluginRegistry) -> int:
    from clipper_core.declarative.apply import wait_for_replicas  # not imported to build the parser
    from clipper_core.declarative.sources import deployer_for, model_directory
    from clipper_core.progress import Progress

    options = parse_options(args.option)
    if is_function(args.model):
        kind, value = "module", args.model
        if args.deployer not in (None, CLOSURE_DEPLOYER):
            raise ClipperException(f"{args.model} is a function: it is deployed by {CLOSURE_DEPLOYER}, not "
                                   f"{args.deployer!r}")
        deployer = CLOSURE_DEPLOYER
    else:
        path = Path(args.model)
        if not path.exists():
            raise ClipperException(f"no such file or directory: {path} (expected FILE.py:FUNCTION or a model file)")
        kind, value = "file", str(path.resolve())
        deployer = deployer_for(registry, path, args.deployer).name
    progress = Progress()
    with model_directory(registry, kind, value, deployer, name=args.name, version=args.version,
                         input_type=args.input_type, options=options) as directory:
        progress.update(f"{args.name}:{args.version}: building with {deployer}")
        conn.build_and_deploy_model(args.name, args.version, args.input_type, directory,
                                    num_replicas=args.replicas, batch_size=args.batch_size,
                                    make_current=not args.not_current)
    progress.done()
    if args.timeout > 0 and args.replicas > 0:
        wait_for_replicas(conn, args.name, str(args.version), args.replicas, timeout=args.timeout,
                          progress=progress)
    if args.app:
        conn.link_model_to_app(args.app, args.name)
    print(f"deployed {args.name}:{args.version} with {args.replicas} replica(s)"
          + (" (not current)" if args.not_current else "") + (f", linked to {args.app}" if args.app else ""))
    return 0
