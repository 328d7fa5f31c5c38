#!/usr/bin/env bash
# Fails if a source file includes a module it may not depend on: the module
# table of docs/ARCHITECTURE.md, as data. A module's own headers (included
# without a folder) and its `*_int.h` are its business; another module's
# `*_int.h` is never included. main.c wires everything and is not checked.
set -euo pipefail
cd "$(dirname "$0")/.."

# module -> the modules it may include (besides itself)
declare -A allowed=(
  [core]=""
  [rtp]="core"
  [store]="core"
  [storage]="core"
  [auth]="core"
  [capture]="core"
  [recording]="core auth store storage"
  [ingest]="core rtp capture auth recording storage"
  [compose]="core rtp capture"
  [jobs]="core store storage recording compose capture"
  [events]="core auth store recording"
  [api]="core auth store storage recording ingest jobs events"
)

bad=0
for dir in src/*/; do
  module=$(basename "$dir")
  if [ -z "${allowed[$module]+x}" ]; then
    echo "check-includes: src/$module/ is not in the module table (scripts/check-includes.sh, docs/ARCHITECTURE.md)" >&2
    bad=1
    continue
  fi
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/^[^"]*"([^"]*)".*/\1/' <<<"$line")
    case "$inc" in
      */*) ;;
      *) continue ;;        # same-module header
    esac
    target=${inc%%/*}
    if [ "$target" = "$module" ]; then
      continue
    fi
    if [[ "$inc" == *_int.h ]]; then
      echo "$file: includes $inc, another module's internals" >&2
      bad=1
    elif [[ " ${allowed[$module]} " != *" $target "* ]]; then
      echo "$file: $module may not include $inc (allowed: ${allowed[$module]:-nothing})" >&2
      bad=1
    fi
  done < <(grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$dir"*.c "$dir"*.h 2>/dev/null || true)
done
if [ "$bad" -ne 0 ]; then
  echo "check-includes: module dependencies do not follow the table (see docs/ARCHITECTURE.md)" >&2
  exit 1
fi
