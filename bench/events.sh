#!/usr/bin/env bash
# make bench, part 6: real-time events (Socket.IO).
# bench/events_load.mjs opens BENCH_EVENTS_CLIENTS stock socket.io-client
# connections (WebSocket), each in a classroom of 5, then puts the first
# BENCH_EVENTS_HALL of them in one lecture hall where a recording is started
# and stopped BENCH_EVENTS_CYCLES times. Against our server (SQLite, the REST
# start and stop, the events reaching the hall through the room event
# journal) and against the Node socket.io server doing the same fan-out
# (bench/events_ref.mjs: no database, no token check, so a lower bound of a
# Node events service). Both ping every 5 s. The server and the clients get a
# core each. Per server: connect+join rate, memory per connection (RSS over
# the idle server's), CPU while idle with every client connected, CPU and
# latency (trigger to the last hall client having recording-stopped) of the
# cycles. Everything on 127.0.0.1, bounded.
#
# BENCH_EVENTS_CLIENTS=2000 BENCH_EVENTS_HALL=1000 BENCH_EVENTS_CYCLES=20
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
CLIENTS=${BENCH_EVENTS_CLIENTS:-2000}
HALL=${BENCH_EVENTS_HALL:-1000}
CYCLES=${BENCH_EVENTS_CYCLES:-20}
IDLE=10
out=bench/results; mkdir -p "$out"
work=$(mktemp -d /tmp/vtp-bench-events.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
SRV_CPU=1; LOAD_CPU=0
[ "$(nproc)" -lt 2 ] && SRV_CPU=0
ulimit -n 65536 2>/dev/null || true

wait_line() { # file, text, pid: until the loader printed text (bounded)
  for _ in $(seq 2400); do
    grep -q "^$2\$" "$1" 2>/dev/null && return 0
    [ -d "/proc/$3" ] || return 1
    sleep 0.25
  done
  return 1
}

# run_one NAME SERVER_PID URL TOKEN MODE: one row of the table
run_one() {
  local name=$1 srv=$2 url=$3 tok=$4 mode=$5 load rss0 rss1 t0 t1 s0 s1 idle_cores c0 c1 w0 w1
  sleep 1
  rss0=$(rss_kb "$srv")
  taskset -c "$LOAD_CPU" node bench/events_load.mjs --url "$url" --token "$tok" --mode "$mode" \
    --clients "$CLIENTS" --hall "$HALL" --cycles "$CYCLES" --idle "$IDLE" \
    >"$work/$name.json" 2>"$work/$name.err" &
  load=$!
  wait_line "$work/$name.err" ready "$load" || { cat "$work/$name.err" >&2; return 1; }
  sleep 2
  t0=$(cpu_ticks "$srv"); s0=$(date +%s.%N)
  sleep $(( IDLE - 4 ))
  t1=$(cpu_ticks "$srv"); s1=$(date +%s.%N)
  rss1=$(rss_kb "$srv")
  idle_cores=$(python3 -c "print(($t1 - $t0) / $hz / ($s1 - $s0))")
  wait_line "$work/$name.err" hall "$load" || { cat "$work/$name.err" >&2; return 1; }
  c0=$(cpu_ticks "$srv"); w0=$(date +%s.%N)
  wait "$load" || { cat "$work/$name.err" >&2; return 1; }
  c1=$(cpu_ticks "$srv"); w1=$(date +%s.%N)
  cp "$work/$name.json" "$out/events-$name.json"
  python3 - "$work/$name.json" "$name" "$rss0" "$rss1" "$idle_cores" "$c0" "$c1" "$w0" "$w1" "$hz" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); name = sys.argv[2]
rss0, rss1, idle = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
c0, c1, w0, w1, hz = int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
cpu_ms = (c1 - c0) / hz * 1000
msgs = j['delivered']
print(f"| {name} | {j['clients']} | {j['connectsPerSecond']} | {(rss1 - rss0) / j['clients']:.1f} | {idle * 100:.1f} | "
      f"{j['latencyMs']['p50']} / {j['latencyMs']['p95']} / {j['latencyMs']['max']} | {msgs} | {cpu_ms:.0f} | {cpu_ms / msgs * 1000:.0f} |")
EOF
}

echo "## Socket.IO: $CLIENTS clients in classrooms of 5, a hall of $HALL, $CYCLES start/stop cycles"
echo
echo "| server | clients | connect+join per s | KB per connection | idle CPU (% core, pings every 5 s) | hall cycle p50 / p95 / max (ms) | events delivered | server CPU in the cycles (ms) | CPU per 1000 events (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"

# ours
data="$work/vtp"; mkdir -p "$data"
port=$(free_port)
VTP_DATA_DIR="$data" VTP_LISTEN="127.0.0.1:$port" VTP_WORKERS=0 VTP_EVENTS_PING_INTERVAL=5 \
  VTP_LOG_LEVEL=warn taskset -c "$SRV_CPU" "$BIN" serve >"$work/vtp.log" 2>&1 &
srv=$!; pids+=("$srv")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo 'bench-password-0123456789' | VTP_DATA_DIR="$data" "$BIN" user add --email bench@example.org \
  --name Bench --role instructor --password-stdin >/dev/null
tok=$(VTP_DATA_DIR="$data" "$BIN" token --email bench@example.org)
run_one vtp-recorder "$srv" "http://127.0.0.1:$port" "$tok" vtp
kill "$srv"; wait "$srv" 2>/dev/null || true

# the reference
port=$(free_port)
taskset -c "$SRV_CPU" node bench/events_ref.mjs "$port" >"$work/ref.log" 2>&1 &
ref=$!; pids+=("$ref")
for _ in $(seq 100); do grep -q listening "$work/ref.log" && break; sleep 0.1; done
run_one node-socket.io-4.8.1 "$ref" "http://127.0.0.1:$port" x ref
kill "$ref"; wait "$ref" 2>/dev/null || true
echo
echo "(raw: $out/events-*.json)"
