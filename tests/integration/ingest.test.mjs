// RTP ingest through the real path: the tracks API, real senders (ffmpeg
// VP8+Opus and H.264+Opus, GStreamer rtpvp8pay), counted through a relay so
// that every packet sent can be found in the capture, feedback (PLI, FIR,
// receiver reports) seen by the sender's side, hostile datagrams on every
// port, captures read back by `vtp-recorder inspect` and decoded by ffmpeg's
// own RTP demuxer, and recovery after kill -9.
// backend-independent: the media path (RTP capture); runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, cleanupAll, sleep, rand, BIN } from './lib/server.mjs';
import { show, expectError, makeUsers, startRec, stopRec, waitFor } from './lib/util.mjs';
import { run, Relay, ffmpegArgs, readCapture, decodeCapture } from './lib/media.mjs';

let srv;
// /metrics is protected here, so that the per-track series show
const METRICS_TOKEN = `it-metrics-${Math.random().toString(36).slice(2)}`;
const metricsText = () => fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).then((x) => x.text());
let u;

before(async () => {
  srv = await startServer({ env: { VTP_METRICS_TOKEN: METRICS_TOKEN } });
  u = await makeUsers(srv, { owner: 'instructor', other: 'instructor', stu: 'student', svc: 'service', admin: 'admin' });
});
after(cleanupAll);

const addTrack = (token, id, body) => srv.api('POST', `/api/v1/recordings/${id}/tracks`, { token, body });
const endTrack = (token, id, tid) => srv.api('DELETE', `/api/v1/recordings/${id}/tracks/${tid}`, { token });
const getRec = async (token, id) => {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(r.status, 200, show(r));
  return r.json;
};
const video = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'video', codec: 'vp8', payloadType: 96, ...extra });
const audio = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'audio', codec: 'opus', payloadType: 111, ...extra });

function captureFiles(recId) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(recId) && p.endsWith('.vtpcap')) out.push(p);
    }
  };
  walk(path.join(srv.dataDir, 'recordings'));
  return out;
}

async function registered(token, id, body) {
  const r = await addTrack(token, id, body);
  assert.equal(r.status, 201, show(r));
  assert.match(r.json.trackId, /^[0-9a-f-]{36}$/);
  assert.equal(r.json.ip, '127.0.0.1');
  assert.equal(r.json.rtcpMux, true);
  assert.ok(Number.isInteger(r.json.port) && r.json.port > 0);
  return r.json;
}


