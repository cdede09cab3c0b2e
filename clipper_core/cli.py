"""``clipper``: start, inspect and drive a local clipper from the shell."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clipper_core.config import ConfigError
from clipper_core.errors import ClipperError, ClipperException

if TYPE_CHECKING:
    from clipper_core.client.connection import ClipperConnection
    from clipper_core.config import Config
    from clipper_core.interfaces import ContainerManager
    from clipper_core.plugins import PluginRegistry

__all__ = ["main"]


_MANAGER_OPTIONS = (("home", "clipper_home", "--home"), ("host", "host", "--host"),
                    ("query_port", "clipper_query_port", "--query-port"),
                    ("admin_port", "clipper_management_port", "--admin-port"),
                    ("rpc_port", "clipper_rpc_port", "--rpc-port"))
"""(argument, constructor parameter, flag): what the CLI may pass to a container manager's constructor."""


def _registry(args: argparse.Namespace) -> PluginRegistry:
    from clipper_core.plugins import PluginRegistry, make_plugin_manager

    if getattr(args, "registry", None) is None:  # one per command
        args.registry = PluginRegistry.create(make_plugin_manager(disabled=_config(args).disabled_plugins))
    registry: PluginRegistry = args.registry
    return registry


def _manager(args: argparse.Namespace) -> ContainerManager:
    """The container manager ``--manager`` (else ``$CLIPPER_CONTAINER_MANAGER``, else ``local``) names, given
    those of --home, --host and the ports that were set and that its constructor takes."""
    name = _config(args, container_manager=getattr(args, "manager", None)).container_manager
    cls = _registry(args).container_managers.get(name)
    parameters = inspect.signature(cls).parameters
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    options: dict[str, Any] = {}
    for attr, parameter, flag in _MANAGER_OPTIONS:
        value = getattr(args, attr, None)
        if value is None:
            continue
        if parameter not in parameters and not any_keyword:
            raise ClipperException(f"container manager {name!r} takes no {flag}")
        options[parameter] = value
    grpc_port = getattr(args, "grpc_port", None)
    if grpc_port is not None:  # the server the manager starts reads it from its environment
        if "extra_env" not in parameters and not any_keyword:
            raise ClipperException(f"container manager {name!r} takes no --grpc-port; set CLIPPER_GRPC_PORT in "
                                   "its query frontend's environment")
        options["extra_env"] = {"CLIPPER_GRPC_PORT": str(grpc_port)}
    return cls(**options)


def _connect(args: argparse.Namespace) -> ClipperConnection:
    from clipper_core.client.connection import ClipperConnection

    conn = ClipperConnection(_manager(args))
    conn.connect()
    return conn


def _print(args: argparse.Namespace, data: Any, columns: list[str] | None = None) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
        return
    if columns and isinstance(data, list):
        rows = [[str(item.get(c, "")) for c in columns] for item in data]
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        return
    if isinstance(data, dict):
        for key, value in data.items():
            print(f"{key}: {value}")
        return
    print(data)


def _config(args: argparse.Namespace, **extra: Any) -> Config:
    from clipper_core.config import Config

    overrides = {"home": args.home, "query_host": getattr(args, "host", None),
                 "query_port": getattr(args, "query_port", None), "admin_host": getattr(args, "admin_host", None),
                 "admin_port": getattr(args, "admin_port", None), "rpc_host": getattr(args, "rpc_host", None),
                 "rpc_port": getattr(args, "rpc_port", None), "grpc_port": getattr(args, "grpc_port", None),
                 "cache_size_bytes": getattr(args, "cache_size", None),
                 "state_store": getattr(args, "state_store", None),
                 "rpc_advertise": getattr(args, "rpc_advertise", None), **extra}
    return Config.from_env(**overrides)


def _frontends(value: str) -> int:
    """``--frontends``: a count >= 1, or ``auto`` (:func:`clipper_core.server.multi.auto_frontends`)."""
    if value == "auto":
        from clipper_core.server.multi import auto_frontends

        return auto_frontends()
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frontends or 'auto', got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least one frontend, got {count}")
    return count


