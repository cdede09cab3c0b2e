"""Reading a clipper file: every problem is reported as file:line: field: message, at the line of the field
concerned; what is valid becomes specs with the defaults filled in and paths resolved from the file's directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from clipper_core.declarative.load import load_file, load_text
from clipper_core.declarative.spec import DIGEST_LABEL, FileProblems
from clipper_core.plugins import PluginRegistry

MODEL_PY = "def predict(xs):\n    return [str(sum(x)) for x in xs]\n"


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.create()


def write(tmp_path: Path, text: str, name: str = "clipper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(path: Path, registry: PluginRegistry | None = None) -> list[str]:
    with pytest.raises(FileProblems) as info:
        load_file(path, registry)
    return [str(p) for p in info.value.problems]


def test_a_full_file_is_read_with_its_defaults(tmp_path: Path, registry: PluginRegistry) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "sum.py").write_text(MODEL_PY)
    path = write(tmp_path, """
        apiVersion: clipper/v1
        applications:
          - name: hello
            input_type: doubles
            slo_micros: 20000
          - name: words
            input_type: strings
            default_output: "?"
            policy: default
            cache: false
          - {name: counts, input_type: ints}
        models:
          - name: sum
            version: 1
            input_type: doubles
            module: models/sum.py:predict
          - name: sum
            version: "2"
            input_type: doubles
            module: models/sum.py:predict
            replicas: 2
            batch_size: 8
            batch_wait_timeout_micros: 500
            labels: [team-a]
            autoscaling: {max_replicas: 3}
        links:
          - {app: hello, model: sum}
        """)
    desired = load_file(path, registry)
    hello, words, counts = desired.apps
    assert counts.input_type == "integers"  # any of Clipper's spellings, as the server names it
    assert (hello.name, hello.input_type, hello.slo_micros, hello.default_output, hello.policy, hello.cache) == (
        "hello", "doubles", 20000, "None", "default", True)
    assert (words.default_output, words.cache) == ("?", False)
    v1, v2 = desired.models
    assert (v1.version, v1.input_type, v1.replicas, v1.batch_size, v1.current) == ("1", "doubles", 1, -1, False)
    assert (v2.version, v2.replicas, v2.batch_size, v2.batch_wait_timeout_micros, v2.labels, v2.current) == (
        "2", 2, 8, 500, ("team-a",), True)  # the last version in the file is current
    assert v1.source.kind == "module" and v1.source.deployer == "python_closure"
    assert v1.source.value == f"{(tmp_path / 'models' / 'sum.py').resolve()}:predict"
    assert v1.source.digest == v2.source.digest and len(v1.source.digest) == 64
    assert v2.autoscaling == {"min_replicas": 1, "max_replicas": 3, "target_inflight_per_replica": 4.0,
                              "target_latency_fraction": None, "upscale_delay_s": 3.0, "downscale_delay_s": 30.0,
                              "smoothing_window_s": 5.0}
    assert [(link.app, link.model) for link in desired.links] == [("hello", "sum")]
    assert desired.links[0].where is not None and desired.links[0].where.line == 27


def test_schema_errors_name_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, """
        applications:
          - name: hello
            input_type: doubles
            slo_micro: 20000
          - input_type: quaternions
            name: b
        models:
          - name: Sum
            version: 1
            input_type: doubles
            image: img
            replicas: -1
        links: {app: hello}
        """)
    assert problems(path) == [
        f"{path}:4: applications[0].slo_micro: unknown field; expected one of: name, input_type, slo_micros, "
        "default_output, policy, policy_config, cache",
        f"{path}:5: applications[1].input_type: 'quaternions' is not one of integers, ints, floats, doubles, "
        "bytes, strings",
        f"{path}:8: models[0].name: 'Sum' does not match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$': lower-case letters, "
        "digits and '-', starting and ending with a letter or digit",
        f"{path}:12: models[0].replicas: -1 is less than the minimum of 0",
        f"{path}:13: links: {{'app': 'hello'}} is not of type 'array'",
    ]


def test_a_missing_field_is_reported_at_its_object(tmp_path: Path) -> None:
    path = write(tmp_path, """
        models:
          - name: m
            input_type: doubles
            image: img
        """)
    assert problems(path) == [f"{path}:2: models[0]: 'version' is a required property (in models[0])"]


def test_yaml_errors_and_duplicate_keys(tmp_path: Path) -> None:
    broken = write(tmp_path, "applications:\n  - name: a\n    input_type: [doubles\n", "broken.yaml")
    (message,) = problems(broken)
    assert message.startswith(f"{broken}:4: not valid YAML: ")
    twice = write(tmp_path, "applications:\n  - name: a\n    input_type: doubles\n    name: b\n", "twice.yaml")
    assert problems(twice) == [f"{twice}:4: applications[0].name: given twice; expected each key once"]
    missing = tmp_path / "missing.yaml"
    assert problems(missing) == [f"{missing}:1: cannot read it: No such file or directory"]


def test_what_the_schema_cannot_say(tmp_path: Path, registry: PluginRegistry) -> None:
    (tmp_path / "m.py").write_text(MODEL_PY)
    (tmp_path / "weights.bin").write_bytes(b"\0")
    path = write(tmp_path, """
        applications:
          - {name: a, input_type: doubles}
          - {name: a, input_type: doubles}
        models:
          - {name: m, version: 1, input_type: doubles, module: m.py:predict, image: img}
          - {name: m, version: 1, input_type: doubles}
          - {name: m, version: 2, input_type: doubles, module: gone.py:predict}
          - {name: m, version: 3, input_type: doubles, file: weights.bin}
          - {name: m, version: 4, input_type: doubles, file: m.py, deployer: nosuch}
          - {name: m, version: 5, input_type: doubles, image: NO_CONTAINER, replicas: 2}
          - {name: m, version: 6, input_type: doubles, image: img, autoscaling: {min_replicas: 5, max_replicas: 2}}
          - {name: m, version: 7, input_type: doubles, image: img, current: true}
          - {name: m, version: 8, input_type: doubles, image: img, current: true, rollout: {steps: [50, 10]}}
          - {name: m, version: 9, input_type: doubles, module: m.py:predict, deployer: sklearn}
          - {name: m, version: 10, input_type: doubles, module: m.py:predict, digest: "%s"}
        links:
          - {app: a, model: m}
          - {app: a, model: m}
        """ % ("0" * 64))
    assert problems(path, registry) == [
        f"{path}:3: applications[1].name: application 'a' is declared twice (first at line 2)",
        f"{path}:5: models[0].image: give exactly one of module, file, model_dir, image; got module, image",
        f"{path}:6: models[1]: give exactly one of module, file, model_dir, image",
        f"{path}:7: models[2].module: no such file or directory: {tmp_path / 'gone.py'}",
        f"{path}:8: models[3].file: no installed deployer takes a .bin file; name one with deployer",
        f"{path}:9: models[4].deployer: no deployer named 'nosuch'; installed: "
        f"{sorted(registry.deployers.names())}",
        f"{path}:10: models[5].replicas: 2 replicas of image NO_CONTAINER; a model without a container runs none: "
        "expected 0",
        f"{path}:11: models[6].autoscaling: 'min_replicas' (5) is above 'max_replicas' (2); expected min <= max",
        f"{path}:13: models[8].current: a version rolled out is made current by its rollout, not by the file: "
        "remove current, or the rollout",
        f"{path}:13: models[8].current: model m has 2 current versions (7, 8); expected at most one",
        f"{path}:13: models[8].rollout: 'steps' is [50, 10]; expected increasing percentages",
        f"{path}:14: models[9].deployer: module is deployed by python_closure; deployer 'sklearn' takes a file",
        f"{path}:15: models[10].digest: digest goes with model_dir or image (what clipper export writes), not "
        "with module",
        f"{path}:18: links[1]: m is linked to a twice",
    ]


def test_a_file_deployer_is_picked_by_suffix(tmp_path: Path, registry: PluginRegistry) -> None:
    (tmp_path / "model.skops").write_bytes(b"not really")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"")
    desired = load_text(textwrap.dedent("""
        models:
          - {name: a, version: 1, input_type: doubles, file: model.skops}
          - {name: b, version: 1, input_type: doubles, file: saved}
          - {name: c, version: 1, input_type: doubles, file: model.skops, deployer: sklearn, options: {method: x}}
        """), "inline", tmp_path, registry)
    a, b, c = desired.models
    assert (a.source.deployer, b.source.deployer, c.source.deployer) == ("sklearn", "tensorflow", "sklearn")
    assert c.source.options == {"method": "x"} and a.source.digest != c.source.digest  # options change the build
    with pytest.raises(FileProblems) as info:
        load_text("models:\n  - {name: a, version: 1, input_type: doubles, file: model.skops, deployer: pytorch}\n",
                  "inline", tmp_path, registry)
    assert str(info.value) == "inline:2: models[0].deployer: deployer 'pytorch' does not take model.skops; it takes " \
                              ".pt2, .pt"


def test_the_digest_follows_the_model_file(tmp_path: Path) -> None:
    model = tmp_path / "m.py"
    model.write_text(MODEL_PY)
    text = "models:\n  - {name: m, version: 1, input_type: doubles, module: m.py:predict}\n"
    first = load_text(text, "f", tmp_path).models[0].source.digest
    assert load_text(text, "f", tmp_path).models[0].source.digest == first
    model.write_text(MODEL_PY.replace("sum(x)", "sum(x) + 1"))
    assert load_text(text, "f", tmp_path).models[0].source.digest != first
    exported = f"models:\n  - {{name: m, version: 1, input_type: doubles, image: img, digest: '{first}'}}\n"
    assert load_text(exported, "f", tmp_path).models[0].source.digest == first
    assert DIGEST_LABEL.endswith("=") and ":" not in DIGEST_LABEL  # labels may hold neither ':' nor ','
