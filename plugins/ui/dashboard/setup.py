"""Build hook of clipper-dashboard: vendor the charting library (uPlot, from the npm registry, pinned by
``package-lock.json``) into the package whenever setuptools builds it.

Everything else about the distribution is in pyproject.toml. ``build_assets`` is a sub-command of ``build``, so it
runs in ``pip wheel`` / ``python -m build`` (the files go into the wheel's build directory) and in ``pip install
-e`` (editable: into ``src/clipper_dashboard/static/vendor/``, git-ignored). It runs ``npm ci`` beside this file
(install time needs Node.js, npm and the registry; run time needs neither: the page loads only files the package
serves). A failure fails the build: a dashboard without its charts would only fail in the browser.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build

ROOT = Path(__file__).resolve().parent
VENDOR = "clipper_dashboard/static/vendor"
ASSETS = {"uPlot.iife.min.js": "node_modules/uplot/dist/uPlot.iife.min.js",
          "uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css",
          "uPlot.LICENSE": "node_modules/uplot/LICENSE"}


class build_assets(Command):
    """``npm ci`` (the lock file's exact versions), then copy the library's built files into the package."""

    description = "vendor the dashboard's charting library from npm into the package"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def _out(self) -> Path:
        base = ROOT / "src" if self.editable_mode or self.build_lib is None else Path(self.build_lib)
        return base / VENDOR

    def run(self) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("clipper-dashboard needs npm (Node.js) at build time to vendor uPlot; install it "
                               "(Debian: apt-get install npm)")
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT,
                       check=True)
        out = self._out()
        out.mkdir(parents=True, exist_ok=True)
        for name, source in ASSETS.items():
            shutil.copyfile(ROOT / source, out / name)

    def get_source_files(self) -> list[str]:
        return ["package.json", "package-lock.json"]

    def get_outputs(self) -> list[str]:
        return [str(self._out() / name) for name in ASSETS]

    def get_output_mapping(self) -> dict[str, str]:
        return {}


class build_with_assets(build):
    sub_commands = [*build.sub_commands, ("build_assets", None)]


setup(cmdclass={"build": build_with_assets, "build_assets": build_assets})
