// Composition quality through the real path (issue 4, item 5): the real
// server, tracks registered over the API, real RTP senders (the ffmpeg CLI
// and GStreamer) on real UDP through relays, Stop, the server's worker runs
// the composer, and the file it leaves is measured from its decoded pictures
// and sound (lib/analyze.mjs): lip sync on a flash+beep source, a colour and
// a tone per peer present exactly while the peer is, re-flow of the grid,
// 5 % packet loss, a resolution change, H.264 input, a capture cut by
// kill -9, the output formats and the fast path, and the facts the API
// reports about the file (duration, size, SHA-256). All media is generated
// here by ffmpeg's lavfi sources.
// backend-independent: the media path (composition); the database only holds the rows; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, makeUsers, startRec } from './lib/util.mjs';
import { run, MediaRelay, lavfiSenderArgs, fileSenderArgs, readCapture } from './lib/media.mjs';
import * as A from './lib/analyze.mjs';

let srv;
let u;
let scratch;

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-compose-'));
  srv = await startServer();
  u = await makeUsers(srv, { owner: 'instructor' });
});
after(async () => {
  await cleanupAll();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

// ---- helpers: peers, senders, the composed file ------------------------------------------

// How long a stopped recording may wait for a worker before the test gives up.
const QUEUE_MS = Number(process.env.VTP_TEST_COMPOSE_QUEUE_MS) || 30000;
// Where to keep every composed recording (file + captures), if set.
const KEEP_DIR = process.env.VTP_TEST_KEEP_DIR || '';
const OUT_W = 1280;
const OUT_H = 720;

/** POST …/stop (a generous timeout: the machine may be busy composing). */
async function stopRec(s, token, id) {
  const res = await s.api('POST', `/api/v1/recordings/${id}/stop`, { token, timeoutMs: 60000 });
  assert.equal(res.status, 200, `stop: ${show(res)}`);
  return res.json;
}

/** ffmpeg into a file in the scratch folder (media made for a test). */
function ffmpegMake(name, args) {
  const file = path.join(scratch, name);
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args, file]);
  return file;
}

/**
 * Registers a peer's tracks on recording recId and puts a relay (optionally
 * lossy or slow) in front of each. spec: {peerId, fullName, video?: {codec,
 * pt, loss, seed, delayMs, ...lavfiSenderArgs video fields}, audio?: {...}}.
 */
async function addPeer(s, token, recId, spec) {
  const peer = { spec, tracks: {}, relays: {} };
  for (const kind of ['video', 'audio']) {
    const m = spec[kind];
    if (!m) continue;
    const codec = kind === 'audio' ? 'opus' : (m.codec || 'vp8');
    const pt = m.pt ?? (kind === 'audio' ? 111 : 96);
    const res = await s.api('POST', `/api/v1/recordings/${recId}/tracks`, {
      token, body: { peerId: spec.peerId, fullName: spec.fullName, kind, codec, payloadType: pt },
    });
    assert.equal(res.status, 201, `register ${spec.peerId} ${kind}: ${show(res)}`);
    peer.tracks[kind] = res.json;
    peer.relays[kind] = await new MediaRelay(res.json.port, { loss: m.loss || 0, seed: m.seed, delayMs: m.delayMs || 0 }).start();
  }
  return peer;
}

/** Runs the peer's ffmpeg sender for `seconds` (resolves when it ends). */
async function sendPeer(peer, seconds) {
  const { video, audio } = peer.spec;
  const args = lavfiSenderArgs({
    seconds,
    video: video && { ...video, port: peer.relays.video.port },
    audio: audio && { ...audio, port: peer.relays.audio.port },
  });
  const r = await run('ffmpeg', args, { timeoutMs: (seconds + 30) * 1000 });
  assert.equal(r.code, 0, `sender ${peer.spec.peerId}: ${r.stderr}`);
  return r;
}

/** DELETE every track of the peer (it left). */
async function leave(s, token, recId, peer) {
  for (const t of Object.values(peer.tracks)) {
    const r = await s.api('DELETE', `/api/v1/recordings/${recId}/tracks/${t.trackId}`, { token });
    assert.equal(r.status, 200, `end track ${t.trackId}: ${show(r)}`);
  }
}

function closeRelays(peers) {
  for (const p of peers) for (const r of Object.values(p.relays)) r.close();
}

/**
 * Waits until the recording is done. Fails at once when it fails, when no
 * worker has taken it after queueMs, or when processing takes over
 * processMs. Returns the Recording and the statuses seen in order.
 */
async function waitComposed(s, token, id, { queueMs = QUEUE_MS, processMs = 120000 } = {}) {
  const seen = [];
  const t0 = Date.now();
  let processingSince = null;
  for (;;) {
    const r = await s.api('GET', `/api/v1/recordings/${id}`, { token, timeoutMs: 60000 });
    assert.equal(r.status, 200, show(r));
    const rec = r.json;
    if (seen[seen.length - 1] !== rec.status) seen.push(rec.status);
    if (rec.status === 'done') return { rec, seen };
    if (rec.status === 'failed') assert.fail(`composition failed: ${JSON.stringify(rec.error)} (statuses ${seen.join(' → ')})`);
    if (rec.status === 'processing' && processingSince === null) processingSince = Date.now();
    if (processingSince === null && Date.now() - t0 > queueMs) {
      assert.fail(`recording still '${rec.status}' ${queueMs / 1000} s after stop: no worker composed it (statuses ${seen.join(' → ')})`);
    }
    if (processingSince !== null && Date.now() - processingSince > processMs) {
      assert.fail(`still processing after ${processMs / 1000} s (progress ${rec.progress})`);
    }
    await sleep(200);
  }
}

/** The composed file of a recording in the server's data folder: recordings/<room>/<id>/recording.<ext>. */
function outputFile(s, id) {
  const base = path.join(s.dataDir, 'recordings');
  const found = [];
  for (const room of fs.existsSync(base) ? fs.readdirSync(base) : []) {
    const dir = path.join(base, room, id);
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) if (/^recording\.(webm|mp4)$/.test(f)) found.push(path.join(dir, f));
  }
  assert.equal(found.length, 1, `one recording.webm|mp4 under recordings/*/${id}/, found ${JSON.stringify(found)}`);
  return found[0];
}

