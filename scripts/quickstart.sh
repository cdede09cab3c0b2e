#!/usr/bin/env bash
# The main job: set up the venv (clipper-core and clipper-container with their runtime dependencies only; the
# test command, scripts/test.sh, installs every plugin and framework), start clipper with its embedded defaults,
# deploy the quickstart model, and answer a prediction with curl. clipper keeps serving afterwards (stop:
# .venv/bin/clipper stop), unless CLIPPER_QUICKSTART_STOP=1 is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh --main
.venv/bin/python examples/quickstart.py
addr=$(.venv/bin/clipper status --json 2>/dev/null | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["query_addr"])' || true)
if [ -n "$addr" ] && command -v curl >/dev/null; then
  echo "\$ curl -X POST -d '{\"input\": [1.1, 2.2, 3.3]}' $addr/hello-world/predict"
  curl -s -X POST -H 'Content-Type: application/json' -d '{"input": [1.1, 2.2, 3.3]}' "$addr/hello-world/predict"
  echo
fi
if [ "${CLIPPER_QUICKSTART_STOP:-0}" = "1" ]; then
  .venv/bin/clipper stop
else
  echo "clipper keeps serving; stop it with: .venv/bin/clipper stop"
fi
