#!/usr/bin/env python3
"""Helpers for bench/compose.sh (composition benchmark).

  compose-util.py api URL TOKEN start ROOM           -> recording id
  compose-util.py api URL TOKEN track REC PEER NAME KIND CODEC PT RATE [SOURCE [ROLE]]
                                                     -> UDP port (SOURCE: camera, microphone,
                                                        screen, screen_audio; "" for none)
  compose-util.py api URL TOKEN stop REC             -> "tracks packets lost"
  compose-util.py captures BIN DIR                   -> one line: tracks, packets, missing, media s
  compose-util.py measure OUT -- CMD...              -> runs CMD, writes the same fields as
                                                        /usr/bin/time -v (fallback when the
                                                        `time` package is not installed;
                                                        peak RSS sampled every 10 ms)
  compose-util.py timev FILE                         -> "wall user sys maxrss_kib" from time -v
  compose-util.py probe FILE                         -> "duration codecs WxH fps kbps"
  compose-util.py x264opts FILE...                   -> the x264 options string in the stream
                                                        (the first of the files that has one)
  compose-util.py hls DIR                            -> "segments seconds longest_s kbps codecs"
                                                        of DIR/index.m3u8 (sizes: init + segments)
  compose-util.py image FILE                         -> WxH of a picture
  compose-util.py seq CMD1... --then CMD2...         -> runs CMD1, then CMD2 if it succeeded
                                                        (two commands under one timer)
  compose-util.py srcopts COMPOSE_C VP8OPT... -- X264OPT...
                                                     -> exit 1 and say so when compose.c's
                                                        av_dict_set() encoder options differ
  compose-util.py settings COMPOSE_SH                -> compose.sh's settings block (between
                                                        its first and third "# ===" rulers) and
                                                        its grid_filter(), for another script
                                                        to eval: one set of encoder settings
  compose-util.py table RESULTS                      -> the Markdown table (a row's optional
                                                        11th field names the job whose ffmpeg
                                                        row its ratios are taken against)
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request


def api(url, token, cmd, args):
    def call(method, path, body=None):
        req = urllib.request.Request(
            url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    if cmd == "start":
        print(call("POST", "/recordings/start", {"roomId": args[0], "title": "compose bench"})["recordingId"])
    elif cmd == "track":
        rec, peer, name, kind, codec, pt, rate = args[:7]
        source, role = (args[7:] + ["", ""])[:2]
        body = {"peerId": peer, "fullName": name, "kind": kind, "codec": codec,
                "payloadType": int(pt), "clockRate": int(rate)}
        if source:
            body["source"] = source
        if role:
            body["role"] = role
        print(call("POST", "/recordings/%s/tracks" % rec, body)["port"])
    elif cmd == "stop":
        t = call("POST", "/recordings/%s/stop" % args[0]).get("tracks") or []
        print(len(t), sum(x.get("packets", 0) for x in t), sum(x.get("lost", 0) for x in t))
    else:
        sys.exit("compose-util: unknown api command " + cmd)


def captures(binary, d):
    n = pkts = missing = 0
    media = 0.0
    for f in sorted(os.listdir(d)):
        if not f.endswith(".vtpcap"):
            continue
        s = json.loads(subprocess.check_output([binary, "inspect", "--json", os.path.join(d, f)]))
        n += 1
        pkts += s["rtpPackets"]
        missing += s["missing"]
        if s["meta"].get("kind") == "video":
            media = max(media, s["mediaSeconds"])
        if s["end"] != "clean":
            sys.exit("compose-util: %s ends %s" % (f, s["end"]))
    print(n, pkts, missing, "%.1f" % media)


def descendants(pid):
    """pid and every process below it (from /proc/*/stat's parent field)."""
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(e))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def measure(out, cmd):
    """CPU from wait4(); peak RSS from VmHWM, the largest of the child's and
    its descendants' (as ru_maxrss would give for a tree), sampled every
    10 ms (ru_maxrss would count this Python process, which the child is
    forked from, as the child's own peak)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd)
    hwm = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        for q in descendants(p.pid):
            try:
                with open("/proc/%d/status" % q) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.01)
    wall = time.monotonic() - t0
    p.returncode = code = os.waitstatus_to_exitcode(status)
    m, s = divmod(wall, 60)
    with open(out, "w") as f:
        f.write("\tUser time (seconds): %.2f\n" % ru.ru_utime)
        f.write("\tSystem time (seconds): %.2f\n" % ru.ru_stime)
        f.write("\tElapsed (wall clock) time (h:mm:ss or m:ss): %d:%05.2f\n" % (m, s))
        f.write("\tMaximum resident set size (kbytes): %d\n" % hwm)
        f.write("\tExit status: %d\n" % code)
    sys.exit(code)


def timev(path):
    text = open(path).read()
    def num(label):
        m = re.search(re.escape(label) + r"\s*:?\s*([0-9.:]+)", text)
        if not m:
            sys.exit("compose-util: no '%s' in %s" % (label, path))
        return m.group(1)
    wall = 0.0
    for part in num("Elapsed (wall clock) time (h:mm:ss or m:ss):").split(":"):
        wall = wall * 60 + float(part)
    print("%.2f %s %s %s" % (wall, num("User time (seconds):"), num("System time (seconds):"),
                             num("Maximum resident set size (kbytes):")))


def probe(path):
    j = json.loads(subprocess.check_output(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration,bit_rate:stream=codec_type,codec_name,width,height,avg_frame_rate,sample_rate,channels",
         "-of", "json", path]))
    codecs, size, fps, audio = [], "-", "-", "-"
    for s in j.get("streams", []):
        codecs.append(s["codec_name"])
        if s["codec_type"] == "video":
            size = "%sx%s" % (s["width"], s["height"])
            n, d = s.get("avg_frame_rate", "0/1").split("/")
            fps = "%.0f" % (float(n) / float(d)) if float(d) else "-"
        elif s["codec_type"] == "audio":
            audio = "%sHz/%sch" % (s.get("sample_rate"), s.get("channels"))
    fmt = j["format"]
    kbps = float(fmt.get("bit_rate", 0)) / 1000
    print("%.2f %s %s %s %s %.0f" % (float(fmt["duration"]), "/".join(codecs), size, fps, audio, kbps))


def x264opts(paths):
    for path in paths:
        data = open(path, "rb").read()
        m = re.search(rb"x264 - core \d+[^\x00]*?options: ([^\x00]*)", data)
        if m:
            print(m.group(1).decode("ascii", "replace").strip())
            return
    print("")


def hls(d):
    """A VOD playlist's segment count, total and longest EXTINF, bitrate
    (init + segment bytes over the total) and the codecs ffprobe finds."""
    durs, size = [], 0
    for line in open(os.path.join(d, "index.m3u8")):
        line = line.strip()
        if line.startswith("#EXTINF:"):
            durs.append(float(line[8:].split(",")[0]))
        elif line.startswith("#EXT-X-MAP:"):
            m = re.search(r'URI="([^"]+)"', line)
            if m:
                size += os.path.getsize(os.path.join(d, m.group(1)))
        elif line and not line.startswith("#"):
            size += os.path.getsize(os.path.join(d, line))
    j = json.loads(subprocess.check_output(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
         os.path.join(d, "index.m3u8")]))
    codecs = "/".join(s["codec_name"] for s in j.get("streams", []))
    total = sum(durs)
    print("%d %.1f %.1f %.0f %s" % (len(durs), total, max(durs) if durs else 0,
                                    size * 8 / 1000 / total if total else 0, codecs or "-"))


def image(path):
    j = json.loads(subprocess.check_output(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "json", path]))
    s = j["streams"][0]
    print("%sx%s" % (s["width"], s["height"]))


def seq(first, second):
    code = subprocess.call(first)
    sys.exit(code if code else subprocess.call(second))


def srcopts(path, vp8, x264):
    """compose.c sets libvpx options in one branch and libx264's in the
    other: every av_dict_set(&d, "name", ... "value") there, minus the
    muxer's, is compared with this script's name=value lists."""
    text = open(path).read()
    macros = dict(re.findall(r'^\s*#\s*define\s+(\w+)\s+"([^"]*)"', text, re.M))
    found = {}
    for m in re.finditer(r'av_dict_set\(\s*&\w+\s*,\s*"([\w-]+)"\s*,\s*([^;]*?)\s*,\s*\d+\s*\)\s*;', text):
        name, value = m.group(1), m.group(2)
        if name == "movflags":
            continue
        lit = re.findall(r'"([^"]*)"', value)  # a literal, or the last one of a ?: expression
        if lit:
            found[name] = lit[-1]
        elif value in macros:
            found[name] = macros[value]
        else:
            found[name] = "(set at run time: %s)" % value
    want = dict(kv.split("=", 1) for kv in vp8 + x264)
    bad = []
    for k, v in sorted(want.items()):
        if found.get(k) != v:
            bad.append("%s: compose.c %s, script %s" % (k, found.get(k, "(not set)"), v))
    for k, v in sorted(found.items()):
        if k not in want:
            bad.append("%s: compose.c %s, script (not set)" % (k, v))
    if bad:
        print("; ".join(bad))
        sys.exit(1)


def settings(path):
    """The shell text of compose.sh's settings block and grid_filter(), so
    that bench/class.sh encodes with exactly compose.sh's options."""
    lines = open(path).read().split("\n")
    rulers = [i for i, l in enumerate(lines) if re.match(r"^# =+$", l)]
    start = [i for i, l in enumerate(lines) if l.startswith("grid_filter() {")]
    if len(rulers) < 3 or not start:
        sys.exit("compose-util: no settings block (3 '# ===' rulers) or grid_filter() in " + path)
    end = next((i for i in range(start[0], len(lines)) if lines[i] == "}"), None)
    if end is None:
        sys.exit("compose-util: grid_filter() in %s does not end" % path)
    print("\n".join(lines[rulers[0]:rulers[2] + 1] + lines[start[0]:end + 1]))


def table(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    # job tool media wall user sys rss_kib kbps out_seconds note
    by_job = {}
    for r in rows:
        by_job.setdefault(r[0], {})[r[1]] = r
    print("| job | composer | × real time | wall (s) | CPU (s) | peak RSS (MiB) | output (s, kb/s) "
          "| speed, ours/ffmpeg | CPU, ours/ffmpeg | RSS, ours/ffmpeg |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        job, tool, media, wall, user, sys_, rss, kbps, outs = r[:9]
        note = r[9] if len(r) > 9 else ""
        name = {"ours": "vtp-recorder compose", "ffmpeg": "ffmpeg CLI"}.get(tool, tool)
        if note:
            name += " " + note
        if wall == "-":
            print("| %s | %s | — | — | — | — | — | — | — | — |" % (job, name))
            continue
        media, wall, cpu, rss = float(media), float(wall), float(user) + float(sys_), int(rss) / 1024
        xrt = media / wall if wall > 0 else float("inf")
        sp = cp = rr = ""
        ref = r[10] if len(r) > 10 and r[10] else job
        other = by_job.get(ref, {}).get("ffmpeg")
        if tool == "ours" and other and other[3] != "-":
            o_xrt = float(other[2]) / float(other[3])
            o_cpu = float(other[4]) + float(other[5])
            sp = "**%.2f**%s" % (xrt / o_xrt, "" if ref == job else "†")
            cp = "%.2f" % (cpu / o_cpu)
            rr = "%.2f" % (rss / (int(other[6]) / 1024))
        out = "—" if outs == "-" else "%.1f, %s" % (float(outs), kbps)
        print("| %s | %s | %s | %.2f | %.1f | %.0f | %s | %s | %s | %s |" % (
            job, name, ("%.1f" % xrt), wall, cpu, rss, out, sp, cp, rr))


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "api":
        api(a[1], a[2], a[3], a[4:])
    elif a[0] == "captures":
        captures(a[1], a[2])
    elif a[0] == "measure":
        measure(a[1], a[3:] if a[2] == "--" else a[2:])
    elif a[0] == "timev":
        timev(a[1])
    elif a[0] == "probe":
        probe(a[1])
    elif a[0] == "x264opts":
        x264opts(a[1:])
    elif a[0] == "hls":
        hls(a[1])
    elif a[0] == "image":
        image(a[1])
    elif a[0] == "seq":
        rest = a[1:]
        if "--then" not in rest:
            sys.exit("compose-util: seq CMD1... --then CMD2...")
        cut = rest.index("--then")
        seq(rest[:cut], rest[cut + 1:])
    elif a[0] == "srcopts":
        rest = a[2:]
        cut = rest.index("--") if "--" in rest else len(rest)
        srcopts(a[1], rest[:cut], rest[cut + 1:])
    elif a[0] == "settings":
        settings(a[1])
    elif a[0] == "table":
        table(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
