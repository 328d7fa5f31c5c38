#!/usr/bin/env bash
# make bench, part 3b: a whole class (issue 17). "1 instructor (camera +
# 1920x1080 screen share of slides) and 30 students with cameras (640x360,
# VP8, 30 fps) is a normal class": captured once through the real server,
# then composed in each layout, side by side with the ffmpeg CLI decoding
# every input (the floor of any composer that decodes everything) and doing
# a 31-tile grid.
#
# 1. Sources (generated once, cached in BENCH_CLASS_DIR, build/bench-class,
#    each file named by a hash of its recipe): 31 cameras 640x360 30 fps VP8
#    as a browser sends them (libvpx realtime at Chrome's speed -6, CBR
#    500 kbit/s, no lag, a keyframe every BENCH_CLASS_GOP s), each a
#    different moving picture labelled P<i>; every microphone Opus mono
#    48 kHz 20 ms, a scripted "speech" (a syllable-modulated tone, its own
#    pitch per person, over a -60 dBFS noise floor): the instructor talks
#    most of the time in sentences with pauses, 6 students ask a question
#    (2-6 s) each, 10 others interject for 0.3 s, silence otherwise. The
#    instructor's screen share: 1920x1080 slides (one per 10 s, static but
#    for a pointer moving 4 s of every 10), VP8 CBR capped at 1.5 Mbit/s,
#    30 fps (Chrome captures a screen at up to 30 fps and, with the
#    "detail"/"text" content hint, keeps resolution and frame rate rather
#    than drop them; 30 fps is also the composer's harder case), live from
#    5 s to 50 s so that presentation has a part with and a part without it.
# 2. Capture (once, cached): `vtp-recorder serve` (VTP_WORKERS=0) on
#    127.0.0.1, 63 tracks registered over the API with their source
#    (camera, microphone, screen) and role (instructor for peer 0's three
#    tracks, the screen on the instructor's peerId), then every sender
#    started at once (`ffmpeg -re -c copy -f rtp`, one per person), the
#    screen's 5 s later; the packet logs are kept.
# 3. Runs, each under /usr/bin/time -v, best of BENCH_CLASS_RUNS: ours in
#    presentation, speaker and grid (31 tiles), presentation with --hls and
#    --thumbnail (what the workers run), presentation and speaker with
#    --decode-all when `compose --help` has it; the ffmpeg CLI decoding all
#    31 + 1 inputs to -f null, and doing the 31-tile grid (scale + xstack +
#    amix) with the same encoder settings.
# 4. Targets printed as met / not met (the exit status is non-zero only when
#    something failed to run or the settings differ from compose.c's).
# 5. The table and the commands are appended to bench/results/class.md.
#
# The encoder settings are compose.sh's own block (and its grid_filter),
# read from bench/compose.sh, so that the two benchmarks cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
CACHE=${BENCH_CLASS_DIR:-build/bench-class}
RUNS=${BENCH_CLASS_RUNS:-1}
THREADS=${BENCH_CLASS_THREADS:-$(nproc)}
SEC=${BENCH_CLASS_SECONDS:-60}
KF=${BENCH_CLASS_GOP:-10}           # seconds between a sender's keyframes: VTP_KEYFRAME_INTERVAL's default (the recorder asks for one this often)
UTIL=bench/compose-util.py
results=bench/results; mkdir -p "$results" "$CACHE/out"
work=$(mktemp -d /tmp/vtp-bench-class.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
util() { python3 "$UTIL" "$@"; }
log() { echo "class bench: $*" >&2; }

# compose.sh's settings block: OUT_W OUT_H FPS BITRATE_KBPS, VP8_OPTS,
# OPUS_OPTS, OURS_OPTS, HLS_*, ... and grid_filter N COLS.
settings=$(util settings bench/compose.sh)
eval "$settings"
for v in OUT_W OUT_H FPS BITRATE_KBPS VP8_CODEC_OPTS X264_CODEC_OPTS VP8_OPTS OPUS_OPTS OURS_OPTS; do
  declare -p "$v" >/dev/null 2>&1 || { log "bench/compose.sh's settings block lacks $v"; exit 1; }
done

# ---- the class -------------------------------------------------------------------
NP=31                                  # people: peer 0 the instructor, 1..30 students
CAM_W=640 CAM_H=360 CAM_FPS=30 CAM_KBPS=500
SCREEN_W=1920 SCREEN_H=1080 SCREEN_FPS=30 SCREEN_KBPS=1500
SHARE_FROM=5 SHARE_TO=$((SEC * 50 / 60)) # the share is live from 5 s to 50 s (of 60)
SLIDE_SECONDS=10
# VP8 as WebRTC's libvpx wrapper sets it in a browser: realtime, speed -6
# (Chrome on x86), CBR with a 1 s buffer, no lag or alt-ref, one thread.
browser_vp8() { # kbps fps
  printf '%s\n' -c:v libvpx -deadline realtime -cpu-used -6 -b:v "${1}k" -minrate "${1}k" -maxrate "${1}k" \
    -bufsize "${1}k" -g "$((KF * $2))" -keyint_min "$((KF * $2))" -lag-in-frames 0 -auto-alt-ref 0 -threads 1
}
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
[ -f "$FONT" ] && FONTOPT="fontfile=$FONT:" || FONTOPT="" # else fontconfig's default

# The speech script (seconds of a 60 s class, scaled to SEC): questions
# (peer:from-to), 0.3 s interjections (peer:at); the instructor talks in
# sentences with pauses everywhere else but around the questions.
QUESTIONS="3:8.0-11.0 9:17.0-19.5 14:24.0-28.0 20:33.0-35.0 25:41.0-46.0 29:52.0-55.0"
INTERJECTIONS="2:6.2 5:13.4 7:21.7 11:30.3 16:37.9 18:39.1 22:44.4 24:50.6 27:57.3 30:58.8"
speech_plan() { # -> one line per person: "i spans" (spans: from-to,from-to,... or -)
  python3 - "$SEC" "$NP" "$QUESTIONS" "$INTERJECTIONS" <<'PY'
import sys
sec, n = float(sys.argv[1]), int(sys.argv[2])
k = sec / 60.0
spans = {i: [] for i in range(n)}
busy = []
for q in sys.argv[3].split():
    p, r = q.split(":")
    a, b = (float(x) * k for x in r.split("-"))
    spans[int(p)].append((a, b))
    busy.append((a - 0.5, b + 0.4))      # the instructor stops before, answers after
for q in sys.argv[4].split():
    p, t = q.split(":")
    spans[int(p)].append((float(t) * k, float(t) * k + 0.3))
sentences = [4.2, 6.0, 3.1, 5.4, 2.7, 7.0, 3.8]
pauses = [0.8, 1.3, 0.6, 1.1, 0.7]
free, t = [], 0.6                        # the instructor's time: all but the questions
for (x, y) in sorted(busy):
    if x > t:
        free.append((t, x))
    t = max(t, y)
free.append((t, sec - 0.3))
i = 0
for (a, b) in free:                      # sentences and pauses in turn, none under 0.8 s
    t = a
    while b - t >= 0.8:
        e = min(t + sentences[i % len(sentences)], b)
        spans[0].append((t, e))
        t = e + pauses[i % len(pauses)]
        i += 1
for p in range(n):
    s = sorted(spans[p])
    print(p, ",".join("%.2f-%.2f" % (a, b) for a, b in s) if s else "-")
PY
}
mapfile -t PLAN < <(speech_plan)
speech_src() { # i -> aevalsrc: a tone of 180 + 23 i Hz, syllables at 3.7 Hz, over a quiet floor
  local i=$1 spans=${PLAN[$1]#* } terms="" s
  if [ "$spans" != - ]; then
    for s in ${spans//,/ }; do terms+="+between(t,${s%-*},${s#*-})"; done
    terms="0.4*sin(2*PI*$((180 + 23 * i))*t)*(0.6+0.4*sin(2*PI*3.7*t+$i))*(${terms#+})+"
  fi
  echo "aevalsrc='${terms}0.001*(2*random(0)-1)':s=48000:c=mono"
}
RULES=(30 45 73 86 89 101 105 110 124 137 150) # cellular automata that neither die nor freeze
camera_src() { # i -> a moving picture of its own (three kinds, hue turned per person), labelled
  local i=$1 v label
  case $((i % 3)) in
  0) v="testsrc2=s=${CAM_W}x${CAM_H}:r=$CAM_FPS,format=yuv420p,noise=c0s=6:allf=t:all_seed=$i" ;;
  1) v="cellauto=s=$((CAM_W / 4))x$((CAM_H / 4)):r=$CAM_FPS:rule=${RULES[$((i / 3 % ${#RULES[@]}))]}:random_fill_ratio=0.3:seed=$i,scale=$CAM_W:$CAM_H:flags=neighbor,format=yuv420p,lutyuv=y=val*0.6+40:u=170:v=90" ;; # tinted: hue turns it
  2) v="life=s=$((CAM_W / 4))x$((CAM_H / 4)):r=$CAM_FPS:mold=10:ratio=0.12:seed=$i:life_color=#ffcc00:death_color=#002060:mold_color=#804000,scale=$CAM_W:$CAM_H:flags=neighbor,format=yuv420p,noise=c0s=6:allf=t:all_seed=$i" ;;
  esac
  [ "$i" -eq 0 ] && label="P0 instructor" || label="P$i"
  echo "$v,hue=h=$((i * 360 / NP)),drawtext=${FONTOPT}text='$label':fontsize=44:fontcolor=white:x=16:y=16:box=1:boxcolor=black@0.6,format=yuv420p"
}
camera_cmd() { # i out -> the ffmpeg command (one argument per line)
  printf '%s\n' ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "$(camera_src "$1")" \
    -f lavfi -i "$(speech_src "$1")" -t "$SEC" -map 0:v
  browser_vp8 "$CAM_KBPS" "$CAM_FPS"
  printf '%s\n' -map 1:a -c:a libopus -b:a 32k -ac 1 -application voip -frame_duration 20 -f webm "$2"
}
# Slides: one picture per SLIDE_SECONDS (a title bar, bullet bars, a
# column chart; the colours change per slide), drawn once as PNG.
NSLIDES=$(((SHARE_TO - SHARE_FROM + SLIDE_SECONDS - 1) / SLIDE_SECONDS))
slide_src() { # k -> the lavfi graph of slide k
  local k=$1 j cols=(0x1f3b73 0xf2efe6 0x0f5e4a 0xfaf7f0 0x5a1f4f) f
  f="color=c=${cols[$((k % 5))]}:s=${SCREEN_W}x${SCREEN_H}:r=1"
  f+=",drawbox=x=0:y=0:w=iw:h=160:c=0x202020@0.6:t=fill"
  f+=",drawtext=${FONTOPT}text='Lecture 7 - part $((k + 1)) of $NSLIDES':fontsize=80:fontcolor=white:x=80:y=40"
  for j in 0 1 2 3; do
    f+=",drawbox=x=160:y=$((300 + 150 * j)):w=$((1300 - 170 * ((j + k) % 4))):h=60:t=fill"
    f+=":c=0x$(printf '%02x%02x%02x' $((60 * j)) $((40 * k % 200 + 60)) $((200 - 30 * j)))"
    f+=",drawtext=${FONTOPT}text='point $((j + 1))':fontsize=40:fontcolor=black:x=$((180 + 1300 - 170 * ((j + k) % 4))):y=$((305 + 150 * j))"
  done
  echo "$f,drawbox=x=1500:y=$((300 + 60 * (k % 5))):w=300:h=$((500 - 60 * (k % 5))):c=0xe0a020:t=fill"
}
screen_cmd() { # slidedir out -> the ffmpeg command: the slides in turn, a pointer over them
  local k ins="" d=$((SHARE_TO - SHARE_FROM))
  printf '%s\n' ffmpeg -hide_banner -loglevel error -nostdin -y
  for ((k = 0; k < NSLIDES; k++)); do
    printf '%s\n' -loop 1 -framerate "$SCREEN_FPS" -t "$SLIDE_SECONDS" -i "$1/slide$k.png"; ins+="[$k:v]"
  done
  printf '%s\n' -filter_complex "${ins}concat=n=$NSLIDES:v=1:a=0,format=yuv420p[bg];color=c=red:s=24x24:r=${SCREEN_FPS}[ptr];[bg][ptr]overlay=x='960+600*sin(t*0.7)':y='540+300*cos(t*0.9)':enable='lt(mod(t,$SLIDE_SECONDS),4)':shortest=1,format=yuv420p[v]" \
    -map '[v]' -t "$d"
  browser_vp8 "$SCREEN_KBPS" "$SCREEN_FPS"
  printf '%s\n' -f webm "$2"
}

