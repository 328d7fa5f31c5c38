#!/usr/bin/env bash
# make bench, part 4: download (issue 5). One curl stream of a 1 GiB file to
# /dev/null from vtp-recorder's download endpoint, side by side with nginx
# serving the very same file (the same inode, so the same page cache) in the
# same run, on 127.0.0.1.
#
# 1. A done recording through the real server: `vtp-recorder serve` on a
#    private data dir (VTP_WORKERS=1, so it composes by itself), an
#    instructor and a token from the CLI, start, one VP8 track, 2 s of
#    ffmpeg RTP, stop, wait for `done`.
# 2. Its composed recording.webm is replaced by a hard link to a file of
#    BENCH_DOWNLOAD_MIB (1024) MiB of random bytes in this run's temp dir.
#    The handler stats the file per request, so the server serves it as the
#    recording (its ETag, the composed file's SHA-256, no longer matches the
#    bytes; that does not matter for throughput). nginx (worker_processes 1,
#    sendfile on, tcp_nopush on) serves the same file.
# 3. Both answers are checked byte for byte once (which also warms the page
#    cache), then BENCH_DOWNLOAD_RUNS (5) downloads each, alternately: the
#    whole file through the signed `downloadUrl`, then a Range request for
#    its second half (206). Each run: curl's speed and time, the serving
#    process's utime + stime from /proc/PID/stat (our server; nginx's worker)
#    before and after, divided by the transfer's time = cores for one stream,
#    and curl's own CPU (/usr/bin/time).
# BENCH_DOWNLOAD_PIN=1 (default with 2 or more cores) puts curl on core 0 and
# both servers on core 1; 0 lets the scheduler place them.
#
# Prints the commands and a Markdown table and appends them to
# bench/results/download.md. Everything it starts is stopped, and the big
# file deleted, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
RUNS=${BENCH_DOWNLOAD_RUNS:-5}
MIB=${BENCH_DOWNLOAD_MIB:-1024}
RATE=${BENCH_DOWNLOAD_RATE:-119M} # curl --limit-rate of the paced rows (0: none)
RATE_RUNS=${BENCH_DOWNLOAD_RATE_RUNS:-2}
if [ "$(nproc)" -ge 2 ]; then PIN=${BENCH_DOWNLOAD_PIN:-1}; else PIN=${BENCH_DOWNLOAD_PIN:-0}; fi
results=bench/results; mkdir -p "$results"
work=$(mktemp -d /tmp/vtp-bench-download.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { echo "download bench: $*" >&2; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
hz=$(getconf CLK_TCK)
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[k]
print(v)' "$@"; }
if [ "$PIN" = 1 ]; then CLIENT=(taskset -c 0) SERVER=(taskset -c 1); else CLIENT=() SERVER=(); fi
if [ -x /usr/bin/time ]; then TIMER=(/usr/bin/time -f '%U %S' -o "$work/ctime"); else
  log "/usr/bin/time missing (Debian package 'time'): curl's own CPU is not measured"; TIMER=(); fi

# ---- 1. a done recording ------------------------------------------------------------
port=$(free_port)
export VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json VTP_WORKERS=1
export VTP_RTP_PORT_MIN=61100 VTP_RTP_PORT_MAX=61199 # above the ephemeral range; not compose.sh's
"${SERVER[@]}" "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" & server=$!; pids+=("$server")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { log "the server did not start: $(tail -3 "$work/serve.err")"; exit 1; }
head -c 24 /dev/urandom | base64 | "$BIN" user add --email bench@example.com --name Bench --role instructor \
  --password-stdin >/dev/null
token=$("$BIN" token --email bench@example.com --ttl 7200)
base=http://127.0.0.1:$port
api() { # method path [json] -> body; fails on an HTTP error
  curl -fsS -X "$1" "$base/api/v1$2" -H "Authorization: Bearer $token" \
    ${3:+-H 'Content-Type: application/json' -d "$3"}
}
id=$(api POST /recordings/start '{"roomId":"bench-download","title":"Download bench"}' | json recordingId)
rtp=$(api POST "/recordings/$id/tracks" \
  '{"peerId":"p","fullName":"P","kind":"video","codec":"vp8","payloadType":96}' | json port)
ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=320x240:rate=30:duration=2 \
  -c:v libvpx -deadline realtime -cpu-used 8 -payload_type 96 -f rtp "rtp://127.0.0.1:$rtp?rtcpport=$rtp" \
  >/dev/null 2>"$work/ffmpeg.err" || { log "ffmpeg failed: $(tail -3 "$work/ffmpeg.err")"; exit 1; }
api POST "/recordings/$id/stop" >/dev/null
status=
for _ in $(seq 600); do
  status=$(api GET "/recordings/$id" | json status)
  case $status in done | failed) break ;; esac
  sleep 0.2
done
[ "$status" = "done" ] || { log "recording $id is $status, not done: $(api GET "/recordings/$id")"; exit 1; }
rec=$(api GET "/recordings/$id")
dl_url=$base$(echo "$rec" | json downloadUrl)
file=$(find "$work/data/recordings" -path "*/$id/recording.webm")
[ -f "$file" ] || { log "no recording.webm for $id under $work/data/recordings"; exit 1; }

# ---- 2. the big file, served by both ---------------------------------------------------
size=$((MIB * 1048576)) half=$((MIB * 1048576 / 2))
mkdir -p "$work/www"
log "writing $MIB MiB of random bytes to $work/www/big.bin"
head -c "$size" /dev/urandom >"$work/www/big.bin"
ln -f "$work/www/big.bin" "$file" # the recording's file is now the big one (same inode)
# nginx's worker does not run as root: the file must be world-readable
chmod 755 "$work" "$work/www" && chmod 644 "$work/www/big.bin"
nport=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/body;
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
  }
}
NGINX
"${SERVER[@]}" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx.conf" -g 'daemon off;' &
nginx_master=$!; pids+=("$nginx_master")
ng_url=http://127.0.0.1:$nport/big.bin
for _ in $(seq 50); do curl -fs -r 0-0 -o /dev/null "$ng_url" 2>/dev/null && break; sleep 0.1; done
nginx_worker=$(awk '{print $1}' "/proc/$nginx_master/task/$nginx_master/children" 2>/dev/null || true)
[ -n "$nginx_worker" ] || { log "nginx did not start: $(cat "$work/nginx/error.log")"; exit 1; }

