"""The plan: what differs between a file and a running clipper, as actions in the safe order (register, deploy,
wait ready, make current, link, roll out; unlink before delete), and errors for what cannot change."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from clipper_core.declarative.load import load_text
from clipper_core.declarative.plan import Plan, make_plan
from clipper_core.declarative.spec import Desired, Running, RunningApp, RunningModel

IMG = "registry.example/m:1"


def desired(text: str) -> Desired:
    return load_text(textwrap.dedent(text), "c.yaml", Path("/nonexistent"))


def running_app(name: str = "a", links: tuple[str, ...] = (), **changes: Any) -> RunningApp:
    fields: dict[str, Any] = {"name": name, "input_type": "doubles", "slo_micros": 100000, "default_output": "None",
                              "policy": "default", "policy_config": {}, "cache": True, "links": links}
    fields.update(changes)
    return RunningApp(**fields)


def running_model(d: Desired, key: str, **changes: Any) -> RunningModel:
    """The running version a file's model ``key`` makes (with its digest), changed by ``changes``."""
    spec = next(m for m in d.models if m.key == key)
    fields: dict[str, Any] = {
        "name": spec.name, "version": spec.version, "input_type": spec.input_type, "labels": spec.labels,
        "container_name": spec.source.value, "batch_size": spec.batch_size,
        "batch_wait_timeout_micros": spec.batch_wait_timeout_micros, "num_replicas": spec.replicas,
        "current": spec.current, "autoscaling": spec.autoscaling, "digest": spec.source.digest}
    fields.update(changes)
    return RunningModel(**fields)


def lines(plan: Plan) -> list[str]:
    return [action.line() for action in plan.actions]


FILE = f"""
    applications:
      - {{name: a, input_type: doubles}}
    models:
      - {{name: m, version: 1, input_type: doubles, image: "{IMG}", replicas: 2}}
    links:
      - {{app: a, model: m}}
    """


def test_a_fresh_clipper_gets_everything_in_the_safe_order() -> None:
    d = desired(f"""
        applications:
          - {{name: a, input_type: doubles}}
        models:
          - {{name: m, version: 1, input_type: doubles, image: "{IMG}", replicas: 2}}
          - {{name: n, version: 1, input_type: doubles, image: NO_CONTAINER}}
          - {{name: n, version: 2, input_type: doubles, image: "{IMG}", rollout: {{mode: shadow}}}}
        links:
          - {{app: a, model: m}}
          - {{app: a, model: n}}
        """)
    plan = make_plan(d, Running())
    assert plan.errors == []
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("add_app", "application a"), ("deploy", "model m:1"), ("deploy", "model n:1"), ("deploy", "model n:2"),
        ("wait", "model m:1"), ("wait", "model n:2"), ("link", "link m -> a"), ("link", "link n -> a"),
        ("start_rollout", "rollout n:2")]
    assert lines(plan)[1] == f"+ model m:1: deploy image {IMG}, 2 replica(s)"
    assert lines(plan)[3] == f"+ model n:2: deploy image {IMG}, 1 replica(s), without traffic"
    assert lines(plan)[4] == "  model m:1: 2 replica(s) ready"
    assert lines(plan)[-1] == "+ rollout n:2: shadow against 1, default steps"
    assert plan.actions[1].args["make_current"] and not plan.actions[3].args["make_current"]


def test_nothing_to_do_when_it_runs_as_declared() -> None:
    d = desired(FILE)
    running = Running(apps={"a": running_app(links=("m",))}, models={"m:1": running_model(d, "m:1")})
    plan = make_plan(d, running)
    assert (plan.actions, plan.errors, plan.notes) == ([], [], [])


def test_one_field_changed_is_one_action() -> None:
    d = desired(FILE.replace("replicas: 2", "replicas: 3"))
    running = Running(apps={"a": running_app(links=("m",))}, models={"m:1": running_model(d, "m:1", num_replicas=2)})
    assert lines(make_plan(d, running)) == ["~ model m:1: replicas 2 -> 3", "  model m:1: 3 replica(s) ready"]
    down = desired(FILE.replace("replicas: 2", "replicas: 1"))
    assert lines(make_plan(down, running)) == ["~ model m:1: replicas 2 -> 1"]  # nothing to wait for
    policy = desired(FILE.replace("input_type: doubles}", "input_type: doubles, policy_config: {x: 1}}", 1))
    base = desired(FILE)
    running = Running(apps={"a": running_app(links=("m",))}, models={"m:1": running_model(base, "m:1")})
    assert lines(make_plan(policy, running)) == ["~ application a: policy default {} -> default {'x': 1}"]


