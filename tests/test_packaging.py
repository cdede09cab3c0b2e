"""Every package of the repository as it is published: clipper-core (the root), clipper-container (containers/)
and each plugins/*/*/ package, found by their pyproject.toml.

The fast tests read the sources: one version everywhere (clipper_core/version.py's), siblings pinned to it, a
README for each package's page, a CHANGELOG section, and scripts/set-version.py moving them all. The slow ones
build every wheel and sdist from a copy of the tree's source files (``python -m build``: the sdist, then the wheel
from the unpacked sdist), run ``twine check --strict``, install the built wheels into an empty venv and run the
quickstart from it, away from the source tree.
"""

from __future__ import annotations

import datetime
import email.message
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from clipper_core.version import __version__

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [ROOT, ROOT / "containers", *sorted(p.parent for p in ROOT.glob("plugins/*/*/pyproject.toml"))]
IDS = [str(d.relative_to(ROOT)) or "root" for d in PACKAGE_DIRS]
SCRIPT = ROOT / "scripts" / "set-version.py"
SOURCES = [*sorted((ROOT / "containers" / "clipper_container").rglob("*.py")),
           *sorted(ROOT.glob("plugins/*/*/src/**/*.py"))]
VERSION_LINE = re.compile(r'^(__version__|IMAGE_VERSION) = "([^"]*)"$', re.MULTILINE)


def project(package_dir: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
    return project


def sibling_names(dirs: list[Path] = PACKAGE_DIRS) -> set[str]:
    return {canonicalize_name(project(d)["name"]) for d in dirs}


def requirements(package: dict[str, Any]) -> list[Requirement]:
    listed = list(package.get("dependencies", []))
    for extra in package.get("optional-dependencies", {}).values():
        listed += extra
    return [Requirement(r) for r in listed]


# -- the sources: one version, pinned siblings, READMEs, the CHANGELOG --------------------------------------

@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=IDS)
def test_every_package_is_at_clipper_cores_version(package_dir: Path) -> None:
    assert project(package_dir)["version"] == __version__, \
        f"{package_dir / 'pyproject.toml'}: run python3 scripts/set-version.py {__version__}"


def test_the_sources_say_that_version_too() -> None:
    """clipper_container's and the plugins' ``__version__``, and the Docker images' tag (build.sh tags them with
    the version)."""
    import clipper_container
    from clipper_docker import names

    assert clipper_container.__version__ == names.IMAGE_VERSION == __version__
    said = {str(p.relative_to(ROOT)): VERSION_LINE.findall(p.read_text()) for p in SOURCES}
    said = {path: lines for path, lines in said.items() if lines}
    assert "plugins/container_managers/docker/src/clipper_docker/names.py" in said
    assert all(value == __version__ for lines in said.values() for _, value in lines), said


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=IDS)
def test_siblings_are_required_at_exactly_that_version(package_dir: Path) -> None:
    siblings = sibling_names()
    for req in requirements(project(package_dir)):
        if canonicalize_name(req.name) in siblings:
            assert str(req.specifier) == f"=={__version__}", \
                f"{package_dir / 'pyproject.toml'}: {req} should be {req.name}=={__version__}"


def test_clipper_core_requires_the_container_runtime() -> None:
    assert f"clipper-container=={__version__}" in [str(r) for r in requirements(project(ROOT))]


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=IDS)
def test_every_package_has_a_readme_for_its_page(package_dir: Path) -> None:
    assert project(package_dir).get("readme") == "README.md", f"{package_dir / 'pyproject.toml'}: readme"
    text = (package_dir / "README.md").read_text()
    assert text.startswith("# ") and len(text.splitlines()) > 5, f"{package_dir / 'README.md'} says too little"


def test_the_changelog_has_a_section_for_the_version() -> None:
    lines = (ROOT / "CHANGELOG.md").read_text().splitlines()
    assert "## [Unreleased]" in lines
    assert any(line.startswith(f"## [{__version__}] - ") for line in lines), f"no section for {__version__}"