async function inspect(file) {
  const r = await run(BIN, ['inspect', '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// ---- the tracks API ---------------------------------------------------------------

test('tracks API: validation, permissions, states', async () => {
  const r = await startRec(srv, u.owner.token);
  const bad = [
    [{ ...video(), kind: 'screen' }, 'kind'],
    [{ ...video(), codec: 'av1' }, 'codec'],
    [{ ...video(), codec: 'opus' }, 'codec'],
    [{ ...audio(), codec: 'vp8' }, 'codec'],
    [{ ...video(), payloadType: 128 }, 'payloadType'],
    [{ ...video(), payloadType: -1 }, 'payloadType'],
    [{ ...video(), payloadType: '96' }, 'payloadType'],
    [{ ...video(), payloadType: 72 }, 'payloadType'],
    [{ ...video(), clockRate: 48000 }, 'clockRate'],
    [{ ...audio(), clockRate: 8000 }, 'clockRate'],
    [{ ...video(), ssrc: 4294967296 }, 'ssrc'],
    [{ ...video(), ssrc: -5 }, 'ssrc'],
    [{ ...video(), peerId: '' }, 'peerId'],
    [{ ...video(), peerId: 'a\u0001b' }, 'peerId'],
    [{ ...video(), fullName: 'x'.repeat(256) }, 'fullName'],
    [{ ...video(), userId: 'not-a-uuid' }, 'userId'],
    [(({ kind, ...rest }) => rest)(video()), 'kind'],
    [(({ payloadType, ...rest }) => rest)(video()), 'payloadType'],
  ];
  for (const [body, field] of bad) {
    const res = await addTrack(u.owner.token, r.id, body);
    expectError(res, 400, 'invalid_input', field, JSON.stringify(body));
  }
  // permissions: starter, admin and service may; others may not (invisible: 404)
  assert.equal((await addTrack(u.stu.token, r.id, video())).status, 404);
  assert.equal((await addTrack(u.other.token, r.id, video())).status, 404);
  await registered(u.admin.token, r.id, video({ peerId: 'by-admin' }));
  await registered(u.svc.token, r.id, audio({ peerId: 'by-service', ssrc: 1234, clockRate: 48000, role: 'student', userId: u.stu.id }));
  const unknown = await addTrack(u.owner.token, '00000000-0000-4000-8000-000000000000', video());
  assert.equal(unknown.status, 404, show(unknown));
  // ending: unknown track 404; a real one 200, then 404
  const t = await registered(u.owner.token, r.id, video({ peerId: 'leaver' }));
  assert.equal((await endTrack(u.owner.token, r.id, '00000000-0000-4000-8000-000000000000')).status, 404);
  assert.equal((await endTrack(u.owner.token, r.id, 'nope')).status, 404);
  const ended = await endTrack(u.owner.token, r.id, t.trackId);
  assert.equal(ended.status, 200, show(ended));
  assert.equal((await endTrack(u.owner.token, r.id, t.trackId)).status, 404);
  // a stopped recording takes no tracks
  await stopRec(srv, u.owner.token, r.id);
  expectError(await addTrack(u.owner.token, r.id, video()), 409, 'not_active');
  // the access log names the track operations
  const log = await srv.api('GET', `/api/v1/recordings/${r.id}/access-log?limit=100`, { token: u.owner.token });
  const types = log.json.entries.map((e) => e.accessType);
  assert.ok(types.includes('track_add') && types.includes('track_end'), JSON.stringify(types));
});

test('no free media port: 503 no_ports, and ports come back when tracks end', async () => {
  const small = await startServer({ env: { VTP_RTP_PORT_MIN: 45210, VTP_RTP_PORT_MAX: 45211 } });
  const [o] = Object.values(await makeUsers(small, { o: 'instructor' }));
  const res = await small.api('POST', '/api/v1/recordings/start', { token: o.token, body: { roomId: `r-${rand(4)}`, title: 'ports' } });
  const id = res.json.recordingId;
  const add = (b) => small.api('POST', `/api/v1/recordings/${id}/tracks`, { token: o.token, body: b });
  const a = await add(video({ peerId: 'p1' }));
  const b = await add(video({ peerId: 'p2' }));
  assert.equal(a.status, 201, show(a));
  assert.equal(b.status, 201, show(b));
  assert.deepEqual([a.json.port, b.json.port].sort(), [45210, 45211]);
  expectError(await add(video({ peerId: 'p3' })), 503, 'no_ports');
  const end = await small.api('DELETE', `/api/v1/recordings/${id}/tracks/${a.json.trackId}`, { token: o.token });
  assert.equal(end.status, 200, show(end));
  const c = await add(video({ peerId: 'p3' }));
  assert.equal(c.status, 201, show(c));
  assert.equal(c.json.port, a.json.port);
  await small.stop();
});

// ---- real senders ------------------------------------------------------------------

async function senderScenario(codec) {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ codec, peerId: `peer-${codec}`, userId: u.stu.id, role: 'student' }));
  const at = await registered(u.owner.token, r.id, audio({ peerId: `peer-${codec}`, userId: u.stu.id, role: 'student' }));
  const vr = await new Relay(vt.port).start();
  const ar = await new Relay(at.port).start();
  try {
    const ff = await run('ffmpeg', ffmpegArgs({ videoPort: vr.port, audioPort: ar.port, seconds: 3, video: codec }));
    assert.equal(ff.code, 0, ff.stderr);
    await sleep(600); // the last datagrams, then a receiver report

    // live statistics while still recording: every packet sent is counted
    const live = await getRec(u.owner.token, r.id);
    const lv = live.tracks.find((t) => t.trackId === vt.trackId);
    const la = live.tracks.find((t) => t.trackId === at.trackId);
    assert.ok(lv && la, JSON.stringify(live.tracks));
    assert.equal(lv.packets, vr.rtp, `video packets ${lv.packets} vs sent ${vr.rtp}`);
    assert.equal(la.packets, ar.rtp, `audio packets ${la.packets} vs sent ${ar.rtp}`);
    assert.ok(vr.rtp > 60 && ar.rtp > 100, `senders sent ${vr.rtp} video and ${ar.rtp} audio packets`);
    for (const t of [lv, la]) {
      assert.equal(t.lost, 0);
      assert.equal(t.dropped, 0);
      assert.equal(t.state, 'receiving');
      assert.ok(t.bytes > 0 && t.firstPacketAt && t.lastPacketAt);
    }
    assert.equal(live.participantCount, 1);
    // feedback reached the sender's side: a PLI and a FIR for the video at
    // its start, receiver reports for both
    assert.ok(vr.feedback.pli >= 1 && vr.feedback.fir >= 1, JSON.stringify(vr.feedback));
    assert.ok(vr.feedback.rr >= 1 && ar.feedback.rr >= 1, JSON.stringify([vr.feedback, ar.feedback]));
    assert.equal(ar.feedback.pli, 0, 'no PLI for audio');

    // /metrics carries the per-track series, to the holder of VTP_METRICS_TOKEN
    // only (recordings.test.mjs: without the variable it names no id)
    assert.equal((await fetch(`${srv.url}/metrics`)).status, 401);
    const m = await metricsText();
    assert.match(m, new RegExp(`vtp_track_packets_total\\{recording="${r.id}",track="${vt.trackId}",kind="video"\\} ${vr.rtp}`));

    // stop: summary kept, participant closed
    const stopped = await stopRec(srv, u.owner.token, r.id);
    assert.equal(stopped.status, 'stopped');
    const sv = stopped.tracks.find((t) => t.trackId === vt.trackId);
    assert.equal(sv.state, 'ended');
    assert.equal(sv.packets, vr.rtp);
    const parts = await srv.api('GET', `/api/v1/recordings/${r.id}/participants`, { token: u.owner.token });
    assert.equal(parts.json.participants.length, 1, show(parts));
    const p = parts.json.participants[0];
    assert.equal(p.peerId, `peer-${codec}`);
    assert.equal(p.fullName, 'Ada Lovelace');
    assert.equal(p.userId, u.stu.id);
    assert.equal(p.role, 'student');
    assert.ok(Date.parse(p.joinedAt) <= Date.parse(la.firstPacketAt) + 1);
    assert.ok(p.leftAt && Date.parse(p.leftAt) >= Date.parse(p.joinedAt));

    // the captures: every RTP packet, byte-exact count, readable by inspect, decodable
    const files = captureFiles(r.id);
    assert.equal(files.length, 2, JSON.stringify(files));
    for (const f of files) {
      const st = fs.statSync(f);
      assert.equal(st.mode & 0o777, 0o600, `${f} mode ${(st.mode & 0o777).toString(8)}`);
      const cap = readCapture(f);
      const relay = cap.meta.kind === 'video' ? vr : ar;
      assert.equal(cap.end, 'clean');
      assert.equal(cap.records.filter((x) => x.kind === 1).length, relay.rtp);
      assert.ok(cap.records.some((x) => x.kind === 2 && x.data[1] === 200), 'a sender report was kept');
      const ins = await inspect(f);
      assert.equal(ins.rtpPackets, relay.rtp);
      assert.equal(ins.end, 'clean');
      assert.equal(ins.gaps, 0);
      assert.ok(ins.mediaSeconds > 2.5 && ins.mediaSeconds < 3.5, `media ${ins.mediaSeconds} s`);
      assert.equal(ins.meta.codec, cap.meta.kind === 'video' ? codec : 'opus');
      const dec = await decodeCapture(f);
      const want = cap.meta.kind === 'video' ? 85 : 140; // 3 s: 90 frames, 150 Opus packets
      assert.ok(dec.frames >= want, `${cap.meta.kind}/${cap.meta.codec}: ffmpeg decoded ${dec.frames} frames (${dec.stderr})`);
      assert.equal(dec.stderr.trim(), '', `decoder complained: ${dec.stderr}`);
    }
  } finally {
    vr.close();
    ar.close();
  }
}

