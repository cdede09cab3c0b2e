#!/usr/bin/env bash
# Create ./.venv (if missing) and install clipper-core, clipper-container and the dev tools into it.
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
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f "${proto%.proto}_pb2.py" ]; then
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