def cmd_start(args: argparse.Namespace) -> int:
    config = _config(args)
    _registry(args).state_store_class(config.state_store)  # a wrong --state-store fails here, in one line
    if args.foreground and args.frontends > 1:
        from clipper_core.server.multi import run_multi

        if config.grpc_port is not None:  # each frontend process serves it, on one port (SO_REUSEPORT)
            if config.grpc_port == 0:
                raise ClipperException("several frontends share one gRPC port: give --grpc-port (or "
                                       "CLIPPER_GRPC_PORT) a port number, not 0")
            os.environ["CLIPPER_GRPC_PORT"] = str(config.grpc_port)  # the frontends' environment
        run_multi(config, args.frontends)
        return 0
    if args.foreground:
        from clipper_core.server.assembly import run

        run(config)
        return 0
    manager = _manager(args)
    options: dict[str, Any] = {"cache_size": args.cache_size}
    if args.state_store is not None:
        options["state_store"] = args.state_store
    if args.frontends > 1:
        options["num_frontend_replicas"] = args.frontends
    manager.start_clipper(**options)
    pid = getattr(manager, "runtime", {}).get("pid")
    print(f"clipper started ({f'pid {pid}' if pid is not None else manager.name}): queries on "
          f"http://{manager.get_query_addr()}, admin on http://{manager.get_admin_addr()}")
    return 0


def cmd_frontend(args: argparse.Namespace) -> int:
    """A query frontend alone (REST + RPC), following a shared state store."""
    from clipper_core.server.assembly import run

    run(_config(args, manage_replicas=False, write_runtime=False, reuse_port=args.reuse_port), roles=("query",))
    return 0


def cmd_admin_server(args: argparse.Namespace) -> int:
    """The management frontend alone (and the local replica supervisor unless --no-replicas)."""
    from clipper_core.server.assembly import run

    run(_config(args, manage_replicas=not args.no_replicas), roles=("admin",))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    conn = _connect(args)
    cm = conn.cm
    runtime = dict(getattr(cm, "runtime", None) or {  # the local manager's runtime.json, else the addresses
        "manager": cm.name, "query_addr": cm.get_query_addr(), "admin_addr": cm.get_admin_addr(),
        "metrics_addr": cm.get_metric_addr()})
    runtime["apps"] = len(conn.get_all_apps())
    runtime["models"] = len(conn.get_all_models())
    runtime["replicas"] = len(conn.get_all_model_replicas())
    for model in conn.get_all_models(verbose=True):
        if model.get("autoscaling"):
            status = conn.get_autoscaling(model["model_name"], model["model_version"]).get("status") or {}
            label = f"autoscaling {model['model_name']}:{model['model_version']}"
            runtime[label] = status.get("reason", "no decision yet")
            if status.get("error"):
                runtime[label] += f" (its last {status.get('failures', 1)} changes failed: {status['error']})"
    for rollout in conn.get_rollouts():
        if rollout["state"] in ("running", "paused"):
            runtime[f"rollout {rollout['model']}:{rollout['candidate']}"] = rollout["reason"]
    _print(args, runtime)
    return 0


def cmd_apps(args: argparse.Namespace) -> int:
    _print(args, _connect(args).get_all_apps(verbose=True),
           ["name", "input_type", "latency_slo_micros", "default_output", "policy", "linked_models"])
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    _print(args, _connect(args).get_all_models(verbose=True),
           ["model_name", "model_version", "input_type", "is_current_version", "num_replicas", "batch_size"])
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """A ``FILE.py:FUNCTION`` closure or a framework model file (clipper_core.declarative.deploy)."""
    from clipper_core.declarative.deploy import deploy_command

    return deploy_command(args, _connect(args), _registry(args))


