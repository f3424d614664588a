#!/usr/bin/env bash
# The CLI bundled: dist/bin/pgfleet.js, the `pgfleet` binary (package.json "bin"), built by esbuild
# from tsc's output with every dependency in it, the S3 client split into chunks of its own that
# only a command reaching a bucket loads. Why: Node spent 0.36-0.40 s of a bare `pgfleet
# --version` on this machine (0.56-0.66 s when loaded) finding, reading and compiling the 441
# module and package files it opens, against 0.20-0.23 s bundled; every command, hook and cron run
# paid it. dist/scripts/pgfleet.js stays, unbundled, for debugging. The banner gives the bundled
# CommonJS dependencies their `require`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built aside, then renamed into dist/bin file by file, the entry last, so that a CLI started
# meanwhile (a test run beside a rebuild) finds the old build or the new one, never half of one.
out="$(mktemp -d dist/.bin-XXXXXX)"
trap 'rm -rf "$out"' EXIT
node_modules/.bin/esbuild dist/scripts/pgfleet.js --bundle --platform=node --format=esm --target=node20 \
  --splitting --outdir="$out" --entry-names=pgfleet --log-level=warning \
  --banner:js="import { createRequire as __pgfleetRequire } from 'node:module'; const require = __pgfleetRequire(import.meta.url);"
chmod 755 "$out/pgfleet.js" dist/scripts/pgfleet.js
mkdir -p dist/bin
new=" $(cd "$out" && echo *.js) "
for f in "$out"/*.js; do [ "$f" = "$out/pgfleet.js" ] || mv -f "$f" dist/bin/; done
mv -f "$out/pgfleet.js" dist/bin/pgfleet.js
# What earlier builds left that this one does not have (chunk names are content hashes).
for f in dist/bin/*.js; do [[ "$new" == *" $(basename "$f") "* ]] || rm -f "$f"; done