/**
 * The facts the API reports about a done recording match the file (item 8):
 * fileSize = its size, metadata.sha256 = its SHA-256, durationSeconds = the
 * media's duration (ffprobe, +-0.2 s). Returns the ffprobe result.
 */
async function checkReported(rec, file) {
  const info = await A.probe(file);
  assert.equal(rec.fileSize, fs.statSync(file).size, 'fileSize is the size of the file');
  assert.ok(rec.metadata && typeof rec.metadata.sha256 === 'string', `metadata.sha256: ${JSON.stringify(rec.metadata)}`);
  assert.equal(rec.metadata.sha256.toLowerCase(), A.sha256File(file), 'metadata.sha256 is the SHA-256 of the file');
  const d = Number(info.format.duration);
  assert.ok(typeof rec.durationSeconds === 'number' && Math.abs(rec.durationSeconds - d) <= 0.2,
    `durationSeconds ${rec.durationSeconds} vs the media's ${d} (ffprobe)`);
  return info;
}

/**
 * Waits for a stopped recording to be composed and checks what the API
 * reports against the file: resolves the done Recording, the file's path,
 * ffprobe of it and the statuses seen.
 */
async function composed(s, token, id) {
  const { rec, seen } = await waitComposed(s, token, id);
  // stopped -> processing -> done, in that order (a poll may miss one)
  const order = ['stopped', 'processing', 'done'];
  const idx = seen.map((x) => order.indexOf(x));
  assert.ok(idx.every((k, i) => k >= 0 && (i === 0 || k > idx[i - 1])), `statuses in order: ${seen.join(' → ')}`);
  const file = outputFile(s, id);
  if (KEEP_DIR) {
    // for a look at a failure: the composed file and the captures it came from
    const dest = path.join(KEEP_DIR, id);
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(path.dirname(file), dest, { recursive: true });
  }
  const info = await checkReported(rec, file);
  return { rec, file, info, seen };
}

async function assertDecodesClean(file) {
  const errors = await A.decodeErrors(file);
  let why = '';
  if (errors && errors.split('\n').every((l) => /non monotonically increasing dts to muxer/.test(l))) {
    // Not the decoder: the CLI puts each decoded frame on the stream's
    // frame-rate grid (1/30 s) and two frames landed on one tick, which
    // happens when the video's millisecond timestamps sit about half a
    // frame off that grid counted from the file's start. A transcode of
    // the file would drop those frames.
    const pk = await A.packetTimes(file, 'video');
    const start = (await A.probe(file)).format.start_time;
    why = `\n(the video's frames are off the 1/30 s grid counted from the file's start at ${start} s: first frames at ${pk.slice(0, 4).map((x) => x.t).join(', ')} s)`;
  }
  assert.equal(errors, '', `ffmpeg -v error -i ${path.basename(file)} -f null - printed:\n${errors.slice(0, 2000)}${why}`);
}

