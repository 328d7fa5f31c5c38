#!/usr/bin/env bash
# Fails if banned libc calls appear in the sources (docs/ARCHITECTURE.md "Modules"):
# unbounded string functions and number parsers without error reporting.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|strtok)\s*\(' src tests/unit 2>/dev/null || true)
if [ -n "$hits" ]; then
  echo "banned calls (use snprintf, vtp_buf, strtol with checks, strtok_r):" >&2
  echo "$hits" >&2
  exit 1
fi