test('ffmpeg VP8 + Opus: counted, fed back, captured, decodable', () => senderScenario('vp8'));
test('ffmpeg H.264 + Opus: counted, fed back, captured, decodable', () => senderScenario('h264'));

test('GStreamer rtpvp8pay into a registered port', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'gst' }));
  const relay = await new Relay(vt.port).start();
  try {
    const g = await run('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=60', '!',
      'video/x-raw,width=320,height=240,framerate=30/1', '!', 'vp8enc', 'deadline=1', '!',
      'rtpvp8pay', 'pt=96', '!', 'udpsink', 'host=127.0.0.1', `port=${relay.port}`]);
    assert.equal(g.code, 0, g.stderr);
    await sleep(400);
    const rec = await stopRec(srv, u.owner.token, r.id);
    const t = rec.tracks.find((x) => x.trackId === vt.trackId);
    assert.equal(t.packets, relay.rtp);
    assert.ok(relay.rtp >= 60, `gst sent ${relay.rtp}`);
    const [f] = captureFiles(r.id);
    const dec = await decodeCapture(f);
    assert.ok(dec.frames >= 55, `decoded ${dec.frames} of 60 frames: ${dec.stderr}`);
  } finally {
    relay.close();
  }
});

// ---- hostile datagrams ----------------------------------------------------------------

