#!/usr/bin/env bash
# Fetches the pages' browser libraries from npm, exactly as web/package-lock.json
# pins them, and copies the files the pages load into OUT_DIR (the build calls
# this; see CMakeLists.txt). npm works in OUT_DIR/npm, never in the source tree.
#   scripts/vendor-web.sh OUT_DIR
set -euo pipefail
out=${1:?usage: vendor-web.sh OUT_DIR}
src="$(cd "$(dirname "$0")/../web" && pwd)"
work="$out/npm"

if ! command -v npm >/dev/null 2>&1; then
  echo "vendor-web: npm is missing (scripts/install-deps.sh installs it); the pages need hls.js and socket.io-client from npm" >&2
  exit 1
fi
mkdir -p "$work" "$out/vendor"
# Reinstall only when the lock changed since the last run.
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  echo "vendor-web: npm ci (hls.js, socket.io-client)" >&2
  if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    rm -f "$work/package-lock.json"
    echo "vendor-web: npm ci failed (is the npm registry reachable?)" >&2
    exit 1
  fi
fi
nm="$work/node_modules"
cp "$nm/hls.js/dist/hls.light.min.js" "$out/vendor/hls.light.min.js"
cp "$nm/socket.io-client/dist/socket.io.min.js" "$out/vendor/socket.io.min.js"
cp "$nm/hls.js/LICENSE" "$out/vendor/hls.js.LICENSE"
cp "$nm/socket.io-client/LICENSE" "$out/vendor/socket.io-client.LICENSE"
