#!/usr/bin/env bash
# make bench, part 3c: several nodes (issue 18). "Ten concurrent 4-peer
# recordings spread over the nodes, stop -> done for all ten, against the
# same load on one node."
#
# Run A (cluster): 3 `serve` nodes (VTP_WORKERS=0) and 1 `worker` process
# (VTP_WORKERS=2), each with its own VTP_DATA_DIR (node id, spool), on one
# PostgreSQL (scripts/test-pg.sh) and one bucket (s3rver, run by
# tests/integration/lib/s3.mjs as its own process), one VTP_JWT_SECRET.
# Ten recordings in ten rooms, recording r started on node r mod 3; its peer
# p (video VP8 + audio Opus, plain RTP) registered through node (r+p) mod 3,
# so the 40 peers are spread over the three nodes and every recording takes
# tracks from all three; media for BENCH_CLUSTER_SECONDS (20) from
# pre-encoded files (one per peer, made once, cached in BENCH_CLUSTER_DIR,
# build/bench-cluster) sent by `ffmpeg -re -c copy` as RTP, one ffmpeg per
# peer with two outputs. Then all ten are stopped at once, each on node
# (r+1) mod 3 (not the one that started it), and polled (GET, on the third
# node) until done: the wall time from the stops to the last `done`, each
# recording's stop -> done, and stop -> the first job claimed (`processing`),
# which is what the distribution adds before any composing starts.
# Run B (one node): the same load on ONE serve node (VTP_WORKERS=2), same
# PostgreSQL and s3rver, after run A's processes are gone.
#
# Both runs check that every recording is done with 4 peers
# (metadata.compose.peers) and no track_incomplete warning; a run that does
# not is a finding, not a number: the script says what it saw, keeps the
# logs (the path is printed) and exits 1.
#
# On one machine the cluster shares the same cores as the single node: the
# ratio B/A measures the cost of distribution (segment uploads, waiting for
# every node's last segment, fetching from the bucket), not a speed-up.
# Everything on 127.0.0.1; every process started is stopped at exit. Prints
# a Markdown table and appends it to bench/results/cluster.md.
#
# BENCH_CLUSTER_RECORDINGS=10, BENCH_CLUSTER_SECONDS=20,
# BENCH_CLUSTER_TIMEOUT=300 (seconds from the stops, per run),
# BENCH_CLUSTER_SEGMENT_SECONDS (VTP_SEGMENT_SECONDS; default: the server's, 10),
# BENCH_CLUSTER_KEEP=1 keeps the servers' logs (kept anyway when a run fails).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
CACHE=${BENCH_CLUSTER_DIR:-build/bench-cluster}
NREC=${BENCH_CLUSTER_RECORDINGS:-10}
NPEER=4
SEC=${BENCH_CLUSTER_SECONDS:-20}
TIMEOUT=${BENCH_CLUSTER_TIMEOUT:-300}
SEGMENT=${BENCH_CLUSTER_SEGMENT_SECONDS:-}
results=bench/results; mkdir -p "$results" "$CACHE/src"
work=$(mktemp -d /tmp/vtp-bench-cluster.XXXXXX)
keep=${BENCH_CLUSTER_KEEP:-0} # 1: the logs stay in $work (also when a run misbehaved)
pids=()     # every long-lived process started (servers, s3rver, senders)
stop_pids() { # TERM, up to 10 s to go, then KILL (a compose child dies with its parent)
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 1 ] || break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
forget() { # pids...: no longer ours to kill (waited for: the kernel may give the pid to another process)
  local p q keep_pids=()
  for p in "${pids[@]}"; do
    for q in "$@"; do [ "$p" != "$q" ] || continue 2; done
    keep_pids+=("$p")
  done
  pids=("${keep_pids[@]}")
}
cleanup() {
  [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
  [ ! -f "$work/pg/pgdata" ] || scripts/test-pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  if [ $keep -eq 1 ]; then log "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { echo "cluster bench: $*" >&2; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
healthy() { # port: waits (bounded) for /healthz
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
[ -d tests/node_modules/s3rver ] || { log "s3rver missing: run scripts/install-deps.sh --test"; exit 1; }

# ---- sources: one small VP8/Opus file per peer, made once --------------------------
# Peer i: a 640x360 15 fps moving picture (hue turned per peer), VP8 as a
# browser sends it (realtime, CBR 400 kbit/s, a keyframe every 2 s, no lag)
# and a tone of its own in Opus mono, 20 ms frames.
source_cmd() { # i out -> the ffmpeg command (one argument per line)
  printf '%s\n' ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "testsrc2=s=640x360:r=15,hue=h=$(($1 * 9)),format=yuv420p" \
    -f lavfi -i "sine=frequency=$((200 + 20 * $1)):sample_rate=48000" -t "$SEC" \
    -map 0:v -c:v libvpx -deadline realtime -cpu-used 8 -b:v 400k -minrate 400k -maxrate 400k -bufsize 400k \
    -g 30 -keyint_min 30 -lag-in-frames 0 -auto-alt-ref 0 \
    -map 1:a -c:a libopus -b:a 32k -ac 1 -frame_duration 20 -f webm "$2"
}
src() { echo "$CACHE/src/p$1-${SEC}s-$(source_cmd "$1" OUT | sha256sum | cut -c1-12).webm"; }
NP=$((NREC * NPEER))
running=0 made=0
for i in $(seq 0 $((NP - 1))); do
  f=$(src "$i")
  [ -s "$f" ] && continue
  [ $made -gt 0 ] || log "encoding $NP sources once (cached in $CACHE/src)"
  made=$((made + 1))
  mapfile -t cmd < <(source_cmd "$i" "$f.tmp")
  ( "${cmd[@]}" && mv "$f.tmp" "$f" ) &
  running=$((running + 1))
  if [ "$running" -ge "$(nproc)" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
for i in $(seq 0 $((NP - 1))); do [ -s "$(src "$i")" ] || { log "source $i failed"; exit 1; }; done

# ---- the shared database and bucket ---------------------------------------------------
scripts/test-pg.sh start "$work/pg" >/dev/null
mkdir -p "$work/s3"
node tests/integration/lib/s3.mjs serve "$work/s3" >"$work/s3.log" 2>&1 &
S3_PID=$!; pids+=("$S3_PID")
for _ in $(seq 100); do [ -s "$work/s3/url" ] && break; sleep 0.1; done
[ -s "$work/s3/url" ] || { log "s3rver did not start: $(tail -5 "$work/s3.log")"; exit 1; }
export VTP_DATABASE_URL=$(cat "$work/pg/url")
export VTP_STORAGE_URL=$(cat "$work/s3/url") VTP_S3_ACCESS_KEY=S3RVER VTP_S3_SECRET_KEY=S3RVER
export VTP_JWT_SECRET=bench-cluster-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export VTP_LOG_FORMAT=json
[ -z "$SEGMENT" ] || export VTP_SEGMENT_SECONDS=$SEGMENT

# start_node NAME KIND(serve|worker) WORKERS [PORT_BASE]: its own data dir
# and log; serve nodes listen on a free port with 100 media ports of their
# own (above the kernel's ephemeral range and the test suites' ranges).
# Sets NODE_PID and NODE_PORT.
start_node() {
  local name=$1 kind=$2 workers=$3 base=${4:-0}
  mkdir -p "$work/$RUN/$name"
  NODE_PORT=-
  if [ "$kind" = serve ]; then
    NODE_PORT=$(free_port)
    VTP_DATA_DIR=$work/$RUN/$name VTP_LISTEN=127.0.0.1:$NODE_PORT VTP_WORKERS=$workers \
      VTP_RTP_PORT_MIN=$base VTP_RTP_PORT_MAX=$((base + 99)) \
      "$BIN" serve >"$work/$RUN/$name.out" 2>"$work/$RUN/$name.log" &
  else
    VTP_DATA_DIR=$work/$RUN/$name VTP_WORKERS=$workers \
      "$BIN" worker >"$work/$RUN/$name.out" 2>"$work/$RUN/$name.log" &
  fi
  NODE_PID=$!
  pids+=("$NODE_PID")
  if [ "$kind" = serve ] && ! healthy "$NODE_PORT"; then
    log "$RUN: node $name did not answer /healthz: $(tail -5 "$work/$RUN/$name.log")"; keep=1; exit 1
  fi
}

# One run: RUN, and URLS (the serve nodes' base URLs) set by the caller.
# Starts the recordings, registers the tracks, sends the media, stops all at
# once and waits for done; the verdict and timings go to $work/$RUN/result.json.
TOKEN=""
run_load() {
  local plan=$work/$RUN/plan senders=() file vp ap p
  python3 - "$RUN" "$NREC" "$NPEER" "$TOKEN" "${URLS[@]}" >"$plan" <<'PY'
# Starts NREC recordings (recording r on node r mod N) and registers peer p
# of recording r through node (r+p) mod N; prints "rec r id" lines and
# "peer r p vport aport" lines.
import json, sys, urllib.request
run, nrec, npeer, token, urls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def call(url, method, path, body=None):
    req = urllib.request.Request(url + "/api/v1" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
for r in range(nrec):
    rid = call(urls[r % len(urls)], "POST", "/recordings/start",
               {"roomId": "bench-%s-room%d" % (run, r), "title": "cluster bench %s %d" % (run, r)})["recordingId"]
    print("rec", r, rid)
    for p in range(npeer):
        node = urls[(r + p) % len(urls)]
        ports = []
        for kind, codec, pt, rate in (("video", "vp8", 96, 90000), ("audio", "opus", 111, 48000)):
            t = call(node, "POST", "/recordings/%s/tracks" % rid,
                     {"peerId": "peer%d" % p, "fullName": "Peer %d of room %d" % (p, r), "kind": kind,
                      "codec": codec, "payloadType": pt, "clockRate": rate})
            ports.append(str(t["port"]))
        print("peer", r, p, *ports)
PY
  while read -r what r p vp ap; do
    [ "$what" = peer ] || continue
    file=$(src $((r * NPEER + p)))
    ffmpeg -hide_banner -loglevel error -nostdin -re -i "$file" \
      -map 0:v -c copy -payload_type 96 -f rtp "rtp://127.0.0.1:$vp?pkt_size=1200&rtcpport=$vp" \
      -map 0:a -c copy -payload_type 111 -f rtp "rtp://127.0.0.1:$ap?rtcpport=$ap" \
      >/dev/null 2>>"$work/$RUN/senders.err" &
    senders+=($!); pids+=($!)
  done <"$plan"
  log "$RUN: $NREC recordings, ${#senders[@]} peers sending for $SEC s"
  for p in "${senders[@]}"; do
    wait "$p" || { log "$RUN: a sender failed: $(tail -3 "$work/$RUN/senders.err")"; keep=1; exit 1; }
    forget "$p"
  done
  sleep 1 # the ingest loop naps up to 100 ms between reads
  log "$RUN: stopping all $NREC at once, waiting for done (at most $TIMEOUT s)"
  BENCH_ROOTS="${run_pids[*]} $S3_PID $(head -1 "$(cat "$work/pg/pgdata")/data/postmaster.pid")" \
    python3 - "$plan" "$TOKEN" "$TIMEOUT" "$NPEER" "${URLS[@]}" >"$work/$RUN/result.json" <<'PY'
# Stops every recording at once (recording r on node r+1 mod N), then polls
# each on node r+2 mod N every 0.25 s until done or failed (or the timeout):
# per recording the stop's answer, stop -> processing and stop -> done as
# seen by this client, and the checks on the done Recording.
import json, statistics, sys, threading, time, urllib.error, urllib.request
plan, token, timeout, npeer, urls = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
recs = [(int(l.split()[1]), l.split()[2]) for l in open(plan) if l.startswith("rec ")]
# The machine is shared: the CPU every other process used from the stops to
# the last done, in cores (all CPUs' busy time from /proc/stat less that of
# this run's processes, BENCH_ROOTS and their descendants: servers, compose
# children, s3rver, PostgreSQL), goes beside the run's figures.
import os
roots = {int(p) for p in os.environ.get("BENCH_ROOTS", "").split()}
tck = os.sysconf("SC_CLK_TCK")
def cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tck
def cpu_ours():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(d)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))  # ppid, utime+stime+cutime+cstime
    mine, grew = set(r for r in roots if r in procs), True
    while grew:
        more = {p for p, (pp, _) in procs.items() if pp in mine and p not in mine}
        mine |= more
        grew = bool(more)
    return sum(procs[p][1] for p in mine) / tck
def call(url, method, path):
    req = urllib.request.Request(url + "/api/v1" + path, method=method,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:300]
st = {rid: {"r": r, "id": rid} for r, rid in recs}
go = threading.Barrier(len(recs) + 1)
def stop(r, rid):
    go.wait()
    st[rid]["stopAt"] = time.monotonic()
    code, body = call(urls[(r + 1) % len(urls)], "POST", "/recordings/%s/stop" % rid)
    st[rid]["stopStatus"] = code
    st[rid]["stopAnswered"] = time.monotonic() - st[rid]["stopAt"]
ths = [threading.Thread(target=stop, args=rec) for rec in recs]
for t in ths:
    t.start()
busy0, ours0 = cpu_busy(), cpu_ours()
t0 = time.monotonic()
go.wait()
for t in ths:
    t.join()
pending = set(st)
while pending and time.monotonic() - t0 < timeout:
    for rid in sorted(pending):
        s = st[rid]
        code, body = call(urls[(s["r"] + 2) % len(urls)], "GET", "/recordings/%s" % rid)
        now = time.monotonic()
        if code != 200:
            continue
        if body["status"] == "processing" and "processingAt" not in s:
            s["processingAt"] = now - s["stopAt"]
        if body["status"] in ("done", "failed"):
            s["final"] = body
            s["endAt"] = now - s["stopAt"]
            s["endFromT0"] = now - t0
            pending.discard(rid)
    time.sleep(0.25)
wall = time.monotonic() - t0
busy, ours = cpu_busy() - busy0, cpu_ours() - ours0
out = {"recordings": [], "problems": [], "oursCores": ours / wall, "othersCores": max(0.0, busy - ours) / wall}
for rid, s in sorted(st.items(), key=lambda kv: kv[1]["r"]):
    f = s.get("final")
    row = {k: s.get(k) for k in ("r", "id", "stopStatus", "stopAnswered", "processingAt", "endAt")}
    if s.get("stopStatus") != 200:
        out["problems"].append("recording %d (%s): stop answered %s" % (s["r"], rid, s.get("stopStatus")))
    if f is None:
        code, body = call(urls[0], "GET", "/recordings/%s" % rid)
        row["status"] = body.get("status") if isinstance(body, dict) else code
        out["problems"].append("recording %d (%s): not done %.0f s after the stops: status %s, warnings %s" % (
            s["r"], rid, timeout, row["status"], json.dumps(body.get("warnings") if isinstance(body, dict) else body)))
    else:
        comp = (f.get("metadata") or {}).get("compose") or {}
        row.update(status=f["status"], peers=comp.get("peers"), tracks=len(f.get("tracks") or []),
                   packets=sum(t.get("packets", 0) for t in f.get("tracks") or []),
                   lost=sum(t.get("lost", 0) for t in f.get("tracks") or []),
                   warnings=[w.get("code") for w in f.get("warnings") or []],
                   stoppedAt=f.get("stoppedAt"), completedAt=f.get("completedAt"),
                   durationSeconds=f.get("durationSeconds"))
        if f["status"] != "done":
            out["problems"].append("recording %d (%s): %s: %s" % (s["r"], rid, f["status"], json.dumps(f.get("error"))))
        elif comp.get("peers") != npeer:
            out["problems"].append("recording %d (%s): done with %s peers, not %d: %s" % (
                s["r"], rid, comp.get("peers"), npeer, json.dumps(comp)))
        inc = [w for w in f.get("warnings") or [] if w.get("code") == "track_incomplete"]
        if inc:
            out["problems"].append("recording %d (%s): track_incomplete: %s" % (s["r"], rid, json.dumps(inc)))
    out["recordings"].append(row)
done = [s for s in st.values() if s.get("final", {}).get("status") == "done"]
if len(done) == len(st):
    per = [s["endAt"] for s in st.values()]
    jobs = [s["endAt"] - s["processingAt"] for s in st.values() if s.get("processingAt") is not None]
    out.update(allDone=max(s["endFromT0"] for s in st.values()), median=statistics.median(per), max=max(per),
               jobMedian=statistics.median(jobs) if jobs else None,
               packets=sum(r.get("packets", 0) for r in out["recordings"]),
               lost=sum(r.get("lost", 0) for r in out["recordings"]),
               firstClaim=min((s["processingAt"] for s in st.values() if s.get("processingAt") is not None), default=None))
print(json.dumps(out, indent=1))
PY
  python3 - "$work/$RUN/result.json" "$RUN" <<'PY' >&2
import json, sys
o = json.load(open(sys.argv[1]))
for r in o["recordings"]:
    print("cluster bench: %s: recording %d: stop %s in %.2f s, processing after %s s, %s after %s s, %s peers, %s tracks, warnings %s" % (
        sys.argv[2], r["r"], r["stopStatus"], r["stopAnswered"] or 0,
        "%.2f" % r["processingAt"] if r.get("processingAt") is not None else "-", r.get("status"),
        "%.2f" % r["endAt"] if r.get("endAt") is not None else "-", r.get("peers"), r.get("tracks"), r.get("warnings")))
for p in o["problems"]:
    print("cluster bench: %s: FINDING: %s" % (sys.argv[2], p))
PY
}
metric() { curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v m="$2" '$1 == m {print $2}'; }

# ---- run A: 3 serve nodes + 1 worker ---------------------------------------------------
RUN=cluster
mkdir -p "$work/$RUN"
URLS=() run_pids=() ports=()
for n in 0 1 2; do
  start_node "node$n" serve 0 $((62000 + 100 * n))
  URLS+=("http://127.0.0.1:$NODE_PORT"); run_pids+=("$NODE_PID"); ports+=("$NODE_PORT")
done
start_node worker worker 2
run_pids+=("$NODE_PID")
VTP_DATA_DIR=$work/$RUN/node0 "$BIN" user add --email bench@example.com --name Bench --role instructor >/dev/null
TOKEN=$(VTP_DATA_DIR=$work/$RUN/node0 "$BIN" token --email bench@example.com --ttl 7200)
load_a0=$(cut -d' ' -f1-3 /proc/loadavg)
run_load
load_a1=$(cut -d' ' -f1-3 /proc/loadavg)
spool_a=""
for n in 0 1 2; do spool_a+="node$n $(metric "${ports[$n]}" vtp_spool_uploaded_bytes_total) B; "; done
stop_pids "${run_pids[@]}"; forget "${run_pids[@]}"

# ---- run B: the same load on one serve node ---------------------------------------------
RUN=single
mkdir -p "$work/$RUN"
start_node node serve 2 62300
URLS=("http://127.0.0.1:$NODE_PORT") run_pids=("$NODE_PID")
load_b0=$(cut -d' ' -f1-3 /proc/loadavg)
run_load
load_b1=$(cut -d' ' -f1-3 /proc/loadavg)
spool_b="node $(metric "$NODE_PORT" vtp_spool_uploaded_bytes_total) B"
stop_pids "${run_pids[@]}"; forget "${run_pids[@]}"

# ---- report --------------------------------------------------------------------------------
fail=0
for r in cluster single; do
  [ "$(python3 -c 'import json,sys;print(len(json.load(open(sys.argv[1]))["problems"]))' "$work/$r/result.json")" -eq 0 ] || fail=1
done
[ $fail -eq 0 ] || keep=1
report=$(python3 - "$work/cluster/result.json" "$work/single/result.json" "$NREC" "$NPEER" "$SEC" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
nrec, npeer, sec = sys.argv[3:6]
def f(v):
    return "%.1f" % v if v is not None else "—"
print("| run | nodes | recordings | peers | media (s) | stop → all done (s) | per recording, median (s) | per recording, max (s) | stop → first job claimed (s) | job (processing → done), median (s) | CPU of the run / of other processes (cores) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, nodes, o in (("A, cluster", "3 serve (`VTP_WORKERS=0`) + 1 `worker` (`VTP_WORKERS=2`)", a),
                       ("B, one node", "1 serve (`VTP_WORKERS=2`)", b)):
    print("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %.2f / %.2f |" % (name, nodes, nrec, int(nrec) * int(npeer), sec,
          f(o.get("allDone")), f(o.get("median")), f(o.get("max")), f(o.get("firstClaim")), f(o.get("jobMedian")),
          o["oursCores"], o["othersCores"]))
print()
if a.get("allDone") and b.get("allDone"):
    d = a["allDone"] - b["allDone"]
    print("B/A, stop → all done: %.2f (median per recording %.2f): the cluster finished all %s %.1f s %s than one node."
          % (b["allDone"] / a["allDone"], b["median"] / a["median"], nrec, abs(d), "later" if d >= 0 else "sooner"))
else:
    print("B/A: not computed, a run did not finish (see the findings).")
print()
print("RTP packets captured (lost): run A %s (%s), run B %s (%s)." % (a.get("packets", "—"), a.get("lost", "—"),
      b.get("packets", "—"), b.get("lost", "—")))
busy = max(a["othersCores"], b["othersCores"])
if busy > 0.3:
    print("Other processes used up to %.2f cores during a run: the comparison is disturbed, repeat on a quiet machine." % busy)
for name, o in (("A", a), ("B", b)):
    for p in o["problems"]:
        print("- FINDING, run %s: %s" % (name, p))
PY
)
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): $NREC concurrent $NPEER-peer recordings, 3 nodes + a worker vs one node (bench/cluster.sh)"
  echo
  echo "$(nproc) cores, $("$BIN" --version 2>/dev/null || echo vtp-recorder), PostgreSQL $(ls -d /usr/lib/postgresql/*/ | sort -V | tail -1 | xargs basename), s3rver on 127.0.0.1;" \
    "segments of ${SEGMENT:-10} s; load average run A $load_a0 before, $load_a1 after; run B $load_b0 before, $load_b1 after"
  echo "peers: 640x360 15 fps VP8 400 kbit/s + Opus mono, sent by \`ffmpeg -re -c copy -f rtp\`; recordings composed with the defaults (WebM VP8/Opus 1280x720 + HLS + thumbnail)"
  echo "bytes uploaded by the spools: run A $spool_a run B $spool_b"
  echo "each job (a 4-camera 1280x720 30 fps grid) costs 2.0 core-equivalents: with \`VTP_WORKER_CAPACITY\` at its default, the CPU count ($(nproc)), the worker (A) and the node (B) each compose $(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 )) at a time"
  echo
  echo "$report"
  echo
  echo "On one $(nproc)-core machine the cluster's nodes share the same cores as the single node: the ratio"
  echo "measures the cost of distribution (segment uploads, waiting for every node's last segment,"
  echo "fetching from the bucket), not a speed-up."
} | tee -a "$results/cluster.md"
exit $fail
