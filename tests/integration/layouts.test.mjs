// Layouts through the real path (issue 17): the real server captures plain
// RTP from ffmpeg senders (one colour per person, a tone while a person
// "speaks"), the tracks are ended over the API, and `vtp-recorder compose
// --tracks DIR --layout L` composes the capture folder. The file is then
// measured from its decoded pictures and sound (lib/analyze.mjs): in
// `speaker` the main area shows whoever speaks for 1.5 s or more within
// 2 s of their starting, and a 0.3 s burst does not take it; talk time per
// person comes out in the summary; in `presentation` a screen share covers
// at least 60 % of the frame while it is live, with the sharer beside it,
// and is gone within a second of its end; `auto` shows the share while it
// is live and the grid, names on the tiles, otherwise; `grid` never shows
// the share; `screen` shows it alone. A track's source is read from
// its capture's metadata: when the API does not take `source` yet, the
// test writes it into the capture header (a tiny patch with the header's
// CRC-32C) as the composer reads it.
// backend-independent: the media path (composition); runs on SQLite only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanupAll, sleep } from './lib/server.mjs';
import { show, makeUsers, startRec, stopAndDownload } from './lib/util.mjs';
import { run, MediaRelay, lavfiSenderArgs } from './lib/media.mjs';
import * as A from './lib/analyze.mjs';

