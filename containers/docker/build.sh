#!/usr/bin/env bash
# Build clipper's Docker images, with or without a registry:
#   clipper/model-base:<ver>  Python + clipper-container; model images are built FROM it (model dir at /model)
#   clipper/frontend:<ver>    clipper-core[redis] + clipper-docker + clipper-kubernetes: query frontend, admin
#                             server (its autoscaler acts through either manager), supervisor
#   clipper/redis:<ver>       redis-server with its append-only file in /data
# The base comes from a registry (python:3.11-slim, redis:7-bookworm) where one answers; otherwise (as on
# machines that reach PyPI and the Debian mirror but not Docker Hub) from a Debian `debootstrap
# --variant=minbase` root filesystem of the host's release, turned into clipper/base:<ver> by `docker import`.
# Python packages never come from an index inside a build: `pip download` fetches wheels for the image's Python
# on the host (pinned to this checkout's venv where it has them), `pip wheel` builds this checkout's
# distributions, and the Dockerfiles install them with `pip install --no-index`.
#
#   DOCKER_HOST=... containers/docker/build.sh        # prints the image names; a second run is all cache hits
#   DOCKER_HOST=... containers/docker/build.sh sklearn pytorch   # also clipper/model-<framework>:<ver>
#
# Framework images (sklearn, pytorch, tensorflow, xgboost) are clipper/model-base plus the framework and its
# clipper-deployer-* package; DockerContainerManager.build_model uses them as the default base of a model
# directory that deployer wrote. Their wheels are pinned to this checkout's venv too (torch: the CPU build).
#
# Environment: CLIPPER_IMAGE_SOURCE=auto|registry|debootstrap (auto: an existing clipper/base, else the
# registry if a pull works, else debootstrap), CLIPPER_IMAGE_CACHE (default ~/.cache/clipper-images),
# CLIPPER_DEBIAN_SUITE / CLIPPER_DEBIAN_MIRROR (default: the host's release and apt's mirror), PYTHON.
# Needs docker; debootstrap (installed with apt-get when missing) and root for the debootstrap path.
set -euo pipefail
frameworks=("$@")
for fw in "${frameworks[@]}"; do
  case "$fw" in sklearn|pytorch|tensorflow|xgboost) ;;
    *) echo "build.sh: unknown framework '$fw' (sklearn, pytorch, tensorflow or xgboost)" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
cache=${CLIPPER_IMAGE_CACHE:-$HOME/.cache/clipper-images}
source_mode=${CLIPPER_IMAGE_SOURCE:-auto}
export DOCKER_BUILDKIT=0  # the classic builder, as the docker SDK's build_model uses: one shared layer cache
started=$(date +%s)
log() { echo "build.sh: $*" >&2; }
mkdir -p "$cache"

py=${PYTHON:-python3}
[ -x "$repo/.venv/bin/python" ] && py="$repo/.venv/bin/python"

# -- 1. the base image -----------------------------------------------------------------------------------
host_suite() {
  . /etc/os-release 2>/dev/null && [ -n "${VERSION_CODENAME:-}" ] && { echo "$VERSION_CODENAME"; return; }
  echo bookworm
}
apt_mirror() {  # the first Debian archive apt uses (deb822 .sources or one-line .list), else deb.debian.org
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
          /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -E '/debian/?$' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

debootstrap_base() {
  local suite mirror rootfs
  suite=${CLIPPER_DEBIAN_SUITE:-$(host_suite)}
  mirror=${CLIPPER_DEBIAN_MIRROR:-$(apt_mirror)}
  rootfs="$cache/rootfs-$suite"
  if [ ! -x "$rootfs/usr/bin/python3" ] || [ ! -x "$rootfs/usr/bin/redis-server" ]; then
    [ "$(id -u)" = "0" ] || { log "debootstrap needs root"; exit 1; }
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    log "debootstrap --variant=minbase $suite from $mirror (once; cached in $rootfs)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,redis-server "$suite" "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # Documentation, manuals and translations are not needed to serve models (about 15 MB).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
      "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  fi
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "LABEL ai.clipper.base.source=debootstrap-$suite" - "clipper/base:$version" >/dev/null
  log "imported clipper/base:$version ($suite minbase)"
}

if [ "$source_mode" = auto ]; then
  if docker image inspect "clipper/base:$version" >/dev/null 2>&1; then
    source_mode=debootstrap
  elif timeout 300 docker pull -q python:3.11-slim >/dev/null 2>&1 \
       && timeout 300 docker pull -q redis:7-bookworm >/dev/null 2>&1; then
    source_mode=registry
  else
    log "no registry answers: building the base with debootstrap"
    source_mode=debootstrap
  fi
fi
case "$source_mode" in
  registry)
    base=python:3.11-slim; redis_base=redis:7-bookworm
    for image in "$base" "$redis_base"; do
      docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null
    done
    ;;
  debootstrap)
    docker image inspect "clipper/base:$version" >/dev/null 2>&1 || debootstrap_base
    base="clipper/base:$version"; redis_base="clipper/base:$version"
    ;;
  *) log "CLIPPER_IMAGE_SOURCE must be auto, registry or debootstrap, not $source_mode"; exit 2 ;;
esac
# The image's full Python version: wheels and environment markers (python_full_version) must match it.
pyver=$(docker run --rm --network none "$base" python3 -c 'import platform; print(platform.python_version())')
log "base $base (Python $pyver)"