const VP8_FAST = ['-c:v', 'libvpx', '-threads', '1', '-deadline', 'realtime', '-cpu-used', '8'];
const PALETTE = { red: [220, 30, 30], green: [30, 200, 30], blue: [30, 30, 220] };
const hex = (rgb) => `0x${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
const solid = (rgb, size = '320x240') => `color=c=${hex(rgb)}:s=${size}:r=30`;
const sine = (freq, amp = 0.3) => `aevalsrc='${amp}*sin(2*PI*${freq}*t)':s=48000:c=mono`;

// ---- the analysis itself, on references made directly with ffmpeg ----------------------------

// The self-check runs no server code: the sanitizer pass (VTP_TEST_SANITIZED=1)
// leaves it to the release pass.
test('analysis self-check: known A/V offset, tile colours and tones on ffmpeg-made references', { skip: process.env.VTP_TEST_SANITIZED === '1' && 'no server code: checked in the release pass' }, async () => {
  // flash at 0.5 s of every second, beep 100 ms later: the analysis must say +100 ms
  const fb = ffmpegMake('ref-fb.webm', ['-f', 'lavfi', '-i',
    "color=black:s=320x240:r=30:d=3.6,drawbox=c=white:t=fill:enable='between(mod(n,30),15,16)'[out0];" +
    "aevalsrc='if(between(mod(t,1),0.6,0.7),0.5*sin(2*PI*1000*t),0)':s=48000:d=3.6[out1]",
    ...VP8_FAST, '-b:v', '300k', '-c:a', 'libopus']);
  const pairs = A.pairOnsets(A.flashOnsets(await A.videoFrames(fb, { width: 64, height: 36, pixFmt: 'gray' })),
    A.beepOnsets(await A.audioPcm(fb)));
  assert.equal(pairs.length, 3, JSON.stringify(pairs));
  // the WebM muxer itself puts the video 7 ms late (Opus pre-skip): 93 ms
  for (const p of pairs) assert.ok(Math.abs(p.offsetMs - 100) <= 10, `offset ${p.offsetMs} ms, built as 100`);
  // A re-flowing grid (640x360, the output's 16:9): the flashing peer in the
  // left tile beside a dark grey one until 3 s, then alone in the one tile,
  // beep 60 ms after each flash. Within the peer's own tile all four flashes
  // count, the three small ones too, and the 60 ms (beyond ±40) is measured
  // as such: the lip-sync check would fail it.
  const reflow = ffmpegMake('ref-reflow.webm', ['-f', 'lavfi', '-i',
    'color=black:s=640x360:r=30:d=4[bg];color=c=0x202020:s=320x240:r=30:d=4[grey];' +
    "color=black:s=320x240:r=30:d=4,drawbox=c=white:t=fill:enable='between(mod(n,30),15,16)',split[small][f];" +
    "[f]scale=480:360[big];[bg][small]overlay=0:60:enable='lt(t,3)'[o1];" +
    "[o1][grey]overlay=320:60:enable='lt(t,3)'[o2];[o2][big]overlay=80:0:enable='gte(t,3)',format=yuv420p[out0];" +
    "aevalsrc='if(between(mod(t,1),0.56,0.66),0.5*sin(2*PI*1000*t),0)':s=48000:d=4[out1]",
    ...VP8_FAST, '-b:v', '500k', '-c:a', 'libopus']);
  const reflowFrames = await A.videoFrames(reflow, { width: 64, height: 36, pixFmt: 'gray' });
  const reflowBeeps = A.beepOnsets(await A.audioPcm(reflow));
  const whole = A.flashOnsets(reflowFrames);
  const inTile = A.flashOnsetsInTile(reflowFrames, syncPicture);
  const reflowPairs = A.pairOnsets(inTile, reflowBeeps);
  assert.equal(reflowPairs.length, 4, `in the tile: ${JSON.stringify(reflowPairs)} (whole frame: flashes at ${whole.join(', ')})`);
  for (const p of reflowPairs) assert.ok(Math.abs(p.offsetMs - 60) <= 12, `offset ${p.offsetMs} ms, built as 60`);
  // a 2x2 reference grid: red, green top; blue (4:3, pillarboxed) bottom left; 440 Hz, then + 700 Hz
  const grid = ffmpegMake('ref-grid.webm', ['-f', 'lavfi', '-i', `${solid(PALETTE.red, '640x360')}:d=2`,
    '-f', 'lavfi', '-i', `${solid(PALETTE.green, '640x360')}:d=2`, '-f', 'lavfi', '-i', `${solid(PALETTE.blue, '480x360')}:d=2`,
    '-f', 'lavfi', '-i', 'color=black:s=640x360:r=30:d=2',
    '-f', 'lavfi', '-i', "aevalsrc='0.2*sin(2*PI*440*t)+if(gte(t,1),0.2*sin(2*PI*700*t),0)':s=48000:d=2",
    '-filter_complex', '[2]pad=640:360:80:0[c];[0][1][c][3]xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0[v]',
    '-map', '[v]', '-map', '4', ...VP8_FAST, '-b:v', '1M', '-c:a', 'libopus']);
  const reg = A.colourRegions(A.frameAt(await A.videoFrames(grid), 1), PALETTE);
  assert.ok(Math.abs(reg.red.fraction - 0.25) < 0.02 && reg.red.bbox.fx1 <= 0.51 && reg.red.bbox.fy1 <= 0.51, JSON.stringify(reg.red));
  assert.ok(Math.abs(reg.green.fraction - 0.25) < 0.02 && reg.green.bbox.fx0 >= 0.49, JSON.stringify(reg.green));
  assert.ok(Math.abs(reg.blue.fraction - 0.1875) < 0.02 && reg.blue.bbox.fy0 >= 0.49, JSON.stringify(reg.blue));
  const tones = A.toneTrack(await A.audioPcm(grid), [440, 700, 1100]);
  for (const w of tones) {
    assert.ok(w.amps[440] > 0.15, `440 Hz at ${w.t}: ${w.amps[440]}`);
    assert.ok(w.amps[1100] < 0.01, `no 1100 Hz at ${w.t}: ${w.amps[1100]}`);
    if (w.t < 0.9) assert.ok(w.amps[700] < 0.01, `no 700 Hz yet at ${w.t}: ${w.amps[700]}`);
    if (w.t > 1.1) assert.ok(w.amps[700] > 0.15, `700 Hz at ${w.t}: ${w.amps[700]}`);
  }
});

// ---- 1. lip sync -----------------------------------------------------------------------------

let flashBeep = null;
const CLIP_FLASHES = 7; // one a second, at 0.5 s, in the 7 s clip

/**
 * The lip-sync source, made once: black with a white flash (frames 15-16 of
 * every second) and silence with a 100 ms 1 kHz beep starting on the same
 * instant, VP8 + Opus in WebM, 7 s.
 */
async function flashBeepSource(t) {
  if (flashBeep) return flashBeep;
  const src = ffmpegMake('flashbeep.webm', ['-f', 'lavfi', '-i',
    "color=black:s=320x240:r=30:d=7,drawbox=c=white:t=fill:enable='between(mod(n,30),15,16)'[out0];" +
    "aevalsrc='if(between(mod(t,1),0.5,0.6),0.5*sin(2*PI*1000*t),0)':s=48000:d=7[out1]",
    ...VP8_FAST, '-b:v', '300k', '-g', '30', '-c:a', 'libopus', '-b:a', '48k']);
  const srcPairs = A.pairOnsets(A.flashOnsets(await A.videoFrames(src, { width: 64, height: 36, pixFmt: 'gray' })),
    A.beepOnsets(await A.audioPcm(src)));
  t.diagnostic(`source file: audio - video = ${srcPairs.map((p) => p.offsetMs.toFixed(0)).join(', ')} ms`);
  flashBeep = src;
  return src;
}

/**
 * Where the flash+beep peer's picture is in a composed frame (gray, any
 * size) of the grid with at most one other peer, whose picture is dark
 * grey (or its name tile): with two tiles, the sync peer has the one that
 * is not the other's, i.e. black or white (through a half-canvas window
 * the sync peer alone shows black or 3/4 white, never grey, so it is
 * alone when neither half looks like the other peer); alone, it fills the
 * one tile. null when that cannot be told (both halves grey: name tiles).
 * Sources are 4:3.
 */
function syncPicture(frame) {
  const pictureOf = (tile) => A.rectInFrame(A.fitInTile(tile, 4 / 3), frame, OUT_W, OUT_H);
  const halves = A.gridTiles(2, OUT_W, OUT_H).map(pictureOf);
  const isOther = (r) => {
    const lv = A.meanLevelIn(frame, r);
    return lv > 12 && lv < 150;
  };
  const other = halves.map(isOther);
  if (other[0] && other[1]) return null;
  if (other[0]) return halves[1];
  if (other[1]) return halves[0];
  return pictureOf(A.gridTiles(1, OUT_W, OUT_H)[0]);
}

/**
 * Records one peer playing the flash+beep file through GStreamer's rtpbin
 * (one process, one clock, RTCP sender reports for both streams; udpsink
 * paces in real time), its audio path optionally audioDelayMs slower than
 * its video's, optionally beside a second (dark grey, silent) video peer so
 * that the grid is composed instead of the fast path, sending for
 * otherSeconds (fewer than the clip's 7: it leaves and the grid re-flows
 * while the flashes go on). Resolves the recording's id.
 */
async function recordFlashBeep(src, { audioDelayMs = 0, second = false, otherSeconds = 7 } = {}) {
  const r = await startRec(srv, u.owner.token);
  const peer = await addPeer(srv, u.owner.token, r.id, { peerId: 'sync', fullName: 'Sync Source', video: {}, audio: { delayMs: audioDelayMs } });
  const other = second && await addPeer(srv, u.owner.token, r.id, { peerId: 'other', fullName: 'Other', video: { source: solid([32, 32, 32]), bitrate: '100k' } });
  try {
    // RTP and RTCP of a stream go to the same relay port (rtcp-mux at the recorder).
    const v = peer.relays.video.port;
    const a = peer.relays.audio.port;
    // gst-launch is given the clip's 7 s and 8 s more; should it not exit by
    // then, what counts is that every packet went out (checked below).
    const [g] = await Promise.all([
      run('gst-launch-1.0', ['-q', 'rtpbin', 'name=rb', 'filesrc', `location=${src}`, '!', 'matroskademux', 'name=d',
        'd.video_0', '!', 'queue', '!', 'rtpvp8pay', 'pt=96', '!', 'rb.send_rtp_sink_0',
        'rb.send_rtp_src_0', '!', 'udpsink', 'host=127.0.0.1', `port=${v}`,
        'rb.send_rtcp_src_0', '!', 'udpsink', 'host=127.0.0.1', `port=${v}`, 'sync=false', 'async=false',
        'd.audio_0', '!', 'queue', '!', 'rtpopuspay', 'pt=111', '!', 'rb.send_rtp_sink_1',
        'rb.send_rtp_src_1', '!', 'udpsink', 'host=127.0.0.1', `port=${a}`,
        'rb.send_rtcp_src_1', '!', 'udpsink', 'host=127.0.0.1', `port=${a}`, 'sync=false', 'async=false'], { timeoutMs: 15000 }),
      other && sendPeer(other, otherSeconds),
    ]);
    // 7 s: 210 VP8 frames of one packet each, 350 Opus packets
    const sent = `${peer.relays.video.rtp} video and ${peer.relays.audio.rtp} audio packets`;
    assert.ok(g.code === 0 || (g.signal === 'SIGKILL' && peer.relays.video.rtp >= 210 && peer.relays.audio.rtp >= 350),
      `gst-launch exited ${g.code} ${g.signal} after ${sent}: ${g.stderr}`);
    assert.ok(peer.relays.video.rtcp >= 1 && peer.relays.audio.rtcp >= 1, 'rtpbin sent sender reports on both streams');
    await sleep(400 + audioDelayMs);
    await stopRec(srv, u.owner.token, r.id);
    return r.id;
  } finally {
    closeRelays(other ? [peer, other] : [peer]);
  }
}

/**
 * Every beep of the composed file within ±40 ms of its flash. The flashes
 * are measured within the sync peer's own picture (the whole frame on the
 * fast path, its tile of the grid otherwise), so that its tile growing when
 * the other peer leaves cannot set the threshold above the flashes shown
 * small; every flash of the clip but at most one must be found.
 */
async function assertLipSync(t, id, { fastPath }) {
  const { file, rec } = await composed(srv, u.owner.token, id);
  await assertDecodesClean(file);
  assert.equal(rec.metadata?.compose?.fastPath, fastPath, `fastPath ${fastPath}: ${JSON.stringify(rec.metadata?.compose)}`);
  const frames = await A.videoFrames(file, { width: 64, height: 36, pixFmt: 'gray' });
  const flashes = fastPath ? A.flashOnsets(frames) : A.flashOnsetsInTile(frames, syncPicture);
  const beeps = A.beepOnsets(await A.audioPcm(file));
  const pairs = A.pairOnsets(flashes, beeps);
  t.diagnostic(`flashes ${flashes.map((x) => x.toFixed(3)).join(' ')}; beeps ${beeps.map((x) => x.toFixed(3)).join(' ')}`);
  t.diagnostic(`audio - video = ${pairs.map((p) => p.offsetMs.toFixed(0)).join(', ')} ms`);
  assert.ok(flashes.length >= CLIP_FLASHES - 1, `${CLIP_FLASHES} flashes in the clip, at most one missed (found ${flashes.length}: ${flashes}; beeps ${beeps})`);
  assert.ok(pairs.length >= 3, `at least 3 flash/beep pairs (found ${pairs.length}: flashes ${flashes}, beeps ${beeps})`);
  assert.ok(pairs.length >= flashes.length - 1, `every flash but at most one has its beep within 400 ms (${pairs.length} of ${flashes.length})`);
  const bad = pairs.filter((p) => Math.abs(p.offsetMs) > 40);
  assert.equal(bad.length, 0, `A/V offset beyond ±40 ms: ${bad.map((p) => `${p.offsetMs.toFixed(0)} ms at ${p.video.toFixed(2)} s`).join(', ')}`);
}

test('lip sync within ±40 ms (EBU R37) on a flash+beep source from one GStreamer rtpbin sender', async (t) => {
  const src = await flashBeepSource(t);
  // three recordings at once: the fast path, the composed grid (the other
  // peer leaving halfway: the sync peer's tile grows from a half to the
  // whole canvas between flashes), and the composed grid with the audio
  // 150 ms behind on the network (only the RTCP sender reports can tell
  // that the two belong together)
  const cases = [
    ['one peer (fast path)', { fastPath: true }, {}],
    ['beside a second peer who leaves after 4 s (composed grid, re-flows from two tiles to one)', { fastPath: false }, { second: true, otherSeconds: 4 }],
    ['composed grid, audio path 150 ms slower than the video (RTCP SR ties them)', { fastPath: false }, { second: true, audioDelayMs: 150 }],
  ];
  const ids = await Promise.allSettled(cases.map(([, , opts]) => recordFlashBeep(src, opts)));
  for (const [k, [name, expect]] of cases.entries()) {
    await t.test(name, async (st) => {
      if (ids[k].status === 'rejected') throw ids[k].reason;
      await assertLipSync(st, ids[k].value, expect);
    });
  }
});

// ---- 2. a colour and a tone per peer, late joiner, early leaver, re-flow -------------------------

test('each peer\'s tile and tone exactly while present: late joiners, an early leaver, the grid re-flows 1 → 2 → 3 → 2', async (t) => {
  const r = await startRec(srv, u.owner.token);
  const tones = { red: 440, green: 700, blue: 1100 };
  const specs = [
    { name: 'red', start: 0, seconds: 9 },     // A: the whole time
    { name: 'green', start: 2000, seconds: 7 }, // B: joins 2 s late
    { name: 'blue', start: 4000, seconds: 3 },  // C: joins 4 s late, leaves 2 s before the end
  ];
  const peers = [];
  for (const s of specs) {
    peers.push(await addPeer(srv, u.owner.token, r.id, {
      peerId: `peer-${s.name}`, fullName: `Peer ${s.name}`,
      video: { source: solid(PALETTE[s.name]), bitrate: '200k' }, audio: { source: sine(tones[s.name]) },
    }));
  }
  try {
    await Promise.all(specs.map(async (s, i) => {
      await sleep(s.start);
      await sendPeer(peers[i], s.seconds);
      if (s.name === 'blue') await leave(srv, u.owner.token, r.id, peers[i]);
    }));
    await sleep(300);
    await stopRec(srv, u.owner.token, r.id);
    const { file, info } = await composed(srv, u.owner.token, r.id);
    await assertDecodesClean(file);
    const vs = A.streamOf(info, 'video');
    assert.deepEqual([vs.width, vs.height], [OUT_W, OUT_H], 'output 1280x720');

    // When each peer was sending, relative to the first peer's first packet (s).
    const t0 = peers[0].relays.video.firstRtpAt;
    const span = specs.map((s, i) => ({ name: s.name, from: (peers[i].relays.video.firstRtpAt - t0) / 1000, to: (peers[i].relays.video.lastRtpAt - t0) / 1000 }));
    t.diagnostic(`sent: ${span.map((s) => `${s.name} ${s.from.toFixed(2)}–${s.to.toFixed(2)} s`).join(', ')}`);

    const res = A.presenceCheck({ frames: await A.videoFrames(file), pcm: await A.audioPcm(file), palette: PALETTE, tones, spans: span });
    t.diagnostic(`tiles (output s from the first peer's first frame: r/g/b shown): ${res.tiles}`);
    t.diagnostic(`tones (r/g/b heard): ${res.heard}`);
    t.diagnostic(`tone peaks: ${JSON.stringify(res.peaks)}`);
    assert.equal(res.problems.length, 0, `${res.problems.length} problems:\n  ${res.problems.slice(0, 40).join('\n  ')}`);
    const first = (await A.packetTimes(file, 'video'))[0];
    assert.ok(res.origin - first.t <= 1.0, `the output starts with the media, not ${(res.origin - first.t).toFixed(2)} s before it`);
  } finally {
    closeRelays(peers);
  }
});

