#!/usr/bin/env python3
"""Every package of the repository in lockstep: one version, ``__version__`` in clipper_core/version.py.

    python3 scripts/set-version.py            # check: every package at that version, pinned to each other
    python3 scripts/set-version.py 0.2.0      # move every package to 0.2.0

The packages are the root (clipper-core), containers/ (clipper-container) and every plugins/*/*/pyproject.toml.
Setting a version rewrites, in place and nothing else of the file: every module-level ``__version__ = "..."``
and ``IMAGE_VERSION = "..."`` (the Docker images' tag) in the packages' sources (clipper_core/version.py,
clipper_container, plugins/*/*/src), each pyproject's ``version``, and every requirement of one of these
packages on another (``clipper-core``, ``clipper-docker``, ...) to ``==<version>``: they are released
together from one tree and tested together, so a plugin asks for exactly the core it was tested with. The
CHANGELOG's ``## [Unreleased]`` section becomes the new version's, dated today, under a fresh empty one.
Standard library only (tomllib: Python 3.11).
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "clipper_core" / "version.py"
CHANGELOG = ROOT / "CHANGELOG.md"
_DUNDER = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
_VERSION_LINE = re.compile(r'^(?P<key>__version__|IMAGE_VERSION) = "(?P<value>[^"]*)"$', re.MULTILINE)
_PROJECT_VERSION = re.compile(r'^(version\s*=\s*)"[^"]*"', re.MULTILINE)
_SCALAR = re.compile(r'^\s*[\w.-]+\s*=\s*"[^"]*"\s*(#.*)?$')
"""A line ``key = "value"`` (``name = "clipper-core"``): never a requirement list."""
_VERSION_FORM = re.compile(r"^\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def pyprojects() -> list[Path]:
    """The pyproject.toml of every package: the root, containers/, then plugins/*/* in name order."""
    return [ROOT / "pyproject.toml", ROOT / "containers" / "pyproject.toml",
            *sorted(ROOT.glob("plugins/*/*/pyproject.toml"))]


def version_files() -> list[Path]:
    """The packages' Python sources that say a version: clipper_core/version.py and every module of
    clipper_container and of the plugins' src/ with a module-level ``__version__`` or ``IMAGE_VERSION`` line."""
    sources = [*sorted((ROOT / "containers" / "clipper_container").rglob("*.py")),
               *sorted(ROOT.glob("plugins/*/*/src/**/*.py"))]
    return [VERSION_FILE, *(p for p in sources if _VERSION_LINE.search(p.read_text()))]


def source_version() -> str:
    """``__version__`` of clipper_core/version.py: the one source of truth."""
    found = _DUNDER.search(VERSION_FILE.read_text())
    if found is None:
        raise SystemExit(f"{VERSION_FILE.relative_to(ROOT)} has no line __version__ = \"X.Y.Z\"")
    return found.group(1)


def _requirement_pattern(names: set[str]) -> re.Pattern[str]:
    """A quoted requirement on one of ``names``, with optional extras, version specifier and marker."""
    alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rf'"(?P<name>{alternatives})(?P<extras>\[[^\]"]*\])?(?P<spec>\s*[=<>!~][^;"]*)?'
                      rf'(?P<marker>;[^"]*)?"', re.IGNORECASE)


def _names() -> dict[Path, str]:
    return {p: tomllib.loads(p.read_text())["project"]["name"] for p in pyprojects()}


def problems() -> list[str]:
    """What is out of step: a package at another version, or a requirement on a sibling not ``==`` the version."""
    want = source_version()
    names = _names()
    siblings = {n.lower() for n in names.values()}
    pattern = _requirement_pattern(siblings)
    found: list[str] = []
    for path in version_files():
        for line in _VERSION_LINE.finditer(path.read_text()):
            if line.group("value") != want:
                found.append(f"{path.relative_to(ROOT)}: {line.group('key')} is {line.group('value')!r}, not {want}")
    for path, name in names.items():
        project = tomllib.loads(path.read_text())["project"]
        rel = path.relative_to(ROOT)
        if project.get("version") != want:
            found.append(f"{rel}: {name} is at version {project.get('version')!r}, not {want}")
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for req in requirements:
            match = pattern.fullmatch(f'"{req}"')
            if match and (match.group("spec") or "").replace(" ", "") != f"=={want}":
                found.append(f"{rel}: {name} requires {req!r}, not {match.group('name')}=={want}")
    return found


def _pinned(match: re.Match[str], version: str) -> str:
    return f'"{match.group("name")}{match.group("extras") or ""}=={version}{match.group("marker") or ""}"'


def set_version(new: str, today: datetime.date | None = None) -> list[Path]:
    """Move every package to ``new``; the files changed."""
    if not _VERSION_FORM.match(new):
        raise SystemExit(f"{new!r} is not a version of the form X.Y.Z (optionally aN, bN, rcN, .postN, .devN)")
    names = _names()
    pattern = _requirement_pattern({n.lower() for n in names.values()})
    changed: list[Path] = []

    def write(path: Path, text: str) -> None:
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path)

    source_version()  # clipper_core/version.py has its line
    for path in version_files():
        write(path, _VERSION_LINE.sub(lambda m: f'{m.group("key")} = "{new}"', path.read_text()))
    for path in names:
        text, count = _PROJECT_VERSION.subn(rf'\g<1>"{new}"', path.read_text(), count=1)
        if count != 1:
            raise SystemExit(f"{path.relative_to(ROOT)}: no line version = \"...\" (a static version is expected)")
        lines = [line if _SCALAR.match(line) else pattern.sub(lambda m: _pinned(m, new), line)
                 for line in text.splitlines(keepends=True)]
        write(path, "".join(lines))
    if CHANGELOG.is_file():
        text = CHANGELOG.read_text()
        if f"## [{new}]" not in text and "## [Unreleased]" in text:
            date = (today or datetime.date.today()).isoformat()
            write(CHANGELOG, text.replace("## [Unreleased]", f"## [Unreleased]\n\n## [{new}] - {date}", 1))
    return changed


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv:
        for path in set_version(argv[0]):
            print(f"updated {path.relative_to(ROOT)}")
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"{len(pyprojects())} packages at {source_version()}, pinned to each other")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