# -- scripts/set-version.py on a copy of the files it reads and writes --------------------------------------

@pytest.fixture
def version_tree(tmp_path: Path) -> Path:
    """The files set-version.py touches, copied with their places in the tree."""
    files = [SCRIPT, ROOT / "clipper_core" / "version.py", ROOT / "CHANGELOG.md", *SOURCES,
             *(d / "pyproject.toml" for d in PACKAGE_DIRS)]
    for path in files:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return tmp_path


def run_script(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(tree / "scripts" / "set-version.py"), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_set_version_checks_the_tree() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{len(PACKAGE_DIRS)} packages at {__version__}, pinned to each other"


def without_version(line: str, version: str) -> str:
    return line.replace(f"=={version}", "").replace(f'"{version}"', '""')


def test_set_version_moves_every_package_and_the_changelog(version_tree: Path) -> None:
    before = {p: p.read_text() for p in version_tree.rglob("*") if p.is_file()}
    done = run_script(version_tree, "9.8.7")
    assert done.returncode == 0, done.stderr
    dirs = [version_tree / d.relative_to(ROOT) for d in PACKAGE_DIRS]
    siblings = sibling_names(dirs)
    for package_dir in dirs:
        package = project(package_dir)
        assert package["version"] == "9.8.7", package_dir
        pinned = [str(r.specifier) for r in requirements(package) if canonicalize_name(r.name) in siblings]
        assert pinned == ["==9.8.7"] * len(pinned), (package_dir, pinned)
        old = before[package_dir / "pyproject.toml"].splitlines()
        new = (package_dir / "pyproject.toml").read_text().splitlines()
        changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
        assert changed and all(without_version(a, __version__) == without_version(b, "9.8.7") for a, b in changed), \
            changed  # only versions and pins rewritten
    for rel in ("clipper_core/version.py", "containers/clipper_container/__init__.py",
                "plugins/container_managers/docker/src/clipper_docker/__init__.py"):
        assert '__version__ = "9.8.7"' in (version_tree / rel).read_text()
    for source in SOURCES:
        copy = version_tree / source.relative_to(ROOT)
        lines = zip(before[copy].splitlines(), copy.read_text().splitlines(), strict=True)
        edits = [(a, b) for a, b in lines if a != b]
        assert all(VERSION_LINE.match(a) and VERSION_LINE.match(b) for a, b in edits), (source, edits)
    names = (version_tree / "plugins/container_managers/docker/src/clipper_docker/names.py").read_text()
    assert 'IMAGE_VERSION = "9.8.7"' in names and f'"{__version__}"' not in names
    changelog = (version_tree / "CHANGELOG.md").read_text()
    assert f"## [Unreleased]\n\n## [9.8.7] - {datetime.date.today().isoformat()}\n" in changelog
    assert f"## [{__version__}] - " in changelog
    assert f"{len(dirs)} packages at 9.8.7" in done.stdout
    again = run_script(version_tree, "9.8.7")
    assert again.returncode == 0 and "updated" not in again.stdout  # idempotent


def test_set_version_names_a_package_out_of_step(version_tree: Path) -> None:
    pyproject = version_tree / "plugins" / "policies" / "bandits" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{__version__}"', 'version = "0.0.1"', 1))
    done = run_script(version_tree)
    assert done.returncode == 1
    assert f"plugins/policies/bandits/pyproject.toml: clipper-policy-bandits is at version '0.0.1', " \
           f"not {__version__}" in done.stderr


def test_set_version_refuses_what_is_not_a_version(version_tree: Path) -> None:
    done = run_script(version_tree, "1.2")
    assert done.returncode != 0 and "'1.2' is not a version of the form X.Y.Z" in done.stderr
    assert '__version__ = "1.2"' not in (version_tree / "clipper_core" / "version.py").read_text()


# -- built: wheels and sdists --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Built:
    name: str
    version: str
    wheel: Path
    sdist: Path


def source_copy(target: Path) -> Path:
    """The tree's source files (tracked, or new and not git-ignored), as a fresh clone would have them: no build
    directories, egg-info or modules an editable install generated."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        path = ROOT / rel
        if path.is_file():  # a tracked file deleted in the work tree is not copied
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
    return target


def build(package_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    # No build isolation: [build-system]'s requirements are in the test venv (the dev extra), and `build` checks
    # that they are satisfied there before building.
    return subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(package_dir)],
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every package built into one directory, by canonical name."""
    source = source_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    dirs = [source / d.relative_to(ROOT) for d in PACKAGE_DIRS]
    with ThreadPoolExecutor(2) as pool:
        for package_dir, done in zip(dirs, pool.map(lambda d: build(d, out), dirs), strict=True):
            assert done.returncode == 0, f"python -m build {package_dir} failed:\n{done.stdout[-3000:]}\n" \
                                         f"{done.stderr[-3000:]}"
    found: dict[str, Built] = {}
    for package_dir in dirs:
        name = project(package_dir)["name"]
        stem = f"{name.replace('-', '_')}-{__version__}"
        wheels, sdists = list(out.glob(f"{stem}-*.whl")), list(out.glob(f"{stem}.tar.gz"))
        assert len(wheels) == 1 and len(sdists) == 1, (name, sorted(p.name for p in out.iterdir()))
        found[canonicalize_name(name)] = Built(name, __version__, wheels[0], sdists[0])
    return found


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(name).decode())


