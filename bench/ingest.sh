#!/usr/bin/env bash
# make bench, part 2: RTP ingest. Records 10 s of ffmpeg VP8 + Opus through
# the recorder to get real RTP, then replays it (build/vtp-loadgen, sendmmsg)
# as N concurrent tracks at their real rate into N registered tracks, and
# measures the server's CPU time and every track's captured packet count
# against what was sent. The same replay then goes to ffmpeg receivers
# (`-c copy` to WebM, one process per peer, what the seed's design spawns)
# for the CPU per track side by side. Everything on 127.0.0.1, bounded.
#
# BENCH_TRACKS="500 1000 2000" (track counts), BENCH_SECONDS=20,
# BENCH_FFMPEG_PEERS=50.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
GEN=${VTP_LOADGEN:-build/vtp-loadgen}
TRACKS=${BENCH_TRACKS:-"500 1000 2000 3000"}
SECONDS_RUN=${BENCH_SECONDS:-20}
FF_PEERS=${BENCH_FFMPEG_PEERS:-50}
out=bench/results; mkdir -p "$out"
work=$(mktemp -d /tmp/vtp-bench-ingest.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
# the same for one named thread of a process (vtp-ingest, vtp-keeper)
thread_ticks() { for t in /proc/$1/task/*; do if [ "$(cat "$t/comm")" = "$2" ]; then awk '{print $14 + $15}' "$t/stat"; fi; done; }
hz=$(getconf CLK_TCK)

port=$(free_port)
export VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json
export VTP_RTP_PORT_MIN=30000 VTP_RTP_PORT_MAX=34999
# The load generator gets its own core, the receivers (ours, then ffmpeg's)
# the other, so neither measurement is the other's cache noise. With one
# core, both share it.
if [ "$(nproc)" -ge 2 ]; then GEN_CPU=0 RX_CPU=1; else GEN_CPU=0 RX_CPU=0; fi
taskset -c "$RX_CPU" "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" & server=$!; pids+=($server)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" user add --email bench@example.com --name Bench --role instructor >/dev/null
token=$("$BIN" token --email bench@example.com --ttl 7200)
api="http://127.0.0.1:$port/api/v1"

# python helper: start a recording, register tracks, stop, sum packets
cat >"$work/ctl.py" <<'PY'
import json, sys, urllib.request
api, token, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
if cmd == "start":
    print(call("POST", "/recordings/start", {"roomId": sys.argv[4], "title": "bench"})["recordingId"])
elif cmd == "tracks":  # rec n -> lines "kind port"
    rec, n = sys.argv[4], int(sys.argv[5])
    for i in range(n):
        kind = "video" if i % 2 == 0 else "audio"
        body = {"peerId": "p%d" % (i // 2), "fullName": "Peer %d" % (i // 2), "kind": kind,
                "codec": "vp8" if kind == "video" else "opus", "payloadType": 96 if kind == "video" else 111}
        print(kind, call("POST", "/recordings/%s/tracks" % rec, body)["port"])
elif cmd == "stop":  # -> "packets lost dropped tracks files"
    r = call("POST", "/recordings/%s/stop" % sys.argv[4])
    t = r["tracks"] or []
    print(sum(x["packets"] for x in t), sum(x["lost"] for x in t), sum(x["dropped"] for x in t), len(t))
PY
ctl() { python3 "$work/ctl.py" "$api" "$token" "$@"; }

# ---- 1. real RTP from ffmpeg, captured by the recorder -----------------------------
rec=$(ctl start source)
ctl tracks "$rec" 2 >"$work/src-targets"
vport=$(awk '$1=="video"{print $2}' "$work/src-targets")
aport=$(awk '$1=="audio"{print $2}' "$work/src-targets")
ffmpeg -hide_banner -loglevel error -nostdin \
  -re -f lavfi -i testsrc2=size=640x360:rate=30:duration=10 \
  -re -f lavfi -i sine=frequency=440:sample_rate=48000:duration=10 \
  -map 0:v -c:v libvpx -deadline realtime -cpu-used 8 -b:v 800k -g 60 -payload_type 96 \
  -f rtp "rtp://127.0.0.1:$vport?pkt_size=1200&rtcpport=$vport" \
  -map 1:a -c:a libopus -b:a 48k -payload_type 111 -f rtp "rtp://127.0.0.1:$aport?rtcpport=$aport"
ctl stop "$rec" >/dev/null
vsrc=$(grep -l '"kind":"video"' "$work"/data/recordings/source/*/tracks/*.vtpcap)
asrc=$(grep -l '"kind":"audio"' "$work"/data/recordings/source/*/tracks/*.vtpcap)
vpps=$("$BIN" inspect --json "$vsrc" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(round(d["rtpPackets"]/d["arrivalSeconds"]))')
apps=$("$BIN" inspect --json "$asrc" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(round(d["rtpPackets"]/d["arrivalSeconds"]))')

echo
echo "source: ffmpeg VP8 640x360 800 kb/s ($vpps packets/s) + Opus 48 kb/s ($apps packets/s), replayed by vtp-loadgen for ${SECONDS_RUN}s per run"
echo "$(nproc) cores; the load generator, the recorder and the receivers share them"
echo
echo "| receiver | tracks | packets/s sent | packets sent | captured | lost | CPU, cores (loop / keeper) | CPU per 100 tracks | sender late (max ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"

# ---- 2. the recorder at N tracks ----------------------------------------------------------
for n in $TRACKS; do
  rec=$(ctl start "load-$n")
  ctl tracks "$rec" "$n" >"$work/targets"
  c0=$(cpu_ticks "$server"); l0=$(thread_ticks "$server" vtp-ingest); k0=$(thread_ticks "$server" vtp-keeper)
  res=$(taskset -c "$GEN_CPU" "$GEN" "$work/targets" "$SECONDS_RUN" "$vsrc" "$asrc")
  c1=$(cpu_ticks "$server"); l1=$(thread_ticks "$server" vtp-ingest); k1=$(thread_ticks "$server" vtp-keeper)
  split=$(python3 -c "print(f'{($l1-$l0)/$hz/$SECONDS_RUN:.3f} / {($k1-$k0)/$hz/$SECONDS_RUN:.3f}')")
  sleep 0.5
  read -r captured lost dropped ntr < <(ctl stop "$rec")
  sent=$(echo "$res" | awk '{print $2}')
  cores=$(python3 -c "print(f'{($c1-$c0)/$hz/$SECONDS_RUN:.3f}')")
  per100=$(python3 -c "print(f'{($c1-$c0)/$hz/$SECONDS_RUN*100/$n:.4f}')")
  pps=$(python3 -c "print(round($sent/$SECONDS_RUN))")
  late=$(echo "$res" | awk '{print $4}')
  echo "| vtp-recorder | $n | $pps | $sent | $captured | $((sent - captured)) | $cores ($split) | $per100 | $late |"
  echo "$n $sent $captured $lost $dropped $cores" >>"$out/ingest-vtp.txt"
done

# ---- 3. ffmpeg receivers, one per peer (video + audio), -c copy to WebM --------------------
: >"$work/ff-targets"
ffpids=()
for i in $(seq 0 $((FF_PEERS - 1))); do
  vp=$((36000 + 4 * i)); ap=$((vp + 2))
  cat >"$work/peer$i.sdp" <<SDP
v=0
o=- 0 0 IN IP4 127.0.0.1
s=peer $i
c=IN IP4 127.0.0.1
t=0 0
m=video $vp RTP/AVP 96
a=rtpmap:96 VP8/90000
m=audio $ap RTP/AVP 111
a=rtpmap:111 opus/48000/2
SDP
  taskset -c "$RX_CPU" ffmpeg -hide_banner -loglevel error -nostdin -protocol_whitelist file,udp,rtp -listen_timeout 3 \
    -buffer_size 4194304 -i "$work/peer$i.sdp" -map 0 -c copy -f webm "$work/peer$i.webm" 2>>"$work/ffmpeg.err" &
  ffpids+=($!); pids+=($!)
  echo "video $vp" >>"$work/ff-targets"; echo "audio $ap" >>"$work/ff-targets"
done
sleep 1
f0=0; for p in "${ffpids[@]}"; do f0=$((f0 + $(cpu_ticks "$p"))); done
res=$(taskset -c "$GEN_CPU" "$GEN" "$work/ff-targets" "$SECONDS_RUN" "$vsrc" "$asrc")
f1=0; for p in "${ffpids[@]}"; do f1=$((f1 + $(cpu_ticks "$p"))); done
for p in "${ffpids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${ffpids[@]}"; do wait "$p" 2>/dev/null || true; done
sent=$(echo "$res" | awk '{print $2}')
n=$((FF_PEERS * 2))
cores=$(python3 -c "print(f'{($f1-$f0)/$hz/$SECONDS_RUN:.3f}')")
per100=$(python3 -c "print(f'{($f1-$f0)/$hz/$SECONDS_RUN*100/$n:.4f}')")
pps=$(python3 -c "print(round($sent/$SECONDS_RUN))")
webm=$(cat "$work"/peer*.webm 2>/dev/null | wc -c)
late=$(echo "$res" | awk '{print $4}')
echo "| ffmpeg -c copy to WebM, one process per peer | $n | $pps | $sent | $((webm / 1024)) KiB of WebM | - | $cores | $per100 | $late |"
