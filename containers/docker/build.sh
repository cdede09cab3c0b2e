#!/usr/bin/env bash
# Build clipper's images without any registry (as here: no Docker Hub).
#   1. clipper/base:<ver>    a Debian minbase root filesystem (debootstrap) with python3, venv and redis-server,
#                            imported with `docker import`; built once, reused while the image exists.
#   2. clipper/runtime:<ver> clipper-core + clipper-container in a venv, installed from wheels that pip
#                            downloads on the host (for the image's Python) plus wheels of this checkout.
# Needs root (debootstrap), docker (DOCKER_HOST from scripts/docker-engine.sh) and the Debian mirror apt uses.
# Building twice reuses the cache: the base is skipped, the runtime layers are Docker-cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
cache=${CLIPPER_IMAGE_CACHE:-$HOME/.cache/clipper-images}
suite=${CLIPPER_DEBIAN_SUITE:-bookworm}
mirror=${CLIPPER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"

if ! docker image inspect "clipper/base:$version" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  rootfs="$cache/rootfs-$suite"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,redis-server "$suite" "$rootfs" "$mirror" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  fi
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "clipper/base:$version" >/dev/null
  echo "built clipper/base:$version"
fi

context="$cache/runtime-context"
rm -rf "$context" && mkdir -p "$context/wheels"
# The image's full Python version: environment markers (e.g. python_full_version < "3.11.3") depend on it.
pyver=$(docker run --rm "clipper/base:$version" python3 -c 'import platform; print(platform.python_version())')
py=${PYTHON:-python3}
[ -x "$repo/.venv/bin/python" ] && py="$repo/.venv/bin/python"
"$py" -m pip wheel -q --no-deps -w "$context/wheels" "$repo/containers" "$repo" 2>/dev/null
"$py" -m pip download -q -d "$context/wheels" --only-binary=:all: --python-version "$pyver" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --platform any pluggy aiohttp uvloop pyzmq msgpack orjson prometheus-client cloudpickle numpy redis \
  "async-timeout>=4.0.3" 2>/dev/null  # pip marks redis's async-timeout with the host's full Python version: ask for it
cp "$here/Dockerfile.runtime" "$context/Dockerfile"
docker build -q --build-arg "BASE=clipper/base:$version" -t "clipper/runtime:$version" "$context" >/dev/null
echo "built clipper/runtime:$version"
