"""What a clipper file declares (:class:`Desired`, read by :mod:`.load`) and what a running clipper holds
(:class:`Running`, read by :mod:`.running`), in the same terms, so that :mod:`.plan` can compare them field by field.

Every declared object keeps :class:`Where` it was written, so that an error found later (a field that cannot
change, a link to an unknown model) still names the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipper_core.errors import ClipperException

__all__ = ["DIGEST_LABEL", "AppSpec", "Desired", "FileProblems", "LinkSpec", "ModelSpec", "Problem", "Running",
           "RunningApp", "RunningModel", "Source", "Where"]

DIGEST_LABEL = "source-sha256="
"""The label prefix a version applied from a file carries, followed by the sha256 of its source (labels may not
hold ':' or ','), so that a later apply can tell a changed model file from the same one."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: ``clipper.yaml:12: models[0].replicas: -1 is less than the minimum of 0``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}" if self.field else \
            f"{self.file}:{self.line}: {self.message}"


class FileProblems(ClipperException):
    """A file that cannot be applied; ``problems`` lists each, by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.field))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Where:
    """Where an object was declared: its file, its path in the file (``models[0]``), its line and those of its
    fields."""

    file: str
    path: str
    line: int
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def problem(self, message: str, key: str | None = None) -> Problem:
        """A :class:`Problem` at ``key``'s line (else the object's own)."""
        return Problem(self.file, self.lines.get(key, self.line) if key else self.line,
                       f"{self.path}.{key}" if key else self.path, message)


@dataclass(frozen=True)
class AppSpec:
    name: str
    input_type: str
    slo_micros: int = 100000
    default_output: str = "None"
    policy: str = "default"
    policy_config: dict[str, Any] = field(default_factory=dict)
    cache: bool = True
    where: Where | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Source:
    """Where a model version comes from. ``kind``: ``module`` (``FILE.py:FUNCTION``, the python-closure deployer),
    ``file`` (a framework deployer's model file or directory), ``model_dir`` (a saved model directory) or
    ``image`` (what the container manager runs, as it is). ``digest``: the sha256 recorded in the version's
    :data:`DIGEST_LABEL`."""

    kind: str
    value: str
    deployer: str | None
    digest: str
    options: dict[str, Any] = field(default_factory=dict)
    base_image: str = "default"
    pkgs_to_install: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """The source's file or directory (``module``: the .py file)."""
        return Path(self.value.rpartition(":")[0] if self.kind == "module" else self.value)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    input_type: str
    source: Source
    replicas: int = 1
    batch_size: int = -1
    batch_wait_timeout_micros: int = 0
    labels: tuple[str, ...] = ()
    current: bool = True
    """Resolved by :mod:`.load`: the declared ``current``, else whether it is its model's last version in the file
    without a rollout and not declared ``current: false``."""
    autoscaling: dict[str, Any] | None = None
    """Validated, defaults filled in (as the server stores it); None: off."""
    rollout: dict[str, Any] | None = None
    """The ``start_rollout`` settings as declared (the server fills in the rest); None: no rollout."""
    where: Where | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class LinkSpec:
    app: str
    model: str
    where: Where | None = field(default=None, compare=False)


@dataclass
class Desired:
    """A clipper file, checked: its objects in the order written."""

    file: str
    apps: list[AppSpec] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)

    def rolled_out(self, name: str) -> bool:
        """Whether a version of model ``name`` declares a rollout (the rollout then decides what is current)."""
        return any(m.name == name and m.rollout is not None for m in self.models)


@dataclass(frozen=True)
class RunningApp:
    name: str
    input_type: str
    slo_micros: int
    default_output: str
    policy: str
    policy_config: dict[str, Any]
    cache: bool
    links: tuple[str, ...]


@dataclass(frozen=True)
class RunningModel:
    name: str
    version: str
    input_type: str
    labels: tuple[str, ...]
    """The user's labels (without the digest label)."""
    container_name: str
    batch_size: int
    batch_wait_timeout_micros: int
    num_replicas: int
    current: bool
    autoscaling: dict[str, Any] | None
    digest: str | None
    """From the version's :data:`DIGEST_LABEL`; None: registered by other means than ``clipper apply``."""

    @property
    def key(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass
class Running:
    """What a running clipper holds, read through its management API."""

    apps: dict[str, RunningApp] = field(default_factory=dict)
    models: dict[str, RunningModel] = field(default_factory=dict)
    """By ``name:version``."""
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each model's rollout (the active one, else the last), as ``get_rollouts`` answers it."""

    def versions(self, name: str) -> list[RunningModel]:
        return [m for m in self.models.values() if m.name == name]

    def current(self, name: str) -> RunningModel | None:
        return next((m for m in self.models.values() if m.name == name and m.current), None)
