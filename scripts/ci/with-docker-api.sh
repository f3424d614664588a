#!/usr/bin/env bash
# Usage: bash scripts/ci/with-docker-api.sh COMMAND [ARG...]
# Runs COMMAND with the real Docker CLI as pgfleet's container CLI: podman serves the Docker API
# on a private socket (`podman system service`, stopped again when COMMAND ends), DOCKER_HOST points
# at it, and PGF_TEST_CONTAINER_CLI=docker makes the test harness configure container_cli:
# docker, while the sandbox keeps starting its containers with podman. When `docker` is missing,
# the client from Debian's docker.io package is installed into .tools/docker/ (git-ignored; no
# daemon is installed or started). Exits with COMMAND's status; fails (exit 1) when the Docker CLI
# cannot be had or cannot reach the API, or when COMMAND made no `docker exec` call through it: it
# never falls back to podman unnoticed.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || { echo "usage: scripts/ci/with-docker-api.sh COMMAND [ARG...]" >&2; exit 2; }

# The client only, from docker.io's package: extracting it keeps dockerd, containerd and their
# service scripts off the machine.
if ! command -v docker >/dev/null 2>&1; then
  if [ ! -x .tools/docker/bin/docker ]; then
    echo "pgfleet: docker is missing; installing the Docker CLI from Debian's docker.io package into .tools/docker" >&2
    mkdir -p .tools
    tmp="$(mktemp -d .tools/.docker-XXXXXX)"
    fetch() { (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker.io >&2); }
    if ! fetch; then
      [ "$(id -u)" = 0 ] || { echo "pgfleet: cannot download docker.io (run apt-get update as root first)" >&2; exit 1; }
      apt-get update -qq && fetch
    fi
    dpkg-deb --fsys-tarfile "$tmp"/docker.io_*.deb | tar -x -C "$tmp" ./usr/bin/docker
    mkdir -p .tools/docker/bin
    mv "$tmp/usr/bin/docker" .tools/docker/bin/docker
    rm -rf "$tmp"
  fi
  export PATH="$PWD/.tools/docker/bin:$PATH"
fi

# podman's containers here need the sandbox's containers.conf (runc, no default ulimits): the API
# service starts and stops containers (a restore's app containers) with it too.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/sandbox/containers.conf}"
sockdir="$(mktemp -d "${TMPDIR:-/tmp}/pgfleet-docker-api-XXXXXX")"
podman system service --log-level=info --time=0 "unix://$sockdir/podman.sock" 2>"$sockdir/service.log" &
service=$!
stop() {
  kill "$service" 2>/dev/null || true
  wait "$service" 2>/dev/null || true
  rm -rf "$sockdir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export DOCKER_HOST="unix://$sockdir/podman.sock" PGF_TEST_CONTAINER_CLI=docker
unset DOCKER_CONTEXT
for _ in $(seq 1 150); do
  server="$(docker version --format '{{range .Server.Components}}{{.Name}} {{.Version}};{{end}}' 2>/dev/null)" && break
  kill -0 "$service" 2>/dev/null || { echo "pgfleet: podman system service exited:" >&2; cat "$sockdir/service.log" >&2; exit 1; }
  sleep 0.2
done
case "${server:-}" in
  *"Podman Engine"*) ;;
  *) echo "pgfleet: the Docker CLI cannot reach podman's Docker API at $DOCKER_HOST" >&2; cat "$sockdir/service.log" >&2; exit 1 ;;
esac
echo "pgfleet: $(docker --version) → ${server%%;*} at $DOCKER_HOST" >&2

status=0
"$@" || status=$?
# The proof that the Docker CLI was used: the API served its exec calls (the access log's lines).
execs="$(grep -c -E '"POST /v[0-9.]+/containers/[^ ]+/exec HTTP' "$sockdir/service.log" || true)"
echo "pgfleet: podman's Docker API served $execs docker exec call(s)" >&2
if [ "$status" = 0 ] && [ "$execs" = 0 ]; then
  echo "pgfleet: no docker exec reached the API: the command did not use the Docker CLI" >&2
  status=1
fi
exit "$status"
