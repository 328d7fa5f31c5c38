#!/usr/bin/env bash
# Installs the Debian 12 packages the build (and, with --test, the tests and
# benchmarks) need. Idempotent: when everything is present it makes no apt call.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libssl-dev
  libjwt-dev libargon2-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libfreetype-dev fonts-dejavu-core libcurl4-openssl-dev libsrtp2-dev zlib1g-dev libwslay-dev)
test_pkgs=(libcmocka-dev postgresql nodejs python3 curl wrk nginx-light
  time ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  chromium gstreamer1.0-plugins-bad gstreamer1.0-nice python3-gi
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1
  janus)
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
npm_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}"); npm_test=1 ;;
    --fuzz) want+=("${fuzz_pkgs[@]}") ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  # dpkg-query prints "install ok installed" only for fully installed packages.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
# nodejs may come from outside Debian's archive (e.g. a preinstalled node): accept any node >= 18.
if [[ " ${missing[*]-} " == *" nodejs "* ]] && command -v node >/dev/null 2>&1; then
  major=$(node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0)
  if [ "$major" -ge 18 ]; then
    missing=("${missing[@]/nodejs}")
  fi
fi
# The build fetches the pages' browser libraries with npm (scripts/vendor-web.sh):
# Debian's npm unless one is already on the PATH.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
# drop empty entries left by the substitution above
pkgs=()
for p in "${missing[@]-}"; do [ -n "$p" ] && pkgs+=("$p"); done

install_npm() {
  # The test clients (tests/package.json: s3rver, playwright-core),
  # exactly as locked; skipped when node_modules matches the lock file.
  [ "$npm_test" -eq 1 ] || return 0
  local dir lock
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests"
  lock="$dir/node_modules/.package-lock.json"
  if [ -f "$lock" ] && [ "$lock" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  echo "install-deps: npm ci in tests/" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ ${#pkgs[@]} -eq 0 ]; then
  install_npm
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are empty or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# Debian's janus package enables and starts a system service (HTTP API on
# port 8088, WebSockets on 8188, on every address). The tests start their own
# Janus with its own config (tests/integration/lib/janus.mjs), so a service
# that this script installed only as a test dependency is stopped and disabled.
if [[ " ${pkgs[*]} " == *" janus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now janus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/janus ]; then
    $SUDO invoke-rc.d janus stop >/dev/null 2>&1 || true
    $SUDO update-rc.d janus disable >/dev/null 2>&1 || true
  fi
fi
install_npm