test('garbage, foreign sources, wrong PT/SSRC and oversize datagrams are dropped and counted', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'target', ssrc: 0x01020304 }));
  const relay = await new Relay(vt.port).start();
  const stranger = dgram.createSocket('udp4');
  await new Promise((res) => stranger.bind(0, '127.0.0.1', res));
  const send = (sock, buf) => new Promise((res) => sock.send(buf, vt.port, '127.0.0.1', res));
  const rtp = (seq, { pt = 96, ssrc = 0x01020304, payload = 100 } = {}) => {
    const b = Buffer.alloc(12 + payload, 0x55);
    b[0] = 0x80; b[1] = pt; b.writeUInt16BE(seq, 2); b.writeUInt32BE(seq * 3000, 4); b.writeUInt32BE(ssrc, 8);
    return b;
  };
  try {
    const before = await metricsText();
    const count = (text, reason) => Number((text.match(new RegExp(`vtp_ingest_dropped_total\\{reason="${reason}"\\} (\\d+)`)) || [0, 0])[1]);
    // garbage before anything latched: no latch, dropped
    await send(relay.outSock, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await send(relay.outSock, Buffer.alloc(0));
    await send(relay.outSock, Buffer.from([0x80]));
    // a good stream from the relay's socket
    for (let s = 1; s <= 20; s++) await relay.inject(rtp(s));
    // from another socket: wrong source
    for (let s = 21; s <= 25; s++) await send(stranger, rtp(s));
    // wrong payload type, wrong SSRC, duplicate, truncated header, bad padding, oversize
    await relay.inject(rtp(26, { pt: 97 }));
    await relay.inject(rtp(27, { ssrc: 0x0a0b0c0d }));
    await relay.inject(rtp(5));
    await relay.inject(Buffer.from([0x8f, 96, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4])); // 15 CSRCs promised
    const pad = rtp(28); pad[0] |= 0x20; pad[pad.length - 1] = 250; await relay.inject(pad);
    await relay.inject(rtp(29, { payload: 5000 }));
    // RTCP that lies about its length
    await relay.inject(Buffer.from([0x80, 200, 0, 50, 1, 2, 3, 4]));
    for (let s = 30; s <= 40; s++) await relay.inject(rtp(s));
    await sleep(300);
    const live = await getRec(u.owner.token, r.id);
    const t = live.tracks.find((x) => x.trackId === vt.trackId);
    assert.equal(t.packets, 31, JSON.stringify(t)); // 1..20 and 30..40
    assert.equal(t.duplicates, 1);
    const after = await metricsText();
    const d = (reason) => count(after, reason) - count(before, reason);
    assert.equal(d('wrong_source'), 5);
    assert.equal(d('wrong_payload_type'), 1);
    assert.equal(d('wrong_ssrc'), 1);
    assert.equal(d('duplicate'), 1);
    assert.equal(d('oversize'), 1);
    assert.ok(d('garbage') >= 4, `garbage ${d('garbage')}`); // text, 1 byte, CSRC overflow, padding, RTCP (empty may not arrive)
    // garbage at every registered port of this server: nothing crashes
    const ports = [];
    for (let i = 0; i < 3; i++) ports.push((await registered(u.owner.token, r.id, audio({ peerId: `n${i}` }))).port);
    for (const p of [...ports, vt.port]) {
      for (let i = 0; i < 200; i++) {
        const junk = Buffer.alloc(1 + Math.floor(Math.random() * 1400));
        for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(Math.random() * 256);
        await new Promise((res) => stranger.send(junk, p, '127.0.0.1', res));
      }
    }
    await sleep(200);
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    const rec = await stopRec(srv, u.owner.token, r.id);
    assert.equal(rec.tracks.find((x) => x.trackId === vt.trackId).packets, 31);
    const cap = readCapture(captureFiles(r.id).find((f) => f.includes(vt.trackId)));
    assert.equal(cap.records.filter((x) => x.kind === 1).length, 31);
    assert.equal(cap.end, 'clean');
  } finally {
    relay.close();
    stranger.close();
  }
});

// ---- crash ---------------------------------------------------------------------------