# ---- sources (cached, named by the hash of their recipe) ---------------------------------
mkdir -p "$CACHE/src" "$CACHE/captures"
cam() { echo "$CACHE/src/cam$1-${SEC}s-$(camera_cmd "$1" OUT | sha256sum | cut -c1-12).webm"; }
slides_dir() { echo "$CACHE/src/slides-$(for k in $(seq 0 $((NSLIDES - 1))); do slide_src "$k"; done | sha256sum | cut -c1-12)"; }
screen() { echo "$CACHE/src/screen-${SEC}s-$(screen_cmd "$(slides_dir)" OUT | sha256sum | cut -c1-12).webm"; }
made=0
sd=$(slides_dir)
for ((k = 0; k < NSLIDES; k++)); do
  [ -s "$sd/slide$k.png" ] && continue
  mkdir -p "$sd"
  ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "$(slide_src "$k")" -frames:v 1 -update 1 "$sd/slide$k.png.tmp.png" &&
    mv "$sd/slide$k.png.tmp.png" "$sd/slide$k.png"
done
jobs_running=0
start_job() { # out cmd...: runs cmd in the background (at most nproc at a time), then out.tmp -> out
  local out=$1; shift
  [ $made -gt 0 ] || log "encoding the sources once (cached in $CACHE/src)"
  made=$((made + 1))
  ( "$@" && mv "$out.tmp" "$out" ) &
  jobs_running=$((jobs_running + 1))
  if [ "$jobs_running" -ge "$(nproc)" ]; then wait -n || true; jobs_running=$((jobs_running - 1)); fi
}
if [ ! -s "$(screen)" ]; then
  mapfile -t cmd < <(screen_cmd "$sd" "$(screen).tmp"); start_job "$(screen)" "${cmd[@]}"; fi
