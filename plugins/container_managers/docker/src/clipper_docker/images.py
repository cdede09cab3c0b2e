"""Model images: a model directory at ``/model`` on top of a base image, built without any registry.

``pkgs_to_install`` are never fetched inside the build (the build may have no network): ``pip download`` on
this machine fetches wheels for the base image's Python and platform, pinned to the versions the base already
has (numpy and cloudpickle must stay the ones the model was pickled against), and the Dockerfile installs them
with ``pip install --no-index``. With ``offline=False`` pip runs inside the build against the index instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ContainerError, ImageNotFound

from clipper_core.errors import ClipperException
from clipper_docker.names import (
    CLUSTER_LABEL,
    FRAMEWORK_DEPLOYERS,
    MODEL_NAME_LABEL,
    MODEL_VERSION_LABEL,
    framework_image,
    model_image_name,
)

__all__ = ["BUILD_HINT", "build_cluster_model_image", "build_model_image", "default_base_image", "ensure_image",
           "image_python", "model_dockerfile", "push_image"]

log = logging.getLogger(__name__)
PYTHON_LABEL = "ai.clipper.python"
_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "any")
BUILD_HINT = "build clipper's images with containers/docker/build.sh (no registry needed)"
"""How to get a clipper image that is missing (the end of :func:`ensure_image`'s error)."""


def ensure_image(client: docker.DockerClient, image: str, hint: str) -> None:
    """The image exists locally, or is pulled; otherwise fail saying how to build it."""
    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except APIError as exc:
        raise ClipperException(f"image {image} is not on this Docker engine and cannot be pulled "
                               f"({exc.explanation or exc}); {hint}") from None


def build_cluster_model_image(client: docker.DockerClient, cluster: str, name: str, version: str,
                              model_data_path: str, base_image: str | None, pkgs_to_install: list[str] | None,
                              model_base_image: str, registry: str | None = None, offline: bool = True) -> str:
    """``build_model`` of a container manager: ``[<registry>/]<cluster>-<name>:<version>`` FROM ``base_image``
    (None, "" or "default": :func:`default_base_image`) with the model directory at /model; returns the tag."""
    base, hint = str(base_image), BUILD_HINT
    if base_image in (None, "", "default"):
        base, hint = default_base_image(Path(model_data_path), model_base_image)
    ensure_image(client, base, hint)
    tag = model_image_name(cluster, name, str(version), registry)
    return build_model_image(client, tag, model_data_path, base, list(pkgs_to_install or []), cluster, name,
                             str(version), offline=offline)


def push_image(client: docker.DockerClient, tag: str, timeout: float = 900.0) -> None:
    """Push ``tag`` (``registry/repository:tag``) with the engine's credentials; a refusal is an error."""
    repository, _, version = tag.rpartition(":")
    if "/" in version or not repository:
        repository, version = tag, "latest"
    started = time.monotonic()
    try:
        for chunk in client.images.push(repository, tag=version, stream=True, decode=True):
            if isinstance(chunk, dict) and chunk.get("error"):
                raise ClipperException(f"pushing {tag} failed: {chunk['error']}")
            if time.monotonic() - started > timeout:
                raise ClipperException(f"pushing {tag} took more than {timeout:.0f} s")
    except APIError as exc:
        raise ClipperException(f"pushing {tag} failed: {exc.explanation or exc}") from None
    log.info("pushed %s in %.1f s", tag, time.monotonic() - started)


def default_base_image(model_dir: Path, model_base_image: str) -> tuple[str, str]:
    """The base of a model image when none is given, and how to build it: ``model_base_image``, or, for a model
    directory written by a framework deployer (its manifest's ``deployer``), that framework's image."""
    deployer = _manifest_deployer(model_dir)
    if deployer in FRAMEWORK_DEPLOYERS:
        base = framework_image(deployer)
        return base, BUILD_HINT.replace("build.sh", f"build.sh {base.split(':')[0].split('-', 1)[1]}")
    return model_base_image, BUILD_HINT


def _manifest_deployer(model_dir: Path) -> str:
    """The ``deployer`` recorded in a model directory's clipper_model.json ("" when there is none)."""
    try:
        manifest = json.loads((model_dir / "clipper_model.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(manifest.get("deployer", "")) if isinstance(manifest, dict) else ""


def image_python(client: docker.DockerClient, image: str) -> str:
    """The full Python version of an image: its ``ai.clipper.python`` label, else asked from the image."""
    labels = (client.images.get(image).attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(PYTHON_LABEL):
        return str(labels[PYTHON_LABEL])
    return _run(client, image, ["python", "-c", "import platform; print(platform.python_version())"]).strip()


def _run(client: docker.DockerClient, image: str, command: list[str]) -> str:
    try:
        out = client.containers.run(image, command[1:], entrypoint=command[:1], network_mode="none", remove=True,
                                    stdout=True, stderr=False)
    except ContainerError as exc:
        raise ClipperException(f"{' '.join(command)} failed in {image}: {exc}") from None
    return out.decode() if isinstance(out, bytes) else str(out)


def _installed(client: docker.DockerClient, image: str) -> list[str]:
    """``name==version`` of what the image's Python has, as pip constraints (clipper's own left out)."""
    text = _run(client, image, ["python", "-m", "pip", "freeze", "--all"])
    return [line for line in text.splitlines()
            if re.match(r"^[A-Za-z0-9_.-]+==", line) and not re.match(r"(?i)^clipper[-_]", line)
            and not re.match(r"(?i)^(pip|setuptools|wheel)==", line)]


def download_wheels(pkgs: list[str], python_version: str, dest: Path, constraints: list[str],
                    timeout: float = 600.0) -> None:
    """Wheels of ``pkgs`` and their dependencies for ``python_version`` on x86_64 Linux, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    constraints_file = dest.parent / "constraints.txt"
    constraints_file.write_text("\n".join(constraints) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(dest),
           "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
           "-c", str(constraints_file)]
    for platform in _PLATFORMS:
        cmd += ["--platform", platform]
    try:
        done = subprocess.run([*cmd, "--", *pkgs], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClipperException(f"pip download of {pkgs} took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise ClipperException(
            f"cannot get wheels of {pkgs} for Python {python_version} (x86_64 Linux) to install them in the model "
            f"image without network: {done.stderr.strip()[-1500:]}. Packages without a binary wheel need "
            "offline=False (pip runs inside the build) or an image that already has them.")


def model_dockerfile(base: str, user: str, pkgs: list[str], offline: bool) -> str:
    """The model image's Dockerfile: FROM the base, packages installed as root, the model at /model."""
    lines = [f"FROM {base}"]
    if pkgs:
        quoted = " ".join(_shell_quote(p) for p in pkgs)
        lines.append("USER root")
        if offline:
            lines += ["COPY wheels /tmp/clipper-wheels",
                      "RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-index "
                      f"--find-links /tmp/clipper-wheels {quoted} && rm -rf /tmp/clipper-wheels"]
        else:
            lines.append(f"RUN python -m pip install --no-cache-dir --disable-pip-version-check {quoted}")
        if user:
            lines.append(f"USER {user}")
    lines.append("COPY model /model")
    return "\n".join(lines) + "\n"


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _copy_model(src: Path, dst: Path) -> None:
    """Copy the model directory, readable by any user: the image may run it as a non-root user."""
    shutil.copytree(src, dst, symlinks=False)
    for root, _dirs, files in os.walk(dst):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)


def build_model_image(client: docker.DockerClient, tag: str, model_dir: str, base: str, pkgs: list[str],
                      cluster: str, model: str, version: str, offline: bool = True) -> str:
    """Build ``tag`` from ``base`` with ``model_dir`` at /model and ``pkgs`` installed; returns ``tag``.
    A second build of the same directory and packages is all cache hits."""
    src = Path(model_dir)
    if not src.is_dir():
        raise ClipperException(f"model directory {model_dir} does not exist")
    base_attrs = client.images.get(base).attrs
    user = str((base_attrs.get("Config") or {}).get("User") or "")
    with tempfile.TemporaryDirectory(prefix="clipper-docker-build-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        _copy_model(src, context / "model")
        if pkgs and offline:
            download_wheels(pkgs, image_python(client, base), context / "wheels", _installed(client, base))
        (context / "Dockerfile").write_text(model_dockerfile(base, user, pkgs, offline))
        started = time.monotonic()
        try:
            client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False,
                                labels={CLUSTER_LABEL: cluster, MODEL_NAME_LABEL: model,
                                        MODEL_VERSION_LABEL: version})
        except BuildError as exc:
            output = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
            raise ClipperException(f"building {tag} from {base} failed: {exc.msg}\n{output[-3000:]}") from None
        except APIError as exc:
            raise ClipperException(f"building {tag} from {base} failed: {exc.explanation or exc}") from None
    log.info("built %s from %s in %.1f s", tag, base, time.monotonic() - started)
    return tag