// ---- 3. 5 % packet loss ----------------------------------------------------------------------------

test('5 % random packet loss on a video track: the file decodes without errors, video throughout', async (t) => {
  // Two recordings at once: the lossy peer alone (the fast path's case) and
  // the lossy peer beside a clean one (the composed case). The senders make
  // a keyframe every 10 frames, as a WebRTC sender answering the recorder's
  // PLIs would after loss (the ffmpeg CLI ignores PLI).
  const seconds = 6;
  const lossy = (seed) => ({ source: 'testsrc2=s=320x240:r=30', bitrate: '300k', gop: 10, loss: 0.05, seed });
  const r1 = await startRec(srv, u.owner.token);
  const r2 = await startRec(srv, u.owner.token);
  const alone = await addPeer(srv, u.owner.token, r1.id, { peerId: 'lossy', fullName: 'Lossy', video: lossy(12345), audio: { source: sine(440) } });
  const withOther = await addPeer(srv, u.owner.token, r2.id, { peerId: 'lossy', fullName: 'Lossy', video: lossy(67890) });
  const clean = await addPeer(srv, u.owner.token, r2.id, { peerId: 'clean', fullName: 'Clean', video: { source: solid(PALETTE.green), bitrate: '200k' }, audio: { source: sine(700) } });
  const peers = [alone, withOther, clean];
  try {
    await Promise.all(peers.map((p) => sendPeer(p, seconds)));
    for (const p of [alone, withOther]) {
      const v = p.relays.video;
      t.diagnostic(`lossy relay: ${v.dropped} of ${v.rtp} RTP packets dropped (${((100 * v.dropped) / v.rtp).toFixed(1)} %)`);
      assert.ok(v.dropped >= 0.025 * v.rtp && v.dropped <= 0.08 * v.rtp, `about 5 % dropped: ${v.dropped} of ${v.rtp}`);
    }
    await sleep(300);
    await stopRec(srv, u.owner.token, r1.id);
    await stopRec(srv, u.owner.token, r2.id);
    for (const [id, what] of [[r1.id, 'alone'], [r2.id, 'beside a clean peer']]) {
      const { file, info, rec } = await composed(srv, u.owner.token, id);
      await assertDecodesClean(file);
      const pk = await A.packetTimes(file, 'video');
      assert.ok(pk.length > 0, `${what}: the output has video`);
      const start = Number(info.format.start_time || 0);
      const end = start + Number(info.format.duration);
      let gap = 0;
      for (let i = 1; i < pk.length; i++) gap = Math.max(gap, pk[i].t - pk[i - 1].t);
      t.diagnostic(`${what}: ${pk.length} video frames over ${pk[0].t.toFixed(2)}–${pk[pk.length - 1].t.toFixed(2)} s of ${start.toFixed(2)}–${end.toFixed(2)} s, largest gap ${gap.toFixed(3)} s, fastPath ${rec.metadata?.compose?.fastPath}`);
      assert.ok(Number(info.format.duration) >= seconds - 1.5, `${what}: duration ${info.format.duration} s of ${seconds} s sent`);
      assert.ok(pk[0].t - start <= 1.0, `${what}: video from the start (first frame at ${pk[0].t})`);
      assert.ok(end - pk[pk.length - 1].t <= 1.0, `${what}: video to the end (last frame at ${pk[pk.length - 1].t} of ${end})`);
      assert.ok(gap <= 1.5, `${what}: no hole in the video longer than 1.5 s (largest ${gap.toFixed(3)} s)`);
      // the picture keeps moving (testsrc2 changes every frame): not frozen on one picture
      const frames = await A.videoFrames(file, { width: 64, height: 36, pixFmt: 'gray' });
      const distinct = A.distinctPictures(frames);
      assert.ok(distinct >= 2 * seconds, `${what}: the picture keeps changing (${distinct} distinct pictures)`);
    }
  } finally {
    closeRelays(peers);
  }
});

