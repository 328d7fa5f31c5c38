#!/usr/bin/env bash
# make bench, part 5: WebRTC ingest (WHIP).
# 1. build/vtp-bench-webrtc (bench/webrtc.c): SRTP unprotect packets/s on one
#    core for both profiles against OpenSSL's EVP bound and GStreamer's
#    srtpdec, DTLS handshakes/s, memory per session.
# 2. Concurrent publishers: build/vtp-whipgen runs N WebRTC publishers (STUN,
#    DTLS-SRTP, Opus-sized audio at 50 packets/s and video at
#    BENCH_WHIP_KBPS) into one room with a recording running, so every
#    session's two streams are captured to packet logs. The server and the
#    generator get a core each. Per N: set-up time (POST to SRTP keys), the
#    server's CPU during the media phase, datagrams received against sent,
#    packets lost and dropped.
# 3. The same publishers into GStreamer's webrtcbin (bench/whip_gst_server.py:
#    a WHIP endpoint with one webrtcbin per session into fakesinks, a lower
#    bound for a GStreamer recorder), for the CPU per publisher side by side.
# Everything on 127.0.0.1, bounded.
#
# BENCH_WHIP_SESSIONS="50 200 400 800 1200", BENCH_WHIP_GST_SESSIONS="50 200",
# BENCH_WHIP_SECONDS=20, BENCH_WHIP_KBPS=500.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
GEN=${VTP_WHIPGEN:-build/vtp-whipgen}
CRYPTO=${VTP_BENCH_WEBRTC:-build/vtp-bench-webrtc}
SESSIONS=${BENCH_WHIP_SESSIONS:-"50 200 400 800 1200"}
GST_SESSIONS=${BENCH_WHIP_GST_SESSIONS:-"50 200"}
SECONDS_RUN=${BENCH_WHIP_SECONDS:-20}
KBPS=${BENCH_WHIP_KBPS:-500}
out=bench/results; mkdir -p "$out"
work=$(mktemp -d /tmp/vtp-bench-whip.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# until the generator says every session is connected (bounded)
wait_media() {
  for _ in $(seq 1200); do
    grep -q "media phase" "$work/gen.err" 2>/dev/null && break
    [ -d "/proc/$1" ] || break
    sleep 0.25
  done
  sleep $(( SECONDS_RUN / 4 ))
}
# N publishers to URL with TOKEN, the CPU of process RX measured over the
# middle of the media phase (from when every session is connected, for
# SECONDS_RUN): sets CORES; the generator's summary is in $work/gen.json
publish_and_measure() {
  local rx=$1 url=$2 tok=$3 n=$4 gen t0 t1 s0 s1
  taskset -c "$GEN_CPU" "$GEN" --url "$url" --token "$tok" --sessions "$n" \
    --seconds "$SECONDS_RUN" --video-kbps "$KBPS" >"$work/gen.json" 2>"$work/gen.err" &
  gen=$!
  wait_media "$gen"
  t0=$(cpu_ticks "$rx"); s0=$(date +%s.%N)
  sleep $(( SECONDS_RUN / 2 ))
  t1=$(cpu_ticks "$rx"); s1=$(date +%s.%N)
  wait "$gen" || true
  CORES=$(python3 -c "print(($t1 - $t0) / $hz / ($s1 - $s0))")
}
if [ "$(nproc)" -ge 2 ]; then GEN_CPU=0 RX_CPU=1; else GEN_CPU=0 RX_CPU=0; fi

echo "## WebRTC crypto (one core)"
echo
taskset -c "$RX_CPU" "$CRYPTO" | tee "$out/whip-crypto.md"
echo

port=$(free_port)
export VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json VTP_WORKERS=0
export VTP_RTP_PORT_MIN=30000 VTP_RTP_PORT_MAX=34999
taskset -c "$RX_CPU" "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" & server=$!; pids+=($server)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" user add --email bench@example.com --name Bench --role instructor >/dev/null
"$BIN" user add --email gateway@example.com --name Gateway --role service >/dev/null
token=$("$BIN" token --email bench@example.com --ttl 7200)
# the publishers: one service user (a gateway), not limited to 16 sessions
pubtoken=$("$BIN" token --email gateway@example.com --ttl 7200)
api="http://127.0.0.1:$port/api/v1"
metric() { curl -fs "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {s += $2} END {printf "%d", s}'; }
sum_lost() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^vtp_track_lost_total/ {s += $2} END {printf "%d", s}'; }
sum_drops() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^vtp_ingest_dropped_total/ {s += $2} END {printf "%d", s}'; }

echo "## Concurrent WHIP publishers (audio + ${KBPS} kbit/s video each, ${SECONDS_RUN} s, captured)"
echo
echo "| publishers | connected | set-up median / max (ms) | packets/s received | server CPU (cores) | CPU per publisher (% core) | CPU per 1000 packets/s (% core) | received / sent datagrams | lost | dropped |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $SESSIONS; do
  room="bench-whip-$n"
  rec=$(curl -fs -X POST "$api/recordings/start" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "{\"roomId\":\"$room\",\"title\":\"bench\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["recordingId"])')
  rx0=$(metric vtp_ingest_datagrams_total); lost0=$(sum_lost); drop0=$(sum_drops)
  publish_and_measure "$server" "http://127.0.0.1:$port/whip/rooms/$room" "$pubtoken" "$n"
  sleep 1
  rx1=$(metric vtp_ingest_datagrams_total); lost1=$(sum_lost); drop1=$(sum_drops)
  curl -fs -X POST "$api/recordings/$rec/stop" -H "Authorization: Bearer $token" >/dev/null
  cp "$work/gen.json" "$out/whip-gen-$n.json"
  python3 - "$n" "$work/gen.json" "$CORES" "$rx0" "$rx1" "$lost0" "$lost1" "$drop0" "$drop1" <<'PY'
import json, sys
n = int(sys.argv[1]); g = json.load(open(sys.argv[2]))
cores = float(sys.argv[3])
rx0, rx1, l0, l1, d0, d1 = (int(x) for x in sys.argv[4:10])
pps = (rx1 - rx0) / max(1e-9, g['seconds'])
print(f"| {n} | {g['connected']} | {g['setupMsMedian']:.0f} / {g['setupMsMax']:.0f} | {pps:,.0f} | {cores:.2f} | "
      f"{100 * cores / max(1, g['connected']):.3f} | {100 * cores / max(1e-9, pps / 1000):.2f} | {rx1 - rx0} / {g['packetsSent']} | {l1 - l0} | {d1 - d0} |")
PY
done
echo
kill "$server"; wait "$server" 2>/dev/null || true

echo "## The same publishers into GStreamer webrtcbin (fakesink)"
echo
echo "| publishers | connected | set-up median (ms) | receiver CPU (cores) | CPU per publisher (% core) |"
echo "|---:|---:|---:|---:|---:|"
for n in $GST_SESSIONS; do
  gport=$(free_port)
  taskset -c "$RX_CPU" /usr/bin/python3 bench/whip_gst_server.py "$gport" >"$work/gst.out" 2>"$work/gst.err" & gsrv=$!; pids+=($gsrv)
  for _ in $(seq 50); do grep -q ready "$work/gst.out" && break; sleep 0.1; done
  # webrtcbin answers once its ICE gathering is done (about 0.5 s a session)
  publish_and_measure "$gsrv" "http://127.0.0.1:$gport/whip" none "$n"
  cp "$work/gen.json" "$out/whip-gst-gen-$n.json"
  kill "$gsrv"; wait "$gsrv" 2>/dev/null || true
  python3 - "$n" "$work/gen.json" "$CORES" <<'PY'
import json, sys
n = int(sys.argv[1]); g = json.load(open(sys.argv[2]))
cores = float(sys.argv[3])
print(f"| {n} | {g['connected']} | {g['setupMsMedian']:.0f} | {cores:.2f} | {100 * cores / max(1, g['connected']):.2f} |")
PY
done
echo
echo "(raw: $out/whip-gen-*.json, $out/whip-gst-gen-*.json, $out/whip-crypto.md)"
