#!/usr/bin/env bash
# A private Docker engine for clipper's tests and benches: its own data root, exec root, pidfile and unix socket
# under ${CLIPPER_DOCKER_DIR:-/tmp/clipper-docker}, never the system's dockerd (and not to be run beside one:
# both would claim the docker0 bridge and the DOCKER iptables chains; point DOCKER_HOST at that one instead).
#
#   scripts/docker-engine.sh start    # prints DOCKER_HOST=unix://...; idempotent (a running engine is reused)
#   scripts/docker-engine.sh stop     # stops the engine (its containers with it); idempotent
#   scripts/docker-engine.sh status   # prints DOCKER_HOST=... and exits 0 when it runs, else exits 1
#
# start installs docker.io when dockerd is missing (root + apt-get), then tries overlay2 with iptables, overlay2
# without iptables, and vfs without iptables (CLIPPER_DOCKER_STORAGE_DRIVER forces a driver), keeping the first
# that answers; the log of each failed attempt is kept in $dir/dockerd-<attempt>.log.
set -euo pipefail
dir=${CLIPPER_DOCKER_DIR:-/tmp/clipper-docker}
sock="unix://$dir/docker.sock"
pidfile="$dir/dockerd.pid"

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && DOCKER_HOST=$sock docker version >/dev/null 2>&1
}

stop_pid() {  # $1: pid; SIGTERM (dockerd stops its containers), SIGKILL after 40 s
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

attempt() {  # $1: name, $2...: extra dockerd flags; 0 once the engine answers
  local name=$1 pid
  shift
  nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" -H "$sock" "$@" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 1 120); do
    if DOCKER_HOST=$sock docker version >/dev/null 2>&1; then
      echo "$name" >"$dir/driver"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  stop_pid "$pid"
  cp "$dir/dockerd.log" "$dir/dockerd-$name.log"
  echo "docker-engine.sh: dockerd did not start with $name: $(grep -m1 -iE 'level=(fatal|error)' \
    "$dir/dockerd-$name.log" || tail -1 "$dir/dockerd-$name.log")" >&2
  return 1
}

case "${1:-start}" in
  start)
    if running; then
      echo "DOCKER_HOST=$sock"
      exit 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
      if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "docker-engine.sh: installing docker.io" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
      else
        echo "docker-engine.sh: dockerd is missing and cannot be installed here (needs root and apt-get)" >&2
        exit 1
      fi
    fi
    [ "$(id -u)" = "0" ] || { echo "docker-engine.sh: dockerd needs root" >&2; exit 1; }
    mkdir -p "$dir/data" "$dir/exec"
    if [ -f "$pidfile" ]; then  # a stale or unresponsive engine from an earlier run
      stop_pid "$(cat "$pidfile")"
      rm -f "$pidfile"
    fi
    rm -f "$dir/docker.sock"
    if [ -n "${CLIPPER_DOCKER_STORAGE_DRIVER:-}" ]; then
      attempts=("${CLIPPER_DOCKER_STORAGE_DRIVER}")
    else
      attempts=(overlay2 overlay2-noiptables vfs-noiptables)
    fi
    for name in "${attempts[@]}"; do
      flags=(--storage-driver "${name%%-*}")
      [[ $name == *-noiptables ]] && flags+=(--iptables=false --ip-masq=false)
      if attempt "$name" "${flags[@]}"; then
        echo "DOCKER_HOST=$sock"
        exit 0
      fi
    done
    echo "docker-engine.sh: dockerd could not start; logs in $dir/dockerd-*.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      stop_pid "$(cat "$pidfile")"
      rm -f "$pidfile"
    fi
    ;;
  status)
    if running; then
      echo "DOCKER_HOST=$sock"
      exit 0
    fi
    exit 1
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
