#!/usr/bin/env bash
# What pgfleet's demo, tests and benchmark need on the machine, installed when missing (Debian):
# podman + runc (real containers), zstd (compression), PostgreSQL 15 (server for the sandbox
# tenants, clients), and the npm dependencies. Idempotent and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in podman runc zstd; do command -v "$bin" >/dev/null 2>&1 || need+=("$bin"); done
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pg_dump ] || need+=(postgresql-client-15)
[ -x /usr/lib/postgresql/15/bin/pgbench ] || need+=(postgresql-contrib)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "pgfleet: missing system packages: ${need[*]}; install them as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "pgfleet: installing system packages: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { echo "pgfleet: the postgres system user is missing (package postgresql-15 creates it)" >&2; exit 1; }

if [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/vitest ]; then
  echo "pgfleet: installing npm dependencies" >&2
  npm install --no-audit --no-fund >&2
fi