// ---- 4. resolution change ----------------------------------------------------------------------------

test('a resolution change mid-stream (640x360 → 320x240, one SSRC): decodes cleanly, 1280x720, picture before and after', async (t) => {
  const teal = [32, 192, 192];
  const magenta = [192, 32, 192];
  const enc = [...VP8_FAST, '-b:v', '300k', '-g', '30'];
  const s1 = ffmpegMake('res-1.webm', ['-f', 'lavfi', '-i', `${solid(teal, '640x360')}:d=3`, ...enc]);
  const s2 = ffmpegMake('res-2.webm', ['-f', 'lavfi', '-i', `${solid(magenta, '320x240')}:d=3`, ...enc]);
  const list = path.join(scratch, 'res.txt');
  fs.writeFileSync(list, `file '${s1}'\nfile '${s2}'\n`);
  const both = ffmpegMake('res.webm', ['-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy']);

  const r = await startRec(srv, u.owner.token);
  const peer = await addPeer(srv, u.owner.token, r.id, { peerId: 'res', fullName: 'Resizer', video: {} });
  try {
    const s = await run('ffmpeg', fileSenderArgs({ file: both, port: peer.relays.video.port }), { timeoutMs: 30000 });
    assert.equal(s.code, 0, s.stderr);
    await sleep(300);
    await stopRec(srv, u.owner.token, r.id);
    const { file, info, rec } = await composed(srv, u.owner.token, r.id);
    await assertDecodesClean(file);
    const vs = A.streamOf(info, 'video');
    assert.deepEqual([vs.width, vs.height], [OUT_W, OUT_H], 'the output keeps 1280x720');
    assert.equal(rec.metadata?.compose?.fastPath, false, 'a resolution change is not the fast path');
    const frames = await A.videoFrames(file);
    const res = A.pictureChangeCheck(frames, { first: teal, second: magenta });
    t.diagnostic(`the change shows at ${res.change?.toFixed(2)} s of ${frames[0].t.toFixed(2)}–${frames[frames.length - 1].t.toFixed(2)} s`);
    assert.equal(res.problems.length, 0, `${res.problems.length} bad frames:\n  ${res.problems.slice(0, 20).join('\n  ')}`);
  } finally {
    closeRelays([peer]);
  }
});