for i in $(seq 0 $((NP - 1))); do
  [ -s "$(cam "$i")" ] && continue
  mapfile -t cmd < <(camera_cmd "$i" "$(cam "$i").tmp"); start_job "$(cam "$i")" "${cmd[@]}"
done
wait
for i in $(seq 0 $((NP - 1))); do [ -s "$(cam "$i")" ] || { log "camera source $i failed"; exit 1; }; done
[ -s "$(screen)" ] || { log "the screen share source failed"; exit 1; }

# ---- the capture through the real server (cached) ---------------------------------------
CAP=$CACHE/captures/class
cap_key() {
  for i in $(seq 0 $((NP - 1))); do basename "$(cam "$i")"; done
  basename "$(screen)"
  echo "capture v1: every person's sender at once, the screen's ${SHARE_FROM} s later; sources and roles registered"
}
if [ "$(cat "$CAP/ok" 2>/dev/null)" != "$(cap_key)" ]; then
  log "capturing the class through vtp-recorder serve ($SEC s, real time, once; cached in $CAP)"
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  # 63 tracks, one port each (RTCP muxed): above the kernel's ephemeral range and the test suites'
  VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json VTP_WORKERS=0 \
    VTP_RTP_PORT_MIN=61000 VTP_RTP_PORT_MAX=61199 "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
  server=$!; pids+=("$server")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  VTP_DATA_DIR=$work/data "$BIN" user add --email bench@example.com --name Bench --role instructor >/dev/null
  token=$(VTP_DATA_DIR=$work/data "$BIN" token --email bench@example.com --ttl 7200)
  api() { util api "http://127.0.0.1:$port/api/v1" "$token" "$@"; }
  rec=$(api start bench-class)
  plan=()
  for i in $(seq 0 $((NP - 1))); do
    if [ "$i" -eq 0 ]; then role=instructor name="Instructor"; else role=student name="Student $i"; fi
    vp=$(api track "$rec" "peer$i" "$name" video vp8 96 90000 camera "$role")
    ap=$(api track "$rec" "peer$i" "$name" audio opus 111 48000 microphone "$role")
    plan+=("$(cam "$i")|$vp|$ap")
  done
  sp=$(api track "$rec" peer0 Instructor video vp8 96 90000 screen instructor)
  senders=()
  for p in "${plan[@]}"; do
    IFS="|" read -r file vp ap <<<"$p"
    ffmpeg -hide_banner -loglevel error -nostdin -re -i "$file" \
      -map 0:v -c copy -payload_type 96 -f rtp "rtp://127.0.0.1:$vp?pkt_size=1200&rtcpport=$vp" \
      -map 0:a -c copy -payload_type 111 -f rtp "rtp://127.0.0.1:$ap?rtcpport=$ap" \
      >/dev/null 2>>"$work/senders.err" &
    senders+=($!); pids+=($!)
  done
  ( sleep "$SHARE_FROM"; exec ffmpeg -hide_banner -loglevel error -nostdin -re -i "$(screen)" \
      -map 0:v -c copy -payload_type 96 -f rtp "rtp://127.0.0.1:$sp?pkt_size=1200&rtcpport=$sp" ) \
    >/dev/null 2>>"$work/senders.err" &
  senders+=($!); pids+=($!)
  for p in "${senders[@]}"; do wait "$p" || { log "a sender failed: $(tail -3 "$work/senders.err")"; exit 1; }; done
  sleep 1 # the ingest loop naps up to 100 ms between reads
  read -r ntracks _ < <(api stop "$rec")
  [ "$ntracks" -eq $((2 * NP + 1)) ] || { log "$ntracks tracks, expected $((2 * NP + 1))"; exit 1; }
  rm -rf "$CAP"; mkdir -p "$CAP"
  mv "$work/data/recordings/bench-class"/*/tracks "$CAP/tracks"
  cap_key >"$CAP/ok"
  kill "$server"; wait "$server" 2>/dev/null || true
  pids=()
fi
T=$CAP/tracks
read -r n pk miss media < <(util captures "$BIN" "$T")
log "capture: $n tracks, $pk RTP packets, $miss missing, ${media} s of video"
[ "$miss" -eq 0 ] || log "warning: the capture lost $miss packets on loopback"
# What the captures say they are: sources and roles as registered.
kinds=$(for f in "$T"/*.vtpcap; do "$BIN" inspect --json "$f"; echo; done | python3 -c '
import collections, json, sys
text, dec, metas, i = sys.stdin.read(), json.JSONDecoder(), [], 0
while text[i:].strip():
    o, i = dec.raw_decode(text, i + len(text[i:]) - len(text[i:].lstrip()))
    metas.append(o["meta"])
c = collections.Counter("%s/%s" % (m.get("source", "-"), m.get("role", "-")) for m in metas)
print(", ".join("%s %d" % kv for kv in sorted(c.items())))')
log "capture tracks (source/role count): $kinds"

# ---- the runs ------------------------------------------------------------------------------
OUT=$CACHE/out
res=$work/results.tsv; : >"$res"
cmds=$work/commands.txt; : >"$cmds"
fail=0
if [ -x /usr/bin/time ]; then TIMER=(/usr/bin/time -v -o); else
  log "/usr/bin/time missing (Debian package 'time'); measuring with wait4() in $UTIL"
  TIMER=(python3 "$UTIL" measure); fi

# The machine is shared: what every other process used during a run, in
# cores (all CPUs' busy time from /proc/stat, less the run's own user + sys,
# over its wall time), goes into the table beside each row.
TCK=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# run JOB TOOL REF OUTFILE CMD... (OUTFILE - : none; REF: the job whose
# ffmpeg row the ratios are against, - for this job's own): as compose.sh's
# run(), the fastest of RUNS; a row "job tool media wall user sys rss kbps
# out_seconds note ref" in $res. CLEAN: outputs removed before each run.
CLEAN=()
run() {
  local job=$1 tool=$2 ref=$3 outf=$4; shift 4
  local best="" line outs=- kbps=- b0 b1 others bestothers=""
  [ "$ref" != - ] || ref=""
  { printf '# %s, %s\n' "$job" "$tool"; printf '%q ' "$@"; echo; } >>"$cmds"
  for _ in $(seq "$RUNS"); do
    [ "$outf" = - ] || rm -f "$outf"
    for c in "${CLEAN[@]}"; do rm -rf "$c"; case $c in */) mkdir -p "$c" ;; esac; done
    b0=$(cpu_busy)
    if ! "${TIMER[@]}" "$work/t" "$@" >"$work/stdout" 2>"$work/stderr"; then
      log "$tool failed on '$job': $(grep -v '^\s' "$work/stderr" | tail -3)"
      printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t(failed)\t%s\n' "$job" "$tool" "$ref" >>"$res"
      return 1
    fi
    b1=$(cpu_busy)
    line=$(util timev "$work/t")
    others=$(awk -v b="$((b1 - b0))" -v t="$TCK" -v l="$line" 'BEGIN{split(l, f, " ");
      o = (b / t - f[2] - f[3]) / f[1]; printf "%.1f", o < 0 ? 0 : o}')
    log "$tool, $job: wall, user, sys, RSS KiB: $line; other processes: $others cores"
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$line bestothers=$others; fi
  done
  if [ "$outf" != - ]; then
    cp "$work/stdout" "$outf.stdout"
    read -r outs _ _ _ _ kbps < <(util probe "$outf")
    log "$tool, $job: $(util probe "$outf")"
  fi
  read -r wall user sys rss <<<"$best"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t(others: %s cores)\t%s\n' "$job" "$tool" "$SEC" "$wall" "$user" "$sys" "$rss" "$kbps" "$outs" "$bestothers" "$ref" >>"$res"
}
help=$("$BIN" compose --help 2>&1 || true)
ours_ok=0 has_hls=0 has_all=0
if "$BIN" compose --help >/dev/null 2>&1; then ours_ok=1; else log "'$BIN compose' is not there: only the ffmpeg CLI side is measured"; fi
grep -q -- '--layout' <<<"$help" || { log "'$BIN compose' has no --layout: only the ffmpeg CLI side is measured"; ours_ok=0; }
grep -q -- '--hls' <<<"$help" && has_hls=1
grep -q -- '--decode-all' <<<"$help" && has_all=1
[ $has_all -eq 1 ] || log "'$BIN compose' has no --decode-all yet: the --decode-all rows are skipped"
ours_outs=() # the summaries (--json) this time's runs of ours printed
ours() { # job ref outfile args... (vtp-recorder compose)
  local job=$1 ref=$2 outf=$3; shift 3
  if [ $ours_ok -eq 1 ]; then
    run "$job" ours "$ref" "$outf" "$BIN" compose --tracks "$T" --format webm --video-codec vp8 --audio-codec opus \
      "$@" --output "$outf" "${OURS_OPTS[@]}" --json && ours_outs+=("$outf.stdout") || fail=1
  else printf '%s\tours\t-\t-\t-\t-\t-\t-\t-\t(not available)\t%s\n' "$job" "$ref" >>"$res"; fi
}
FF=(ffmpeg -hide_banner -loglevel error -nostdin -y)
cam_inputs=() maps=()
for i in $(seq 0 $((NP - 1))); do cam_inputs+=(-i "$(cam "$i")"); maps+=(-map "$i"); done
COLS=$(python3 -c "import math;print(math.ceil(math.sqrt($NP)))")
fgrid=$(grid_filter "$NP" "$COLS")

