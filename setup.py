"""Build hook of clipper-core: compile the V2 gRPC protocol (``clipper_core/frontend/grpc/grpc_predict_v2.proto``)
into Python modules with grpcio-tools' protoc whenever setuptools builds the package.

Everything else about the distribution is in pyproject.toml. ``build_grpc`` is a sub-command of ``build``, so it
runs in ``pip wheel .`` / ``python -m build`` (the modules are written into the wheel's build directory) and in
``pip install -e .`` (editable: written beside the .proto in the source tree, where the editable finder imports
them; they are git-ignored). A failure of protoc fails the build: an install without the gRPC modules would
only fail later, when a server is started with ``CLIPPER_GRPC_PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build

ROOT = Path(__file__).resolve().parent
PROTO = "clipper_core/frontend/grpc/grpc_predict_v2.proto"
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


class build_grpc(Command):
    """Compile the .proto (grpcio-tools' protoc) into ``*_pb2.py``, its ``.pyi`` stub and ``*_pb2_grpc.py``."""

    description = "compile the V2 gRPC .proto into Python modules (grpcio-tools)"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def _out(self) -> Path:
        return ROOT if self.editable_mode or self.build_lib is None else Path(self.build_lib)

    def run(self) -> None:
        from grpc_tools import protoc  # a build requirement (pyproject.toml [build-system])

        out = self._out()
        (out / PROTO).parent.mkdir(parents=True, exist_ok=True)
        # -I the source root: the module path follows the package (clipper_core.frontend.grpc....), so the
        # generated *_pb2_grpc.py imports its *_pb2 by its full name.
        args = ["grpc_tools.protoc", f"-I{ROOT}", f"--python_out={out}", f"--pyi_out={out}",
                f"--grpc_python_out={out}", str(ROOT / PROTO)]
        code = protoc.main(args)
        if code != 0:
            raise RuntimeError(f"protoc failed ({code}) compiling {PROTO}: {' '.join(args)}")

    def get_source_files(self) -> list[str]:
        return [PROTO]

    def get_outputs(self) -> list[str]:
        folder = self._out() / os.path.dirname(PROTO)
        return [str(folder / name) for name in GENERATED]

    def get_output_mapping(self) -> dict[str, str]:
        return {}


class build_with_grpc(build):
    sub_commands = [*build.sub_commands, ("build_grpc", None)]


setup(cmdclass={"build": build_with_grpc, "build_grpc": build_grpc})