# Both must answer the file's bytes (whole and second half) and the right status.
check() { # name url range status
  local got
  got=$(curl -s ${3:+-r "$3"} -o "$work/check.out" -w '%{http_code}' "$2")
  [ "$got" = "$4" ] || { log "$1: HTTP $got, expected $4"; exit 1; }
  if [ -n "$3" ]; then cmp -s "$work/check.out" <(tail -c +$((half + 1)) "$work/www/big.bin") ||
    { log "$1: the range's bytes differ from the file"; exit 1; }
  else cmp -s "$work/check.out" "$work/www/big.bin" || { log "$1: the bytes differ from the file"; exit 1; }; fi
  rm -f "$work/check.out"
}
check "vtp-recorder" "$dl_url" "" 200
check "vtp-recorder, Range" "$dl_url" "$half-" 206
check "nginx" "$ng_url" "" 200
check "nginx, Range" "$ng_url" "$half-" 206
bearer=$(curl -s -o /dev/null -r 0-0 -w '%{http_code}' "$base/api/v1/recordings/$id/download" -H "Authorization: Bearer $token")
[ "$bearer" = 206 ] || { log "the download with a Bearer header answered $bearer"; exit 1; }

# ---- 3. the runs --------------------------------------------------------------------------
res=$work/runs.tsv; : >"$res"
one() { # kind server pid url [range] [rate]: one download; appends a line to $res
  local kind=$1 name=$2 pid=$3 url=$4 range=${5:-} rate=${6:-} c0 c1 out cu=- want=$size code=200
  [ -z "$range" ] || { want=$((size - half)) code=206; }
  c0=$(cpu_ticks "$pid")
  out=$("${TIMER[@]}" "${CLIENT[@]}" curl -s -o /dev/null ${range:+-r "$range"} ${rate:+--limit-rate "$rate"} \
    -w '%{http_code} %{size_download} %{speed_download} %{time_total}' "$url")
  c1=$(cpu_ticks "$pid")
  read -r got bytes speed secs <<<"$out"
  if [ "$got" != "$code" ] || [ "$bytes" != "$want" ]; then
    log "$name ($kind): HTTP $got with $bytes bytes, expected $code with $want"; exit 1
  fi
  [ ${#TIMER[@]} -eq 0 ] || cu=$(awk '{print $1 + $2}' "$work/ctime")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$name" "$speed" "$secs" "$(python3 -c "print(($c1 - $c0) / $hz)")" "$cu" "$bytes" >>"$res"
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the runs: $load0"
for r in $(seq "$RUNS"); do
  one whole vtp-recorder "$server" "$dl_url"
  one whole nginx "$nginx_worker" "$ng_url"
  one range vtp-recorder "$server" "$dl_url" "$half-"
  one range nginx "$nginx_worker" "$ng_url" "$half-"
  log "run $r of $RUNS done"
done
# At the speed of a real link (curl --limit-rate; 119M = 125 MB/s, 1 Gbit/s):
# what one stream costs a server when the client, not loopback, sets the pace.
if [ "$RATE" != 0 ]; then
  for r in $(seq "$RATE_RUNS"); do
    one limited vtp-recorder "$server" "$dl_url" "" "$RATE"
    one limited nginx "$nginx_worker" "$ng_url" "" "$RATE"
    log "rate-limited run $r of $RATE_RUNS done"
  done
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)
log "load after the runs: $load1"

# The server's log: anything at warn or error level during the benchmark.
problems=$(grep -Ev '"level":"(info|debug)"' "$work/serve.err" || true)

# ---- report -------------------------------------------------------------------------------
report=$(python3 - "$res" "$RATE" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rate = sys.argv[2]
med = statistics.median
def pick(kind, name):
    r = [x for x in rows if x[0] == kind and x[1] == name]
    sp = [float(x[2]) / 1e6 for x in r]                        # MB/s
    cores = [float(x[4]) / float(x[3]) for x in r]             # server CPU s / transfer s
    gib = [float(x[4]) / (int(x[6]) / 2**30) for x in r]       # server CPU s per GiB sent
    cu = [float(x[5]) / float(x[3]) for x in r if x[5] != "-"]
    return sp, cores, gib, cu
what = {"whole": "whole file (200)", "range": "second half (Range, 206)",
        "limited": "whole file, curl --limit-rate %s" % rate}
label = {"vtp-recorder": "vtp-recorder, signed downloadUrl", "nginx": "nginx, static file"}
print("| request | server | runs | MB/s, median | MB/s, min–max | ratio to nginx "
      "| server CPU, cores | server CPU s per GiB | curl CPU, cores |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
summary = {}
for kind in ("whole", "range", "limited"):
    if not pick(kind, "nginx")[0]:
        continue
    ng = med(pick(kind, "nginx")[0])
    for name in ("vtp-recorder", "nginx"):
        sp, cores, gib, cu = pick(kind, name)
        ratio = med(sp) / ng
        summary[(kind, name)] = (med(sp), ratio, med(cores), med(gib))
        r = ("**%.2f**" if name == "vtp-recorder" else "%.2f") % ratio
        c = ("**%.3f**" if name == "vtp-recorder" and kind == "whole" else "%.3f") % med(cores)
        print("| %s | %s | %d | %.0f | %.0f–%.0f | %s | %s | %.3f | %s |" % (
            what[kind], label[name], len(sp), med(sp), min(sp), max(sp), r, c, med(gib),
            "%.3f" % med(cu) if cu else "—"))
o, n = summary[("whole", "vtp-recorder")], summary[("whole", "nginx")]
print()
print("- at least 0.8× nginx: %s (%.2f×, %.0f vs %.0f MB/s)" % (
    "met" if o[1] >= 0.8 else "**not met**", o[1], o[0], n[0]))
print("- under 0.3 core for one stream, at loopback speed: %s (%.3f cores, %.3f CPU s per GiB; nginx %.3f, %.3f)" % (
    "met" if o[2] < 0.3 else "**not met**", o[2], o[3], n[2], n[3]))
if ("limited", "vtp-recorder") in summary:
    l, ln = summary[("limited", "vtp-recorder")], summary[("limited", "nginx")]
    print("- under 0.3 core for one stream at %.0f MB/s: %s (%.3f cores; nginx %.3f)" % (
        l[0], "met" if l[2] < 0.3 else "**not met**", l[2], ln[2]))
PY
)
{
  echo
  echo "$(nproc) cores, $(date -u +%Y-%m-%d), $("$BIN" --version 2>/dev/null || echo vtp-recorder), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(curl --version | head -1 | cut -d' ' -f1-2); load average $load0 before, $load1 after"
  echo "one curl stream at a time of a $MIB MiB file of random bytes to /dev/null, the two servers alternating; medians;" \
    "$([ "$PIN" = 1 ] && echo "curl on core 0, both servers on core 1" || echo "not pinned")"
  echo
  echo "$report"
  if [ -n "$problems" ]; then
    echo "- the server logged $(echo "$problems" | wc -l) warning/error line(s):"
    echo "$problems" | head -5 | sed 's/^/  /'
  else echo "- the server logged no warnings or errors"; fi
  echo
  echo "Commands:"
  echo
  echo '```'
  echo "${CLIENT[*]}${CLIENT:+ }curl -s -o /dev/null -w '%{http_code} %{size_download} %{speed_download} %{time_total}' '$base/api/v1/recordings/$id/download?token=…'"
  echo "${CLIENT[*]}${CLIENT:+ }curl -s -o /dev/null -w '…' '$ng_url'"
  echo "# the same with -r $half- (the second half), and with --limit-rate $RATE"
  echo "# nginx: ${SERVER[*]}${SERVER:+ }nginx -p DIR -e DIR/error.log -c nginx.conf -g 'daemon off;'"
  sed 's/^/#   /' "$work/nginx.conf" | sed "s|$work|DIR|g"
  echo "# server: VTP_WORKERS=1 ${SERVER[*]}${SERVER:+ }$BIN serve (default HTTP threads: $(nproc))"
  echo '```'
} | tee -a "$results/download.md"
