"""The packages of clipper_core layer cleanly: a unit (a top-level module or package) imports only units of a
lower layer or itself, so there are no import cycles between units (docs/architecture.md shows the layers).

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import clipper_core

CORE = Path(clipper_core.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "version"},                                               # what everything may raise or say
    {"config", "names", "inputs", "metrics", "processes", "progress", "settings_checks", "timeouts",  # foundation
     "tracing"},
    {"state", "autoscaling", "rollouts"},                                # records, stores and settings
    {"interfaces", "tenancy"},                                           # plugin ABCs; limits and API keys
    {"hookspecs", "policies", "rpc", "http_api", "openapi"},             # hooks and shared plumbing
    {"plugins"},                                                         # the plugin host and registry
    {"serving"},                                                         # the protocol-neutral query path
    {"context"},                                                         # what both web apps share
    {"frontend", "management", "client"},                                # adapters and the user's side
    {"default_plugins"},                                                 # built-ins, registered as plugins
    {"server", "deployers", "declarative"},                              # process assembly; Clipper's API; apply
    {"cli", "testing"},                                                  # entry points
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(path: Path) -> str:
    rel = path.relative_to(CORE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(tree: ast.AST) -> set[str]:
    units: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "clipper_core" else [f"clipper_core.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "clipper_core" and len(parts) > 1:
                units.add(parts[1])
    return units


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(p) for p in CORE.rglob("*.py")} - {"__init__"}
    assert units == set(LAYER), f"add new units to LAYERS: {sorted(units - set(LAYER))}"


def test_no_unit_imports_one_above_it() -> None:
    upward = []
    for path in sorted(CORE.rglob("*.py")):
        unit = unit_of(path)
        if unit == "__init__":
            continue  # the package's public surface re-exports from every layer (lazily)
        for other in imported_units(ast.parse(path.read_text())):
            if other != unit and other in LAYER and LAYER[other] >= LAYER[unit]:
                upward.append(f"{path.relative_to(CORE)} ({unit}, layer {LAYER[unit]}) imports {other} "
                              f"(layer {LAYER[other]})")
    assert not upward, "\n".join(upward)