def sdist_names(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as tf:
        return [m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name]


@pytest.mark.timeout(900)
def test_every_package_builds_a_wheel_and_an_sdist_that_twine_accepts(built: dict[str, Built]) -> None:
    assert set(built) == sibling_names()
    files = [str(p) for b in built.values() for p in (b.wheel, b.sdist)]
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == len(files), done.stdout


@pytest.mark.timeout(900)
def test_each_page_shows_the_packages_readme_and_its_pins(built: dict[str, Built]) -> None:
    siblings = set(built)
    for package_dir in PACKAGE_DIRS:
        package = built[canonicalize_name(project(package_dir)["name"])]
        meta = wheel_metadata(package.wheel)
        assert (meta["Name"], meta["Version"]) == (package.name, __version__)
        assert meta["Description-Content-Type"].startswith("text/markdown"), package.name
        readme = (package_dir / "README.md").read_text()
        body = meta.get_payload()
        assert isinstance(body, str) and body.strip() == readme.strip(), package.name
        assert meta["License-Expression"] == "Apache-2.0", package.name
        pins = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
        for req in pins:
            if canonicalize_name(req.name) in siblings:
                assert str(req.specifier) == f"=={__version__}", (package.name, str(req))
        assert {"PKG-INFO", "pyproject.toml", "README.md"} <= set(sdist_names(package.sdist)), package.name


@pytest.mark.timeout(900)
def test_clipper_cores_sdist_holds_what_its_build_needs(built: dict[str, Built]) -> None:
    """The wheel was built from the unpacked sdist, so the .proto and setup.py in it are enough to generate the
    gRPC modules; the sdist carries sources only."""
    core = built["clipper-core"]
    names = sdist_names(core.sdist)
    assert {"setup.py", "MANIFEST.in", "CHANGELOG.md", "clipper_core/frontend/grpc/grpc_predict_v2.proto"} <= set(names)
    assert not [n for n in names if n.startswith("tests/") or "_pb2" in n], names
    with zipfile.ZipFile(core.wheel) as zf:
        wheel_names = set(zf.namelist())
    grpc = "clipper_core/frontend/grpc/"
    assert {f"{grpc}grpc_predict_v2.proto", f"{grpc}grpc_predict_v2_pb2.py", f"{grpc}grpc_predict_v2_pb2.pyi",
            f"{grpc}grpc_predict_v2_pb2_grpc.py"} <= wheel_names
    assert not [n for n in wheel_names if n.startswith(("tests/", "plugins/", "containers/"))]


# -- the built wheels in an empty venv ---------------------------------------------------------------------

@dataclass
class Venv:
    path: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def run(self, *cmd: str, cwd: Path, timeout: float = 180,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=cwd, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def pip_install(self, *wheels: Path, cwd: Path) -> None:
        # the test venv's pip installs into the empty venv (--python), so the venv needs no pip of its own
        done = self.run(sys.executable, "-m", "pip", "--python", self.python, "install", "-q", "--no-input",
                        *map(str, wheels), cwd=cwd, timeout=600)
        assert done.returncode == 0, f"pip install {[w.name for w in wheels]}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def empty_venv(tmp_path: Path) -> Iterator[Venv]:
    path = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith(("CLIPPER_", "OTEL_"))}
    dirs = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(ROOT)]
    env.update(PATH=os.pathsep.join([str(path / "bin"), *dirs]), VIRTUAL_ENV=str(path))
    yield Venv(path, env)


