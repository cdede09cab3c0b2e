"""Read a clipper file: YAML with the line of every value (PyYAML's composed nodes keep their marks), checked
against :data:`.schema.SCHEMA` with the ``jsonschema`` library and then for what the schema cannot say; every
problem found is reported at once, as ``file:line: field: message``.

Relative paths (``module``, ``file``, ``model_dir``) are relative to the file's directory, as in docker-compose.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from clipper_core.autoscaling.config import AutoscalingConfig
from clipper_core.declarative.schema import SCHEMA, SOURCE_FIELDS
from clipper_core.declarative.sources import CLOSURE_DEPLOYER, deployer_for
from clipper_core.declarative.spec import (
    AppSpec,
    Desired,
    FileProblems,
    LinkSpec,
    ModelSpec,
    Problem,
    Source,
    Where,
)
from clipper_core.errors import ClipperError, ClipperException
from clipper_core.inputs import parse_input_type
from clipper_core.names import NO_CONTAINER
from clipper_core.plugins import PluginRegistry
from clipper_core.rollouts.settings import RolloutSettings

__all__ = ["Document", "load_file", "load_text", "parse"]

MANIFEST = "clipper_model.json"
Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed YAML document and the line (1-based) of each value, by its path (``("models", 0, "replicas")``)."""

    file: str
    data: Any
    lines: dict[Path_, int]
    key_lines: dict[Path_, int]
    """The line of each mapping key, by the path of its value (an unknown key is reported there)."""

    def line(self, path: Path_) -> int:
        """The line of ``path``, else of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def field_name(path: Path_) -> str:
    """``("models", 0, "replicas")`` -> ``models[0].replicas``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse(text: str, file: str) -> Document:
    """The YAML ``text`` as data with the line of every value; a YAML error is a :class:`FileProblems` at its line.
    Duplicate keys, which YAML's loaders silently resolve to the last, are refused."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = {} if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise FileProblems([Problem(file, line, "", f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise FileProblems([Problem(file, 1, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {(): 1 if node is None else node.start_mark.line + 1}
    key_lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, key_lines, problems, file)
    if problems:
        raise FileProblems(problems)
    return Document(file, data, lines, key_lines)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], key_lines: dict[Path_, int],
          problems: list[Problem], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(Problem(file, key_node.start_mark.line + 1, field_name((*path, key)),
                                        "given twice; expected each key once"))
            seen.add(key)
            key_lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, key_lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, key_lines, problems, file)


def schema_problems(doc: Document) -> list[Problem]:
    """Every way ``doc`` breaks :data:`.schema.SCHEMA`, each at the line of the field concerned."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for error in validator.iter_errors(doc.data):
        path: Path_ = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            for key in sorted(set(error.instance) - set(allowed), key=str):
                where = (*path, key)
                problems.append(Problem(doc.file, doc.key_lines.get(where, doc.line(path)), field_name(where),
                                        f"unknown field; expected one of: {', '.join(allowed)}"))
            continue
        message = error.message
        if error.validator == "required":
            message = f"{message} (in {field_name(path) or 'the file'})"
        elif error.validator == "enum":
            message = f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
        elif error.validator == "pattern" and "description" in error.schema:
            message = f"{error.instance!r} does not match {error.validator_value!r}: {error.schema['description']}"
        problems.append(Problem(doc.file, doc.line(path), field_name(path), message))
    return problems