JD="decode only: 31 cameras + the share, every input"
JP="31 + share → presentation"
JPA="31 + share → presentation, --decode-all"
JS="31 + share → speaker"
JSA="31 + share → speaker, --decode-all"
JH="31 + share → presentation + HLS + thumbnail"
JG="31 → grid, ${COLS}×${COLS} tiles"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
busy_now() { # the processes using more than 5 % of a core over 2 s (top's second sample)
  top -b -n 2 -d 2 -o %CPU 2>/dev/null | awk '/^top -/{n++} n == 2 && f && $9 > 5 {printf "%s%s %.0f%%", s, $12, $9; s = ", "}
    n == 2 && $1 == "PID" {f = 1}' | head -c 300
}
others0=$(busy_now)
log "load before the runs: $load0; busy processes: ${others0:-none}"

run "$JD" ffmpeg - - "${FF[@]}" "${cam_inputs[@]}" -i "$(screen)" "${maps[@]}" -map "$NP" -f null -
ours "$JP" "$JD" "$OUT/ours-presentation.webm" --layout presentation
[ $has_all -eq 0 ] || ours "$JPA" "$JD" "$OUT/ours-presentation-all.webm" --layout presentation --decode-all
ours "$JS" "$JD" "$OUT/ours-speaker.webm" --layout speaker
[ $has_all -eq 0 ] || ours "$JSA" "$JD" "$OUT/ours-speaker-all.webm" --layout speaker --decode-all
if [ $has_hls -eq 1 ]; then
  CLEAN=("$OUT/ours-presentation-hls" "$OUT/ours-presentation.jpg")
  ours "$JH" "$JD" "$OUT/ours-presentation-hls.webm" --layout presentation \
    --hls "$OUT/ours-presentation-hls" --thumbnail "$OUT/ours-presentation.jpg"
  CLEAN=()
