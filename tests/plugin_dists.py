"""The third-party distributions the plugin tests (test_plugins*.py) install with pip, each into its own site dir
(the ``sites`` and ``activate`` fixtures are tests/conftest.py's): their sources, entry points and an in-tree
PEP 517 backend that packs them as wheels."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BACKEND = '''
"""A minimal in-tree PEP 517 backend: the files and entry points listed in wheel.json, packed as a wheel."""
import base64, hashlib, json, zipfile
from pathlib import Path


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    spec = json.loads(Path("wheel.json").read_text())
    stem = f"{spec['name'].replace('-', '_')}-{spec['version']}"
    info = f"{stem}.dist-info"
    files = {path: Path(path).read_bytes() for path in spec["files"]}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {spec['name']}\\nVersion: {spec['version']}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/entry_points.txt"] = spec["entry_points"].encode()
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
'''


@dataclass(frozen=True)
class Dist:
    name: str
    files: dict[str, str]
    entry_points: dict[str, str]
    version: str = "1.2.3"

    @property
    def modules(self) -> set[str]:
        return {path.split("/")[0].removesuffix(".py") for path in self.files}


ACME_POLICY = """
    from clipper_core.interfaces import SelectionPolicy


    class AcmeFirst(SelectionPolicy):
        \"\"\"The first linked model's output, tagged so that a test can see this policy answered.\"\"\"

        name = "acme-first"

        def select(self, state, query, models):
            return models[:1]

        def combine(self, state, query, predictions):
            for output in predictions.values():
                return f"acme:{output}", False, ""
            return self.app.default_output, True, "No connected models found for query"
"""
ACME_HOOKS = """
    from clipper_core import hookimpl


    @hookimpl
    def clipper_register_policies():
        from acme_policy import AcmeFirst

        return [AcmeFirst]
"""
OTHER_POLICIES = """
    from clipper_core import hookimpl
    from clipper_core.default_plugins.default_policy import DefaultPolicy


    class AlsoAcmeFirst(DefaultPolicy):
        name = "acme-first"


    @hookimpl
    def clipper_register_policies():
        return [AlsoAcmeFirst]
"""
CLASH_CACHE = """
    from clipper_core import hookimpl
    from clipper_core.default_plugins.lru_cache import LRUCache


    class MyLRU(LRUCache):
        name = "lru"


    @hookimpl
    def clipper_register_caches():
        return [MyLRU]
"""
ACME_OPS = """
    from aiohttp import web

    from clipper_core import hookimpl
    from clipper_core.interfaces import SelectionPolicy

    STARTED = []
    STOPPED = []


    class Boom(SelectionPolicy):
        \"\"\"Fails every query: RuntimeError (handled by the hook below) or ValueError (not handled).\"\"\"

        name = "boom"

        def select(self, state, query, models):
            if self.config.get("error") == "runtime":
                raise RuntimeError("kaboom")
            raise ValueError("unhandled")

        def combine(self, state, query, predictions):
            raise AssertionError("never reached")


    @hookimpl
    def clipper_register_policies():
        return [Boom]


    @hookimpl
    def clipper_startup(app):
        STARTED.append(app)


    @hookimpl
    def clipper_shutdown(app):
        STOPPED.append(app)


    @hookimpl
    def clipper_handle_exception(app, request, exception):
        if isinstance(exception, RuntimeError):
            return web.json_response({"error": "acme", "cause": f"handled {exception} on {request.path}"},
                                     status=503)
        return None
"""

DISTS = {d.name: d for d in (
    Dist("acme-clipper-policy", {"acme_policy/__init__.py": ACME_POLICY, "acme_policy/hooks.py": ACME_HOOKS},
         {"acme": "acme_policy.hooks"}),
    Dist("other-policies", {"other_policies.py": OTHER_POLICIES}, {"other": "other_policies"}, version="0.9"),
    Dist("clash-cache", {"clash_cache.py": CLASH_CACHE}, {"clash": "clash_cache"}),
    Dist("acme-ops", {"acme_ops.py": ACME_OPS}, {"acme-ops": "acme_ops"}),
    Dist("needs-torch", {"needs_torch.py": "import torch_that_is_not_installed\n"}, {"needs-torch": "needs_torch"}),
    Dist("broken-runtime", {"broken_runtime.py": "raise RuntimeError('boom at import')\n"},
         {"broken-runtime": "broken_runtime"}),
    Dist("broken-import", {"broken_import.py": "from os import no_such_name\n"}, {"broken-import": "broken_import"}),
    Dist("broken-syntax", {"broken_syntax.py": "def broken(:\n"}, {"broken-syntax": "broken_syntax"}),
)}


def write_project(root: Path, dist: Dist) -> Path:
    project = root / "src" / dist.name
    for path, source in dist.files.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(textwrap.dedent(source))
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{dist.name}"\nversion = "{dist.version}"\n\n'
        "[project.entry-points.clipper]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in dist.entry_points.items()))
    entry_points = "[clipper]\n" + "".join(f"{k} = {v}\n" for k, v in dist.entry_points.items())
    (project / "wheel.json").write_text(json.dumps({"name": dist.name, "version": dist.version,
                                                    "files": sorted(dist.files), "entry_points": entry_points}))
    return project


Activate = Callable[..., None]
