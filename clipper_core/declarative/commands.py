"""``clipper apply | diff | export | schema`` (docs/declarative.md). The CLI wires them with :func:`add_commands`,
giving the functions that connect to a clipper and build the plugin registry."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clipper_core.client.connection import ClipperConnection
    from clipper_core.declarative.plan import Plan
    from clipper_core.declarative.spec import Desired
    from clipper_core.plugins import PluginRegistry

__all__ = ["add_commands"]

Connect = Callable[[argparse.Namespace], "ClipperConnection"]
Registry = Callable[[argparse.Namespace], "PluginRegistry"]


def _load(args: argparse.Namespace, registry: PluginRegistry) -> Desired:
    from clipper_core.declarative.load import load_file, load_text

    if args.filename == "-":
        return load_text(sys.stdin.read(), "<stdin>", Path.cwd(), registry)
    return load_file(Path(args.filename), registry)


def _plan(args: argparse.Namespace, connect: Connect, registry: Registry
          ) -> tuple[ClipperConnection, PluginRegistry, Desired, Plan]:
    """The file read and checked first (its errors need no clipper), then compared with what clipper runs."""
    from clipper_core.declarative.plan import make_plan
    from clipper_core.declarative.running import read_running

    plugins = registry(args)
    desired = _load(args, plugins)
    conn = connect(args)
    return conn, plugins, desired, make_plan(desired, read_running(conn), prune=args.prune, recreate=args.recreate)


def _summary(desired: Desired) -> str:
    return (f"{len(desired.apps)} application(s), {len(desired.models)} model version(s), "
            f"{len(desired.links)} link(s)")


def _errors(plan: Plan) -> int:
    for error in plan.errors:
        print(f"clipper: error: {error}", file=sys.stderr)
    return 1


def cmd_diff(args: argparse.Namespace, connect: Connect, registry: Registry) -> int:
    _, _, desired, plan = _plan(args, connect, registry)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    elif not plan.changes:
        print(f"{desired.file}: no changes ({_summary(desired)} as declared)")
    else:
        print(f"{desired.file}: {len(plan.changes)} change(s)")
        for action in plan.actions:
            print(action.line())
    if not args.json:
        for note in plan.notes:
            print(f"note: {note}")
    if plan.errors:
        return _errors(plan)
    return 2 if args.exit_code and plan.changes else 0


def cmd_apply(args: argparse.Namespace, connect: Connect, registry: Registry) -> int:
    from clipper_core.declarative.apply import apply_plan
    from clipper_core.declarative.plan import Action

    conn, plugins, desired, plan = _plan(args, connect, registry)
    if plan.errors:
        if args.json:
            print(json.dumps({"applied": [], "errors": [str(e) for e in plan.errors], "notes": plan.notes},
                             indent=2))
        return _errors(plan)

    def report(action: Action) -> None:
        if not args.json:
            print(action.line(), flush=True)

    done = apply_plan(plan, conn, plugins, report=report, timeout=args.timeout)
    changes = [a for a in done if a.kind != "wait"]
    if args.json:
        print(json.dumps({"applied": [a.to_json() for a in done], "errors": [], "notes": plan.notes}, indent=2))
        return 0
    for note in plan.notes:
        print(f"note: {note}")
    print(f"{desired.file}: " + (f"applied {len(changes)} change(s)" if changes else
                                 f"no changes ({_summary(desired)} as declared)"))
    return 0


def cmd_export(args: argparse.Namespace, connect: Connect, registry: Registry) -> int:
    from clipper_core.declarative.export import export_data, export_text
    from clipper_core.declarative.running import read_running

    conn = connect(args)
    running = read_running(conn)
    text = (json.dumps(export_data(running), indent=2) + "\n" if args.json
            else export_text(running, f"http://{conn.cm.get_admin_addr()}"))
    if args.file is None or args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text)
        print(f"wrote {args.file}: {len(running.apps)} application(s), {len(running.models)} model version(s)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from clipper_core.declarative.schema import SCHEMA

    print(json.dumps(SCHEMA, indent=2))
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser], connect: Connect, registry: Registry) -> None:
    """``apply``, ``diff``, ``export`` and ``schema``, through the CLI's ``add(name, func, help, json_flag)``."""

    def bound(command: Callable[[argparse.Namespace, Connect, Registry], int]) -> Callable[[argparse.Namespace], int]:
        def run(args: argparse.Namespace) -> int:
            return command(args, connect, registry)

        run.__name__ = command.__name__
        return run

    def file_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-f", "--filename", required=True, metavar="FILE",
                            help="the clipper file (YAML; - reads standard input)")
        parser.add_argument("--prune", action="store_true",
                            help="also delete the links, model versions and applications the file does not declare")
        parser.add_argument("--recreate", action="store_true",
                            help="delete and register again an application whose input type, SLO, default output "
                                 "or cache setting changed (its links are made again)")

    apply = add("apply", bound(cmd_apply), "make clipper run what a clipper file declares", json_flag=True)
    file_options(apply)
    apply.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for a version's replicas (300)")
    diff = add("diff", bound(cmd_diff), "show what clipper apply would change", json_flag=True)
    file_options(diff)
    diff.add_argument("--exit-code", action="store_true", help="exit with 2 when there are changes (as git diff)")
    export = add("export", bound(cmd_export), "write the running state as a clipper file", json_flag=True)
    export.add_argument("file", nargs="?", default=None, help="where to write it (default: standard output)")
    add("schema", cmd_schema, "print the JSON Schema of a clipper file", manager=False)