else log "'$BIN compose' has no --hls: the HLS row is skipped"; fi
ours "$JG" - "$OUT/ours-grid.webm" --layout grid
run "$JG" ffmpeg - "$OUT/ffmpeg-grid.webm" "${FF[@]}" "${cam_inputs[@]}" -filter_complex "$fgrid" \
  -map '[v]' -map '[a]' "${VP8_OPTS[@]}" "${OPUS_OPTS[@]}" -f webm "$OUT/ffmpeg-grid.webm" || fail=1
load1=$(cut -d' ' -f1-3 /proc/loadavg)
others1=$(busy_now)
log "load after the runs: $load1; busy processes: ${others1:-none}"

# ---- checks: the settings, what the outputs hold, a look at the pictures ------------------
checks=()
if [ -f src/compose/compose.c ]; then
  if diff=$(util srcopts src/compose/compose.c "${VP8_CODEC_OPTS[@]}" -- "${X264_CODEC_OPTS[@]}"); then
    checks+=("encoder options in src/compose/compose.c equal compose.sh's: VP8 ${VP8_CODEC_OPTS[*]}")
  else checks+=("WARNING: src/compose/compose.c sets other encoder options than compose.sh: $diff"); fail=1; fi
fi
if [ -s "$OUT/ours-presentation-hls/index.m3u8" ]; then
  read -r nseg total longest kbps codecs < <(util hls "$OUT/ours-presentation-hls")
  th=$(util image "$OUT/ours-presentation.jpg" 2>/dev/null || true)
  checks+=("$JH: HLS $nseg segments ($codecs, $total s, longest $longest s, $kbps kb/s), thumbnail ${th:-missing}")
