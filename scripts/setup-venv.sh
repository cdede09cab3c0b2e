#!/usr/bin/env bash
# Create ./.venv (if missing) and install clipper-core, clipper-container, the dev tools and every plugin into it
# (--main: clipper-core and clipper-container only, what scripts/quickstart.sh needs).
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.clipper-installed
# Every plugin package (plugins/<kind>/<name>/pyproject.toml) is installed editable, with its test extra.
plugins=$(ls plugins/*/*/pyproject.toml 2>/dev/null | sort || true)
# The editable install of clipper-core also compiles the V2 gRPC .proto (setup.py): its modules are not in git,
# so a work tree without them (a fresh checkout beside an existing venv) installs again.
proto=clipper_core/frontend/grpc/grpc_predict_v2.proto
want=$(cat pyproject.toml setup.py "$proto" containers/pyproject.toml $plugins | sha1sum | cut -d' ' -f1)
# --main (scripts/quickstart.sh): only what the main job needs, clipper-container and clipper-core (editable) with
# their runtime dependencies: no extras, dev tools or plugins. A current full install already has them.
if [ "${1:-}" = "--main" ]; then
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "${proto%.proto}_pb2.py" ]; then exit 0; fi
  main_stamp=.venv/.clipper-installed-main
  want_main=$(cat pyproject.toml setup.py "$proto" containers/pyproject.toml | sha1sum | cut -d' ' -f1)
  if [ ! -f "$main_stamp" ] || [ "$(cat "$main_stamp")" != "$want_main" ] || [ ! -f "${proto%.proto}_pb2.py" ]; then
    echo "== installing clipper-core and clipper-container into .venv"
    .venv/bin/python -m pip install -q -e ./containers -e .
    echo "$want_main" > "$main_stamp"
  fi
  exit 0
fi
# Likewise the dashboard's vendored uPlot (its build runs npm ci; not in git).
vendor=plugins/ui/dashboard/src/clipper_dashboard/static/vendor/uPlot.iife.min.js
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f "${proto%.proto}_pb2.py" ] || [ ! -f "$vendor" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ./containers
  .venv/bin/python -m pip install -q -e ".[dev]"
  for p in $plugins; do
    dir=$(dirname "$p")
    if grep -q '^test = ' "$p"; then
      .venv/bin/python -m pip install -q -e "$dir[test]"
    else
      .venv/bin/python -m pip install -q -e "$dir"
    fi
  done
  echo "$want" > "$stamp"
fi
