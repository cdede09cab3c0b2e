#!/usr/bin/env bash
# The full test suite: lint, types, every test. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
# Services the tests start themselves (on loopback, stopped at the end): redis-server, and a private dockerd
# (scripts/docker-engine.sh, which installs docker.io when missing; started by the Docker plugin's tests).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing redis-server (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing and cannot be installed here (needs root and apt-get)" >&2
  fi
fi
# Debian's chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium; under CI=true they
# fail without it).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and cannot be installed here (needs root and apt-get)" >&2
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy
echo "== pytest"
# The Docker tests start the private engine and stop it when they end; should pytest itself be killed, stop it
# here (only if it was not already running before this run).
if ! bash scripts/docker-engine.sh status >/dev/null 2>&1; then
  trap 'bash scripts/docker-engine.sh stop >/dev/null 2>&1 || true' EXIT
fi
set +e
pytest -q -p no:cacheprovider "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