// ---- 5. H.264 input ----------------------------------------------------------------------------

test('H.264 input (constrained baseline, packetization-mode 1: FU-A, STAP-A): composes, decodes cleanly, frames present', async (t) => {
  const seconds = 5;
  const r = await startRec(srv, u.owner.token);
  const peer = await addPeer(srv, u.owner.token, r.id, {
    peerId: 'h264', fullName: 'H.264 Sender',
    video: { codec: 'h264', pt: 102, source: 'testsrc2=s=640x360:r=30', bitrate: '1200k', gop: 30 },
    audio: { source: sine(440) },
  });
  try {
    await sendPeer(peer, seconds);
    await sleep(300);
    await stopRec(srv, u.owner.token, r.id);
    // what was captured really is fragmented H.264 (FU-A, NAL type 28)
    const capFile = (() => {
      const out = [];
      const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (p.includes(peer.tracks.video.trackId) && p.endsWith('.vtpcap')) out.push(p); } };
      walk(path.join(srv.dataDir, 'recordings'));
      return out[0];
    })();
    const nalTypes = {};
    for (const rec of readCapture(capFile).records) if (rec.kind === 1) { const cc = rec.data[0] & 0x0f; const x = rec.data[12 + 4 * cc] & 0x1f; nalTypes[x] = (nalTypes[x] || 0) + 1; }
    t.diagnostic(`captured H.264 NAL unit types: ${JSON.stringify(nalTypes)}`);
    assert.ok(nalTypes[28] > 0, 'FU-A packets were sent');

    const { file, info } = await composed(srv, u.owner.token, r.id);
    await assertDecodesClean(file);
    const vs = A.streamOf(info, 'video');
    assert.equal(vs.codec_name, 'vp8', 'the default output (WebM) carries VP8');
    const frames = await A.videoFrames(file, { width: 64, height: 36, pixFmt: 'gray' });
    const d = Number(info.format.duration);
    const distinct = A.distinctPictures(frames);
    t.diagnostic(`${frames.length} frames over ${d.toFixed(2)} s, ${distinct} distinct pictures`);
    assert.ok(d >= seconds - 1 && d <= seconds + 1.5, `duration ${d} s for ${seconds} s sent`);
    assert.ok(frames.length >= 25 * (seconds - 1), `frames present: ${frames.length}`);
    // testsrc2 moves every frame: the pictures are the live stream, not a frozen or blank one
    assert.ok(distinct >= 0.7 * 30 * (seconds - 1), `distinct pictures ${distinct}`);
    const levels = frames.map(A.meanLevel);
    const dark = levels.filter((l) => l < 30).length;
    assert.ok(dark <= 3, `${dark} frames are black`);
  } finally {
    closeRelays([peer]);
  }
});

// ---- 6. kill -9 --------------------------------------------------------------------------------

/**
 * A server killed (-9) while a peer sends, restarted: the recording is
 * marked interrupted and composes, cleanly, to what was captured before
 * the kill (±1.5 s). killed(ctx) looks at the data folder before the
 * restart, recovered(ctx) at the API after it; ctx: {crash, o, id, peer,
 * captured, rec}.
 */
async function crashAndRecover(t, { env, room, minMs, killed, recovered }) {
  const crash = await startServer(env ? { env } : undefined);
  const [o] = Object.values(await makeUsers(crash, { o: 'instructor' }));
  const res = await crash.api('POST', '/api/v1/recordings/start', { token: o.token, body: { roomId: `${room}-${rand(4)}`, title: 'cut' } });
  assert.equal(res.status, 201, show(res));
  const id = res.json.recordingId;
  const peer = await addPeer(crash, o.token, id, { peerId: 'cut', fullName: 'Cut Off', video: { source: 'testsrc2=s=320x240:r=30', gop: 30 }, audio: { source: sine(440) } });
  const sender = sendPeer(peer, 9).catch((e) => e);
  try {
    const deadline = Date.now() + 15000;
    while (!(peer.relays.video.firstRtpAt && Date.now() - peer.relays.video.firstRtpAt >= minMs)) {
      if (Date.now() > deadline) assert.fail('the sender did not start');
      await sleep(50);
    }
    const ctx = { crash, o, id, peer, captured: (Date.now() - peer.relays.video.firstRtpAt) / 1000 };
    await crash.kill9();
    closeRelays([peer]);
    t.diagnostic(`killed after ${ctx.captured.toFixed(2)} s of media`);
    if (killed) await killed(ctx);
    await crash.restart();
    const { rec, file, seen } = await composed(crash, o.token, id);
    t.diagnostic(`statuses after restart: ${seen.join(' → ')}; durationSeconds ${rec.durationSeconds}`);
    assert.ok(rec.metadata && /interrupted/.test(JSON.stringify(rec.metadata)), `marked interrupted: ${JSON.stringify(rec.metadata)}`);
    await assertDecodesClean(file);
    assert.ok(Math.abs(rec.durationSeconds - ctx.captured) <= 1.5, `duration ${rec.durationSeconds} s vs ${ctx.captured.toFixed(2)} s captured before the kill`);
    if (recovered) await recovered({ ...ctx, rec });
  } finally {
    closeRelays([peer]);
    await sender;
    await crash.stop();
  }
}

