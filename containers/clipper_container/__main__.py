"""``python -m clipper_container``: load a model directory and serve it to a clipper frontend.

Options fall back to Clipper's environment variables, then to the model's manifest::

    --model-dir DIR            CLIPPER_MODEL_PATH
    --frontend tcp://H:P       tcp://$CLIPPER_IP:$CLIPPER_PORT (default tcp://127.0.0.1:7000)
    --name N                   CLIPPER_MODEL_NAME, else the manifest's "name"
    --version V                CLIPPER_MODEL_VERSION, else the manifest's "version"
    --input-type T             CLIPPER_INPUT_TYPE, else the manifest's "input_type"

Exit status: 0 after a graceful stop (SIGTERM/SIGINT), 1 on an unexpected failure, 2 for bad arguments,
3 when the frontend rejected the container, 4 when the model could not be loaded (including an incompatible
environment: restarting will not help).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from clipper_container import __version__, tracing
from clipper_container.loading import load_model
from clipper_container.manifest import IncompatibleModel, ManifestError, read_manifest
from clipper_container.runtime import DEFAULT_DRAIN_SECONDS, ContainerRuntime

log = logging.getLogger("clipper_container")

EXIT_USAGE = 2
EXIT_LOAD_FAILED = 4


def _default_frontend() -> str:
    ip = os.environ.get("CLIPPER_IP") or "127.0.0.1"
    port = os.environ.get("CLIPPER_PORT") or "7000"
    return f"tcp://{ip}:{port}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m clipper_container",
                                description="Serve a clipper model directory to a clipper frontend.")
    p.add_argument("--model-dir", default=os.environ.get("CLIPPER_MODEL_PATH"),
                   help="model directory with clipper_model.json (env CLIPPER_MODEL_PATH)")
    p.add_argument("--frontend", default=None,
                   help="frontend RPC address (default tcp://$CLIPPER_IP:$CLIPPER_PORT, tcp://127.0.0.1:7000)")
    p.add_argument("--name", default=os.environ.get("CLIPPER_MODEL_NAME"),
                   help="model name (env CLIPPER_MODEL_NAME, else the manifest)")
    p.add_argument("--version", default=os.environ.get("CLIPPER_MODEL_VERSION"),
                   help="model version (env CLIPPER_MODEL_VERSION, else the manifest)")
    p.add_argument("--input-type", default=os.environ.get("CLIPPER_INPUT_TYPE"),
                   help="input type (env CLIPPER_INPUT_TYPE, else the manifest)")
    p.add_argument("--heartbeat-interval", type=float, default=0.5,
                   help="seconds between heartbeats until the frontend's WELCOME sets it (default 0.5)")
    p.add_argument("--max-batch-size", type=int, default=None,
                   help="largest batch the model accepts, -1 for any (default: the manifest's, else -1)")
    p.add_argument("--ready-file", default=None, help="file written once the frontend has welcomed us")
    p.add_argument("--drain-seconds", type=float,
                   default=float(os.environ.get("CLIPPER_DRAIN_SECONDS") or DEFAULT_DRAIN_SECONDS),
                   help="on SIGTERM, how long to finish the batches held before abandoning those not started "
                        f"(CLIPPER_DRAIN_SECONDS, default {DEFAULT_DRAIN_SECONDS:g})")
    p.add_argument("--log-level", default=os.environ.get("CLIPPER_LOG_LEVEL", "INFO"),
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    return p


def freeze_heap() -> None:
    """Move everything alive now (the model, its framework: 300,000+ objects once torch is imported) out of the
    garbage collector's reach. Those objects live as long as the process, yet every full collection walked them
    all: 0.2 s with torch loaded, a pause every query queued behind it waited out. Collections now scan only
    what batches allocate."""
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the container; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s clipper_container[%(process)d]: %(message)s")
    if not args.model_dir:
        parser.print_usage(sys.stderr)
        log.error("no model directory: pass --model-dir or set CLIPPER_MODEL_PATH")
        return EXIT_USAGE
    if args.heartbeat_interval <= 0:
        log.error("--heartbeat-interval must be positive")
        return EXIT_USAGE
    frontend = args.frontend or _default_frontend()
    if "://" not in frontend:
        frontend = f"tcp://{frontend}"

    try:
        manifest = read_manifest(args.model_dir)
    except ManifestError as exc:
        log.error("%s", exc)
        return EXIT_LOAD_FAILED
    name = args.name or manifest.get("name")
    version = args.version or manifest.get("version")
    input_type = args.input_type or manifest.get("input_type")
    missing = [opt for opt, value in (("--name", name), ("--version", version)) if value in (None, "")]
    if missing:
        log.error("model %s unknown: pass %s (or set it in the manifest)", " and ".join(missing),
                  " and ".join(missing))
        return EXIT_USAGE
    max_batch_size = args.max_batch_size if args.max_batch_size is not None else manifest.get("max_batch_size", -1)

    log.info("clipper_container %s loading %s:%s from %s", __version__, name, version, args.model_dir)
    try:
        predictor = load_model(args.model_dir, {**manifest, "name": name})
    except (IncompatibleModel, ManifestError) as exc:
        log.error("%s", exc)
        return EXIT_LOAD_FAILED
    except Exception:
        log.exception("loading the model in %s failed", args.model_dir)
        return EXIT_LOAD_FAILED

    freeze_heap()
    runtime = ContainerRuntime(predictor, frontend=frontend, model_name=str(name), model_version=str(version),
                               input_type=str(input_type), heartbeat_interval=args.heartbeat_interval,
                               max_batch_size=int(max_batch_size), ready_file=args.ready_file,
                               drain_seconds=args.drain_seconds)
    tracing.configure(f"clipper-model {name}:{version}")  # only when the OTEL_* variables ask for it
    try:
        return runtime.run()
    finally:
        tracing.shutdown()  # export the spans still buffered


if __name__ == "__main__":
    sys.exit(main())