test('kill -9 mid-recording: logs readable to within a second, recording stopped on restart', async () => {
  // no processing workers: the recovered recording stays stopped for the checks below
  const crash = await startServer({ env: { VTP_WORKERS: 0 } });
  const [o] = Object.values(await makeUsers(crash, { o: 'instructor' }));
  const res = await crash.api('POST', '/api/v1/recordings/start', { token: o.token, body: { roomId: `crash-${rand(4)}`, title: 'crash' } });
  const id = res.json.recordingId;
  const tr = await crash.api('POST', `/api/v1/recordings/${id}/tracks`, { token: o.token, body: audio({ peerId: 'c' }) });
  assert.equal(tr.status, 201, show(tr));
  const relay = await new Relay(tr.json.port).start();
  const ff = run('ffmpeg', ffmpegArgs({ audioPort: relay.port, seconds: 6 }));
  await waitFor(() => relay.rtp > 150, 'three seconds of audio');
  const sentAtKill = relay.rtp;
  await crash.kill9();
  await ff;
  relay.close();
  await crash.restart();
  const rec = (await crash.api('GET', `/api/v1/recordings/${id}`, { token: o.token })).json;
  assert.equal(rec.status, 'stopped', JSON.stringify(rec));
  assert.ok(rec.metadata && /interrupted|stopped while recording/.test(JSON.stringify(rec.metadata)), JSON.stringify(rec.metadata));
  assert.ok(rec.stoppedAt && rec.durationSeconds > 2, JSON.stringify(rec));
  const t = rec.tracks[0];
  // Opus at 50 packets/s: at most one second (50 packets) may be missing
  assert.ok(t.packets >= sentAtKill - 50 && t.packets <= sentAtKill + 5, `kept ${t.packets} of ${sentAtKill} sent before the kill`);
  const file = (() => {
    const out = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (p.endsWith('.vtpcap')) out.push(p); } };
    walk(path.join(crash.dataDir, 'recordings'));
    return out[0];
  })();
  const cap = readCapture(file);
  assert.ok(['clean', 'torn'].includes(cap.end));
  assert.equal(cap.records.filter((x) => x.kind === 1).length, t.packets);
  const parts = (await crash.api('GET', `/api/v1/recordings/${id}/participants`, { token: o.token })).json.participants;
  assert.equal(parts.length, 1);
  assert.ok(parts[0].leftAt, 'participant closed by the recovery');
  await crash.stop();
});

// ---- presence ------------------------------------------------------------------------

test('a peer silent for 10 s has left; when it sends again it is present again', async () => {
  const r = await startRec(srv, u.owner.token);
  const at = await registered(u.owner.token, r.id, audio({ peerId: 'quiet' }));
  const relay = await new Relay(at.port).start();
  let seq = 1000;
  const burst = async (n) => {
    for (let i = 0; i < n; i++, seq++) {
      const b = Buffer.alloc(12 + 80, 0x11);
      b[0] = 0x80; b[1] = 111; b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE(seq * 960, 4); b.writeUInt32BE(0xabcdef01, 8);
      await relay.inject(b);
      await sleep(20);
    }
  };
  const participants = async () => (await srv.api('GET', `/api/v1/recordings/${r.id}/participants`, { token: u.owner.token })).json.participants;
  try {
    await burst(25);
    const first = await waitFor(async () => { const p = await participants(); return p.length === 1 ? p : null; }, 'the peer to join');
    assert.equal(first[0].leftAt, null);
    const lastSent = Date.now();
    const gone = await waitFor(async () => { const p = await participants(); return p[0].leftAt ? p : null; }, 'the peer to leave', 14000);
    // leftAt is the last packet, not the moment the silence was noticed
    const left = Date.parse(gone[0].leftAt);
    assert.ok(left <= lastSent + 200 && left >= lastSent - 1500, `leftAt ${gone[0].leftAt} vs last packet ~${new Date(lastSent).toISOString()}`);
    assert.ok(Date.now() - lastSent >= 9500, 'left only after about 10 s of silence');
    assert.equal((await getRec(u.owner.token, r.id)).tracks[0].state, 'idle');
    await burst(5);
    const again = await waitFor(async () => { const p = await participants(); return p[0].leftAt === null ? p : null; }, 'the peer to be back');
    assert.equal(again.length, 1, 'one row per peer');
    assert.equal(again[0].joinedAt, first[0].joinedAt, 'joinedAt stays the first arrival');
    const rec = await stopRec(srv, u.owner.token, r.id);
    assert.equal(rec.participantCount, 1);
    assert.equal(rec.tracks[0].packets, 30);
    const closed = await participants();
    assert.ok(closed.every((p) => p.leftAt), JSON.stringify(closed));
  } finally {
    relay.close();
  }
});
