// Media analysis for the composition tests: what is in a composed file,
// measured from the decoded pictures and sound rather than from what the
// composer says about it. Decoding is done by the ffmpeg/ffprobe CLIs; the
// measurements (flash and beep onsets, colour regions, tones by Goertzel,
// MP4 box order) are plain JavaScript over the decoded samples.
//
// Time base: every function decodes with -copyts, so times are the file's
// own presentation times (seconds), the same for audio and video. Audio PCM
// is padded/trimmed at its start so that sample i is at time i / rate.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

/** Runs a command; resolves {code, stdout (Buffer), stderr (string)}. */
function exec(cmd, args, { timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let stderr = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr });
    });
  });
}

// ---- container / stream facts ---------------------------------------------------

/** ffprobe -show_format -show_streams as an object {format, streams}. */
export async function probe(file) {
  const r = await exec('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]);
  if (r.code !== 0) throw new Error(`ffprobe ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString('utf8'));
}

/** The first stream of a kind ('video' | 'audio') in a probe result, or undefined. */
export function streamOf(info, kind) {
  return info.streams.find((s) => s.codec_type === kind);
}

/**
 * Decodes every stream to nothing (`ffmpeg -v error -i FILE -f null -`) and
 * returns what ffmpeg printed: the empty string for a clean file.
 */
export async function decodeErrors(file) {
  const r = await exec('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0', '-f', 'null', '-']);
  const text = r.stderr.trim();
  return r.code === 0 ? text : `${text}\n(ffmpeg exited ${r.code})`.trim();
}

/** Presentation times (s) of every packet of the first stream of a kind. */
export async function packetTimes(file, kind) {
  const sel = kind === 'video' ? 'v:0' : 'a:0';
  const r = await exec('ffprobe', ['-v', 'error', '-select_streams', sel, '-show_entries', 'packet=pts_time,duration_time',
    '-of', 'csv=p=0', file]);
  if (r.code !== 0) throw new Error(`ffprobe packets ${file}: ${r.stderr}`);
  return r.stdout.toString('utf8').split('\n').filter(Boolean)
    .map((l) => { const [t, d] = l.split(','); return { t: Number(t), d: Number(d) }; })
    .filter((p) => Number.isFinite(p.t));
}

/** SHA-256 (hex) of a file. */
export function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * The top-level boxes of an ISO BMFF (MP4) file, in file order:
 * [{type, offset, size}] (64-bit sizes and "to end of file" handled).
 */
export function mp4Boxes(file) {
  const buf = fs.readFileSync(file);
  const boxes = [];
  for (let off = 0; off + 8 <= buf.length;) {
    let size = buf.readUInt32BE(off);
    const type = buf.subarray(off + 4, off + 8).toString('latin1');
    if (size === 1) {
      if (off + 16 > buf.length) break;
      size = Number(buf.readBigUInt64BE(off + 8));
    } else if (size === 0) {
      size = buf.length - off;
    }
    if (size < 8) throw new Error(`${file}: bad box size ${size} at ${off}`);
    boxes.push({ type, offset: off, size });
    off += size;
  }
  return boxes;
}

// ---- decoded pictures ---------------------------------------------------------------

/**
 * Decodes the first video stream into raw frames scaled to width x height
 * (area average). pixFmt 'rgb24' (3 bytes/pixel) or 'gray' (1). Every decoded
 * frame, no duplication or dropping. Resolves [{t, data}] in time order.
 */
export async function videoFrames(file, { width = 160, height = 90, pixFmt = 'rgb24' } = {}) {
  const bpp = pixFmt === 'gray' ? 1 : 3;
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'info', '-copyts', '-i', file, '-map', '0:v:0',
    '-vf', `showinfo,scale=${width}:${height}:flags=area,format=${pixFmt}`,
    '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', pixFmt, '-'];
  const r = await exec('ffmpeg', args);
  if (r.code !== 0) throw new Error(`decoding ${file}: ${r.stderr.slice(-2000)}`);
  const times = [...r.stderr.matchAll(/\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[\d.e+-]+)/g)].map((m) => Number(m[1]));
  const size = width * height * bpp;
  const count = Math.floor(r.stdout.length / size);
  if (count !== times.length) throw new Error(`decoding ${file}: ${count} frames but ${times.length} timestamps`);
  const frames = [];
  for (let i = 0; i < count; i++) {
    frames.push({ t: times[i], width, height, pixFmt, data: r.stdout.subarray(i * size, (i + 1) * size) });
  }
  return frames;
}

/** Mean of a frame's bytes (luma for gray frames). */
export function meanLevel(frame) {
  let s = 0;
  for (let i = 0; i < frame.data.length; i++) s += frame.data[i];
  return s / frame.data.length;
}

/**
 * Flash onsets: times of the frames whose mean level rises across the
 * midpoint between the darkest and the brightest frame, from a frame below
 * it, and falls back below it within maxSeconds (a flash, not a change of
 * picture such as a re-flowing grid). Needs a clear contrast (brightest -
 * darkest >= minContrast). Over the whole frame: for a source alone on its
 * picture; in a composed grid measure within the peer's tile
 * (flashOnsetsInTile).
 */
export function flashOnsets(frames, opts = {}) {
  return flashOnsetsOfLevels(frames, frames.map(meanLevel), opts);
}

/**
 * flashOnsets within one peer's picture of a composed grid: tileOf(frame)
 * gives the rectangle {x, y, w, h} (the frame's pixels) where that peer's
 * picture is in this frame, or null where it cannot be told or the peer is
 * not shown (such frames neither set the threshold nor count as lit). The
 * threshold then follows the peer's own picture, whose level is the same
 * in a small tile and a large one: a re-flow of the grid (another peer
 * leaving and this one's tile growing) cannot hide the flashes shown small.
 */
export function flashOnsetsInTile(frames, tileOf, opts = {}) {
  return flashOnsetsOfLevels(frames, frames.map((f) => {
    const r = tileOf(f);
    return r ? meanLevelIn(f, r) : null;
  }), opts);
}

/** flashOnsets over levels already measured (null: not measured in that frame). */
function flashOnsetsOfLevels(frames, levels, { minContrast = 30, maxSeconds = 0.15 } = {}) {
  const known = levels.filter((x) => x !== null);
  if (known.length === 0) return [];
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  if (!(hi - lo >= minContrast)) return [];
  const mid = (lo + hi) / 2;
  const lit = (i) => levels[i] !== null && levels[i] >= mid;
  const out = [];
  for (let i = 1; i < levels.length; i++) {
    if (!(lit(i) && !lit(i - 1))) continue;
    let k = i;
    while (k < levels.length && lit(k)) k++;
    if (k < levels.length && frames[k].t - frames[i].t <= maxSeconds) out.push(frames[i].t);
  }
  return out;
}

/**
 * The composer's grid (vtp__layout in src/compose/video.c) for n tiles on a
 * w x h canvas: [{x, y, w, h}] in join order; rows of ceil(sqrt(n))
 * columns, a short last row centred, even sizes and offsets.
 */
export function gridTiles(n, w, h) {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const tw = Math.floor(w / cols) & ~1;
  const th = Math.floor(h / rows) & ~1;
  const tiles = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / cols);
    const col = i % cols;
    const inRow = row === rows - 1 ? n - row * cols : cols;
    const x0 = Math.floor((w - inRow * tw) / 2) & ~1;
    const y0 = Math.floor((h - rows * th) / 2) & ~1;
    tiles.push({ x: x0 + col * tw, y: y0 + row * th, w: tw, h: th });
  }
  return tiles;
}

/** Where a picture of the given aspect (w / h) lands in a tile: as large as fits, centred. */
export function fitInTile(tile, aspect) {
  const w = Math.min(tile.w, tile.h * aspect);
  const h = Math.min(tile.h, tile.w / aspect);
  return { x: tile.x + (tile.w - w) / 2, y: tile.y + (tile.h - h) / 2, w, h };
}

/** A rectangle of a w x h canvas in the pixels of a frame decoded from it (scaled down). */
export function rectInFrame(rect, frame, w, h) {
  const sx = frame.width / w;
  const sy = frame.height / h;
  return { x: rect.x * sx, y: rect.y * sy, w: rect.w * sx, h: rect.h * sy };
}

/**
 * Mean level of a gray frame inside rect (frame pixels), whole pixels only
 * and `inset` pixels in from each edge (the edge pixels of a scaled-down
 * frame blend with the neighbour).
 */
export function meanLevelIn(frame, rect, { inset = 1 } = {}) {
  const x0 = Math.max(0, Math.ceil(rect.x) + inset);
  const y0 = Math.max(0, Math.ceil(rect.y) + inset);
  const x1 = Math.min(frame.width, Math.floor(rect.x + rect.w) - inset);
  const y1 = Math.min(frame.height, Math.floor(rect.y + rect.h) - inset);
  if (frame.pixFmt !== 'gray' || x1 <= x0 || y1 <= y0) throw new Error(`meanLevelIn: ${JSON.stringify(rect)} of a ${frame.width}x${frame.height} ${frame.pixFmt} frame`);
  let s = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += frame.data[y * frame.width + x];
  return s / ((x1 - x0) * (y1 - y0));
}

/** Number of distinct pictures in a frame list (exact byte equality of the scaled frames). */
export function distinctPictures(frames) {
  const seen = new Set();
  for (const f of frames) seen.add(crypto.createHash('sha1').update(f.data).digest('hex'));
  return seen.size;
}

/**
 * Where each palette colour appears in an rgb24 frame. palette:
 * {name: [r, g, b]}; a pixel belongs to the nearest palette colour within
 * `tolerance` (Euclidean RGB distance), else to none. Returns
 * {name: {count, fraction, bbox: {x0, y0, x1, y1} | null}} with bbox in
 * the frame's pixels (inclusive), and bboxes also given as fractions of the
 * frame (fx0, fy0, fx1, fy1, where 1 is the right/bottom edge).
 */
export function colourRegions(frame, palette, { tolerance = 70 } = {}) {
  const names = Object.keys(palette);
  const cols = names.map((n) => palette[n]);
  const res = {};
  for (const n of names) res[n] = { count: 0, bbox: null };
  const tol2 = tolerance * tolerance;
  const { width, height, data } = frame;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      let best = -1;
      let bestD = tol2;
      for (let k = 0; k < cols.length; k++) {
        const dr = data[o] - cols[k][0];
        const dg = data[o + 1] - cols[k][1];
        const db = data[o + 2] - cols[k][2];
        const d = dr * dr + dg * dg + db * db;
        if (d <= bestD) { bestD = d; best = k; }
      }
      if (best < 0) continue;
      const r = res[names[best]];
      r.count++;
      if (!r.bbox) r.bbox = { x0: x, y0: y, x1: x, y1: y };
      else {
        if (x < r.bbox.x0) r.bbox.x0 = x;
        if (x > r.bbox.x1) r.bbox.x1 = x;
        if (y < r.bbox.y0) r.bbox.y0 = y;
        if (y > r.bbox.y1) r.bbox.y1 = y;
      }
    }
  }
  for (const n of names) {
    const r = res[n];
    r.fraction = r.count / (width * height);
    if (r.bbox) {
      r.bbox.fx0 = r.bbox.x0 / width;
      r.bbox.fy0 = r.bbox.y0 / height;
      r.bbox.fx1 = (r.bbox.x1 + 1) / width;
      r.bbox.fy1 = (r.bbox.y1 + 1) / height;
    }
  }
  return res;
}

/**
 * The pixels of an rgb24 frame for which pred(r, g, b) holds (a picture
 * that is no single colour, e.g. a family of greens): {count, fraction,
 * bbox} as colourRegions gives them.
 */
export function pixelRegion(frame, pred) {
  const { width, height, data } = frame;
  let count = 0;
  let bbox = null;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (!pred(data[o], data[o + 1], data[o + 2])) continue;
      count++;
      if (!bbox) bbox = { x0: x, y0: y, x1: x, y1: y };
      else {
        if (x < bbox.x0) bbox.x0 = x;
        if (x > bbox.x1) bbox.x1 = x;
        if (y < bbox.y0) bbox.y0 = y;
        if (y > bbox.y1) bbox.y1 = y;
      }
    }
  }
  if (bbox) Object.assign(bbox, { fx0: bbox.x0 / width, fy0: bbox.y0 / height, fx1: (bbox.x1 + 1) / width, fy1: (bbox.y1 + 1) / height });
  return { count, fraction: count / (width * height), bbox };
}

/** The frame nearest to time t (frames sorted by t). */
export function frameAt(frames, t) {
  let best = null;
  for (const f of frames) if (!best || Math.abs(f.t - t) < Math.abs(best.t - t)) best = f;
  return best;
}

/** Whether two fractional bboxes overlap by more than `slack` (fraction of the frame) in both axes. */
export function bboxesOverlap(a, b, slack = 0.02) {
  const ox = Math.min(a.fx1, b.fx1) - Math.max(a.fx0, b.fx0);
  const oy = Math.min(a.fy1, b.fy1) - Math.max(a.fy0, b.fy0);
  return ox > slack && oy > slack;
}

// ---- decoded sound ---------------------------------------------------------------------

/**
 * Decodes the first audio stream to mono float samples at `rate`, sample i
 * at file time i / rate (the start is padded with silence or trimmed).
 * Resolves {rate, samples: Float32Array}.
 */
export async function audioPcm(file, { rate = 48000 } = {}) {
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-copyts', '-i', file, '-map', '0:a:0',
    '-af', `aresample=${rate}:async=1:first_pts=0`, '-ac', '1', '-f', 's16le', '-acodec', 'pcm_s16le', '-'];
  const r = await exec('ffmpeg', args);
  if (r.code !== 0) throw new Error(`decoding audio of ${file}: ${r.stderr.slice(-2000)}`);
  const n = Math.floor(r.stdout.length / 2);
  const samples = new Float32Array(n);
  for (let i = 0; i < n; i++) samples[i] = r.stdout.readInt16LE(2 * i) / 32768;
  return { rate, samples };
}

/**
 * Beep onsets: RMS over 1 ms blocks; an onset is the first block above
 * `level` x the loudest block after at least `quietMs` below it. Returns
 * times in seconds.
 */
export function beepOnsets({ rate, samples }, { level = 0.25, quietMs = 200 } = {}) {
  const block = Math.round(rate / 1000);
  const rms = [];
  for (let o = 0; o + block <= samples.length; o += block) {
    let s = 0;
    for (let i = o; i < o + block; i++) s += samples[i] * samples[i];
    rms.push(Math.sqrt(s / block));
  }
  const peak = Math.max(0, ...rms);
  if (peak < 1e-3) return [];
  const thr = peak * level;
  const out = [];
  let quiet = quietMs; // the start counts as quiet
  for (let i = 0; i < rms.length; i++) {
    if (rms[i] >= thr) {
      if (quiet >= quietMs) out.push((i * block) / rate);
      quiet = 0;
    } else {
      quiet++;
    }
  }
  return out;
}

/**
 * Pairs every flash with the nearest beep within maxSeconds; returns
 * [{video, audio, offsetMs}] with offsetMs = (audio - video) * 1000
 * (positive: the sound comes late).
 */
export function pairOnsets(videoTimes, audioTimes, { maxSeconds = 0.4 } = {}) {
  const pairs = [];
  for (const v of videoTimes) {
    let best = null;
    for (const a of audioTimes) if (best === null || Math.abs(a - v) < Math.abs(best - v)) best = a;
    if (best !== null && Math.abs(best - v) <= maxSeconds) pairs.push({ video: v, audio: best, offsetMs: (best - v) * 1000 });
  }
  return pairs;
}

/**
 * Amplitude of a sinusoid at `freq` in samples[start, start + n) by the
 * Goertzel algorithm over a Hann window (a full-scale sine gives ~1.0).
 */
export function goertzel(samples, start, n, freq, rate) {
  const w = (2 * Math.PI * freq) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const win = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    wsum += win;
    const s0 = win * samples[start + i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / wsum;
}

/**
 * Tone amplitudes per window: [{t (window centre), amps: {freq: amplitude}}]
 * for consecutive windows of windowSeconds.
 */
export function toneTrack({ rate, samples }, freqs, { windowSeconds = 0.25 } = {}) {
  const n = Math.round(windowSeconds * rate);
  const out = [];
  for (let o = 0; o + n <= samples.length; o += n) {
    const amps = {};
    for (const f of freqs) amps[f] = goertzel(samples, o, n, f, rate);
    out.push({ t: (o + n / 2) / rate, amps });
  }
  return out;
}

// ---- who is shown and heard when ----------------------------------------------------------

/**
 * Checks a composed recording against when each peer was present.
 *   frames:  rgb24 frames (videoFrames)
 *   pcm:     decoded audio (audioPcm)
 *   palette: {name: [r, g, b]}  each peer's solid colour
 *   tones:   {name: freq}       each peer's sine
 *   spans:   [{name, from, to}] seconds each peer was sending, relative to
 *            the first peer's first packet (spans[0].from = 0)
 * The output's clock is tied to the senders' by the first frame showing the
 * first peer's colour (origin). Then, every `step` seconds (video) and every
 * 250 ms window (audio): a peer's tile and tone must be there from
 * from + margin to to - margin, and absent before from - margin and after
 * to + margin. Tiles must not overlap and must follow the grid for their
 * number: 1 = full height (4:3 pillarboxed), 2 = side by side each in half
 * the width (so 4:3 sources, as the tests send, are 0.5 wide), 3-4 = 2x2.
 * Returns {problems: [text], origin, tiles: text, heard: text, peaks}.
 */
export function presenceCheck({ frames, pcm, palette, tones, spans, margin = 0.5, step = 0.25, minFraction = 0.02 }) {
  const names = Object.keys(palette);
  const problems = [];
  const regs = frames.map((f) => colourRegions(f, palette));
  const shownIn = (reg, n) => reg[n].fraction >= minFraction;
  const firstIdx = regs.findIndex((reg) => shownIn(reg, spans[0].name));
  if (firstIdx < 0) return { problems: [`the first peer (${spans[0].name}) never appears`], origin: null, tiles: '', heard: '', peaks: {} };
  const origin = frames[firstIdx].t;
  const expect = (n, t) => {
    const s = spans.find((x) => x.name === n);
    const rel = t - origin;
    if (rel >= s.from + margin && rel <= s.to - margin) return true;
    if (rel < s.from - margin || rel > s.to + margin) return false;
    return null;
  };
  const at = (t) => `t=${(t - origin).toFixed(2)} s`;
  const tiles = [];
  for (let tt = frames[0].t; tt <= frames[frames.length - 1].t + 1e-9; tt += step) {
    let k = 0;
    for (let i = 1; i < frames.length; i++) if (Math.abs(frames[i].t - tt) < Math.abs(frames[k].t - tt)) k = i;
    const { t } = frames[k];
    const reg = regs[k];
    const present = names.filter((n) => shownIn(reg, n));
    tiles.push(`${(t - origin).toFixed(2)}:${present.map((n) => n[0]).join('') || '-'}`);
    let certain = true;
    for (const n of names) {
      const e = expect(n, t);
      if (e === null) { certain = false; continue; }
      if (e !== present.includes(n)) problems.push(`${at(t)}: ${n} tile ${e ? 'missing' : 'shown while the peer is not there'}`);
    }
    if (!certain || present.length === 0) continue;
    const boxes = present.map((n) => ({ n, b: reg[n].bbox }));
    const lay = (cond, what) => {
      if (!cond) problems.push(`${at(t)}, ${present.length} tiles: ${what} (${boxes.map((q) => `${q.n} x ${q.b.fx0.toFixed(2)}-${q.b.fx1.toFixed(2)} y ${q.b.fy0.toFixed(2)}-${q.b.fy1.toFixed(2)}`).join('; ')})`);
    };
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) lay(!bboxesOverlap(boxes[i].b, boxes[j].b), `${boxes[i].n} and ${boxes[j].n} overlap`);
    }
    if (present.length === 1) {
      const { b } = boxes[0];
      lay(b.fy1 - b.fy0 >= 0.9 && b.fx1 - b.fx0 >= 0.6, 'one peer should fill the frame (aspect kept)');
    } else if (present.length === 2) {
      const [p, q] = boxes.map((z) => z.b).sort((m, o) => m.fx0 - o.fx0);
      lay(p.fx1 <= 0.52 && q.fx0 >= 0.48, 'two peers should be side by side');
      // each in half the frame, not in a quarter (4:3 in 640x720 is 640 wide; in a 2x2 cell 480)
      lay(p.fx1 - p.fx0 >= 0.45 && q.fx1 - q.fx0 >= 0.45, 'two peers should each have half the frame (the grid re-flows)');
    } else if (present.length <= 4) {
      lay(boxes.every((z) => z.b.fx1 - z.b.fx0 <= 0.52 && z.b.fy1 - z.b.fy0 <= 0.52), `${present.length} peers should each have a quarter (2x2)`);
      lay(boxes.some((z) => z.b.fy1 <= 0.52) && boxes.some((z) => z.b.fy0 >= 0.48), 'the 2x2 grid should have two rows');
    }
  }
  const freqs = names.map((n) => tones[n]);
  const windows = toneTrack(pcm, freqs);
  const peaks = {};
  for (const f of freqs) peaks[f] = Math.max(0, ...windows.map((w) => w.amps[f]));
  const heard = [];
  for (const w of windows) {
    const on = [];
    for (const n of names) {
      const f = tones[n];
      const amp = w.amps[f];
      const loud = amp >= 0.25 * peaks[f] && amp >= 0.01;
      if (loud) on.push(n[0]);
      const e = expect(n, w.t);
      if (e === true && !loud) problems.push(`${at(w.t)}: ${f} Hz (${n}) not heard (${amp.toFixed(4)}, peak ${peaks[f].toFixed(4)})`);
      if (e === false && amp >= Math.max(0.1 * peaks[f], 0.003)) problems.push(`${at(w.t)}: ${f} Hz (${n}) heard while the peer is not there (${amp.toFixed(4)})`);
    }
    heard.push(`${(w.t - origin).toFixed(2)}:${on.join('') || '-'}`);
  }
  return { problems, origin, tiles: tiles.join(' '), heard: heard.join(' '), peaks };
}

/**
 * A stream that changes from picture `first` (a solid colour, 16:9, filling
 * the frame) to picture `second` (a solid colour, 4:3, shown at full height
 * with its aspect kept: 0.75 of a 16:9 frame's width). Every frame away from
 * the change (+-skip s) must show the right one, whole: no black, green or
 * stretched frames. Returns {change (s) | null, problems: [text]}.
 */
export function pictureChangeCheck(frames, { first, second, skip = 0.2 }) {
  const pal = { first, second };
  const seq = frames.map((f) => ({ t: f.t, reg: colourRegions(f, pal) }));
  const at = seq.find((x) => x.reg.second.fraction >= 0.3 && x.reg.second.fraction > x.reg.first.fraction);
  if (!at) return { change: null, problems: ['the second picture never appears'] };
  const problems = [];
  for (const x of seq) {
    if (Math.abs(x.t - at.t) < skip) continue;
    if (x.t < at.t) {
      if (!(x.reg.first.fraction >= 0.9)) problems.push(`${x.t.toFixed(2)} s: the first (16:9) picture should fill the frame, covers ${x.reg.first.fraction.toFixed(2)}`);
    } else {
      const r = x.reg.second;
      const b = r.bbox;
      if (!(r.fraction >= 0.65 && r.fraction <= 0.8 && b && b.fy1 - b.fy0 >= 0.95 && Math.abs(b.fx1 - b.fx0 - 0.75) <= 0.04)) {
        problems.push(`${x.t.toFixed(2)} s: the second (4:3) picture should be at full height, 0.75 wide (covers ${r.fraction.toFixed(2)}, box ${b ? `x ${b.fx0.toFixed(2)}-${b.fx1.toFixed(2)} y ${b.fy0.toFixed(2)}-${b.fy1.toFixed(2)}` : 'none'})`);
      }
    }
  }
  return { change: at.t, problems };
}