# -- 2. wheels --------------------------------------------------------------------------------------------
# This checkout's distributions, built from a copy of the tracked and new files (no build/ or egg-info left in
# the working tree), with a fixed SOURCE_DATE_EPOCH so unchanged sources give byte-identical wheels.
local_wheels="$cache/wheels-local"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
(cd "$repo" && git ls-files -co --exclude-standard -- pyproject.toml setup.py README.md clipper_core containers \
   plugins/container_managers/docker plugins/container_managers/kubernetes plugins/deployers | while IFS= read -r f; do [ -f "$f" ] && echo "$f"; done \
   | tar -c --no-recursion -T -) | tar -C "$src" -x  # (files deleted but not yet committed are left out)
rm -rf "$local_wheels" && mkdir -p "$local_wheels"
for dist in "$src/containers" "$src" "$src/plugins/container_managers/docker" \
            "$src/plugins/container_managers/kubernetes"; do
  # Without build isolation where this Python has setuptools (fast, offline); with it otherwise.
  SOURCE_DATE_EPOCH=315532800 "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$local_wheels" "$dist" \
    >"$cache/pip-wheel.log" 2>&1 \
  || SOURCE_DATE_EPOCH=315532800 "$py" -m pip wheel -q --no-deps -w "$local_wheels" "$dist" \
    >"$cache/pip-wheel.log" 2>&1 || { cat "$cache/pip-wheel.log" >&2; exit 1; }
done

# Third-party requirements of those distributions (clipper-* excluded: they are the local wheels above).
requirements() {  # $@: pyproject.toml files; "file:extra" adds an optional-dependencies group
  "$py" - "$@" <<'PY'
import re, sys, tomllib
for spec in sys.argv[1:]:
    path, _, extra = spec.partition(":")
    project = tomllib.load(open(path, "rb"))["project"]
    for req in project["optional-dependencies"][extra] if extra else project.get("dependencies", []):
        if not re.match(r"clipper[-_]", req):
            print(req)
PY
}
# The host venv's versions where it has the package: cloudpickle in particular must match the client's.
"$py" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' >"$cache/constraints.txt" || true

download() {  # $1: target dir; stdin: requirements. Skipped when the same set was downloaded before.
  local dir=$1 stamp
  sort -u >"$dir.txt"
  stamp=$(cat "$dir.txt" "$cache/constraints.txt" | { echo "$pyver"; cat; } | sha1sum | cut -d' ' -f1)
  [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  local args=(-q -d "$dir" --only-binary=:all: --python-version "$pyver" --implementation cp
              --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
              --platform any -r "$dir.txt")
  if ! "$py" -m pip download "${args[@]}" -c "$cache/constraints.txt" >"$dir.log" 2>&1; then
    log "pinned versions not available for Python $pyver; downloading the newest instead"
    "$py" -m pip download "${args[@]}" >"$dir.log" 2>&1 || { cat "$dir.log" >&2; exit 1; }
  fi
  echo "$stamp" >"$dir/.stamp"
}
# redis marks async-timeout with python_full_version, which pip download evaluates for the host: ask for it.
requirements "$repo/containers/pyproject.toml" "$repo/containers/pyproject.toml:tracing" | download "$cache/wheels-model"
{ requirements "$repo/containers/pyproject.toml" "$repo/containers/pyproject.toml:tracing" "$repo/pyproject.toml" \
    "$repo/pyproject.toml:redis" "$repo/pyproject.toml:tracing" "$repo/pyproject.toml:grpc" \
    "$repo/plugins/container_managers/docker/pyproject.toml" "$repo/plugins/container_managers/kubernetes/pyproject.toml"
  echo "async-timeout>=4.0.3"; } \
  | download "$cache/wheels-frontend"

# -- 3. images --------------------------------------------------------------------------------------------
build() {  # $1: image name, $2: Dockerfile, $3: base, $4...: wheels for the context (globs)
  local image=$1 dockerfile=$2 from=$3 context="$cache/context-$1" wheel
  shift 3
  rm -rf "$context" && mkdir -p "$context/wheels"
  for wheel in "$@"; do cp -p $wheel "$context/wheels/"; done
  cp "$here/$dockerfile" "$context/Dockerfile"
  docker build --force-rm --build-arg "BASE=$from" --label "ai.clipper.python=$pyver" --label "ai.clipper.version=$version" \
    -t "clipper/$image:$version" "$context" >"$context.log" 2>&1 || { tail -30 "$context.log" >&2; exit 1; }
  echo "clipper/$image:$version"
}
build model-base Dockerfile.model-base "$base" "$cache/wheels-model/*.whl" "$local_wheels/clipper_container-*.whl"
build frontend Dockerfile.frontend "$base" "$cache/wheels-frontend/*.whl" "$local_wheels/*.whl"
build redis Dockerfile.redis "$redis_base"

# -- 4. framework model bases (only those asked for) ------------------------------------------------------
for fw in "${frameworks[@]}"; do
  extra=$fw
  case "$fw" in tensorflow) extra=tensorflow-cpu ;; xgboost) extra=xgboost-cpu ;; esac
  SOURCE_DATE_EPOCH=315532800 "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$local_wheels" \
    "$src/plugins/deployers/$fw" >"$cache/pip-wheel.log" 2>&1 || { cat "$cache/pip-wheel.log" >&2; exit 1; }
  requirements "$repo/plugins/deployers/$fw/pyproject.toml:$extra" | download "$cache/wheels-$fw"
  cp "$cache/wheels-$fw.txt" "$cache/wheels-$fw/requirements.txt"
  build "model-$fw" Dockerfile.model-framework "clipper/model-base:$version" "$cache/wheels-$fw/*.whl" \
    "$cache/wheels-$fw/requirements.txt" "$local_wheels/clipper_deployer_$fw-*.whl"
done
log "done in $(($(date +%s) - started)) s"