test('a capture cut by kill -9 still composes after restart: done, decodes cleanly, duration ≈ what was captured', async (t) => {
  await crashAndRecover(t, { room: 'crash', minMs: 4000 });
});

// ---- 6b. captured in segments ------------------------------------------------------------------

/** The recording's tracks folder (recordings/<room>/<id>/tracks) in the server's data folder. */
function tracksDir(s, id) {
  const base = path.join(s.dataDir, 'recordings');
  for (const room of fs.existsSync(base) ? fs.readdirSync(base) : []) {
    const dir = path.join(base, room, id, 'tracks');
    if (fs.existsSync(dir)) return dir;
  }
  assert.fail(`no tracks folder for ${id}`);
}

/** A track's segment files: <trackId>.vtpcap, then <trackId>.vtpcap.000002, ... in order. */
function segmentFiles(dir, trackId) {
  const first = `${trackId}.vtpcap`;
  return fs.readdirSync(dir).filter((f) => f === first || new RegExp(`^${first.replace('.', '\\.')}\\.\\d{6}$`).test(f)).sort();
}

async function inspectJson(file) {
  const r = await run(process.env.VTP_BIN || path.resolve('build/vtp-recorder'), ['inspect', '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('captured in 1 s segments (VTP_SEGMENT_SECONDS=1): several files per track, read as one, composes with the full duration', async (t) => {
  const seg = await startServer({ env: { VTP_SEGMENT_SECONDS: 1 } });
  try {
    const [o] = Object.values(await makeUsers(seg, { o: 'instructor' }));
    const res = await seg.api('POST', '/api/v1/recordings/start', { token: o.token, body: { roomId: `seg-${rand(4)}`, title: 'segments' } });
    assert.equal(res.status, 201, show(res));
    const id = res.json.recordingId;
    const seconds = 5;
    const peer = await addPeer(seg, o.token, id, { peerId: 'seg', fullName: 'Seg Mented', video: { source: 'testsrc2=s=320x240:r=30', gop: 30 }, audio: { source: sine(440) } });
    try {
      await sendPeer(peer, seconds);
      await sleep(300); // the last packets through the relay
    } finally {
      closeRelays([peer]);
    }
    await stopRec(seg, o.token, id);
    const dir = tracksDir(seg, id);
    for (const kind of ['video', 'audio']) {
      const files = segmentFiles(dir, peer.tracks[kind].trackId);
      t.diagnostic(`${kind}: ${files.join(' ')}`);
      assert.ok(files.length >= 3, `${kind}: more than 2 segments on disk: ${files.join(', ')}`);
      assert.equal(files[0], `${peer.tracks[kind].trackId}.vtpcap`, 'the first segment keeps the track\'s name');
      // every segment is a whole log on its own, numbered in its header
      const second = await inspectJson(path.join(dir, files[1]));
      assert.equal(second.meta.segment, 2);
      assert.equal(second.meta.trackId, peer.tracks[kind].trackId);
      assert.equal(second.end, 'clean');
      // the track: every segment, in order, every packet the relay passed, once
      const ins = await inspectJson(path.join(dir, files[0]));
      assert.equal(ins.segments.length, files.length, JSON.stringify(ins.segments));
      assert.deepEqual(ins.segments.map((x) => x.segment), files.map((_, i) => i + 1));
      assert.ok(ins.segments.every((x) => x.end === 'clean'), JSON.stringify(ins.segments));
      assert.equal(ins.segmentsMissing, 0);
      assert.equal(ins.end, 'clean');
      assert.equal(ins.rtpPackets, peer.relays[kind].forwarded, `${kind}: packets across the segments`);
      assert.ok(ins.mediaSeconds > seconds - 1, `${kind}: ${ins.mediaSeconds} s of media across the segments`);
    }
    const { rec, file } = await composed(seg, o.token, id);
    await assertDecodesClean(file);
    assert.ok(Math.abs(rec.durationSeconds - seconds) <= 1, `duration ${rec.durationSeconds} s vs ${seconds} s sent`);
    // a segment gone from the middle is reported, not silently joined
    const audio = segmentFiles(dir, peer.tracks.audio.trackId);
    const whole = await inspectJson(path.join(dir, audio[0]));
    fs.rmSync(path.join(dir, audio[1]));
    const holed = await inspectJson(path.join(dir, audio[0]));
    assert.equal(holed.segmentsMissing, 1, JSON.stringify(holed.segments));
    assert.deepEqual(holed.segments.slice(0, 2).map((x) => [x.segment, x.missingBefore]), [[1, 0], [3, 1]]);
    assert.ok(holed.rtpPackets > 0 && holed.rtpPackets < whole.rtpPackets, `the rest is still read: ${holed.rtpPackets} of ${whole.rtpPackets}`);
    assert.equal(holed.segments.length, whole.segments.length - 1);
    // and the composer says so when it composes the folder again
    const again = await run(process.env.VTP_BIN || path.resolve('build/vtp-recorder'),
      ['compose', '--tracks', dir, '--output', path.join(scratch, `holed-${id}.webm`), '--threads', '1'], { timeoutMs: 120000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`${peer.tracks.audio.trackId}\\.vtpcap: 1 segment\\(s\\) of its packet log missing`), again.stderr.slice(0, 3000));
  } finally {
    await seg.stop();
  }
});

test('kill -9 while capturing in 1 s segments: after restart the recording composes from the segments, duration ≈ what was captured', async (t) => {
  let dir;
  let files;
  await crashAndRecover(t, {
    env: { VTP_SEGMENT_SECONDS: 1 },
    room: 'segcrash',
    minMs: 4500,
    killed: ({ crash, id, peer }) => {
      dir = tracksDir(crash, id);
      files = segmentFiles(dir, peer.tracks.video.trackId);
      t.diagnostic(`video segments left by the kill: ${files.join(' ')}`);
      assert.ok(files.length >= 3, `segments on disk: ${files.join(', ')}`);
    },
    recovered: async ({ crash, o, id, captured }) => {
      // the recovered track counts the packets of every segment, not the first one's
      const r = await crash.api('GET', `/api/v1/recordings/${id}`, { token: o.token });
      const tracks = JSON.stringify(r.json);
      const ins = await inspectJson(path.join(dir, files[0]));
      assert.equal(ins.segments.length, files.length);
      assert.ok(ins.segments.slice(0, -1).every((x) => x.end === 'clean'), `closed segments end clean: ${JSON.stringify(ins.segments)}`);
      assert.ok(ins.mediaSeconds >= captured - 1.5, `${ins.mediaSeconds} s of media in the segments`);
      assert.ok(tracks.includes(`"packets":${ins.rtpPackets}`), `the recovered track's packets are those of all segments (${ins.rtpPackets}): ${tracks.slice(0, 1500)}`);
    },
  });
});

// ---- 7 + 8. formats, the fast path, what the API says about the file -------------------------------

test('output formats and the fast path; durationSeconds, fileSize and sha256 describe the file', async (t) => {
  const seconds = 5;
  const mp4 = await startRec(srv, u.owner.token, { format: 'mp4', videoCodec: 'h264', audioCodec: 'aac' });
  const webm = await startRec(srv, u.owner.token);
  const fast = await startRec(srv, u.owner.token);
  const two = (recId) => [
    addPeer(srv, u.owner.token, recId, { peerId: 'p-red', fullName: 'Red', video: { source: solid(PALETTE.red), bitrate: '200k' }, audio: { source: sine(440) } }),
    addPeer(srv, u.owner.token, recId, { peerId: 'p-blue', fullName: 'Blue', video: { source: solid(PALETTE.blue), bitrate: '200k' } }),
  ];
  const peers = await Promise.all([
    ...two(mp4.id), ...two(webm.id),
    addPeer(srv, u.owner.token, fast.id, { peerId: 'solo', fullName: 'Solo', video: { source: 'testsrc2=s=640x360:r=30', bitrate: '500k' }, audio: { source: sine(700) } }),
  ]);
  try {
    await Promise.all(peers.map((p) => sendPeer(p, seconds)));
    await sleep(300);
    for (const r of [mp4, webm, fast]) await stopRec(srv, u.owner.token, r.id);
    const out = {};
    for (const [name, r] of [['mp4', mp4], ['webm', webm], ['fast', fast]]) out[name] = await composed(srv, u.owner.token, r.id);

    await t.test('MP4: H.264 + AAC, faststart (moov before mdat), 1280x720', async () => {
      const { file, info, rec } = out.mp4;
      assert.match(file, /recording\.mp4$/);
      assert.match(info.format.format_name, /mp4/);
      const v = A.streamOf(info, 'video');
      const a = A.streamOf(info, 'audio');
      assert.equal(v?.codec_name, 'h264');
      assert.equal(a?.codec_name, 'aac');
      assert.deepEqual([v.width, v.height], [OUT_W, OUT_H]);
      const boxes = A.mp4Boxes(file).map((b) => b.type);
      assert.ok(boxes.includes('moov') && boxes.includes('mdat'), `boxes ${boxes}`);
      assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `faststart: moov before mdat (${boxes.join(', ')})`);
      assert.equal(rec.metadata?.compose?.fastPath, false);
      await assertDecodesClean(file);
    });
    await t.test('defaults: WebM with VP8 + Opus, 1280x720; two video peers are not the fast path', async () => {
      const { file, info, rec } = out.webm;
      assert.match(file, /recording\.webm$/);
      assert.match(info.format.format_name, /webm/);
      const v = A.streamOf(info, 'video');
      const a = A.streamOf(info, 'audio');
      assert.equal(v?.codec_name, 'vp8');
      assert.equal(a?.codec_name, 'opus');
      assert.equal(Number(a.sample_rate), 48000);
      assert.deepEqual([v.width, v.height], [OUT_W, OUT_H]);
      assert.equal(rec.metadata?.compose?.fastPath, false);
      await assertDecodesClean(file);
    });
    await t.test('fast path: one video peer at one resolution is copied (640x360 stays 640x360)', async () => {
      const { file, info, rec } = out.fast;
      assert.equal(rec.metadata?.compose?.fastPath, true, `metadata.compose: ${JSON.stringify(rec.metadata?.compose)}`);
      const v = A.streamOf(info, 'video');
      assert.equal(v?.codec_name, 'vp8');
      assert.deepEqual([v.width, v.height], [640, 360], 'the video is the input\'s, not scaled');
      assert.equal(A.streamOf(info, 'audio')?.codec_name, 'opus');
      await assertDecodesClean(file);
      const frames = await A.packetTimes(file, 'video');
      assert.ok(frames.length >= 28 * (seconds - 1), `${frames.length} frames copied`);
    });
    await t.test('durationSeconds = the media duration, fileSize = the size, metadata.sha256 = the SHA-256', async () => {
      for (const [name, { rec, file, info }] of Object.entries(out)) {
        // composed() has checked these already; here they are spelled out per file
        const st = fs.statSync(file);
        assert.equal(rec.fileSize, st.size, `${name}: fileSize`);
        assert.equal(rec.metadata.sha256, A.sha256File(file), `${name}: sha256`);
        const d = Number(info.format.duration);
        assert.ok(Math.abs(rec.durationSeconds - d) <= 0.2, `${name}: durationSeconds ${rec.durationSeconds} vs ${d}`);
        assert.ok(Math.abs(d - seconds) <= 1.0, `${name}: ${d} s of media for ${seconds} s sent`);
        t.diagnostic(`${name}: ${rec.durationSeconds} s, ${rec.fileSize} bytes, sha256 ${rec.metadata.sha256.slice(0, 16)}…`);
      }
    });
  } finally {
    closeRelays(peers);
  }
});