def quickstart(venv: Venv, cwd: Path, home: Path) -> dict[str, Any]:
    """examples/quickstart.py run by the venv's Python from ``cwd``, on free ports under ``home``; stopped after."""
    script = cwd / "quickstart.py"
    shutil.copy(ROOT / "examples" / "quickstart.py", script)
    server = {"CLIPPER_HOME": str(home), "CLIPPER_QUERY_PORT": "0", "CLIPPER_MANAGEMENT_PORT": "0",
              "CLIPPER_RPC_PORT": "0"}
    try:
        done = venv.run(venv.python, str(script), cwd=cwd, env=server)
        assert done.returncode == 0, f"quickstart:\n{done.stdout}\n{done.stderr[-4000:]}"
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        stopped = venv.run(str(venv.path / "bin" / "clipper"), "stop", cwd=cwd, env=server)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not (home / "runtime.json").exists()
        return answer
    finally:
        if (home / "runtime.json").exists():
            venv.run(str(venv.path / "bin" / "clipper"), "stop", "--kill", cwd=cwd, env=server)


@pytest.mark.timeout(900)
def test_the_quickstart_runs_from_the_built_wheels_in_an_empty_venv(built: dict[str, Built], empty_venv: Venv,
                                                                       tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    main_job = [built["clipper-core"].wheel, built["clipper-container"].wheel]
    empty_venv.pip_install(*main_job, cwd=cwd)

    where = empty_venv.run(empty_venv.python, "-c", "import clipper_container, clipper_core, json, sys; print(json."
                           "dumps([clipper_core.__file__, clipper_container.__file__, clipper_core.__version__, "
                           "sys.path]))", cwd=cwd)
    assert where.returncode == 0, where.stderr
    core_file, container_file, version, path = json.loads(where.stdout)
    site = empty_venv.path.resolve()
    assert Path(core_file).resolve().is_relative_to(site) and Path(container_file).resolve().is_relative_to(site)
    assert version == __version__
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)], path  # nothing of the tree

    answer = quickstart(empty_venv, cwd, tmp_path / "home")  # the main job: core and container alone
    assert answer["default"] is False and float(answer["output"]) == pytest.approx(6.6)

    plugins = [b.wheel for name, b in built.items() if name not in ("clipper-core", "clipper-container")]
    empty_venv.pip_install(*plugins, cwd=cwd)  # their frameworks are extras: not installed
    check = empty_venv.run(sys.executable, "-m", "pip", "--python", empty_venv.python, "check", cwd=cwd)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = empty_venv.run(str(empty_venv.path / "bin" / "clipper"), "plugins", "--json", cwd=cwd,
                            env={"CLIPPER_HOME": str(tmp_path / "home")})
    assert listed.returncode == 0, listed.stderr
    distributions = {canonicalize_name(p["distribution"]) for p in json.loads(listed.stdout)}
    assert distributions == set(built) - {"clipper-container"}, distributions  # every plugin's entry point loads

    answer = quickstart(empty_venv, cwd, tmp_path / "home-with-plugins")
    assert answer["default"] is False and float(answer["output"]) == pytest.approx(6.6)
