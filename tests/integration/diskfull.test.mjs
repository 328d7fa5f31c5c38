// A full disk through the real path (hardening issue, point 6): the server's
// data folder (SQLite database and recordings) on a small tmpfs of its own,
// a peer sending VP8 and Opus over real UDP with ffmpeg, and a filler file
// that takes every free byte. While the disk is full /healthz answers 503
// naming what cannot be written, the tracks say what they lose, and Stop
// answers at once (202 while the database refuses the transition, which the
// server retries); when the filler goes, capture resumes by itself (packets
// written after the gap), the stop is saved, and the recording ends done
// with warnings saying how many seconds of which track were lost, which the
// recording page shows. A second case keeps the database on another folder
// so that only the recordings' disk is full: Stop answers 200 at once.
// Mounting needs root: the suite skips (and says so) for anyone else.
// backend-independent: the full disk is a local tmpfs holding the SQLite database and the recordings; runs on SQLite only.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, Context, Server, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, makeUsers } from './lib/util.mjs';
import { Relay, lavfiSenderArgs } from './lib/media.mjs';

const ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const SKIP = ROOT ? false : 'mounting a tmpfs needs root (CI runs as root); this suite is skipped';
if (!ROOT) console.log('# diskfull.test.mjs: skipped: not root, cannot mount a tmpfs');

const mounts = [];
const senders = new Set();

after(async () => {
  for (const p of senders) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  await cleanupAll(); // servers first: nothing may hold the mount
  for (const m of mounts.splice(0)) umount(m);
});

function umount(dir) {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status !== 0) spawnSync('umount', ['-l', dir]);
  // the context's own cleanup could not remove a mount point
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}

function mountTmpfs(dir, size) {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `mount tmpfs on ${dir}: ${r.stderr}`);
  mounts.push(dir);
}