def load_file(path: Path, registry: PluginRegistry | None = None) -> Desired:
    """Read and check the clipper file at ``path`` (see :func:`load_text`)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileProblems([Problem(str(path), 1, "", f"cannot read it: {exc.strerror or exc}")]) from None
    return load_text(text, str(path), path.resolve().parent, registry)


def load_text(text: str, file: str, base: Path, registry: PluginRegistry | None = None) -> Desired:
    """Parse ``text`` (named ``file`` in messages; relative paths from ``base``), check it against the schema,
    then what the schema cannot say; raise :class:`FileProblems` listing every problem found.

    :param registry: the installed plugins (a model's ``deployer`` must be one of their deployers); None: not
        checked
    """
    doc = parse(text, file)
    problems = schema_problems(doc)
    if problems:
        raise FileProblems(problems)
    reader = _Reader(doc, base, registry)
    desired = reader.read()
    if reader.problems:
        raise FileProblems(reader.problems)
    return desired


class _Reader:
    """Turns a schema-valid document into a :class:`Desired`, collecting every problem."""

    def __init__(self, doc: Document, base: Path, registry: PluginRegistry | None) -> None:
        self.doc = doc
        self.base = base
        self.registry = registry
        self.problems: list[Problem] = []

    def where(self, path: Path_) -> Where:
        data = self._at(path)
        lines = {str(key): self.doc.line((*path, key)) for key in data} if isinstance(data, dict) else {}
        return Where(self.doc.file, field_name(path), self.doc.line(path), lines)

    def _at(self, path: Path_) -> Any:
        data = self.doc.data
        for part in path:
            data = data[part]
        return data

    def read(self) -> Desired:
        data = self.doc.data or {}
        desired = Desired(self.doc.file)
        names: dict[str, Where] = {}
        for i, item in enumerate(data.get("applications", [])):
            where = self.where(("applications", i))
            app = self.app(item, where)
            if app.name in names:
                self.problems.append(where.problem(f"application {app.name!r} is declared twice (first at line "
                                                   f"{names[app.name].line})", "name"))
            names[app.name] = where
            desired.apps.append(app)
        keys: dict[str, Where] = {}
        models = [(item, self.where(("models", i))) for i, item in enumerate(data.get("models", []))]
        for item, where in models:
            model = self.model(item, where, [m for m, _ in models])
            if model is None:
                continue
            if model.key in keys:
                self.problems.append(where.problem(f"model version {model.key} is declared twice (first at line "
                                                   f"{keys[model.key].line})", "version"))
            keys[model.key] = where
            desired.models.append(model)
        self.check_current(desired.models, keys)
        links: set[tuple[str, str]] = set()
        for i, item in enumerate(data.get("links", [])):
            where = self.where(("links", i))
            link = LinkSpec(item["app"], item["model"], where)
            if (link.app, link.model) in links:
                self.problems.append(where.problem(f"{link.model} is linked to {link.app} twice"))
            links.add((link.app, link.model))
            desired.links.append(link)
        return desired

    def app(self, item: dict[str, Any], where: Where) -> AppSpec:
        return AppSpec(name=item["name"], input_type=parse_input_type(item["input_type"]).value,
                       slo_micros=item.get("slo_micros", 100000),
                       default_output=item.get("default_output", "None"), policy=item.get("policy", "default"),
                       policy_config=dict(item.get("policy_config") or {}), cache=item.get("cache", True),
                       where=where)

    def model(self, item: dict[str, Any], where: Where, items: list[dict[str, Any]]) -> ModelSpec | None:
        given = [key for key in SOURCE_FIELDS if key in item]
        if len(given) != 1:
            self.problems.append(where.problem(
                f"give exactly one of {', '.join(SOURCE_FIELDS)}" + (f"; got {', '.join(given)}" if given else ""),
                given[1] if len(given) > 1 else None))
            return None
        source = self.source(given[0], item, where)
        if source is None:
            return None
        containerless = source.kind == "image" and source.value == NO_CONTAINER
        replicas = item.get("replicas", 0 if containerless else 1)
        if containerless and replicas:
            self.problems.append(where.problem(f"{replicas} replicas of image {NO_CONTAINER}; a model without a "
                                               "container runs none: expected 0", "replicas"))
        autoscaling = item.get("autoscaling")
        if autoscaling is not None:
            try:
                autoscaling = AutoscalingConfig.from_dict(autoscaling).to_dict()
            except ClipperError as exc:
                self.problems.append(where.problem(exc.message, "autoscaling"))
            if containerless:
                self.problems.append(where.problem(f"a model of image {NO_CONTAINER} has nothing to autoscale",
                                                   "autoscaling"))
        rollout = item.get("rollout")
        if rollout is not None:
            try:
                RolloutSettings.from_dict(rollout)
            except ClipperError as exc:
                self.problems.append(where.problem(exc.message, "rollout"))
            if item.get("current") is True:
                self.problems.append(where.problem("a version rolled out is made current by its rollout, not by "
                                                   "the file: remove current, or the rollout", "current"))
        name, version = item["name"], str(item["version"])
        last = [other for other in items
                if other.get("name") == name and "rollout" not in other and other.get("current") is not False]
        current = item.get("current")
        if current is None:
            explicit = any(other.get("current") is True for other in items if other.get("name") == name)
            current = not explicit and rollout is None and bool(last) and last[-1] is item
        return ModelSpec(name=name, version=version, input_type=parse_input_type(item["input_type"]).value,
                         source=source,
                         replicas=replicas, batch_size=item.get("batch_size", -1),
                         batch_wait_timeout_micros=item.get("batch_wait_timeout_micros", 0),
                         labels=tuple(item.get("labels", ())), current=bool(current), autoscaling=autoscaling,
                         rollout=dict(rollout) if rollout is not None else None, where=where)

    def check_current(self, models: list[ModelSpec], keys: dict[str, Where]) -> None:
        by_name: dict[str, list[ModelSpec]] = {}
        for model in models:
            by_name.setdefault(model.name, []).append(model)
        for name, versions in by_name.items():
            current = [m for m in versions if m.current]
            if len(current) > 1:
                self.problems.append(keys[current[1].key].problem(
                    f"model {name} has {len(current)} current versions ({', '.join(m.version for m in current)}); "
                    "expected at most one", "current"))
            rollouts = [m for m in versions if m.rollout is not None]
            if len(rollouts) > 1:
                self.problems.append(keys[rollouts[1].key].problem(
                    f"model {name} declares {len(rollouts)} rollouts; a model has one rollout at a time", "rollout"))

    def source(self, kind: str, item: dict[str, Any], where: Where) -> Source | None:
        value = str(item[kind])
        deployer = item.get("deployer")
        options = dict(item.get("options") or {})
        extra = {"options": options, "base_image": item.get("base_image", "default"),
                 "pkgs_to_install": tuple(item.get("pkgs_to_install", ()))}
        if "digest" in item and kind not in ("model_dir", "image"):
            self.problems.append(where.problem(f"digest goes with model_dir or image (what clipper export writes), "
                                               f"not with {kind}", "digest"))
            return None
        if kind == "image":
            if deployer is not None:
                self.problems.append(where.problem("an image is run as it is: no deployer applies", "deployer"))
                return None
            digest = item.get("digest") or _digest(["image", value, extra])
            return Source(kind, value, None, digest, **extra)
        path_text, _, function = value.rpartition(":") if kind == "module" else (value, "", "")
        path = Path(os.path.expanduser(path_text))
        path = path if path.is_absolute() else self.base / path
        if not path.exists():
            self.problems.append(where.problem(f"no such file or directory: {path}", kind))
            return None
        resolved = str(path.resolve()) + (f":{function}" if kind == "module" else "")
        if kind == "module":
            if deployer not in (None, CLOSURE_DEPLOYER):
                self.problems.append(where.problem(f"module is deployed by {CLOSURE_DEPLOYER}; deployer "
                                                   f"{deployer!r} takes a file", "deployer"))
                return None
            if not path.is_file():
                self.problems.append(where.problem(f"{path} is not a file", kind))
                return None
            return Source(kind, resolved, CLOSURE_DEPLOYER, _digest([kind, function, CLOSURE_DEPLOYER, extra], path),
                          **extra)
        if kind == "model_dir":
            return self.model_dir(path, resolved, deployer, item, where, extra)
        deployer = self.file_deployer(path, deployer, where)
        if deployer is None:
            return None
        return Source(kind, resolved, deployer, _digest([kind, deployer, extra], path), **extra)

    def model_dir(self, path: Path, resolved: str, deployer: str | None, item: dict[str, Any], where: Where,
                  extra: dict[str, Any]) -> Source | None:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            self.problems.append(where.problem(f"{path} is not a saved model directory ({MANIFEST}: {exc})",
                                               "model_dir"))
            return None
        saved_by = str(manifest.get("deployer") or "")
        if deployer is not None and deployer != saved_by:
            self.problems.append(where.problem(f"{path} was saved by deployer {saved_by!r}, not {deployer!r}",
                                               "deployer"))
            return None
        digest = item.get("digest") or _digest(["model_dir", extra], path)
        return Source("model_dir", resolved, saved_by or None, digest, **extra)

    def file_deployer(self, path: Path, deployer: str | None, where: Where) -> str | None:
        """The deployer of a model ``file``: the one named (installed, and taking such a file), else the one
        installed deployer that takes its suffix (or a directory)."""
        if self.registry is None:
            if deployer is None:
                self.problems.append(where.problem("name its deployer", "deployer"))
            return deployer
        try:
            return deployer_for(self.registry, path, deployer, hint="deployer").name
        except (ClipperException, ClipperError) as exc:
            self.problems.append(where.problem(str(exc), "deployer" if deployer is not None else "file"))
            return None


def _files(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_file():
        yield path.name, path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            yield str(full.relative_to(path)), full


def _digest(parts: list[Any], path: Path | None = None) -> str:
    """sha256 of ``parts`` (as JSON) and of the bytes (and relative names) of ``path``'s files."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    if path is not None:
        for name, full in _files(path):
            h.update(b"\0" + name.encode() + b"\0")
            with full.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()