fi
# What ours made of the class: talk time per person in the speaker run's
# summary against the speech script, and what every run of ours dropped.
if [[ " ${ours_outs[*]} " == *" $OUT/ours-speaker.webm.stdout "* ]]; then
  checks+=("$(python3 - "$OUT/ours-speaker.webm.stdout" "${PLAN[@]}" <<'PY'
import json, sys
summ = json.load(open(sys.argv[1]))
plan = {}
for line in sys.argv[2:]:
    i, spans = line.split(" ", 1)
    plan[int(i)] = 0.0 if spans == "-" else sum(
        float(b) - float(a) for a, b in (s.split("-") for s in spans.split(",")))
talk = summ.get("talk") or {}
said = {i: float(talk.get("peer%d" % i, 0)) for i in plan}
q = [i for i in plan if i and plan[i] >= 1]
o = [i for i in plan if i and 0 < plan[i] < 1]
print("talk time in the speaker run's summary (script): instructor %.1f s (%.1f), the %d questions "
      "%.1f s (%.1f), the %d interjections %.1f s (%.1f), everyone else %.1f s (0); largest "
      "difference for one person %.1f s"
      % (said[0], plan[0], len(q), sum(said[i] for i in q), sum(plan[i] for i in q), len(o),
         sum(said[i] for i in o), sum(plan[i] for i in o),
         sum(said[i] for i in plan if i and plan[i] == 0), max(abs(said[i] - plan[i]) for i in plan)))
PY
)")
fi
for f in "${ours_outs[@]}"; do cat "$f"; echo; done | python3 -c '
import json, sys
text, dec, runs, i = sys.stdin.read(), json.JSONDecoder(), [], 0
while text[i:].strip():
    o, i = dec.raw_decode(text, i + len(text[i:]) - len(text[i:].lstrip()))
    runs.append(o)
