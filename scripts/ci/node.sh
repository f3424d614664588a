#!/usr/bin/env bash
# Usage: bash scripts/ci/node.sh 24
# A second Node.js for testing pgfleet on another supported major: installs the npm registry's
# node-linux-<arch> package of the pinned release into .tools/node-<version>/ (git-ignored, inside
# the checkout) when it is not there yet, and prints the path of its `node` binary on stdout.
# Idempotent; nothing outside the checkout changes. Fails (exit 1) when it cannot install or the
# binary does not run as that version.
set -euo pipefail
cd "$(dirname "$0")/../.."

major="${1:?usage: scripts/ci/node.sh MAJOR (e.g. 24)}"
case "$major" in
  24) version=24.22.3 ;;  # the newest 24.x when pinned; bump by hand
  *) echo "pgfleet: no pinned Node.js release for major $major" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "pgfleet: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac

dir=".tools/node-$version"
node="$PWD/$dir/bin/node"
if [ ! -x "$node" ]; then
  echo "pgfleet: installing Node.js $version (npm package node-linux-$arch) into $dir" >&2
  mkdir -p .tools
  tmp="$(mktemp -d .tools/.node-XXXXXX)"
  trap 'rm -rf "$tmp"' EXIT
  # npm pack checks the tarball against the registry's integrity hash; no install scripts run.
  tarball="$(cd "$tmp" && npm pack --silent "node-linux-$arch@$version")"
  tar -xzf "$tmp/$tarball" -C "$tmp"
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
actual="$("$node" --version)"
[ "$actual" = "v$version" ] || { echo "pgfleet: $node says $actual, expected v$version" >&2; exit 1; }
echo "$node"