let srv;
let u;
let scratch;

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-layouts-'));
  srv = await startServer();
  u = await makeUsers(srv, { owner: 'instructor' });
});
after(async () => {
  await cleanupAll();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const PALETTE = { red: [220, 30, 30], green: [30, 200, 30], blue: [30, 30, 220], magenta: [220, 30, 220] };
const TONES = { red: 440, green: 700, blue: 1100 };
const hex = (rgb) => `0x${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
const solid = (rgb, size = '320x240', rate = 30) => `color=c=${hex(rgb)}:s=${size}:r=${rate}`;
/** A tone of freq only inside the spans [[from, to] s]; silence elsewhere. */
const speech = (freq, spans) => spans.length === 0
  ? 'aevalsrc=0:s=48000:c=mono'
  : `aevalsrc='0.4*sin(2*PI*${freq}*t)*(${spans.map(([a, b]) => `between(t,${a},${b})`).join('+')})':s=48000:c=mono`;

// ---- captures ----------------------------------------------------------------------------------

/** CRC-32C (Castagnoli), as the capture header's check. */
function crc32c(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}

/** Adds fields to a capture's header metadata (header CRC rewritten). */
function patchMeta(file, extra) {
  const buf = fs.readFileSync(file);
  const len = buf.readUInt32LE(12);
  const meta = { ...JSON.parse(buf.subarray(16, 16 + len).toString('utf8')), ...extra };
  const mb = Buffer.from(JSON.stringify(meta));
  const head = Buffer.alloc(16 + mb.length + 4);
  buf.copy(head, 0, 0, 12);
  head.writeUInt32LE(mb.length, 12);
  mb.copy(head, 16);
  head.writeUInt32LE(crc32c(head.subarray(0, 16 + mb.length)), 16 + mb.length);
  fs.writeFileSync(file, Buffer.concat([head, buf.subarray(16 + len + 4)]));
}

function metaOf(file) {
  const buf = fs.readFileSync(file);
  return JSON.parse(buf.subarray(16, 16 + buf.readUInt32LE(12)).toString('utf8'));
}

/** The folder holding the recording's captures. */
function tracksDir(id) {
  const base = path.join(srv.dataDir, 'recordings');
  for (const room of fs.readdirSync(base)) {
    const dir = path.join(base, room, id);
    if (!fs.existsSync(dir)) continue;
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) { const f = walk(p); if (f) return f; } else if (e.name.endsWith('.vtpcap')) return d;
      }
      return null;
    };
    const found = walk(dir);
    if (found) return found;
  }
  assert.fail(`no captures of ${id} under ${base}`);
}

/**
 * Registers a track (source given when the API takes it) behind a relay;
 * returns {track, relay, source, patch} (patch: the source must be written
 * into the capture afterwards).
 */
async function addTrack(recId, { peerId, fullName, role, kind, source, codec, userId }) {
  const body = { peerId, fullName, kind, codec: kind === 'audio' ? 'opus' : codec || 'vp8', payloadType: kind === 'audio' ? 111 : 96 };
  if (role) body.role = role;
  if (userId) body.userId = userId;
  let res = await srv.api('POST', `/api/v1/recordings/${recId}/tracks`, { token: u.owner.token, body: source ? { ...body, source } : body });
  let patch = false;
  if (source && res.status === 400) {
    res = await srv.api('POST', `/api/v1/recordings/${recId}/tracks`, { token: u.owner.token, body });
    patch = true;
  }
  assert.equal(res.status, 201, `register ${peerId} ${kind}: ${show(res)}`);
  const relay = await new MediaRelay(res.json.port).start();
  return { track: res.json, relay, source, patch };
}

async function send({ seconds, video, audio }) {
  const args = lavfiSenderArgs({
    seconds,
    video: video && { source: video.source, bitrate: video.bitrate || '150k', port: video.t.relay.port, ssrc: video.ssrc, codec: video.codec },
    audio: audio && { source: audio.source, port: audio.t.relay.port, ssrc: audio.ssrc },
  });
  const r = await run('ffmpeg', args, { timeoutMs: (seconds + 60) * 1000 });
  assert.equal(r.code, 0, `sender: ${r.stderr}`);
}

async function endTrack(recId, t) {
  const r = await srv.api('DELETE', `/api/v1/recordings/${recId}/tracks/${t.track.trackId}`, { token: u.owner.token });
  assert.equal(r.status, 200, `end track: ${show(r)}`);
}

/** Writes the source into captures whose registration could not carry it. */
function fixSources(dir, tracks) {
  for (const t of tracks) {
    if (!t.source) continue;
    const file = fs.readdirSync(dir).map((f) => path.join(dir, f)).find((f) => f.endsWith('.vtpcap') && metaOf(f).trackId === t.track.trackId);
    assert.ok(file, `capture of track ${t.track.trackId}`);
    if (metaOf(file).source !== t.source) patchMeta(file, { source: t.source });
    assert.equal(metaOf(file).source, t.source);
  }
}

// Where to keep each composed folder's captures (for a look, or a benchmark), if set.
const KEEP_DIR = process.env.VTP_TEST_KEEP_DIR || '';

async function compose(dir, out, extra) {
  if (KEEP_DIR) fs.cpSync(dir, path.join(KEEP_DIR, path.basename(out, '.webm')), { recursive: true });
  const r = await srv.cli(['compose', '--tracks', dir, '--output', out, '--json', ...extra], { timeoutMs: 300000 });
  assert.equal(r.code, 0, `compose ${extra.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- pictures ------------------------------------------------------------------------------------

/** Mean colour of a rgb24 frame inside a rect given in fractions of the frame. */
function meanRgb(f, { x0, y0, x1, y1 }) {
  const s = [0, 0, 0];
  let n = 0;
  for (let y = Math.floor(y0 * f.height); y < Math.ceil(y1 * f.height); y++) {
    for (let x = Math.floor(x0 * f.width); x < Math.ceil(x1 * f.width); x++) {
      const i = (y * f.width + x) * 3;
      for (let c = 0; c < 3; c++) s[c] += f.data[i + c];
      n++;
    }
  }
  return s.map((v) => v / n);
}

/** The palette colour nearest to rgb, or null when none is within 70. */
function colourName(rgb) {
  let best = null;
  let bd = Infinity;
  for (const [name, p] of Object.entries(PALETTE)) {
    const d = Math.hypot(rgb[0] - p[0], rgb[1] - p[1], rgb[2] - p[2]);
    if (d < bd) { bd = d; best = name; }
  }
  return bd <= 70 ? best : null;
}

/** Fraction of a frame's pixels within 60 of colour rgb. */
function coverage(f, rgb) {
  let n = 0;
  for (let i = 0; i < f.data.length; i += 3) {
    if (Math.abs(f.data[i] - rgb[0]) < 60 && Math.abs(f.data[i + 1] - rgb[1]) < 60 && Math.abs(f.data[i + 2] - rgb[2]) < 60) n++;
  }
  return n / (f.data.length / 3);
}

/** Onsets and ends [{from, to}] (file seconds) of the tone freq in the file's sound. */
function toneSpans(pcm, freq) {
  const track = A.toneTrack(pcm, [freq], { windowSeconds: 0.05 });
  const peak = Math.max(...track.map((w) => w.amps[freq]));
  const spans = [];
  let cur = null;
  for (const w of track) {
    const on = w.amps[freq] > peak / 3;
    if (on && !cur) cur = { from: w.t - 0.025, to: w.t + 0.025 };
    else if (on) cur.to = w.t + 0.025;
    else if (cur) { spans.push(cur); cur = null; }
  }
  if (cur) spans.push(cur);
  return spans;
}

// ---- the tests -----------------------------------------------------------------------------------

test('compose --layout: an unknown layout is refused (exit 2, one line naming --layout)', async () => {
  const dir = fs.mkdtempSync(path.join(scratch, 'empty-'));
  for (const bad of ['gallery', 'Grid', '']) {
    const r = await srv.cli(['compose', '--tracks', dir, '--output', path.join(scratch, 'x.webm'), '--layout', bad]);
    assert.equal(r.code, 2, `--layout '${bad}': exit ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--layout/);
  }
  // a known layout goes on to the folder (empty: no media, exit 3)
  const ok = await srv.cli(['compose', '--tracks', dir, '--output', path.join(scratch, 'x.webm'), '--layout', 'speaker']);
  assert.equal(ok.code, 3, ok.stderr);
});

test('speaker: 1.5 s of speech takes the main area within 2 s, a 0.3 s burst does not; talk time per person; the same through Stop with the layout chosen at start', async (t) => {
  const r = await startRec(srv, u.owner.token, { layout: 'speaker' });
  const people = [
    { name: 'red', role: 'instructor', speaks: [] },
    { name: 'green', speaks: [[2.0, 4.0]] },
    // the burst comes after green's 3 s hold is over: only its shortness keeps it out
    { name: 'blue', speaks: [[6.5, 6.8], [8.0, 10.5]] },
  ];
  const SECONDS = 12;
  const tracks = [];
  for (const p of people) {
    const id = { peerId: `peer-${p.name}`, fullName: `Person ${p.name}`, role: p.role };
    p.video = await addTrack(r.id, { ...id, kind: 'video' });
    p.audio = await addTrack(r.id, { ...id, kind: 'audio' });
    tracks.push(p.video, p.audio);
  }
  try {
    await Promise.all(people.map((p) => send({
      seconds: SECONDS,
      video: { t: p.video, source: solid(PALETTE[p.name]) },
      audio: { t: p.audio, source: speech(TONES[p.name], p.speaks) },
    })));
    await sleep(300);
    for (const tr of tracks) await endTrack(r.id, tr);
    const dir = tracksDir(r.id);
    const file = path.join(scratch, 'speaker.webm');
    const s = await compose(dir, file, ['--layout', 'speaker', '--width', '640', '--height', '360']);
    const frames = await A.videoFrames(file);
    const pcm = await A.audioPcm(file);
    // The main area: the top 4/5, a 4:3 camera fitted in its middle.
    const main = { x0: 0.4, y0: 0.2, x1: 0.6, y1: 0.6 };
    const shown = (at) => colourName(meanRgb(A.frameAt(frames, at), main));
    const timeline = [];
    for (let x = 0; x < SECONDS; x += 0.5) timeline.push(`${x.toFixed(1)}:${shown(x)}`);
    t.diagnostic(`main area: ${timeline.join(' ')}`);
    const g = toneSpans(pcm, TONES.green);
    const b = toneSpans(pcm, TONES.blue);
    t.diagnostic(`speech in the file: green ${JSON.stringify(g)}, blue ${JSON.stringify(b)}`);
    assert.equal(g.length, 1, 'green speaks once');
    assert.equal(b.length, 2, 'blue: a burst, then a long turn');
    assert.ok(b[0].to - b[0].from < 0.5, `the burst is short: ${JSON.stringify(b[0])}`);
    assert.ok(b[0].from > g[0].from + 1.0 + 3.0, 'the burst comes after the hold that followed green taking over');
    // before anyone speaks: the instructor
    assert.equal(shown(g[0].from - 0.5), 'red', 'the instructor before anyone speaks');
    // green speaks 2 s: in the main area within 2 s of starting, and stays through blue's burst
    for (let x = g[0].from + 2.0; x < b[1].from + 0.5; x += 0.25) assert.equal(shown(x), 'green', `green in the main area at ${x.toFixed(2)} s`);
    // blue's long turn takes over within 2 s
    for (let x = b[1].from + 2.0; x < b[1].to; x += 0.25) assert.equal(shown(x), 'blue', `blue in the main area at ${x.toFixed(2)} s`);
    // talk time: green 2 s, blue 0.3 + 2.5 s, red nothing
    t.diagnostic(`talk: ${JSON.stringify(s.talk)}`);
    assert.ok(Math.abs(s.talk['peer-green'] - 2.0) <= 0.35, `green talked ${s.talk['peer-green']} s`);
    assert.ok(Math.abs(s.talk['peer-blue'] - 2.8) <= 0.5, `blue talked ${s.talk['peer-blue']} s`);
    assert.equal(s.talk['peer-red'], 0);

    // The job path: Stop, the worker composes in the layout stored at start,
    // and the participants carry the talk time.
    const stopped = await srv.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: u.owner.token });
    assert.equal(stopped.status, 200, show(stopped));
    assert.equal(stopped.json.layout, 'speaker');
    let rec;
    for (const deadline = Date.now() + 180000; ;) {
      rec = (await srv.api('GET', `/api/v1/recordings/${r.id}`, { token: u.owner.token })).json;
      if (rec.status === 'done' || rec.status === 'failed') break;
      assert.ok(Date.now() < deadline, `still ${rec.status} after 180 s`);
      await sleep(250);
    }
    assert.equal(rec.status, 'done', `composition: ${JSON.stringify(rec.error)}`);
    const parts = await srv.api('GET', `/api/v1/recordings/${r.id}/participants`, { token: u.owner.token });
    assert.equal(parts.status, 200, show(parts));
    const list = parts.json.participants || parts.json;
    const talk = Object.fromEntries(list.map((x) => [x.peerId, x.talkSeconds]));
    t.diagnostic(`talkSeconds through the job: ${JSON.stringify(talk)}`);
    assert.ok(Math.abs(talk['peer-green'] - 2.0) <= 0.35, `green talked ${talk['peer-green']} s`);
    assert.ok(Math.abs(talk['peer-blue'] - 2.8) <= 0.5, `blue talked ${talk['peer-blue']} s`);
    assert.equal(talk['peer-red'], 0);
    // composed in speaker (auto would have made a grid of three): green
    // fills the main area through her turn
    const jobFile = fs.readdirSync(path.dirname(dir)).map((f) => path.join(path.dirname(dir), f)).find((f) => /recording\.(webm|mp4)$/.test(f));
    assert.ok(jobFile, `the job's file beside ${dir}`);
    const jf = await A.videoFrames(jobFile);
    const jshown = (at) => colourName(meanRgb(A.frameAt(jf, at), main));
    for (let x = g[0].from + 2.0; x < b[1].from + 0.5; x += 0.5) assert.equal(jshown(x), 'green', `the job's file: green in the main area at ${x.toFixed(2)} s`);
  } finally {
    for (const tr of tracks) tr.relay.close();
  }
});

test('presentation: a screen share covers ≥ 60 % of the frame while live, the sharer beside it, gone within 1 s of its end; auto: the share, else the grid with names; grid never shows it; screen shows it alone', async (t) => {
  const r = await startRec(srv, u.owner.token);
  const SECONDS = 9;
  const SHARE_AT = 2000;
  const SHARE_SECONDS = 4;
  const red = { peerId: 'peer-red', fullName: 'Person red', role: 'instructor' };
  const green = { peerId: 'peer-green', fullName: 'Person green' };
  const rv = await addTrack(r.id, { ...red, kind: 'video' });
  const ra = await addTrack(r.id, { ...red, kind: 'audio' });
  const gv = await addTrack(r.id, { ...green, kind: 'video' });
  const ga = await addTrack(r.id, { ...green, kind: 'audio' });
  const sv = await addTrack(r.id, { ...red, kind: 'video', source: 'screen' });
  const tracks = [rv, ra, gv, ga, sv];
  try {
    await Promise.all([
      send({ seconds: SECONDS, video: { t: rv, source: solid(PALETTE.red) }, audio: { t: ra, source: speech(TONES.red, []) } }),
      send({ seconds: SECONDS, video: { t: gv, source: solid(PALETTE.green), ssrc: 33333333 }, audio: { t: ga, source: speech(TONES.green, []), ssrc: 44444444 } }),
      (async () => {
        await sleep(SHARE_AT);
        await send({ seconds: SHARE_SECONDS, video: { t: sv, source: solid(PALETTE.magenta, '960x540', 15), ssrc: 55555555 } });
        await endTrack(r.id, sv);
      })(),
    ]);
    await sleep(300);
    for (const tr of [rv, ra, gv, ga]) await endTrack(r.id, tr);
    const dir = tracksDir(r.id);
    fixSources(dir, tracks);
    const file = path.join(scratch, 'presentation.webm');
    await compose(dir, file, ['--layout', 'presentation']);
    const frames = await A.videoFrames(file, { width: 320, height: 180 });
    // The share's span in file time: the file starts at the first packet of any track.
    const origin = Math.min(...tracks.map((x) => x.relay.firstRtpAt));
    const from = (sv.relay.firstRtpAt - origin) / 1000;
    const to = (sv.relay.lastRtpAt - origin) / 1000;
    const cov = frames.map((f) => ({ t: f.t, c: coverage(f, PALETTE.magenta) }));
    const sample = [];
    for (let x = 0; x < SECONDS; x += 0.5) sample.push(`${x.toFixed(1)}:${A.frameAt(frames, x) ? coverage(A.frameAt(frames, x), PALETTE.magenta).toFixed(2) : '-'}`);
    t.diagnostic(`share sent ${from.toFixed(2)}–${to.toFixed(2)} s; share's part of the frame: ${sample.join(' ')}`);
    for (const { t: at, c } of cov) {
      if (at >= from + 0.5 && at <= to - 0.2) assert.ok(c >= 0.6, `share covers ${(c * 100).toFixed(1)} % at ${at.toFixed(2)} s (live)`);
      if (at >= to + 1.0 || at < from - 0.5) assert.ok(c < 0.02, `share still ${(c * 100).toFixed(1)} % at ${at.toFixed(2)} s (not live)`);
    }
    // the sharer (nobody speaks) beside the share, at the top of the column
    // (1280x720: the share 1024x576 from y 72, the column's first tile 256x144 level with it)
    const side = { x0: 0.85, y0: 0.13, x1: 0.95, y1: 0.27 };
    const mid = (from + to) / 2;
    assert.equal(colourName(meanRgb(A.frameAt(frames, mid), side)), 'red', 'the sharer beside the share');
    // after the share: speaker layout, the instructor large
    assert.equal(colourName(meanRgb(A.frameAt(frames, to + 1.5), { x0: 0.4, y0: 0.2, x1: 0.6, y1: 0.6 })), 'red');

    // auto (no --layout): presentation while the share is live, the grid of two
    // (red and green side by side, each with its name on a label) before and after
    const autoFile = path.join(scratch, 'auto.webm');
    await compose(dir, autoFile, []);
    const af = await A.videoFrames(autoFile, { width: 320, height: 180 });
    assert.ok(coverage(A.frameAt(af, mid), PALETTE.magenta) >= 0.6, 'auto: the share while live');
    for (const at of [from - 1.0, to + 1.5]) {
      const f = A.frameAt(af, at);
      assert.ok(coverage(f, PALETTE.magenta) < 0.02, `auto: no share at ${at.toFixed(2)} s`);
      // side by side in join order (the two senders start together: either first)
      const pair = [colourName(meanRgb(f, { x0: 0.2, y0: 0.4, x1: 0.3, y1: 0.6 })), colourName(meanRgb(f, { x0: 0.7, y0: 0.4, x1: 0.8, y1: 0.6 }))];
      assert.deepEqual([...pair].sort(), ['green', 'red'], `auto: the grid of red and green at ${at.toFixed(2)} s: ${pair}`);
      // the label: light letters on the dark strip at the bottom left of each
      // picture (tiles 640x720, the 4:3 picture letterboxed in it, 640x480
      // from y 120 to 600: the label just above 600)
      for (const x0 of [0.0, 0.5]) {
        let bright = 0;
        for (let y = Math.floor(0.76 * f.height); y < Math.ceil(0.84 * f.height); y++) {
          for (let x = Math.floor(x0 * f.width); x < Math.floor((x0 + 0.15) * f.width); x++) {
            const i = (y * f.width + x) * 3;
            if (f.data[i] > 140 && f.data[i + 1] > 140 && f.data[i + 2] > 140) bright++;
          }
        }
        assert.ok(bright >= 3, `auto: a name label at the bottom left of the picture at x ${x0} (${bright} light pixels) at ${at.toFixed(2)} s`);
      }
    }

    // grid: the share is nobody's tile (never shown), red and green side by side throughout
    const gridFile = path.join(scratch, 'grid.webm');
    await compose(dir, gridFile, ['--layout', 'grid']);
    const gf = await A.videoFrames(gridFile, { width: 320, height: 180 });
    for (const f of gf) assert.ok(coverage(f, PALETTE.magenta) < 0.02, `grid: no share at ${f.t.toFixed(2)} s`);
    const gpair = [colourName(meanRgb(A.frameAt(gf, mid), { x0: 0.2, y0: 0.4, x1: 0.3, y1: 0.6 })), colourName(meanRgb(A.frameAt(gf, mid), { x0: 0.7, y0: 0.4, x1: 0.8, y1: 0.6 }))];
    assert.deepEqual([...gpair].sort(), ['green', 'red'], `grid: two tiles while the share is live: ${gpair}`);

    // screen: the share alone, the whole frame while live
    const screenFile = path.join(scratch, 'screen.webm');
    await compose(dir, screenFile, ['--layout', 'screen']);
    const sf = await A.videoFrames(screenFile, { width: 320, height: 180 });
    for (const f of sf) {
      if (f.t >= from + 0.5 && f.t <= to - 0.2) assert.ok(coverage(f, PALETTE.magenta) >= 0.95, `screen: the share alone at ${f.t.toFixed(2)} s`);
    }
  } finally {
    for (const tr of tracks) tr.relay.close();
  }
});

/** MD5 of each video packet of a file (what the encoder wrote, frame by frame). */
async function videoPacketSums(file) {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
}

test('a class in speaker: a camera never on screen is never decoded, one that shows late is decoded from its last keyframe before it shows; the file is the same as when every frame is decoded', async (t) => {
  // 11 people with cameras: the speaker layout shows 9 (the main area and a
  // strip of 8), so at least one camera is never on screen; the last to
  // speak shows only from her turn on. She sends H.264 (x264 puts its
  // parameter sets in the first keyframe only: decoding from a later one
  // needs them carried over).
  const r = await startRec(srv, u.owner.token);
  const SECONDS = 8;
  const FPS = 15;
  const colours = ['c04040', '40c040', '4040c0', 'c0c040', 'c040c0', '40c0c0', '808080', 'e08020', '2080e0', '80e020', 'e02080'];
  const people = colours.map((c, i) => ({
    id: { peerId: `peer-${i}`, fullName: `Student ${i}`, role: i === 0 ? 'instructor' : undefined },
    colour: `color=c=0x${c}:s=320x240:r=${FPS}`, // a 2 s GOP (30 frames)
    speaks: i === 10 ? [[4.0, 6.5]] : [],
  }));
  const tracks = [];
  for (const p of people) {
    p.codec = p.speaks.length ? 'h264' : 'vp8';
    p.video = await addTrack(r.id, { ...p.id, kind: 'video', codec: p.codec });
    p.audio = await addTrack(r.id, { ...p.id, kind: 'audio' });
    tracks.push(p.video, p.audio);
  }
  try {
    await Promise.all(people.map((p, i) => send({
      seconds: SECONDS,
      video: { t: p.video, source: p.colour, ssrc: 10000 + i, codec: p.codec },
      audio: { t: p.audio, source: speech(500 + 50 * i, p.speaks), ssrc: 20000 + i },
    })));
    await sleep(300);
    for (const tr of tracks) await endTrack(r.id, tr);
    const dir = tracksDir(r.id);
    const shown = await compose(dir, path.join(scratch, 'class.webm'), ['--layout', 'speaker', '--width', '640', '--height', '360']);
    const all = await compose(dir, path.join(scratch, 'class-all.webm'), ['--layout', 'speaker', '--width', '640', '--height', '360', '--decode-all']);
    t.diagnostic(`decoded ${shown.framesDecoded} of ${shown.framesDecoded + shown.framesNotDecoded} frames; --decode-all ${all.framesDecoded}, not decoded ${all.framesNotDecoded}`);
    // every frame read either way, every one decoded with --decode-all
    assert.equal(all.framesNotDecoded, 0);
    assert.equal(shown.framesDecoded + shown.framesNotDecoded, all.framesDecoded);
    // at least one camera's frames (about SECONDS * FPS) were never decoded,
    // and the late speaker's first seconds: more than 1.2 cameras' worth
    const perCamera = all.framesDecoded / people.length;
    assert.ok(shown.framesNotDecoded > 1.2 * perCamera, `not decoded: ${shown.framesNotDecoded}, a camera sends ${perCamera.toFixed(0)}`);
    // and yet the same picture: the encoder got the same frames
    const a = await videoPacketSums(path.join(scratch, 'class.webm'));
    const b = await videoPacketSums(path.join(scratch, 'class-all.webm'));
    assert.ok(a.length >= SECONDS * 30 - 15, `${a.length} video frames`);
    assert.equal(a.length, b.length);
    const differ = a.findIndex((l, i) => l !== b[i]);
    assert.equal(differ, -1, `frame ${differ} differs from the one composed from every frame: ${a[differ]} vs ${b[differ]}`);
    assert.equal(shown.decodeErrors, 0);
    // the late speaker is in the main area from 2 s into her turn (found in
    // the file's sound: senders start when a busy machine lets them)
    const frames = await A.videoFrames(path.join(scratch, 'class.webm'));
    const turn = toneSpans(await A.audioPcm(path.join(scratch, 'class.webm')), 1000);
    assert.equal(turn.length, 1, `her turn in the file: ${JSON.stringify(turn)}`);
    const late = meanRgb(A.frameAt(frames, turn[0].from + 2.0), { x0: 0.4, y0: 0.2, x1: 0.6, y1: 0.6 });
    assert.ok(Math.hypot(late[0] - 0xe0, late[1] - 0x20, late[2] - 0x80) < 70,
      `the main area ${(turn[0].from + 2.0).toFixed(2)} s, 2 s into her turn: ${late.map(Math.round)}`);
  } finally {
    for (const tr of tracks) tr.relay.close();
  }
});

test('speaker, before anyone speaks: with no instructor among the tracks, the one who started the recording is in the main area, not the first to join', async (t) => {
  const r = await startRec(srv, u.owner.token, { layout: 'speaker' });
  const SECONDS = 6;
  // red joins first and is nobody in particular; green's tracks are the
  // starter's (userId), with no role; nobody speaks
  const red = { peerId: 'peer-red', fullName: 'Person red' };
  const green = { peerId: 'peer-green', fullName: 'Person green', userId: u.owner.id };
  const rv = await addTrack(r.id, { ...red, kind: 'video' });
  const ra = await addTrack(r.id, { ...red, kind: 'audio' });
  const gv = await addTrack(r.id, { ...green, kind: 'video' });
  const ga = await addTrack(r.id, { ...green, kind: 'audio' });
  const tracks = [rv, ra, gv, ga];
  try {
    await Promise.all([
      send({ seconds: SECONDS, video: { t: rv, source: solid(PALETTE.red) }, audio: { t: ra, source: speech(TONES.red, []) } }),
      (async () => {
        await sleep(1500);
        await send({ seconds: SECONDS - 1.5, video: { t: gv, source: solid(PALETTE.green), ssrc: 33333333 }, audio: { t: ga, source: speech(TONES.green, []), ssrc: 44444444 } });
      })(),
    ]);
    await sleep(300);
    for (const tr of tracks) await endTrack(r.id, tr);
    const main = { x0: 0.4, y0: 0.2, x1: 0.6, y1: 0.6 };
    // the composer alone does not know who started: the first to join
    const dir = tracksDir(r.id);
    const cliFile = path.join(scratch, 'starter-cli.webm');
    await compose(dir, cliFile, ['--layout', 'speaker', '--width', '640', '--height', '360']);
    const cf = await A.videoFrames(cliFile);
    assert.equal(colourName(meanRgb(A.frameAt(cf, SECONDS - 1.0), main)), 'red', 'compose --tracks: the first to join in the main area');
    // the job knows: the starter from the moment she is there
    const { file } = await stopAndDownload(srv, u.owner.token, r.id, scratch);
    const jf = await A.videoFrames(file);
    const shown = [];
    for (let x = 0.5; x < SECONDS; x += 0.5) shown.push(`${x.toFixed(1)}:${colourName(meanRgb(A.frameAt(jf, x), main))}`);
    t.diagnostic(`main area: ${shown.join(' ')}`);
    const greenFrom = jf.find((f) => colourName(meanRgb(f, main)) === 'green');
    assert.ok(greenFrom, 'the starter is in the main area');
    for (const f of jf.filter((x) => x.t > greenFrom.t && x.t < SECONDS - 1.0)) {
      assert.equal(colourName(meanRgb(f, main)), 'green', `the starter stays in the main area at ${f.t.toFixed(2)} s`);
    }
    assert.equal(colourName(meanRgb(A.frameAt(jf, 0.5), main)), 'red', 'before she joins, the only one there');
  } finally {
    for (const tr of tracks) tr.relay.close();
  }
});