def test_fixed_fields_are_errors_naming_the_line() -> None:
    d = desired(FILE.replace("replicas: 2}", "replicas: 2, batch_size: 16, labels: [x]}"))
    running = Running(apps={"a": running_app(links=("m",), slo_micros=5000)},
                      models={"m:1": running_model(d, "m:1", batch_size=8, labels=(), digest="f" * 64)})
    plan = make_plan(d, running)
    assert [str(e) for e in plan.errors] == [
        "c.yaml:3: applications[0].slo_micros: fixed once registered (running: 5000, file: 100000); give the "
        "application another name, or apply --recreate to delete it and register it again (its links are made "
        "again, what its policy learned is lost)",
        "c.yaml:5: models[0].batch_size: fixed once registered (running: 8, file: 16); a change needs a new version",
        "c.yaml:5: models[0].labels: fixed once registered (running: [], file: ['x']); a change needs a new version",
        f"c.yaml:5: models[0].image: the model's source changed since m:1 was registered (sha256 ffffffffffff... "
        f"running, {d.models[0].source.digest[:12]}... in the file); a changed model needs a new version",
    ]
    recreate = make_plan(d, running, recreate=True)
    assert lines(recreate)[:2] == ["~ application a: delete and register again: slo_micros 5000 -> 100000",
                                   "+ link m -> a"]


def test_a_new_version_runs_before_it_becomes_current() -> None:
    d = desired(FILE.replace("replicas: 2}", f"replicas: 2}}\n      - {{name: m, version: 2, input_type: doubles, "
                                             f"image: \"{IMG}\"}}"))
    old = running_model(d, "m:1", current=True)
    plan = make_plan(d, Running(apps={"a": running_app(links=("m",))}, models={"m:1": old}))
    assert lines(plan) == [f"+ model m:2: deploy image {IMG}, 1 replica(s), without traffic",
                           "  model m:2: 1 replica(s) ready", "~ model m: current version 1 -> 2"]


def test_without_prune_the_rest_stays_with_prune_links_go_first() -> None:
    d = desired(FILE)
    running = Running(apps={"a": running_app(links=("m", "old")), "b": running_app("b", links=("old",))},
                      models={"m:1": running_model(d, "m:1"),
                              "old:1": running_model(d, "m:1", name="old", current=True)})
    assert make_plan(d, running).actions == []
    assert lines(make_plan(d, running, prune=True)) == [
        "- link old -> a: not in the file", "- link old -> b: not in the file", "- model old:1: not in the file",
        "- application b: not in the file"]


def test_autoscaling_owns_the_replica_count() -> None:
    d = desired(FILE.replace("replicas: 2}", "replicas: 2, autoscaling: {max_replicas: 4}}"))
    running = Running(apps={"a": running_app(links=("m",))},
                      models={"m:1": running_model(d, "m:1", num_replicas=4)})
    plan = make_plan(d, running)
    assert plan.actions == [] and plan.notes == ["m:1: 4 replica(s), not the file's 2: the autoscaler sizes it"]
    off = running_model(d, "m:1", autoscaling=None)
    assert lines(make_plan(d, Running(apps=running.apps, models={"m:1": off}))) == [
        "~ model m:1: autoscaling off -> 1..4 replicas, 4 in flight per replica"]


def test_a_rollout_starts_once_and_then_decides_the_current_version() -> None:
    text = FILE.replace("replicas: 2}", f"replicas: 2}}\n      - {{name: m, version: 2, input_type: doubles, image: "
                                        f"\"{IMG}\", rollout: {{steps: [10, 100]}}}}")
    d = desired(text)
    v1, v2 = running_model(d, "m:1", current=True), running_model(d, "m:2", current=False)
    running = Running(apps={"a": running_app(links=("m",))}, models={"m:1": v1, "m:2": v2})
    assert lines(make_plan(d, running)) == ["+ rollout m:2: canary against 1, 10,100"]
    promoted = {"model": "m", "candidate": "2", "baseline": "1", "state": "promoted", "reason": "passed every step"}
    flipped = Running(apps=running.apps, models={"m:1": running_model(d, "m:1", current=False),
                                                  "m:2": running_model(d, "m:2", current=True)},
                      rollouts={"m": promoted})
    plan = make_plan(d, flipped)
    assert plan.actions == []  # the file's version 1 is not made current again
    assert plan.notes == ["model m: version 2 is current, not the file's 1: model m is rolled out, its rollout "
                          "decides", "model m:2: its rollout has started (promoted: passed every step)"]
    other = {"model": "m", "candidate": "3", "baseline": "1", "state": "running", "reason": "step 1"}
    (error,) = make_plan(d, Running(apps=running.apps, models=running.models, rollouts={"m": other})).errors
    assert str(error) == ("c.yaml:6: models[1].rollout: model m has a running rollout of version 3: wait for it to "
                          "end or abort it (clipper rollout abort m)")


def test_links_must_join_known_objects_of_one_input_type() -> None:
    d = desired("""
        applications:
          - {name: a, input_type: strings}
        models:
          - {name: m, version: 1, input_type: doubles, image: img}
        links:
          - {app: a, model: m}
          - {app: nope, model: m}
          - {app: a, model: nope}
        """)
    assert [str(e) for e in make_plan(d, Running()).errors] == [
        "c.yaml:7: links[0].model: model m takes doubles, application a takes strings",
        "c.yaml:8: links[1].app: no application 'nope' in the file or in clipper",
        "c.yaml:9: links[2].model: no model 'nope' in the file or in clipper"]
