#!/usr/bin/env bash
# What pgfleet's demo, tests and benchmark need on the machine, installed when missing (Debian):
# podman + runc (real containers), zstd (compression), PostgreSQL 15 (server for the sandbox
# tenants, clients), age (encryption of offsite copies), the aws CLI (the README's recovery by hand
# of an offsite copy, run as the offsite read test runs it), Ceph's monitor, OSD and RADOS Gateway (the
# local S3 object store of scripts/sandbox/objectstore.ts), and the npm dependencies. Idempotent
# and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in podman runc zstd; do command -v "$bin" >/dev/null 2>&1 || need+=("$bin"); done
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pg_dump ] || need+=(postgresql-client-15)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # the report's test (test/integration/report.test.ts) renders the page headless
[ -x /usr/lib/postgresql/15/bin/pgbench ] || need+=(postgresql-contrib)
command -v age >/dev/null 2>&1 || need+=(age)
command -v aws >/dev/null 2>&1 || need+=(awscli)
# The object store's packages, without their recommends (a full Ceph install is far larger).
ceph=()
for bin in ceph-mon ceph-osd radosgw ceph; do command -v "$bin" >/dev/null 2>&1 || { ceph=(ceph-mon ceph-osd radosgw ceph-common); break; }; done
if [ ${#need[@]} -gt 0 ] || [ ${#ceph[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    how=()
    [ ${#need[@]} -eq 0 ] || how+=("apt-get install -y ${need[*]}")
    [ ${#ceph[@]} -eq 0 ] || how+=("apt-get install -y --no-install-recommends ${ceph[*]}")
    echo "pgfleet: missing system packages: ${need[*]} ${ceph[*]}; install them as root: ${how[0]}${how[1]:+ && ${how[1]}}" >&2
    exit 1
  fi
  echo "pgfleet: installing system packages: ${need[*]} ${ceph[*]}" >&2
  apt-get update -qq
  [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#ceph[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ceph[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { echo "pgfleet: the postgres system user is missing (package postgresql-15 creates it)" >&2; exit 1; }

# npm dependencies exactly as package-lock.json pins them (`npm ci`), when node_modules is missing
# or older than the lock file (npm records each install in node_modules/.package-lock.json).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "pgfleet: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