if runs:
    print("every run of ours: %s; frames dropped %d, decode errors %d, audio concealed %d ms" % (
        ", ".join(sorted({"%d tracks, %d people, %d video" % (r.get("tracks", 0), r.get("peers", 0), r.get("videoTracks", 0)) for r in runs})),
        sum(r.get("framesDropped", 0) for r in runs), sum(r.get("decodeErrors", 0) for r in runs),
        sum(r.get("audioConcealedMs", 0) for r in runs)))' >"$work/summaries"
[ ! -s "$work/summaries" ] || checks+=("$(cat "$work/summaries")")
# Frames to look at: presentation during the share (a student asks at 17-19.5 s)
# and after it (another asks at 52-56 s); the grid in the middle.
for f in "presentation 20" "presentation 55" "speaker 20" "grid 30"; do
  read -r l at <<<"$f"
  [ -s "$OUT/ours-$l.webm" ] || continue
  ffmpeg -hide_banner -loglevel error -nostdin -y -ss "$((at * SEC / 60))" -i "$OUT/ours-$l.webm" \
    -frames:v 1 -update 1 "$CACHE/$l-${at}s.png" && checks+=("frame: $CACHE/$l-${at}s.png")
done

# ---- report --------------------------------------------------------------------------------
table=$(util table "$res")
targets=$(python3 - "$res" "$JD" "$JP" "$JPA" "$JS" "$JSA" "$JH" "$JG" <<'PY'
import sys
rows = {}
for l in open(sys.argv[1]):
    r = l.rstrip("\n").split("\t")
    rows[(r[0], r[1])] = r
JD, JP, JPA, JS, JSA, JH, JG = sys.argv[2:9]
def xrt(job, tool="ours"):
    r = rows.get((job, tool))
    return float(r[2]) / float(r[3]) if r and r[3] != "-" else None
def cpu(job, tool="ours"):
    r = rows.get((job, tool))
    return float(r[4]) + float(r[5]) if r and r[3] != "-" else None
def rss(job, tool="ours"):
    r = rows.get((job, tool))
    return int(r[6]) / 1024 if r and r[6] != "-" else None
def fx(v, f="%.1f×"):
    return f % v if v is not None else "—"
def others(job, tool="ours"):
    r = rows.get((job, tool))
    try:
        return float(r[9].split("others: ")[1].split(" ")[0])
    except (TypeError, IndexError, ValueError):
        return 0.0
def line(name, ok, text, jobs=()):
    busy = max([others(j, t) for j, t in jobs] or [0])
    if ok is not None and busy > 0.3:  # a shared machine: say when a verdict is not to be trusted
        text += "; other processes used %.1f cores during a run of it: repeat on a quiet machine" % busy
    print("- %s: %s (%s)" % (name, "n/a" if ok is None else ("met" if ok else "**not met**"), text))
d = xrt(JD, "ffmpeg")
for job, name in ((JP, "presentation"), (JS, "speaker")):
    o = xrt(job)
    line("%s at least 4× real time" % name, None if o is None else o >= 4, fx(o), [(job, "ours")])
    line("%s faster than the ffmpeg CLI decoding every input" % name,
         None if o is None or d is None else o > d, "%s vs %s" % (fx(o), fx(d)),
         [(job, "ours"), (JD, "ffmpeg")])
o = xrt(JH)
line("presentation + HLS + thumbnail at least 2.5× real time", None if o is None else o >= 2.5, fx(o),
     [(JH, "ours")])
o = xrt(JG)
line("grid of 31 at least 2.5× real time", None if o is None else o >= 2.5,
     "%s; the ffmpeg CLI's grid %s" % (fx(o), fx(xrt(JG, "ffmpeg"))), [(JG, "ours")])
worst = [(rss(j), j) for j in (JP, JPA, JS, JSA, JH, JG) if rss(j) is not None]
if worst:
    m, j = max(worst)
    line("peak RSS at most 600 MiB in every run of ours", m <= 600, "largest %.0f MiB, %s" % (m, j))
else:
    line("peak RSS at most 600 MiB in every run of ours", None, "no run")
# Ratios: what not decoding hidden tracks buys, and against the floor.
for job, alljob, name in ((JP, JPA, "presentation"), (JS, JSA, "speaker")):
    o, a = xrt(job), xrt(alljob)
    if o and a:
        print("- %s: %.1f× real time, %.1f× with --decode-all: %.2f× the speed, %.2f× the CPU, "
              "%.2f× the peak RSS of decoding everything" % (name, o, a, o / a, cpu(job) / cpu(alljob),
                                                            rss(job) / rss(alljob)))
    if o and d:
        print("- %s against the ffmpeg CLI's decode of every input: %.2f× its speed, %.2f× its CPU"
              % (name, o / d, cpu(job) / cpu(JD, "ffmpeg")))
PY
)
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): a class of 31 (bench/class.sh)"
  echo
  echo "$(nproc) cores, $("$BIN" --version 2>/dev/null || echo vtp-recorder), $(ffmpeg -hide_banner -version | head -1 | cut -d' ' -f1-3); load average $load0 before, $load1 after; busy processes (over 5 % of a core) before: ${others0:-none}; after: ${others1:-none}; best of $RUNS run(s); compose --decode-all $([ $has_all -eq 1 ] && echo present || echo absent)"
  echo "sources: 31 cameras $(util probe "$(cam 1)" | awk '{print $2, $3, $4 " fps,", $6 " kb/s"}'), $SEC s; share $(util probe "$(screen)" | awk '{print $2, $3, $4 " fps,", $6 " kb/s,", $1 " s"}') from ${SHARE_FROM} s; keyframe every $KF s"
  echo "capture: $n tracks ($kinds), $pk RTP packets, $miss missing"
  echo "settings: ${BITRATE_KBPS} kb/s total, ${OUT_W}x${OUT_H} ${FPS} fps, GOP $GOP, $THREADS threads; VP8: ${VP8_OPTS[*]}; Opus: ${OPUS_OPTS[*]}"
  echo
  echo "$table"
  echo
  echo "† against the ffmpeg CLI decoding every input (no output): the floor of a composer that decodes everything."
  echo
  echo "$targets"
  for c in "${checks[@]}"; do echo "- $c"; done
  echo
  echo "Commands:"
  echo
  echo '```'
  cat "$cmds"
  echo '```'
} | tee -a "$results/class.md"
exit $fail