def _policy_config(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ClipperException(f"--policy-config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ClipperException("--policy-config must be a JSON object")
    return config


def cmd_register(args: argparse.Namespace) -> int:
    _connect(args).register_application(args.app, args.input_type, args.default_output, args.slo_micros,
                                        policy=args.policy, policy_config=_policy_config(args.policy_config))
    print(f"registered application {args.app}")
    return 0


def cmd_set_policy(args: argparse.Namespace) -> int:
    _connect(args).set_app_policy(args.app, args.policy, _policy_config(args.policy_config))
    print(f"{args.app}: policy {args.policy}")
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    _connect(args).link_model_to_app(args.app, args.model)
    print(f"linked {args.model} to {args.app}")
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    conn = _connect(args)
    conn.set_num_replicas(args.model, args.replicas, args.version)
    print(f"{args.model}: {args.replicas} replica(s)")
    return 0


def cmd_autoscale(args: argparse.Namespace) -> int:
    conn = _connect(args)
    if args.show:
        _print(args, conn.get_autoscaling(args.model, args.version))
        return 0
    settings = conn.set_autoscaling(args.model, args.version, min_replicas=args.min, max_replicas=args.max,
                                    target_inflight_per_replica=args.target_inflight,
                                    target_latency_fraction=args.target_latency, upscale_delay_s=args.upscale_delay,
                                    downscale_delay_s=args.downscale_delay, smoothing_window_s=args.window,
                                    off=args.off)
    if settings is None:
        print(f"{args.model}: autoscaling off")
    else:
        target = (f"{settings['target_inflight_per_replica']:g} outstanding inputs per replica"
                  if settings.get("target_inflight_per_replica") is not None
                  else f"p99 at {settings['target_latency_fraction']:g} of the SLO")
        print(f"{args.model}: autoscaling {settings['min_replicas']}..{settings['max_replicas']} replicas, {target}")
    return 0


def _steps(text: str) -> list[float]:
    try:
        return [float(step) for step in text.split(",")]
    except ValueError:
        raise ClipperException(f"--steps is {text!r}; expected percentages separated by commas, e.g. 5,25,50,100"
                               ) from None


def _guard(text: str) -> float | str:
    """A guard's limit, or ``off``."""
    if text.lower() in ("off", "none"):
        return "off"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


_ROLLOUT_OPTIONS = (("steps", "steps"), ("step_seconds", "step_seconds"), ("min_queries", "min_queries_per_step"),
                    ("max_error_rate", "max_error_rate"), ("max_p99_ms", "max_p99_ms"),
                    ("max_default_rate", "max_default_rate"), ("min_feedback_reward", "min_feedback_reward"),
                    ("min_feedback", "min_feedback"), ("reward", "reward"), ("min_agreement", "min_agreement"),
                    ("tolerance", "agreement_tolerance"))
"""(argument, ``start_rollout`` parameter): what ``clipper rollout start`` passes on when it was given."""


def cmd_rollout_start(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    for attr, parameter in _ROLLOUT_OPTIONS:
        value = getattr(args, attr)
        if value is not None:
            options[parameter] = _steps(value) if attr == "steps" else None if value == "off" else value
    rollout = _connect(args).start_rollout(args.model, args.version, mode=args.mode, **options)
    if args.json:
        _print(args, rollout)
        return 0
    settings = rollout["settings"]
    share = f"{settings['steps'][0]:g}% of the queries" + (" mirrored" if settings["mode"] == "shadow" else "")
    print(f"{rollout['model']}: rollout of {rollout['candidate']} against {rollout['baseline']} started "
          f"({settings['mode']}, {share})")
    return 0


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def _figures_line(figures: dict[str, Any]) -> str:
    p99 = figures.get("p99_ms")
    parts = [f"{figures.get('queries', 0)} queries", f"errors {_percent(figures.get('error_rate'))}",
             f"defaults {_percent(figures.get('default_rate'))}", f"p99 {'-' if p99 is None else f'{p99:g}'} ms"]
    if figures.get("agreement") is not None:
        parts.append(f"agreement {_percent(figures['agreement'])} of {figures.get('compared', 0)}")
    if figures.get("dropped"):
        parts.append(f"{figures['dropped']} dropped")
    if figures.get("mean_reward") is not None:
        parts.append(f"mean reward {figures['mean_reward']:.3f} over {figures.get('feedback', 0)} feedback")
    return ", ".join(parts)


def _rollout_lines(rollout: dict[str, Any]) -> list[str]:
    """``clipper rollout status``'s lines for one rollout: state, step and share, weights; the reason; the step's
    figures of the candidate and the baseline."""
    steps = rollout["settings"]["steps"]
    active = rollout["state"] in ("running", "paused")
    step = f"step {rollout['step'] + 1} of {len(steps)}" + (f" ({steps[rollout['step']]:g}%)" if active else "")
    weights = " ".join(f"{version}={weight:g}" for version, weight in rollout["weights"].items())
    head = f"{rollout['model']}  {rollout['state']}  {step}  weights {weights}"
    if active and rollout.get("mirrored") is not None:
        head += f"  mirrored {rollout['mirrored']:.0%}"
    lines = [head, f"  {rollout['reason']}"]
    figures = rollout.get("figures") or {}
    labels = {role: f"{rollout[role]} ({role}):" for role in ("candidate", "baseline")}
    width = max(len(label) for label in labels.values())
    for role, label in labels.items():
        if figures.get(role) is not None:
            lines.append(f"  {label.ljust(width)} {_figures_line(figures[role])}")
    if not figures and active:
        lines.append("  no figures yet")
    return lines


def cmd_rollout_status(args: argparse.Namespace) -> int:
    conn = _connect(args)
    rollouts = [conn.get_rollout(args.model)] if args.model else conn.get_rollouts()
    if args.json:
        _print(args, rollouts[0] if args.model else rollouts)
        return 0
    if not rollouts:
        print("no rollouts")
    for rollout in rollouts:
        print("\n".join(_rollout_lines(rollout)))
    return 0


def _rollout_change(change: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        rollout = getattr(_connect(args), f"{change}_rollout")(args.model)
        if args.json:
            _print(args, rollout)
        else:
            # the operation's own note (``reason`` may still be the controller's last look, until its next one)
            note = rollout["history"][-1]["reason"] if rollout.get("history") else rollout["reason"]
            print(f"{rollout['model']}: {rollout['state']} ({note})")
        return 0

    command.__name__ = f"cmd_rollout_{change}"
    return command


def cmd_logs(args: argparse.Namespace) -> int:
    paths = _connect(args).get_clipper_logs(args.dir)
    if args.json:
        _print(args, paths)
    for path in [] if args.json else paths:
        print(path)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    _manager(args).stop_all(graceful=not args.kill)
    print("clipper stopped")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from clipper_core.plugins import PluginRegistry

    registry = PluginRegistry.create()
    rows = [{"name": p.name, "distribution": p.distribution, "version": p.version, "hooks": ", ".join(p.hooks)}
            for p in registry.plugins()]
    _print(args, rows, ["name", "distribution", "version", "hooks"])
    return 0


GRPC_HELP = ("V2 gRPC port (default $CLIPPER_GRPC_PORT, else off; 0 = any free port); needs "
             "clipper-core[grpc]")
MANAGER_HELP = "container manager (default $CLIPPER_CONTAINER_MANAGER or local; see `clipper plugins`)"


Add = Callable[..., argparse.ArgumentParser]
"""``add(name, func, help, json_flag=False, manager=True)``: a subcommand's parser (see :func:`build_parser`)."""


def _add_server_commands(add: Add) -> None:
    """``start`` and the commands that run one part of clipper in this terminal."""
    start = add("start", cmd_start, "start clipper (in the background unless --foreground)")
    start.add_argument("--foreground", action="store_true")
    start.add_argument("--host", default=None, help="query frontend address (default 127.0.0.1)")
    start.add_argument("--query-port", type=int, default=None)
    start.add_argument("--admin-port", type=int, default=None)
    start.add_argument("--rpc-port", type=int, default=None)
    start.add_argument("--grpc-port", type=int, default=None, help=GRPC_HELP)
    start.add_argument("--cache-size", type=int, default=None, help="prediction cache bytes")
    start.add_argument("--state-store", default=None, help="sqlite (default), memory or redis://host:port/db")
    start.add_argument("--frontends", type=_frontends, default=1, metavar="N|auto",
                       help="query frontend processes sharing the query port (SO_REUSEPORT) over the state store "
                            "(SQLite shared on this host, or redis://); 'auto': 1 up to 2 usable cores, else "
                            "cores - 1, at most 8")
    frontend = add("frontend", cmd_frontend, "run a query frontend alone, over a shared state store", manager=False)
    frontend.add_argument("--state-store", default=None,
                          help="the store shared with the admin server: sqlite (default; $CLIPPER_HOME/state.db or "
                               "sqlite:///path.db, shared on this host) or redis://host:port/db (across hosts)")
    frontend.add_argument("--host", default=None, help="query address (default 127.0.0.1)")
    frontend.add_argument("--query-port", type=int, default=None)
    frontend.add_argument("--rpc-host", default=None)
    frontend.add_argument("--rpc-port", type=int, default=None)
    frontend.add_argument("--rpc-advertise", default=None, help="RPC address announced to replicas")
    frontend.add_argument("--grpc-port", type=int, default=None, help=GRPC_HELP)
    frontend.add_argument("--cache-size", type=int, default=None)
    frontend.add_argument("--reuse-port", action="store_true", help="share the query port (SO_REUSEPORT)")
    admin = add("admin-server", cmd_admin_server, "run the management frontend alone, over a shared state store",
                manager=False)
    admin.add_argument("--state-store", default=None,
                       help="the store shared with the frontends: sqlite (default; $CLIPPER_HOME/state.db or "
                            "sqlite:///path.db, shared on this host) or redis://host:port/db (across hosts)")
    admin.add_argument("--admin-host", default=None, help="default 127.0.0.1")
    admin.add_argument("--admin-port", type=int, default=None)
    admin.add_argument("--no-replicas", action="store_true", help="replicas are run by another manager")


def _add_client_commands(add: Add) -> None:
    """The commands that talk to a running clipper, and ``plugins``."""
    add("status", cmd_status, "show the running clipper", json_flag=True)
    add("apps", cmd_apps, "list applications", json_flag=True)
    add("models", cmd_models, "list model versions", json_flag=True)
    deploy = add("deploy", cmd_deploy, "deploy FILE.py:FUNCTION, or a model file through an installed deployer")
    _deploy_arguments(deploy)
    register = add("register", cmd_register, "register an application")
    register.add_argument("app")
    register.add_argument("--input-type", required=True)
    register.add_argument("--default-output", default="None")
    register.add_argument("--slo-micros", type=int, default=100000)
    register.add_argument("--policy", default=None, help="selection policy (default: Clipper's one-model policy)")
    register.add_argument("--policy-config", default=None, help="JSON object")
    set_policy = add("set-policy", cmd_set_policy, "change an application's selection policy")
    set_policy.add_argument("app")
    set_policy.add_argument("policy")
    set_policy.add_argument("--policy-config", default=None, help="JSON object")
    link = add("link", cmd_link, "link a model to an app")
    link.add_argument("app")
    link.add_argument("model")
    scale = add("scale", cmd_scale, "set a model version's replica count")
    scale.add_argument("model")
    scale.add_argument("replicas", type=int)
    scale.add_argument("--version", default=None, help="default: the current version")
    autoscale = add("autoscale", cmd_autoscale, "autoscale a model version (or --off, or --show)", json_flag=True)
    autoscale.add_argument("model")
    autoscale.add_argument("--version", default=None, help="default: the current version")
    autoscale.add_argument("--min", type=int, default=1, help="fewest replicas; 0 scales to zero when idle (1)")
    autoscale.add_argument("--max", type=int, default=4, help="most replicas (4)")
    autoscale.add_argument("--target-inflight", type=float, default=None,
                           help="outstanding inputs per replica to aim for (the default target: 4)")
    autoscale.add_argument("--target-latency", type=float, default=None,
                           help="or: p99 latency to aim for, as a fraction of the smallest linked SLO")
    autoscale.add_argument("--upscale-delay", type=float, default=3.0, help="seconds (3)")
    autoscale.add_argument("--downscale-delay", type=float, default=30.0, help="seconds (30)")
    autoscale.add_argument("--window", type=float, default=5.0, help="smoothing window, seconds (5)")
    autoscale.add_argument("--off", action="store_true", help="turn autoscaling off")
    autoscale.add_argument("--show", action="store_true", help="print the settings and the last decision")
    logs = add("logs", cmd_logs, "copy every log into DIR", json_flag=True)
    logs.add_argument("dir", nargs="?", default="clipper_logs")
    stop = add("stop", cmd_stop, "stop clipper and its replicas")
    stop.add_argument("--kill", action="store_true", help="SIGKILL instead of a graceful stop")
    add("plugins", cmd_plugins, "list installed plugins", json_flag=True, manager=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipper", description="Low-latency prediction serving.")
    parser.add_argument("--home", default=None, help="$CLIPPER_HOME (default ~/.clipper)")
    parser.add_argument("--manager", default=None, help=MANAGER_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS, help="$CLIPPER_HOME (default ~/.clipper)")
    managed = argparse.ArgumentParser(add_help=False)  # the commands that start or talk to a running clipper
    managed.add_argument("--manager", default=argparse.SUPPRESS, help=MANAGER_HELP)

    def add(name: str, func: Any, help: str, json_flag: bool = False, manager: bool = True
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=[common, managed] if manager else [common])
        p.set_defaults(func=func)
        if json_flag:
            _output_flags(p)
        return p

    _add_server_commands(add)
    _add_client_commands(add)
    _add_declarative_commands(add)
    _add_rollout_commands(sub, [common, managed])
    _add_tenancy_commands(sub, [common, managed])
    _add_plugin_commands(sub, common)
    return parser


def _add_rollout_commands(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``clipper rollout start | status | pause | resume | abort | promote`` (docs/rollouts.md)."""
    rollout = sub.add_parser("rollout", help="roll a new model version out (canary or shadow) and follow it",
                             parents=parents)
    actions = rollout.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")

    def action(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=parents)
        p.set_defaults(func=func)
        _output_flags(p)
        return p

    start = action("start", cmd_rollout_start, "start rolling VERSION (registered, not current) of MODEL out")
    start.add_argument("model")
    start.add_argument("version")
    start.add_argument("--mode", choices=["canary", "shadow"], default="canary",
                       help="canary (default): the candidate answers a growing share of the users; shadow: queries "
                            "are mirrored to it, the current version answers all")
    start.add_argument("--steps", default=None, metavar="P,P,...",
                       help="the candidate's shares in percent, increasing (5,25,50,100; shadow: 100)")
    start.add_argument("--step-seconds", type=float, default=None, help="how long a step lasts at least (60)")
    start.add_argument("--min-queries", type=int, default=None,
                       help="queries the candidate answers in a step before it passes (100)")
    start.add_argument("--max-error-rate", type=_guard, default=None, metavar="R|off",
                       help="roll back above this failed share of its queries (0.01)")
    start.add_argument("--max-p99-ms", type=_guard, default=None, metavar="MS|off",
                       help="roll back above this p99 latency (off)")
    start.add_argument("--max-default-rate", type=_guard, default=None, metavar="R|off",
                       help="roll back above this share of queries with no output in time (0.05)")
    start.add_argument("--min-feedback-reward", type=_guard, default=None, metavar="R|off",
                       help="roll back below this mean feedback reward (off)")
    start.add_argument("--min-feedback", type=int, default=None,
                       help="feedback a step needs before the reward is checked (20)")
    start.add_argument("--reward", choices=["match", "abs_error", "squared_error"], default=None,
                       help="how feedback is scored (match)")
    start.add_argument("--min-agreement", type=_guard, default=None, metavar="R|off",
                       help="shadow: roll back below this share of outputs equal to the current version's (off)")
    start.add_argument("--tolerance", type=float, default=None, help="shadow: numbers within it agree (1e-6)")
    status = action("status", cmd_rollout_status, "a model's rollout (default: every rollout)")
    status.add_argument("model", nargs="?", default=None)
    for change, help in (("pause", "hold a rollout at its step (the guards still roll it back)"),
                         ("resume", "resume a paused rollout (its step starts over)"),
                         ("abort", "end a rollout: the current version answers every query"),
                         ("promote", "end a rollout now, making the candidate the current version")):
        action(change, _rollout_change(change), help).add_argument("model")


def _add_tenancy_commands(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``clipper keys create | list | revoke`` and ``clipper limits set | show`` (docs/tenancy.md)."""
    def group(name: str, help: str) -> Any:
        parser = sub.add_parser(name, help=help, parents=parents)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")

    def action(actions: Any, name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=parents)
        p.set_defaults(func=func)
        p.add_argument("-o", "--output", choices=["text", "json"], default="text", help="text (default) or json")
        p.add_argument("--json", dest="output", action="store_const", const="json", help="the same as --output json")
        return p

    def rate_flags(p: argparse.ArgumentParser, kind: Callable[[str], Any]) -> None:
        p.add_argument("--rps", type=kind, default=None, metavar="N", help="requests per second (a token bucket)")
        p.add_argument("--burst", type=kind, default=None, metavar="N",
                       help="its size (default: one second's worth of --rps)")
        p.add_argument("--ips", type=kind, default=None, metavar="N", help="inputs per second (a token bucket)")
        p.add_argument("--inputs-burst", type=kind, default=None, metavar="N",
                       help="its size (default: one second's worth of --ips)")
        p.add_argument("--max-concurrent", type=kind, default=None, metavar="N", help="queries in flight at once")

    keys = group("keys", "API keys of an application's query API")
    create = action(keys, "create", cmd_keys_create, "make a key of APP (shown once)")
    create.add_argument("app")
    create.add_argument("--label", default=None, help="what the key is for")
    rate_flags(create, _number)
    action(keys, "list", cmd_keys_list, "the keys (of APP), never their secrets").add_argument(
        "app", nargs="?", default=None)
    action(keys, "revoke", cmd_keys_revoke, "revoke a key: every frontend refuses it within a second").add_argument(
        "key_id", help="the key's id, as `clipper keys list` shows it")
    limits = group("limits", "an application's key requirement, priority class and limits")
    set_limits = action(limits, "set", cmd_limits_set,
                        "change APP's key requirement, priority or limits (a limit: N, or 'off' to remove it)")
    set_limits.add_argument("app")
    set_limits.add_argument("--require-key", action=argparse.BooleanOptionalAction, default=None,
                            help="answer only queries that carry one of the app's API keys")
    set_limits.add_argument("--priority", choices=["high", "normal", "low"], default=None)
    rate_flags(set_limits, _limit_value)
    set_limits.add_argument("--max-input-length", type=_limit_value, default=None, metavar="N",
                            help="elements of a numeric input, bytes of a bytes or string input")
    set_limits.add_argument("--max-batch-size", type=_limit_value, default=None, metavar="N",
                            help="inputs a request may carry")
    set_limits.add_argument("--max-body-bytes", type=_limit_value, default=None, metavar="N",
                            help="a request body's size")
    set_limits.add_argument("--clear", action="store_true", help="remove every limit (before the ones given here)")
    action(limits, "show", cmd_limits_show, "APP's key requirement, priority and limits").add_argument("app")


_KEY_LIMIT_FLAGS = (("rps", "requests_per_second"), ("burst", "requests_burst"), ("ips", "inputs_per_second"),
                    ("inputs_burst", "inputs_burst"), ("max_concurrent", "max_concurrent"))
_APP_LIMIT_FLAGS = (*_KEY_LIMIT_FLAGS, ("max_input_length", "max_input_length"),
                    ("max_batch_size", "max_batch_size"), ("max_body_bytes", "max_body_bytes"))
"""(argument, limit): what ``clipper keys create`` and ``clipper limits set`` pass on when given."""
_BUCKETS = (("requests_per_second", "requests_burst"), ("inputs_per_second", "inputs_burst"))


def _number(text: str) -> int | float:
    """A limit as given on the command line: an integer stays one (bursts, counts), else a number; the server
    says what is wrong with it."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _limit_value(text: str) -> int | float | str:
    """A limit, or ``off`` to remove it."""
    return "off" if text.lower() in ("off", "none") else _number(text)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False)) or getattr(args, "output", "text") == "json"


def _utc(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _limits_text(limits: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={v:g}" for k, v in limits.items()) if limits else "-"


def cmd_keys_create(args: argparse.Namespace) -> int:
    options = {limit: getattr(args, attr) for attr, limit in _KEY_LIMIT_FLAGS if getattr(args, attr) is not None}
    created = _connect(args).create_api_key(args.app, args.label, **options)
    if _wants_json(args):
        print(json.dumps(created, indent=2))
    else:
        print(f"API key {created['key_id']} of {created['app_name']}"
              + (f" ({created['label']})" if created["label"] else "") + ", limits: "
              + _limits_text(created["limits"]), file=sys.stderr)
        print(created["api_key"])
    print("clipper: warning: this is the only time the key is shown: clipper keeps a salted hash of it, nothing it "
          "could show it from again. Store it now.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = _connect(args).list_api_keys(args.app)
    if _wants_json(args):
        print(json.dumps(keys, indent=2))
        return 0
    if not keys:
        print("no API keys" + (f" of {args.app}" if args.app else ""))
        return 0
    rows = [{"key_id": k["key_id"], "app": k["app_name"], "label": k["label"] or "-",
             "created": _utc(k["created_at"]), "limits": _limits_text(k["limits"])} for k in keys]
    _print(args, rows, ["key_id", "app", "label", "created", "limits"])
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    revoked = _connect(args).revoke_api_key(args.key_id)
    if _wants_json(args):
        print(json.dumps(revoked, indent=2))
    else:
        print(f"revoked API key {revoked['key_id']} of {revoked['app_name']}")
    return 0


def _print_limits(args: argparse.Namespace, answer: dict[str, Any]) -> None:
    if _wants_json(args):
        print(json.dumps(answer, indent=2))
        return
    keys = answer["api_keys"]
    required = "API key required" if answer["require_api_key"] else "no API key required"
    print(f"{answer['app_name']}: {required} ({keys} key{'' if keys == 1 else 's'}), priority {answer['priority']}"
          + ("" if answer["limits"] else ", no limits"))
    if answer["require_api_key"] and not keys:
        print("  every query is refused until a key is made: clipper keys create " + answer["app_name"])
    limits = answer["limits"] or {}
    width = max((len(name) for name in limits), default=0)
    for name, value in limits.items():
        print(f"  {name.ljust(width)}  {value:g}")


def cmd_limits_set(args: argparse.Namespace) -> int:
    given = {limit: getattr(args, attr) for attr, limit in _APP_LIMIT_FLAGS if getattr(args, attr) is not None}
    if not (given or args.clear or args.require_key is not None or args.priority is not None):
        raise ClipperException("nothing to set: give --require-key or --no-require-key, --priority, a limit (e.g. "
                               "--rps 100, or --rps off) or --clear")
    conn = _connect(args)
    limits: dict[str, Any] | None = None
    if given or args.clear:  # the app's limits with these changed (the server takes the whole set)
        limits = {} if args.clear else dict(conn.get_app_limits(args.app)["limits"] or {})
        for rate, burst in _BUCKETS:
            if rate in given and burst not in given:
                limits.pop(burst, None)  # a new rate's burst is one second's worth of it, unless given
        for limit, value in given.items():
            if value == "off":
                limits.pop(limit, None)
                limits.pop(dict(_BUCKETS).get(limit, ""), None)  # a rate's burst goes with it
            else:
                limits[limit] = value
    _print_limits(args, conn.set_app_limits(args.app, require_api_key=args.require_key, priority=args.priority,
                                            limits=limits))
    return 0


def cmd_limits_show(args: argparse.Namespace) -> int:
    _print_limits(args, _connect(args).get_app_limits(args.app))
    return 0


def _output_flags(parser: argparse.ArgumentParser) -> None:
    """``--output text|json`` (``-o``) and ``--json``, its alias."""
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="text (default) or json")
    parser.add_argument("--json", dest="output", action="store_const", const="json", help="the same as --output json")


def _deploy_arguments(deploy: argparse.ArgumentParser) -> None:
    """``clipper deploy``'s arguments; its help ends with the installed deployers."""
    from clipper_core.declarative.deploy import add_deploy_arguments, deployers_epilog
    from clipper_core.plugins import PluginRegistry

    add_deploy_arguments(deploy)
    deploy.formatter_class = argparse.RawDescriptionHelpFormatter
    try:
        deploy.epilog = deployers_epilog(PluginRegistry.create())
    except ClipperError as exc:  # a broken plugin must not take the whole command line down
        deploy.epilog = f"installed deployers: cannot list them ({exc})"


def cmd_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["clipper"], shell=args.shell))
    return 0


def _add_declarative_commands(add: Add) -> None:
    """``apply``, ``diff``, ``export``, ``schema`` (docs/declarative.md) and ``completion``."""
    from clipper_core.declarative.commands import add_commands

    add_commands(add, _connect, _registry)
    completion = add("completion", cmd_completion, "print the shell completion script: eval \"$(clipper "
                                                   "completion bash)\" (or zsh)", manager=False)
    completion.add_argument("shell", choices=["bash", "zsh"])


def _add_plugin_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Subcommands of installed plugins (the ``clipper_add_commands`` hook; ``$CLIPPER_DISABLE_PLUGINS`` blocks)."""
    from clipper_core.plugins import make_plugin_manager

    make_plugin_manager().hook.clipper_add_commands(subparsers=sub, parents=[common])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    import argcomplete

    argcomplete.autocomplete(parser)  # only when the shell's completion function runs clipper (completion bash)
    args = parser.parse_args(argv)
    args.json = getattr(args, "output", "text") == "json"
    try:
        return int(args.func(args))
    except (ClipperException, ClipperError, ConfigError) as exc:
        print(f"clipper: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