/** Writes the filler until the file system says ENOSPC; returns its size. */
function fill(file) {
  const fd = fs.openSync(file, 'w', 0o600);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const small = Buffer.alloc(512, 0x5a);
  let size = 0;
  try {
    for (const buf of [chunk, small]) {
      for (;;) {
        try {
          size += fs.writeSync(fd, buf);
        } catch (e) {
          if (e.code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

async function until(what, fn, timeoutMs = 30000, stepMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last && last.seen)}`);
    await sleep(stepMs);
  }
}

async function health(srv) {
  const res = await fetch(`${srv.url}/healthz`, { signal: AbortSignal.timeout(10000) });
  return { status: res.status, json: await res.json() };
}

async function getRec(srv, token, id) {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token, timeoutMs: 30000 });
  assert.equal(r.status, 200, show(r));
  return r.json;
}

const trackOf = (rec, trackId) => (rec.tracks || []).find((t) => t.trackId === trackId) || {};

function findFile(dir, name) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    } else if (e.name === name) {
      return p;
    }
  }
  return null;
}

/** A server whose data folder is a fresh tmpfs; dbDir: keep the database elsewhere. */
async function fullDiskServer({ size = '32m', dbDir = null, env = {} } = {}) {
  const ctx = new Context();
  mountTmpfs(ctx.dataDir, size);
  if (dbDir) ctx.dbUrl = `sqlite://${dbDir}/vtp.db`;
  const srv = new Server(ctx, { VTP_WORKERS: 1, ...env });
  await srv._spawn();
  const u = await makeUsers(srv, { owner: 'instructor' });
  return { ctx, srv, token: u.owner.token };
}

/** Registers a peer with video and audio, relays in front; starts ffmpeg for `seconds`. */
async function startPeer(srv, token, recId, seconds) {
  const tracks = {};
  const relays = {};
  for (const kind of ['video', 'audio']) {
    const res = await srv.api('POST', `/api/v1/recordings/${recId}/tracks`, {
      token, body: { peerId: 'peer-ada', fullName: 'Ada Lovelace', kind, codec: kind === 'video' ? 'vp8' : 'opus', payloadType: kind === 'video' ? 96 : 111 },
    });
    assert.equal(res.status, 201, `register ${kind}: ${show(res)}`);
    tracks[kind] = res.json.trackId;
    relays[kind] = await new Relay(res.json.port).start();
  }
  const args = lavfiSenderArgs({
    seconds,
    video: { port: relays.video.port, source: 'color=c=blue:s=160x120:r=15', codec: 'vp8', bitrate: '100k', gop: 15 },
    audio: { port: relays.audio.port, source: 'sine=f=440:r=48000' },
  });
  const proc = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  senders.add(proc);
  proc.once('exit', () => senders.delete(proc));
  return { tracks, relays, proc, close() { try { proc.kill('SIGKILL'); } catch { /* gone */ } for (const r of Object.values(relays)) r.close(); } };
}

async function waitDone(srv, token, id, timeoutMs = 240000) {
  return (await until('the recording to be done', async () => {
    const rec = await getRec(srv, token, id);
    assert.notEqual(rec.status, 'failed', `processing failed: ${JSON.stringify(rec.error)}`);
    return { ok: rec.status === 'done', rec, seen: { status: rec.status, progress: rec.progress } };
  }, timeoutMs, 500)).rec;
}

test('a full disk: healthz 503, capture pauses and resumes, Stop answers, done with warnings', { skip: SKIP, timeout: 600000 }, async (t) => {
  // 1 s segments: switches fall due while the disk is full, and wait for it
  const { ctx, srv, token } = await fullDiskServer({ env: { VTP_SEGMENT_SECONDS: 1 } });
  const filler = path.join(ctx.dataDir, 'filler');
  assert.equal((await health(srv)).status, 200);

  const start = await srv.api('POST', '/api/v1/recordings/start', {
    token, body: { roomId: `room-${rand(4)}`, title: 'Full disk lecture', bitrate: 300 },
  });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  const peer = await startPeer(srv, token, id, 90);
  try {
    const v = peer.tracks.video;
    const a = peer.tracks.audio;
    await until('packets captured on both tracks', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, v).packets > 20 && trackOf(rec, a).packets > 20, seen: rec.tracks };
    });

    // ---- the disk fills up ----
    const filled = fill(filler);
    assert.ok(filled > 0, 'the filler took the free space');
    const h = await until('/healthz 503', async () => {
      const r = await health(srv);
      return { ok: r.status === 503, ...r, seen: r };
    }, 15000);
    assert.equal(h.json.status, 'unavailable');
    assert.match(h.json.reason, /disk|database/i, `reason names what cannot be written: ${JSON.stringify(h.json)}`);
    assert.match(h.json.dataDisk, /full/, JSON.stringify(h.json));

    const failing = await until('the tracks to report what they lose', async () => {
      const rec = await getRec(srv, token, id);
      const tv = trackOf(rec, v);
      return { ok: tv.state === 'failed' && tv.notWrittenPackets > 0, rec, seen: rec.tracks };
    });
    assert.match(trackOf(failing.rec, v).error || '', /space/i);
    // the live recording says so too
    assert.ok((failing.rec.warnings || []).some((w) => w.code === 'disk_full' && w.trackId === v),
      `live warning: ${JSON.stringify(failing.rec.warnings)}`);
    await until('the audio track to fail too', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, a).state === 'failed', seen: rec.tracks };
    });
    await sleep(3000); // three seconds of media the disk does not take
    // The sender is still sending, only the disk does not take it: it is not
    // silent, so a stranger's valid RTP now must not take the track over.
    const stranger = dgram.createSocket('udp4');
    await new Promise((res) => stranger.bind(0, '127.0.0.1', res));
    for (let i = 0; i < 5; i++) {
      const pkt = Buffer.alloc(12 + 20, 0x42);
      pkt[0] = 0x80; pkt[1] = 111; pkt.writeUInt16BE(100 + i, 2); pkt.writeUInt32BE(960 * i, 4); pkt.writeUInt32BE(0x5eadbeef, 8);
      await new Promise((res) => stranger.send(pkt, peer.relays.audio.targetPort, '127.0.0.1', res));
      await sleep(20);
    }
    stranger.close();

    // ---- space comes back: capture resumes without a restart ----
    fs.rmSync(filler);
    const before = trackOf(await getRec(srv, token, id), v).packets;
    const resumed = await until('capture to resume', async () => {
      const rec = await getRec(srv, token, id);
      const tv = trackOf(rec, v);
      const ta = trackOf(rec, a);
      return { ok: tv.state === 'receiving' && ta.state === 'receiving' && tv.packets > before + 20, rec, seen: rec.tracks };
    }, 30000);
    assert.ok(trackOf(resumed.rec, v).notWrittenSeconds >= 2, `lost span counted: ${JSON.stringify(trackOf(resumed.rec, v))}`);
    assert.equal(trackOf(resumed.rec, a).relatched, 0, `the live sender kept its track: ${JSON.stringify(trackOf(resumed.rec, a))}`);
    await until('/healthz 200 again', async () => {
      const r = await health(srv);
      return { ok: r.status === 200, seen: r };
    }, 15000);
    await sleep(2000);

    // ---- full again, and Stop while it is ----
    fill(filler);
    await until('the tracks to fail again', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, v).state === 'failed', seen: rec.tracks };
    });
    await sleep(2000);
    const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token, timeoutMs: 30000 });
    assert.ok(stop.status === 200 || stop.status === 202, `Stop answers on a full disk: ${show(stop)}`);
    t.diagnostic(`Stop on a full disk answered ${stop.status}; warnings ${JSON.stringify(stop.json.warnings)}`);
    assert.equal(stop.json.status, 'stopped', show(stop));
    if (stop.status === 202) {
      assert.ok(stop.json.warnings.some((w) => w.code === 'stop_pending'), show(stop));
      // still shown as stopped while the database refuses it
      const rec = await getRec(srv, token, id);
      assert.equal(rec.status, 'stopped');
      const again = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token });
      assert.equal(again.status, 202, `a second Stop: ${show(again)}`);
    }
    peer.close();

    fs.rmSync(filler);
    const rec = await waitDone(srv, token, id);
    const warnings = rec.warnings;
    t.diagnostic(`done with warnings ${JSON.stringify(warnings)}`);
    assert.ok(Array.isArray(warnings), show({ status: 200, json: rec }));
    assert.ok(!warnings.some((w) => w.code === 'stop_pending'), `the stop was saved: ${JSON.stringify(warnings)}`);
    for (const [kind, tid] of [['video', v], ['audio', a]]) {
      const w = warnings.find((x) => x.code === 'disk_full' && x.trackId === tid);
      assert.ok(w, `a disk_full warning for the ${kind} track: ${JSON.stringify(warnings)}`);
      assert.equal(w.peerId, 'peer-ada');
      assert.match(w.message, new RegExp(`Ada Lovelace's ${kind} track: \\d+\\.\\d s \\(\\d+ packets\\) not recorded because the recordings disk was full`));
      assert.ok(w.seconds >= 3, `two spans (3 s and 2 s at least) lost on ${kind}: ${JSON.stringify(w)}`);
      assert.ok(w.packets > 0);
    }
    assert.ok(Array.isArray(rec.metadata.warnings) && rec.metadata.warnings.length >= 2, `metadata says it too: ${JSON.stringify(rec.metadata)}`);
    assert.ok(rec.downloadUrl, 'done with its file');

    // the capture has the gap written into it, and packets after it
    const file = findFile(ctx.dataDir, `${v}.vtpcap`);
    assert.ok(file, 'the video capture file');
    const inspect = spawnSync(BIN, ['inspect', '--json', file], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    const summary = JSON.parse(inspect.stdout);
    assert.ok(summary.notWritten.spans >= 1, `a gap record: ${inspect.stdout}`);
    assert.ok(summary.end === 'clean', `the capture ends clean: ${summary.end}`);
    // in segments that each end clean, none missing: a switch due while
    // the disk was full waited until writing resumed (the gap went first).
    // How many depends on how long writing went through, which a busy
    // machine stretches or shortens: at least the first, the one opened
    // when writing resumed, and one more in the 2 s before the disk filled
    // again.
    assert.ok(summary.segments.length >= 3, `segments: ${JSON.stringify(summary.segments)}`);
    assert.ok(summary.segments.every((x) => x.end === 'clean'), JSON.stringify(summary.segments));
    assert.equal(summary.segmentsMissing, 0);

    // ---- the pages show the warnings ----
    const page = await srv.api('GET', '/web/recording.html');
    assert.equal(page.status, 200);
    assert.match(page.text, /id="warnings"/);
    const js = await srv.api('GET', '/web/recordings.js');
    assert.match(js.text, /function warningsBox\(rec/);
    assert.match(js.text, /rec\.warnings/);
    const recJs = await srv.api('GET', '/web/recording.js');
    assert.match(recJs.text, /R\.warningsBox\(rec\)/);
    await pageShowsWarnings(srv, token, id, warnings);
  } finally {
    peer.close();
  }
});

