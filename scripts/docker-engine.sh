#!/usr/bin/env bash
# A private Docker engine for clipper's tests and benches: its own data root, socket and pidfile under
# ${CLIPPER_DOCKER_DIR:-/tmp/clipper-docker}, overlay2, never the system's dockerd.
#   scripts/docker-engine.sh start   # installs docker.io when missing (root + apt), prints DOCKER_HOST=...
#   scripts/docker-engine.sh stop
set -euo pipefail
dir=${CLIPPER_DOCKER_DIR:-/tmp/clipper-docker}
sock="unix://$dir/docker.sock"
case "${1:-start}" in
  start)
    if ! command -v dockerd >/dev/null 2>&1; then
      if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
      else
        echo "dockerd is missing and cannot be installed here (needs root and apt-get)" >&2
        exit 1
      fi
    fi
    mkdir -p "$dir/data" "$dir/exec"
    if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
      echo "DOCKER_HOST=$sock"
      exit 0
    fi
    nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
      -H "$sock" --storage-driver overlay2 >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
      if DOCKER_HOST=$sock docker version >/dev/null 2>&1; then
        echo "DOCKER_HOST=$sock"
        exit 0
      fi
      sleep 0.5
    done
    echo "dockerd did not start; see $dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/dockerd.pid" ]; then
      pid=$(cat "$dir/dockerd.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
