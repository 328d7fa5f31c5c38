#!/usr/bin/env bash
# What a keyframe every N seconds costs a WebRTC-like VP8 sender (issue 17:
# VTP_KEYFRAME_INTERVAL asks every video sender for one that often). The
# source is talking-head-like: a static, softly blurred background, a moving
# picture over a twelfth of the frame and light temporal sensor noise. It is encoded
# with ffmpeg's libvpx the way a browser encodes (realtime, cpu-used 8, no
# lag, error resilient, CBR with WebRTC's buffer and intra-size settings),
# with keyframes forced every N seconds and with none after the first, and
# measured two ways:
#   - equal quality (fixed quantizer): bytes against the no-keyframe run;
#   - equal bitrate (CBR, what a browser does): PSNR against the source.
# Bounded (BENCH_SECONDS of media per run), everything in a temp dir, prints
# a Markdown table.
#
# BENCH_SECONDS=60, BENCH_INTERVALS="2 4 5 10", BENCH_Q=24 (fixed quantizer),
# BENCH_SIZES="640x360:500 1280x720:1500" (WxH:kbit/s).
set -euo pipefail
SECONDS_RUN=${BENCH_SECONDS:-60}
INTERVALS=${BENCH_INTERVALS:-"2 4 5 10"}
Q=${BENCH_Q:-24}
NOISE=${BENCH_NOISE:-2}
SIZES=${BENCH_SIZES:-"640x360:500 1280x720:1500"}
work=$(mktemp -d /tmp/vtp-bench-keyframes.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The same frames every time (the noise has a fixed seed), so the PSNR run
# regenerates the reference instead of storing it.
source_graph() {
	local w=$1 h=$2
	printf '%s' "mandelbrot=s=${w}x${h}:rate=30,trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/30/TB,gblur=sigma=2[bg];testsrc2=s=$((w / 4))x$((h / 3)):rate=30,gblur=sigma=1[fg];[bg][fg]overlay=x='W*3/8+W/24*sin(t*0.7)':y='H/3+H/40*sin(t*1.3)',noise=c0s=${NOISE}:c0f=t:all_seed=17,fps=30,format=yuv420p,trim=duration=${SECONDS_RUN}"
}

# The options every run shares: libwebrtc's VP8 settings where ffmpeg has
# them (undershoot 100 %, overshoot 15 %, 1 s buffer starting half full,
# quantizer 2..56, keyframes at most 900 % of a frame's share).
common=(-deadline realtime -cpu-used 8 -lag-in-frames 0 -error-resilient 1 -auto-alt-ref 0
	-threads 1 -an)

# encode OUT W H KBPS INTERVAL MODE: INTERVAL 0 = only the first keyframe
# (kf-max-dist far beyond the clip, as a browser nobody asks); MODE q or cbr.
encode() {
	local out=$1 w=$2 h=$3 kbps=$4 every=$5 mode=$6 kf rc
	if [ "$every" = 0 ]; then
		kf=(-g 100000)
	else
		kf=(-g 100000 -force_key_frames "expr:gte(t,n_forced*$every)")
	fi
	if [ "$mode" = q ]; then
		rc=(-b:v 20M -qmin "$Q" -qmax "$Q")
	else
		rc=(-b:v "${kbps}k" -minrate "${kbps}k" -maxrate "${kbps}k" -bufsize "${kbps}k"
			-rc_init_occupancy "$((kbps / 2))k" -undershoot-pct 100 -overshoot-pct 15
			-qmin 2 -qmax 56 -max-intra-rate 900)
	fi
	ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$(source_graph "$w" "$h")" \
		-c:v libvpx "${common[@]}" "${kf[@]}" "${rc[@]}" -y "$out"
}

psnr() { # average PSNR (all planes) of $1 against the source
	ffmpeg -nostdin -hide_banner -loglevel info -i "$1" -f lavfi -i "$(source_graph "$2" "$3")" \
		-lavfi '[0:v][1:v]psnr' -f null - 2>&1 |
		sed -n 's/.*PSNR.* average:\([0-9.inf]*\).*/\1/p' | tail -1
}

keyframes() { # keyframes in $1
	ffprobe -v error -select_streams v -show_entries packet=flags -of csv=p=0 "$1" | grep -c K
}

echo "| size, CBR target | keyframe every | keyframes | fixed q=$Q: bytes | vs none | CBR: kbit/s | CBR: PSNR dB | vs none |"
echo "|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
	wh=${size%%:*} kbps=${size##*:}
	w=${wh%%x*} h=${wh##*x}
	base_bytes="" base_psnr=""
	for every in 0 $INTERVALS; do
		encode "$work/q.webm" "$w" "$h" "$kbps" "$every" q
		encode "$work/cbr.webm" "$w" "$h" "$kbps" "$every" cbr
		bytes=$(stat -c %s "$work/q.webm")
		n=$(keyframes "$work/q.webm")
		cbr_kbps=$(($(stat -c %s "$work/cbr.webm") * 8 / SECONDS_RUN / 1000))
		p=$(psnr "$work/cbr.webm" "$w" "$h")
		if [ "$every" = 0 ]; then
			base_bytes=$bytes base_psnr=$p label="never (first only)"
			dq="—" dp="—"
		else
			label="$every s"
			dq=$(awk -v a="$bytes" -v b="$base_bytes" 'BEGIN{printf "%+.1f %%", (a/b-1)*100}')
			dp=$(awk -v a="$p" -v b="$base_psnr" 'BEGIN{printf "%+.2f dB", a-b}')
		fi
		echo "| ${wh}, ${kbps} kbit/s | $label | $n | $bytes | $dq | $cbr_kbps | $p | $dp |"
	done
done