/** Chromium, when installed: the recording page and the library card show the warning. */
async function pageShowsWarnings(srv, token, id, warnings) {
  if (!fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) {
    console.log('# diskfull: no Chromium; the pages were checked over HTTP only');
    return;
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.log('# diskfull: playwright-core is not installed (tests/package.json); the pages were checked over HTTP only');
    return;
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const me = await srv.api('GET', '/api/v1/users/me', { token });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const session = { token, expiresAt: new Date(Date.now() + 3600e3).toISOString(), user: me.json };
    await context.addInitScript((s) => localStorage.setItem('vtp.session', s), JSON.stringify(session));
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${srv.url}/web/recording.html?id=${id}`);
    await page.waitForSelector('#warnings li[data-code="disk_full"]', { timeout: 30000 });
    const text = await page.textContent('#warnings');
    for (const w of warnings.filter((x) => x.code === 'disk_full')) assert.ok(text.includes(w.message), `page shows: ${w.message}\n${text}`);
    if (process.env.VTP_TEST_ARTIFACTS) {
      const dir = path.join(process.env.VTP_TEST_ARTIFACTS, 'diskfull');
      fs.mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: path.join(dir, 'recording-warnings.png'), fullPage: true });
    }
    await page.goto(`${srv.url}/web/library.html`);
    await page.waitForSelector(`article.card[data-id="${id}"] [data-role="warnings"]`, { timeout: 30000 });
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await browser.close();
  }
}

test('only the recordings disk full: Stop answers 200 at once, healthz names the disk', { skip: SKIP, timeout: 600000 }, async () => {
  const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-diskfull-db-'));
  try {
    const { ctx, srv, token } = await fullDiskServer({ dbDir });
    const filler = path.join(ctx.dataDir, 'filler');
    const start = await srv.api('POST', '/api/v1/recordings/start', {
      token, body: { roomId: `room-${rand(4)}`, title: 'Recordings disk full', bitrate: 300 },
    });
    assert.equal(start.status, 201, show(start));
    const id = start.json.recordingId;
    const peer = await startPeer(srv, token, id, 60);
    try {
      const v = peer.tracks.video;
      await until('packets captured', async () => {
        const rec = await getRec(srv, token, id);
        return { ok: trackOf(rec, v).packets > 20, seen: rec.tracks };
      });
      fill(filler);
      const h = await until('/healthz 503', async () => {
        const r = await health(srv);
        return { ok: r.status === 503, ...r, seen: r };
      }, 15000);
      assert.equal(h.json.database, 'ok', `the database is elsewhere: ${JSON.stringify(h.json)}`);
      assert.match(h.json.reason, /data disk full/, JSON.stringify(h.json));
      // a new track cannot get a capture file: 503 disk_full, not 500
      const reg = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
        token, body: { peerId: 'late', fullName: 'Late Comer', kind: 'audio', codec: 'opus', payloadType: 111 },
      });
      assert.equal(reg.status, 503, show(reg));
      assert.equal(reg.json.error.code, 'disk_full', show(reg));
      await until('the video track to fail', async () => {
        const rec = await getRec(srv, token, id);
        return { ok: trackOf(rec, v).state === 'failed', seen: rec.tracks };
      });
      await sleep(2000);
      const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token, timeoutMs: 30000 });
      assert.equal(stop.status, 200, show(stop));
      assert.equal(stop.json.status, 'stopped');
      const w = stop.json.warnings.find((x) => x.code === 'disk_full' && x.trackId === v);
      assert.ok(w && w.seconds >= 1.5, `the stopped recording says what was lost: ${JSON.stringify(stop.json.warnings)}`);
      peer.close();
      fs.rmSync(filler);
      const rec = await waitDone(srv, token, id);
      assert.ok(rec.warnings.some((x) => x.code === 'disk_full' && x.trackId === v), JSON.stringify(rec.warnings));
    } finally {
      peer.close();
    }
  } finally {
    await cleanupAll();
    for (const m of mounts.splice(0)) umount(m);
    fs.rmSync(dbDir, { recursive: true, force: true });
  }
});

/** A bare RTP packet (PT 111, 60 bytes of payload). */
function rtp(seq, ts, ssrc) {
  const b = Buffer.alloc(12 + 60, 0x42);
  b[0] = 0x80; b[1] = 111; b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE(ts >>> 0, 4); b.writeUInt32BE(ssrc >>> 0, 8);
  return b;
}

/** Sends a packet every 20 ms from its own UDP socket until stopped. */
async function rtpSender(port, { seq, ts, ssrc }) {
  const sock = dgram.createSocket('udp4');
  await new Promise((res) => sock.bind(0, '127.0.0.1', res));
  const timer = setInterval(() => {
    sock.send(rtp(seq, ts, ssrc), port, '127.0.0.1');
    seq += 1; ts += 960;
  }, 20);
  return { stop() { clearInterval(timer); try { sock.close(); } catch { /* closed */ } } };
}

test('a sender replaced while the disk is full: the relatch note reaches the packet log once space is back', { skip: SKIP, timeout: 600000 }, async () => {
  const { ctx, srv, token } = await fullDiskServer();
  const filler = path.join(ctx.dataDir, 'filler');
  const start = await srv.api('POST', '/api/v1/recordings/start', {
    token, body: { roomId: `room-${rand(4)}`, title: 'Relatch on a full disk' },
  });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  const reg = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
    token, body: { peerId: 'peer-ada', fullName: 'Ada Lovelace', kind: 'audio', codec: 'opus', payloadType: 111 },
  });
  assert.equal(reg.status, 201, show(reg));
  const tid = reg.json.trackId;
  // the same SSRC from both senders: only the note tells the composer that
  // the second one's numbering is a new space
  let a = await rtpSender(reg.json.port, { seq: 100, ts: 1000, ssrc: 0x1234abcd });
  let b = null;
  try {
    await until('packets captured', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).packets > 20, seen: rec.tracks };
    });
    fill(filler);
    await until('the track to fail', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).state === 'failed', seen: rec.tracks };
    });
    a.stop(); a = null;
    await sleep(2600); // silent longer than the 2 s after which a new sender may take over
    b = await rtpSender(reg.json.port, { seq: 40000, ts: 7000000, ssrc: 0x1234abcd });
    await until('the track to follow the new sender', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).relatched === 1, seen: rec.tracks };
    });
    await sleep(500);
    fs.rmSync(filler);
    const resumed = await until('capture to resume', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).state === 'receiving', rec, seen: rec.tracks };
    });
    const before = trackOf(resumed.rec, tid).packets;
    await until('packets after the gap', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).packets > before + 20, seen: rec.tracks };
    });
    b.stop(); b = null;
    const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token, timeoutMs: 30000 });
    assert.equal(stop.status, 200, show(stop));
    const file = findFile(ctx.dataDir, `${tid}.vtpcap`);
    assert.ok(file, 'the capture file');
    const inspect = spawnSync(BIN, ['inspect', '--json', file], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    const summary = JSON.parse(inspect.stdout);
    assert.ok(summary.notWritten.spans >= 1, `a gap record: ${inspect.stdout}`);
    assert.equal(summary.relatches, 1, `the relatch note is in the packet log: ${inspect.stdout}`);
    // read with the note, the new sender's numbering is a new space, not a jump back
    assert.equal(summary.reorderedOrDuplicate, 0, inspect.stdout);
  } finally {
    if (a) a.stop();
    if (b) b.stop();
  }
});

test('a crash after a full disk: the recovered recording warns what the disk did not take', { skip: SKIP, timeout: 600000 }, async () => {
  const { ctx, srv, token } = await fullDiskServer();
  const filler = path.join(ctx.dataDir, 'filler');
  const start = await srv.api('POST', '/api/v1/recordings/start', {
    token, body: { roomId: `room-${rand(4)}`, title: 'Crash after a full disk' },
  });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  const reg = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
    token, body: { peerId: 'peer-ada', fullName: 'Ada Lovelace', kind: 'audio', codec: 'opus', payloadType: 111 },
  });
  assert.equal(reg.status, 201, show(reg));
  const tid = reg.json.trackId;
  let sender = await rtpSender(reg.json.port, { seq: 1, ts: 0, ssrc: 0x0badcafe });
  try {
    await until('packets captured', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).packets > 20, seen: rec.tracks };
    });
    fill(filler);
    await until('the track to fail', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).state === 'failed', seen: rec.tracks };
    });
    await sleep(1500);
    fs.rmSync(filler);
    const resumed = await until('capture to resume', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).state === 'receiving', rec, seen: rec.tracks };
    });
    const before = trackOf(resumed.rec, tid).packets;
    await until('packets after the gap', async () => {
      const rec = await getRec(srv, token, id);
      return { ok: trackOf(rec, tid).packets > before + 50, seen: rec.tracks };
    });
    sender.stop(); sender = null;
    await sleep(1000); // flushed every 500 ms: the gap record and what followed are in the file
    await srv.kill9();
    await srv.restart();
    const rec = (await until('the recovered recording', async () => {
      const r = await getRec(srv, token, id);
      return { ok: r.status !== 'recording', rec: r, seen: { status: r.status, warnings: r.warnings } };
    })).rec;
    const t = trackOf(rec, tid);
    assert.ok(t.notWrittenPackets > 0, `the log's gap record counted: ${JSON.stringify(t)}`);
    assert.equal(t.notWrittenReason, 'disk_full', JSON.stringify(t));
    const w = (rec.warnings || []).find((x) => x.trackId === tid);
    assert.ok(w, `a warning for the track: ${JSON.stringify(rec.warnings)}`);
    assert.equal(w.code, 'disk_full', JSON.stringify(w));
  } finally {
    if (sender) sender.stop();
  }
});
