#!/usr/bin/env bash
# make bench, part 3: composition (issue 4). A recording's packet logs in, one
# file out, side by side with the ffmpeg CLI doing the same job from the same
# source files (scale + xstack + amix, the same encoders and settings).
#
# 1. Sources (generated once): 4 peers x 60 s 1280x720 30 fps VP8 at about
#    2 Mbit/s with a keyframe every 2.5 s, each a different moving picture,
#    plus Opus 48 kHz mono with a distinct tone; 9 peers x 30 s the same way.
# 2. Captures (once): every source is sent by `ffmpeg -re -c copy -f rtp`
#    through the real server (`vtp-recorder serve`, VTP_WORKERS=0 so that it
#    does not compose by itself) on 127.0.0.1; the packet logs are kept.
#    Sources and captures are cached in BENCH_COMPOSE_DIR (build/bench-compose)
#    and made again only when missing or when their recipe changes.
# 3. Runs, each under /usr/bin/time -v (wall, user + sys CPU, peak RSS):
#    4 peers -> 2x2 grid in VP8/Opus WebM and in H.264/AAC MP4; 9 peers ->
#    3x3 (peak RSS); 1 peer (our fast path); ffmpeg decoding and compositing
#    alone (-f null) as the floor under any encoder.
# 4. Delivery outputs (issue 5): the 4-peer WebM and MP4 jobs again, each
#    also writing HLS (VOD, 4 s fMP4 segments, H.264/AAC) and a 640x360 JPEG
#    thumbnail: ours with --hls DIR --thumbnail FILE; the ffmpeg CLI with the
#    same filter graph split into the file's encode, an H.264/AAC `-f hls`
#    encode (WebM; x264 at the VP8's video bitrate) and the JPEG, in one
#    command, or (MP4) the MP4 and the JPEG, then a `-c copy` HLS remux of
#    the MP4, the two commands timed together. And ours alone on the 9 peers
#    with HLS and the thumbnail, which is what the workers run: the memory
#    target with every output.
#
# Prints the commands, a Markdown table, and appends both to
# bench/results/compose.md. Outputs stay in BENCH_COMPOSE_DIR/out.
# BENCH_COMPOSE_RUNS=N runs every job N times and keeps the fastest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
CACHE=${BENCH_COMPOSE_DIR:-build/bench-compose}
RUNS=${BENCH_COMPOSE_RUNS:-1}
THREADS=${BENCH_COMPOSE_THREADS:-$(nproc)}
UTIL=bench/compose-util.py
results=bench/results; mkdir -p "$results" "$CACHE/out"
work=$(mktemp -d /tmp/vtp-bench-compose.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
util() { python3 "$UTIL" "$@"; }
log() { echo "compose bench: $*" >&2; }

# ============================================================================
# The settings, ONE block for both sides. Ours gets them through its flags
# (--bitrate, --threads, codecs); the encoder options it has no flag for
# (VP8_CODEC_OPTS, X264_CODEC_OPTS: name=value, as given to libav) must be
# the ones src/compose/compose.c sets, and the script checks that they are:
# it reads compose.c's av_dict_set() options, and x264's own record of its
# settings in both output files.
#
# Mind libvpx VP8 in realtime mode: a cpu-used of 0..16 is not a fixed
# effort. Each encoder times itself on the wall clock and slows down until
# a frame takes (16 - cpu-used)/16 of a frame interval, so cpu-used 8 aims
# at about 2x real time per encoder whatever the machine, and equal options
# need not mean equal effort. A negative value (-6) is a fixed speed (6).
# ============================================================================
OUT_W=1280 OUT_H=720 FPS=30
BITRATE_KBPS=2000                     # --bitrate: the total; video gets what audio leaves
OPUS_KBPS=96 AAC_KBPS=128             # audio's share: Opus (WebM), AAC (MP4)
AUDIO_RATE=48000 AUDIO_LAYOUT=stereo
VP8_VIDEO_KBPS=$((BITRATE_KBPS - OPUS_KBPS))
H264_VIDEO_KBPS=$((BITRATE_KBPS - AAC_KBPS))
GOP=$((FPS * 2))                      # keyframe interval of the output, frames
SCALE_FLAGS=area                      # swscale, each tile (src/compose/video.c: SWS_AREA)
VP8_CODEC_OPTS=(deadline=realtime cpu-used=-6 lag-in-frames=0)
X264_CODEC_OPTS=(preset=veryfast)
codec_args() { local kv; for kv in "$@"; do printf '%s\n' "-${kv%%=*}" "${kv#*=}"; done; }
mapfile -t vp8_args < <(codec_args "${VP8_CODEC_OPTS[@]}")
mapfile -t x264_args < <(codec_args "${X264_CODEC_OPTS[@]}")
VP8_OPTS=(-c:v libvpx "${vp8_args[@]}"
  -b:v "${VP8_VIDEO_KBPS}k" -g "$GOP" -threads "$THREADS" -pix_fmt yuv420p)
X264_OPTS=(-c:v libx264 "${x264_args[@]}"
  -b:v "${H264_VIDEO_KBPS}k" -g "$GOP" -threads "$THREADS" -pix_fmt yuv420p)
OPUS_OPTS=(-c:a libopus -b:a "${OPUS_KBPS}k" -ar "$AUDIO_RATE")
AAC_OPTS=(-c:a aac -b:a "${AAC_KBPS}k" -ar "$AUDIO_RATE")
OURS_OPTS=(--bitrate "$BITRATE_KBPS" --threads "$THREADS")
# Delivery outputs: HLS as src/compose/hls.c writes it (VOD, 4 s fMP4
# segments, H.264/AAC). A WebM's HLS is a second x264 at the VP8's video
# bitrate (same preset, GOP, threads; lookahead 5 and one B-frame, as
# hls.c sets them to save memory) plus AAC; an MP4's is its own H.264/AAC
# copied. The thumbnail: one 640x360 JPEG (mjpeg at q 3) near 10 % of the media.
HLS_SECONDS=4
HLS_OPTS=(-f hls -hls_time "$HLS_SECONDS" -hls_playlist_type vod -hls_segment_type fmp4
  -hls_fmp4_init_filename init.mp4 -hls_flags independent_segments)
X264_HLS_OPTS=(-c:v libx264 "${x264_args[@]}" -rc-lookahead 5 -bf 1
  -b:v "${VP8_VIDEO_KBPS}k" -g "$GOP" -threads "$THREADS" -pix_fmt yuv420p)
THUMB_W=640 THUMB_H=360 THUMB_PERCENT=10
JPEG_OPTS=(-c:v mjpeg -q:v 3 -frames:v 1 -f image2 -update 1)
# ============================================================================

# ---- sources ---------------------------------------------------------------
SEC4=${BENCH_COMPOSE_SECONDS:-60} SEC9=${BENCH_COMPOSE_SECONDS9:-30}
SRC_KBPS=2000 SRC_GOP=75 # what a WebRTC sender does at 720p: ~2 Mbit/s, keyframe every ~2.5 s

# Peer i: a moving picture (four kinds, hue turned per peer) and a tone of
# 330 + 110*i Hz, encoded like a browser would: VP8 realtime in CBR with a
# 0.5 s buffer, no lag, keyframe every 2.5 s; Opus mono 20 ms frames.
source_cmd() { # i seconds out -> the ffmpeg command (one argument per line)
  local i=$1 d=$2 out=$3 v
  case $((i % 4)) in
  0) v="testsrc2=s=1280x720:r=30,format=yuv420p,noise=c0s=6:allf=t" ;;
  1) v="mandelbrot=s=1280x720:r=30:end_pts=4000" ;; # a slow zoom: deeper is noise
  2) v="gradients=s=1280x720:r=30:speed=0.05:nb_colors=3:seed=$i,format=yuv420p,noise=c0s=6:allf=t" ;;
  3) v="life=s=320x180:r=30:mold=10:ratio=0.12:seed=$i:life_color=#ffcc00:death_color=#002060:mold_color=#804000,scale=1280:720:flags=neighbor" ;;
  esac
  printf '%s\n' ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "$v,hue=h=$((i * 40)),format=yuv420p" \
    -f lavfi -i "sine=frequency=$((330 + 110 * i)):sample_rate=48000" -t "$d" \
    -map 0:v -c:v libvpx -deadline realtime -cpu-used 8 -b:v "${SRC_KBPS}k" -minrate "${SRC_KBPS}k" \
    -maxrate "${SRC_KBPS}k" -bufsize "$((SRC_KBPS / 2))k" -g "$SRC_GOP" -keyint_min "$SRC_GOP" \
    -lag-in-frames 0 -auto-alt-ref 0 \
    -map 1:a -c:a libopus -b:a 32k -ac 1 -frame_duration 20 -f webm "$out"
}
# Each source file is named by a hash of its own command: change a recipe
# and only that file is made again (and the captures that use it).
mkdir -p "$CACHE/src" "$CACHE/captures"
src() { # i seconds -> path
  echo "$CACHE/src/p$1-${2}s-$(source_cmd "$1" "$2" OUT | sha256sum | cut -c1-12).webm"
}
make_sources() { # seconds i... : encodes the missing ones, nproc at a time
  local d=$1 i running=0 cmd made=()
  shift
  for i in "$@"; do
    [ -s "$(src "$i" "$d")" ] && continue
    if [ "$d" -lt "$SEC4" ] && [ -s "$(src "$i" "$SEC4")" ]; then # the same picture, cut
      ffmpeg -hide_banner -loglevel error -nostdin -y -i "$(src "$i" "$SEC4")" -t "$d" -c copy \
        -f webm "$(src "$i" "$d").tmp" && mv "$(src "$i" "$d").tmp" "$(src "$i" "$d")"
      continue
    fi
    [ ${#made[@]} -gt 0 ] || log "encoding $d s sources once (cached in $CACHE/src)"
    mapfile -t cmd < <(source_cmd "$i" "$d" "$(src "$i" "$d").tmp")
    ( "${cmd[@]}" && mv "$(src "$i" "$d").tmp" "$(src "$i" "$d")" ) &
    made+=("$i") running=$((running + 1))
    if [ "$running" -ge "$(nproc)" ]; then wait -n || true; running=$((running - 1)); fi
  done
  wait
  for i in "$@"; do [ -s "$(src "$i" "$d")" ] || { log "source $i ($d s) failed"; exit 1; }; done
}
make_sources "$SEC4" 0 1 2 3
make_sources "$SEC9" 0 1 2 3 4 5 6 7 8

# ---- captures through the real server --------------------------------------------
# set name -> "peers seconds"
declare -A SETS=([4p]="4 $SEC4" [9p]="9 $SEC9" [1p]="1 $SEC4")
set_key() { # set -> the source files it is made of
  local peers secs i
  read -r peers secs <<<"${SETS[$1]}"
  for i in $(seq 0 $((peers - 1))); do basename "$(src "$i" "$secs")"; done
  echo "capture v2: every sender started together"
}
missing_sets=()
for s in 4p 9p 1p; do
  [ "$(cat "$CACHE/captures/$s/ok" 2>/dev/null)" = "$(set_key "$s")" ] || missing_sets+=("$s")
done
if [ ${#missing_sets[@]} -gt 0 ]; then
  log "capturing ${missing_sets[*]} through vtp-recorder serve (real time, once; cached in $CACHE/captures)"
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  # RTP ports above the kernel's ephemeral range and the test suites' ranges
  VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json VTP_WORKERS=0 \
    VTP_RTP_PORT_MIN=61000 VTP_RTP_PORT_MAX=61099 "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
  server=$!; pids+=("$server")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  VTP_DATA_DIR=$work/data "$BIN" user add --email bench@example.com --name Bench --role instructor >/dev/null
  token=$(VTP_DATA_DIR=$work/data "$BIN" token --email bench@example.com --ttl 7200)
  api() { util api "http://127.0.0.1:$port/api/v1" "$token" "$@"; }
  # Every track is registered first and every sender then started at once,
  # so that all peers of a recording are present from its first second, as
  # in the ffmpeg CLI's grid (ours re-flows the grid as peers join).
  declare -A REC
  plan=() senders=()
  for s in "${missing_sets[@]}"; do
    read -r peers secs <<<"${SETS[$s]}"
    REC[$s]=$(api start "bench-$s")
    for i in $(seq 0 $((peers - 1))); do
      vp=$(api track "${REC[$s]}" "peer$i" "Peer $i" video vp8 96 90000)
      ap=$(api track "${REC[$s]}" "peer$i" "Peer $i" audio opus 111 48000)
      plan+=("$(src "$i" "$secs")|$vp|$ap")
    done
  done
  for p in "${plan[@]}"; do
    IFS="|" read -r file vp ap <<<"$p"
    ffmpeg -hide_banner -loglevel error -nostdin -re -i "$file" \
      -map 0:v -c copy -payload_type 96 -f rtp "rtp://127.0.0.1:$vp?pkt_size=1200&rtcpport=$vp" \
      -map 0:a -c copy -payload_type 111 -f rtp "rtp://127.0.0.1:$ap?rtcpport=$ap" \
      >/dev/null 2>>"$work/senders.err" &
    senders+=($!); pids+=($!)
  done
  for p in "${senders[@]}"; do wait "$p" || { log "a sender failed: $(tail -3 "$work/senders.err")"; exit 1; }; done
  sleep 1 # the ingest loop naps up to 100 ms between reads
  for s in "${missing_sets[@]}"; do
    read -r peers _ <<<"${SETS[$s]}"
    read -r ntracks _ < <(api stop "${REC[$s]}")
    [ "$ntracks" -eq $((2 * peers)) ] || { log "$s: $ntracks tracks, expected $((2 * peers))"; exit 1; }
    rm -rf "$CACHE/captures/$s"; mkdir -p "$CACHE/captures/$s"
    mv "$work/data/recordings/bench-$s"/*/tracks "$CACHE/captures/$s/tracks"
    set_key "$s" >"$CACHE/captures/$s/ok"
  done
  kill "$server"; wait "$server" 2>/dev/null || true
  pids=()
fi
for s in 4p 9p 1p; do
  read -r n pk miss media < <(util captures "$BIN" "$CACHE/captures/$s/tracks")
  log "capture $s: $n tracks, $pk RTP packets, $miss missing, ${media} s of video"
  [ "$miss" -eq 0 ] || log "warning: capture $s lost $miss packets on loopback"
done

# ---- the runs ------------------------------------------------------------------------
OUT=$CACHE/out
res=$work/results.tsv; : >"$res"
cmds=$work/commands.txt; : >"$cmds"
fail=0
if [ -x /usr/bin/time ]; then TIMER=(/usr/bin/time -v -o); else
  log "/usr/bin/time missing (Debian package 'time'); measuring with wait4() in $UTIL"
  TIMER=(python3 "$UTIL" measure); fi

# run JOB TOOL MEDIA OUTFILE CMD... (OUTFILE - : none): runs CMD under the
# timer RUNS times, keeps the fastest, appends "job tool media wall user sys
# rss kbps out_seconds note" to $res. MEDIA is the recording's length in
# seconds (the sources'), the same for both sides, whatever each writes.
# CLEAN: more outputs removed before each run, untimed (a folder named with
# a trailing / is made again, empty).
CLEAN=()
run() {
  local job=$1 tool=$2 media=$3 outf=$4; shift 4
  local best="" line outs=- kbps=-
  { printf '# %s, %s\n' "$job" "$tool"; printf '%q ' "$@"; echo; } >>"$cmds"
  for _ in $(seq "$RUNS"); do
    [ "$outf" = - ] || rm -f "$outf"
    for c in "${CLEAN[@]}"; do rm -rf "$c"; case $c in */) mkdir -p "$c" ;; esac; done
    if ! "${TIMER[@]}" "$work/t" "$@" >"$work/stdout" 2>"$work/stderr"; then
      log "$tool failed on '$job': $(grep -v '^\s' "$work/stderr" | tail -3)"
      printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t(failed)\n' "$job" "$tool" >>"$res"
      return 1
    fi
    line=$(util timev "$work/t")
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$line; fi
  done
  [ "$outf" = - ] || cp "$work/stdout" "$outf.stdout"
  if [ "$outf" != - ]; then
    read -r outs _ _ _ _ kbps < <(util probe "$outf")
    log "$tool, $job: $(util probe "$outf")"
  fi
  read -r wall user sys rss <<<"$best"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$job" "$tool" "$media" "$wall" "$user" "$sys" "$rss" "$kbps" "$outs" >>"$res"
}

ours_ok=0
if "$BIN" compose --help >/dev/null 2>&1; then ours_ok=1; else
  log "'$BIN compose' is not there yet: only the ffmpeg CLI side is measured"; fi
ours() { # job media outfile args... (vtp-recorder compose)
  local job=$1 media=$2 outf=$3; shift 3
  if [ $ours_ok -eq 1 ]; then run "$job" ours "$media" "$outf" "$BIN" compose "$@" --output "$outf" "${OURS_OPTS[@]}" --json || fail=1
  else printf '%s\tours\t-\t-\t-\t-\t-\t-\t-\t(not built yet)\n' "$job" >>"$res"; fi
}
inputs() { for i in $(seq 0 $(($1 - 1))); do printf '%s\n' -i "$(src "$i" "$2")"; done; }
# n peers on a cols x cols grid of (OUT_W/cols) x (OUT_H/cols) tiles, audio mixed
grid_filter() { # n cols
  local n=$1 c=$2 tw=$((OUT_W / $2 / 2 * 2)) th=$((OUT_H / $2 / 2 * 2)) f="" ins="" lay="" a=""
  for i in $(seq 0 $((n - 1))); do
    f+="[$i:v]scale=$tw:$th:flags=${SCALE_FLAGS}[v$i];"; ins+="[v$i]"; a+="[$i:a]"
    lay+="$((i % c * tw))_$((i / c * th))|"
  done
  f+="${ins}xstack=inputs=$n:layout=${lay%|}:fill=black,pad=$OUT_W:$OUT_H,fps=$FPS,format=yuv420p[v];"
  f+="${a}amix=inputs=$n:duration=longest,aresample=$AUDIO_RATE,aformat=channel_layouts=${AUDIO_LAYOUT}[a]"
  echo "$f"
}
FF=(ffmpeg -hide_banner -loglevel error -nostdin -y)
mapfile -t in4 < <(inputs 4 "$SEC4")
mapfile -t in9 < <(inputs 9 "$SEC9")
f4=$(grid_filter 4 2) f9=$(grid_filter 9 3)
T4=$CACHE/captures/4p/tracks T9=$CACHE/captures/9p/tracks T1=$CACHE/captures/1p/tracks
J1="4 peers → 2×2, VP8/Opus WebM" J2="4 peers → 2×2, H.264/AAC MP4"
J3="9 peers → 3×3, VP8/Opus WebM" J4="1 peer, fast path (video copied)"
J0="4 peers → 2×2, decode + scale + xstack + amix only"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the runs: $load0"

ours "$J1" "$SEC4" "$OUT/ours-4p.webm" --tracks "$T4" --format webm --video-codec vp8 --audio-codec opus --no-fast-path
run "$J1" ffmpeg "$SEC4" "$OUT/ffmpeg-4p.webm" "${FF[@]}" "${in4[@]}" -filter_complex "$f4" -map '[v]' -map '[a]' \
  "${VP8_OPTS[@]}" "${OPUS_OPTS[@]}" -f webm "$OUT/ffmpeg-4p.webm"
ours "$J2" "$SEC4" "$OUT/ours-4p.mp4" --tracks "$T4" --format mp4 --video-codec h264 --audio-codec aac --no-fast-path
run "$J2" ffmpeg "$SEC4" "$OUT/ffmpeg-4p.mp4" "${FF[@]}" "${in4[@]}" -filter_complex "$f4" -map '[v]' -map '[a]' \
  "${X264_OPTS[@]}" "${AAC_OPTS[@]}" -movflags +faststart -f mp4 "$OUT/ffmpeg-4p.mp4"
ours "$J3" "$SEC9" "$OUT/ours-9p.webm" --tracks "$T9" --format webm --video-codec vp8 --audio-codec opus --no-fast-path
run "$J3" ffmpeg "$SEC9" "$OUT/ffmpeg-9p.webm" "${FF[@]}" "${in9[@]}" -filter_complex "$f9" -map '[v]' -map '[a]' \
  "${VP8_OPTS[@]}" "${OPUS_OPTS[@]}" -f webm "$OUT/ffmpeg-9p.webm"
ours "$J4" "$SEC4" "$OUT/ours-1p.webm" --tracks "$T1" --format webm --video-codec vp8 --audio-codec opus
run "$J4" ffmpeg "$SEC4" "$OUT/ffmpeg-1p.webm" "${FF[@]}" -i "$(src 0 "$SEC4")" -map 0:v -map 0:a -c:v copy \
  -af "aformat=channel_layouts=$AUDIO_LAYOUT" "${OPUS_OPTS[@]}" -f webm "$OUT/ffmpeg-1p.webm"
run "$J0" ffmpeg "$SEC4" - "${FF[@]}" "${in4[@]}" -filter_complex "$f4" -map '[v]' -map '[a]' -f null -

# Delivery outputs: the file + HLS + thumbnail, both sides.
J5="4 peers → 2×2, VP8/Opus WebM + HLS + thumbnail"
J6="4 peers → 2×2, H.264/AAC MP4 + HLS + thumbnail"
J7="9 peers → 3×3, VP8/Opus WebM + HLS + thumbnail"
# (the help read whole first: grep -q leaves the pipe early, and under
# pipefail the writer's SIGPIPE would read as "no --hls")
if [ $ours_ok -eq 1 ] && ! grep -q -- '--hls' <<<"$("$BIN" compose --help 2>&1)"; then
  log "'$BIN compose' has no --hls yet: the HLS jobs are measured for the ffmpeg CLI only"; ours_ok=0; fi
tf=$((SEC4 * FPS * THUMB_PERCENT / 100)) # the frame the ffmpeg CLI takes for the thumbnail
thumb_filter="trim=start_frame=$tf:end_frame=$((tf + 1)),scale=$THUMB_W:$THUMB_H:flags=${SCALE_FLAGS}:out_range=full,format=yuvj420p"
f4w="$f4;[v]split=3[vf][vh][vt0];[a]asplit=2[af][ah];[vt0]${thumb_filter}[vt]"
f4m="$f4;[v]split=2[vf][vt0];[vt0]${thumb_filter}[vt]"
hls_out() { printf '%s\n' "${HLS_OPTS[@]}" -hls_segment_filename "$1/seg_%05d.m4s" "$1/index.m3u8"; }
mapfile -t hls_ffw < <(hls_out "$OUT/ffmpeg-4p-webm-hls")
mapfile -t hls_ffm < <(hls_out "$OUT/ffmpeg-4p-mp4-hls")

CLEAN=("$OUT/ours-4p-webm-hls" "$OUT/ours-4p-webm.jpg")
ours "$J5" "$SEC4" "$OUT/ours-4p-hls.webm" --tracks "$T4" --format webm --video-codec vp8 --audio-codec opus --no-fast-path \
  --hls "$OUT/ours-4p-webm-hls" --thumbnail "$OUT/ours-4p-webm.jpg"
CLEAN=("$OUT/ffmpeg-4p-webm-hls/" "$OUT/ffmpeg-4p-webm.jpg")
run "$J5" ffmpeg "$SEC4" "$OUT/ffmpeg-4p-hls.webm" "${FF[@]}" "${in4[@]}" -filter_complex "$f4w" \
  -map '[vf]' -map '[af]' "${VP8_OPTS[@]}" "${OPUS_OPTS[@]}" -f webm "$OUT/ffmpeg-4p-hls.webm" \
  -map '[vh]' -map '[ah]' "${X264_HLS_OPTS[@]}" "${AAC_OPTS[@]}" "${hls_ffw[@]}" \
  -map '[vt]' "${JPEG_OPTS[@]}" "$OUT/ffmpeg-4p-webm.jpg"
CLEAN=("$OUT/ours-4p-mp4-hls" "$OUT/ours-4p-mp4.jpg")
ours "$J6" "$SEC4" "$OUT/ours-4p-hls.mp4" --tracks "$T4" --format mp4 --video-codec h264 --audio-codec aac --no-fast-path \
  --hls "$OUT/ours-4p-mp4-hls" --thumbnail "$OUT/ours-4p-mp4.jpg"
CLEAN=("$OUT/ffmpeg-4p-mp4-hls/" "$OUT/ffmpeg-4p-mp4.jpg")
run "$J6" ffmpeg "$SEC4" "$OUT/ffmpeg-4p-hls.mp4" python3 "$UTIL" seq \
  "${FF[@]}" "${in4[@]}" -filter_complex "$f4m" -map '[vf]' -map '[a]' "${X264_OPTS[@]}" "${AAC_OPTS[@]}" \
  -movflags +faststart -f mp4 "$OUT/ffmpeg-4p-hls.mp4" -map '[vt]' "${JPEG_OPTS[@]}" "$OUT/ffmpeg-4p-mp4.jpg" \
  --then "${FF[@]}" -i "$OUT/ffmpeg-4p-hls.mp4" -map 0 -c copy "${hls_ffm[@]}"
CLEAN=("$OUT/ours-9p-webm-hls" "$OUT/ours-9p-webm.jpg")
ours "$J7" "$SEC9" "$OUT/ours-9p-hls.webm" --tracks "$T9" --format webm --video-codec vp8 --audio-codec opus --no-fast-path \
  --hls "$OUT/ours-9p-webm-hls" --thumbnail "$OUT/ours-9p-webm.jpg"
CLEAN=()
load1=$(cut -d' ' -f1-3 /proc/loadavg)
log "load after the runs: $load1"

# ---- equal settings: compose.c's encoder options, and x264's record ---------------
checks=()
if [ -f src/compose/compose.c ]; then
  if diff=$(util srcopts src/compose/compose.c "${VP8_CODEC_OPTS[@]}" -- "${X264_CODEC_OPTS[@]}"); then
    checks+=("encoder options in src/compose/compose.c equal this script's: VP8 ${VP8_CODEC_OPTS[*]}; x264 ${X264_CODEC_OPTS[*]}")
  else checks+=("WARNING: src/compose/compose.c sets other encoder options than this script: $diff"); fail=1; fi
fi
if [ -s "$OUT/ours-4p.mp4" ] && [ -s "$OUT/ffmpeg-4p.mp4" ]; then
  a=$(util x264opts "$OUT/ours-4p.mp4") b=$(util x264opts "$OUT/ffmpeg-4p.mp4")
  if [ "$a" = "$b" ]; then checks+=("x264 options identical in both files: $b")
  else checks+=("WARNING: x264 options differ; ours: $a; ffmpeg: $b"); fail=1; fi
fi
if [ -s "$OUT/ours-4p-webm-hls/index.m3u8" ] && [ -s "$OUT/ffmpeg-4p-webm-hls/index.m3u8" ]; then
  a=$(util x264opts "$OUT/ours-4p-webm-hls/init.mp4" "$OUT/ours-4p-webm-hls/seg_00000.m4s")
  b=$(util x264opts "$OUT/ffmpeg-4p-webm-hls/init.mp4" "$OUT/ffmpeg-4p-webm-hls/seg_00000.m4s")
  if [ "$a" = "$b" ]; then checks+=("x264 options identical in both WebM jobs' HLS: $b")
  else checks+=("WARNING: the WebM jobs' HLS x264 options differ; ours: $a; ffmpeg: $b"); fail=1; fi
fi
# What each delivery job wrote besides the file: HLS segments, their length
# and bitrate, the thumbnail's size.
for pair in "4p-webm|$J5" "4p-mp4|$J6" "9p-webm|$J7"; do
  f=${pair%%|*} job=${pair#*|}
  for tool in ours ffmpeg; do
    d=$OUT/$tool-$f-hls
    [ -s "$d/index.m3u8" ] || continue
    read -r nseg total longest kbps codecs < <(util hls "$d")
    th=$(util image "$OUT/$tool-$f.jpg" 2>/dev/null || true)
    checks+=("$job, $tool: HLS $nseg segments ($codecs, $total s, longest $longest s, $kbps kb/s), thumbnail ${th:-missing}")
  done
done

# ---- report ------------------------------------------------------------------------------
table=$(util table "$res")
targets=$(python3 - "$res" <<'PY'
import sys
rows = {}
for l in open(sys.argv[1]):
    r = l.rstrip("\n").split("\t")
    rows[(r[0], r[1])] = r
def xrt(job, tool):
    r = rows.get((job, tool))
    return float(r[2]) / float(r[3]) if r and r[3] != "-" else None
def rss(job, tool):
    r = rows.get((job, tool))
    return int(r[6]) / 1024 if r and r[6] != "-" else None
J1 = "4 peers → 2×2, VP8/Opus WebM"; J2 = "4 peers → 2×2, H.264/AAC MP4"
J3 = "9 peers → 3×3, VP8/Opus WebM"; J4 = "1 peer, fast path (video copied)"
def line(name, ok, text):
    print("- %s: %s (%s)" % (name, "n/a" if ok is None else ("met" if ok else "**not met**"), text))
o, f = xrt(J1, "ours"), xrt(J1, "ffmpeg")
line("VP8 at least 4× real time", None if o is None else o >= 4, "ours %s×" % ("%.1f" % o if o else "—"))
line("faster than the ffmpeg CLI, VP8", None if o is None else o > f,
     "%s× vs %.1f×" % ("%.1f" % o if o else "—", f or 0))
o2, f2 = xrt(J2, "ours"), xrt(J2, "ffmpeg")
line("faster than the ffmpeg CLI, H.264", None if o2 is None else o2 > f2,
     "%s× vs %.1f×" % ("%.1f" % o2 if o2 else "—", f2 or 0))
m = rss(J3, "ours")
line("peak RSS under 400 MiB for 9 peers", None if m is None else m < 400, "%s MiB" % ("%.0f" % m if m else "—"))
m = rss("9 peers → 3×3, VP8/Opus WebM + HLS + thumbnail", "ours")
line("the same with HLS + thumbnail (what the workers run)", None if m is None else m < 400,
     "%s MiB" % ("%.0f" % m if m else "—"))
p = xrt(J4, "ours")
line("fast path at least 50× real time", None if p is None else p >= 50, "%s×" % ("%.0f" % p if p else "—"))
for plain, hls in ((J1, "4 peers → 2×2, VP8/Opus WebM + HLS + thumbnail"),
                   (J2, "4 peers → 2×2, H.264/AAC MP4 + HLS + thumbnail")):
    o, f, o0 = xrt(hls, "ours"), xrt(hls, "ffmpeg"), xrt(plain, "ours")
    if o and f:
        print("- with HLS + thumbnail (%s): ours %.1f× real time, the ffmpeg CLI %.1f×: %.2f× its speed"
              "%s" % (hls.split(", ")[1].split(" +")[0], o, f, o / f,
                      "; the file alone %.1f×" % o0 if o0 else ""))
PY
)
{
  echo
  echo "$(nproc) cores, $(date -u +%Y-%m-%d), $("$BIN" --version 2>/dev/null || echo vtp-recorder), $(ffmpeg -hide_banner -version | head -1 | cut -d' ' -f1-3); load average $load0 before, $load1 after; best of $RUNS run(s)"
  echo "sources: $(util probe "$(src 0 "$SEC4")" | awk '{print $2, $3, $4 " fps,", $6 " kb/s"}') per peer, $SEC4 s (9 peers: $SEC9 s)"
  echo "settings: ${BITRATE_KBPS} kb/s total, ${OUT_W}x${OUT_H} ${FPS} fps, GOP $GOP, $THREADS threads;" \
    "VP8: ${VP8_OPTS[*]}; H.264: ${X264_OPTS[*]}; Opus: ${OPUS_OPTS[*]}; AAC: ${AAC_OPTS[*]}"
  echo
  echo "$table"
  echo
  echo "$targets"
  for c in "${checks[@]}"; do echo "- $c"; done
  echo
  echo "Commands:"
  echo
  echo '```'
  cat "$cmds"
  echo '```'
} | tee -a "$results/compose.md"
exit $fail
