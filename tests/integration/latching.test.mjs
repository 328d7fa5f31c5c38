// Plain-RTP latching through the real path (hardening issue, point 1): the
// real binary, real UDP, real senders (ffmpeg, GStreamer srtpenc). A packet
// the track would drop (another payload type, another SSRC than the
// registered one, RTCP from another host) sent before the real sender must
// not choose the track's source; a sender silent for 2 s may be replaced by
// a new one (another port, another SSRC) and the composed file covers both;
// ports are handed out unpredictably; SRTP tracks take only the key holder's
// media and protect their feedback; a track's userId names a real user.
// backend-independent: the media path; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, cleanupAll, sleep, BIN } from './lib/server.mjs';
import { show, expectError, makeUsers, startRec, waitFor } from './lib/util.mjs';
import { run, Relay, MediaRelay, ffmpegArgs, lavfiSenderArgs, readCapture, decodeCapture } from './lib/media.mjs';
import * as A from './lib/analyze.mjs';

let srv;
let u;

before(async () => {
  srv = await startServer();
  u = await makeUsers(srv, { owner: 'instructor', svc: 'service', stu: 'student' });
});
after(cleanupAll);

const addTrack = (token, id, body) => srv.api('POST', `/api/v1/recordings/${id}/tracks`, { token, body });
const video = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'video', codec: 'vp8', payloadType: 96, ...extra });
const audio = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'audio', codec: 'opus', payloadType: 111, ...extra });

async function registered(token, id, body) {
  const r = await addTrack(token, id, body);
  assert.equal(r.status, 201, show(r));
  return r.json;
}

async function trackOf(id, trackId) {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.owner.token });
  assert.equal(r.status, 200, show(r));
  return r.json.tracks.find((t) => t.trackId === trackId);
}


const metrics = () => fetch(`${srv.url}/metrics`).then((x) => x.text());
const metric = (text, name) => Number((text.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm')) || [0, 0])[1]);
const dropped = (text, reason) => metric(text, `vtp_ingest_dropped_total{reason="${reason}"}`);

function captureOf(recId, trackId) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(recId) && e.name === `${trackId}.vtpcap`) found.push(p);
    }
  };
  walk(path.join(srv.dataDir, 'recordings'));
  assert.equal(found.length, 1, `capture of ${trackId}`);
  return found[0];
}

async function inspect(file) {
  const r = await run(BIN, ['inspect', '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function stopRec(id) {
  const res = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.owner.token, timeoutMs: 60000 });
  assert.equal(res.status, 200, `stop: ${show(res)}`);
  return res.json;
}

/** Waits until the server's worker has composed the recording; its file and ffprobe. */
async function composed(id) {
  const rec = await waitFor(async () => {
    const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.owner.token, timeoutMs: 60000 });
    assert.notEqual(r.json.status, 'failed', `composition failed: ${JSON.stringify(r.json.error)}`);
    return r.json.status === 'done' ? r.json : null;
  }, 'the composed recording', 180000);
  const base = path.join(srv.dataDir, 'recordings');
  let file = null;
  for (const room of fs.readdirSync(base)) {
    const dir = path.join(base, room, id);
    if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir)) if (/^recording\.(webm|mp4)$/.test(f)) file = path.join(dir, f);
  }
  assert.ok(file, 'the composed file exists');
  return { rec, file, info: await A.probe(file) };
}

/** A UDP socket bound on host (127.0.0.1 or another loopback address). */
async function socketOn(host = '127.0.0.1') {
  const s = dgram.createSocket('udp4');
  await new Promise((res, rej) => { s.once('error', rej); s.bind(0, host, res); });
  return s;
}
const sendTo = (sock, buf, port) => new Promise((res) => sock.send(buf, port, '127.0.0.1', res));

/** A bare RTP header (12 bytes) and, optionally, a payload. */
function rtpPacket({ pt, ssrc, seq = 1, ts = 0, payload = 0 }) {
  const b = Buffer.alloc(12 + payload, 0x42);
  b[0] = 0x80; b[1] = pt; b.writeUInt16BE(seq, 2); b.writeUInt32BE(ts, 4); b.writeUInt32BE(ssrc >>> 0, 8);
  return b;
}

/** An RTCP sender report (28 bytes) from ssrc. */
function senderReport(ssrc) {
  const b = Buffer.alloc(28);
  b[0] = 0x80; b[1] = 200; b.writeUInt16BE(6, 2); b.writeUInt32BE(ssrc >>> 0, 4);
  b.writeUInt32BE(0xe0000000, 8); b.writeUInt32BE(1, 12); b.writeUInt32BE(1234, 16);
  return b;
}

/** ffmpeg sending `seconds` of VP8 test video through a counting relay to the track. */
async function ffmpegVideo(relay, seconds = 2) {
  const ff = await run('ffmpeg', ffmpegArgs({ videoPort: relay.port, seconds, video: 'vp8' }));
  assert.equal(ff.code, 0, ff.stderr);
}

// ---- a stray packet first ----------------------------------------------------------------

test('a 12-byte RTP header with another payload type, sent first from another socket, does not take the track', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'stray-pt' }));
  const stray = await socketOn();
  const relay = await new Relay(vt.port).start();
  try {
    const m0 = await metrics();
    await sendTo(stray, rtpPacket({ pt: 0, ssrc: 0x5eed }), vt.port); // 12 bytes, PT 0
    await waitFor(async () => dropped(await metrics(), 'wrong_payload_type') > dropped(m0, 'wrong_payload_type'), 'the stray packet dropped');
    await ffmpegVideo(relay);
    const t = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.packets === relay.rtp && x; }, 'every packet of the real sender');
    assert.ok(relay.rtp > 30, `ffmpeg sent ${relay.rtp}`);
    assert.equal(t.relatched, 0);
    const m1 = await metrics();
    assert.equal(dropped(m1, 'wrong_source') - dropped(m0, 'wrong_source'), 0, 'the real sender was not taken for a stranger');
    assert.ok(relay.feedback.pli >= 1, `feedback went to the real sender: ${JSON.stringify(relay.feedback)}`);
    await stopRec(r.id);
    const { info } = await composed(r.id);
    const v = A.streamOf(info, 'video');
    assert.ok(v, 'the composed file has video');
    assert.ok(Number(info.format.duration) > 1.2, `composed ${info.format.duration} s`);
  } finally {
    relay.close();
    stray.close();
  }
});

test('a packet with another SSRC than the registered one, sent first, does not take the track', async () => {
  const r = await startRec(srv, u.owner.token);
  // ffmpegArgs sends video with SSRC 11111111
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'stray-ssrc', ssrc: 11111111 }));
  const stray = await socketOn();
  const relay = await new Relay(vt.port).start();
  try {
    const m0 = await metrics();
    await sendTo(stray, rtpPacket({ pt: 96, ssrc: 0xdeadbeef }), vt.port);
    await waitFor(async () => dropped(await metrics(), 'wrong_ssrc') > dropped(m0, 'wrong_ssrc'), 'the stray packet dropped');
    await ffmpegVideo(relay);
    await waitFor(async () => (await trackOf(r.id, vt.trackId)).packets === relay.rtp, 'every packet of the real sender');
    assert.ok(relay.rtp > 30, `ffmpeg sent ${relay.rtp}`);
    await stopRec(r.id);
    const f = captureOf(r.id, vt.trackId);
    assert.equal(readCapture(f).records.filter((x) => x.kind === 1).length, relay.rtp);
    const dec = await decodeCapture(f);
    assert.ok(dec.frames >= 50, `decoded ${dec.frames} frames: ${dec.stderr}`);
  } finally {
    relay.close();
    stray.close();
  }
});

test('RTCP from another host never enters the track, before or after the real sender', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'stray-rtcp' }));
  const other = await socketOn('127.0.0.2');
  const relay = await new Relay(vt.port).start();
  const FORGED = 0x0badf00d;
  try {
    const m0 = await metrics();
    await sendTo(other, senderReport(FORGED), vt.port); // before anything
    await ffmpegVideo(relay);
    await waitFor(async () => (await trackOf(r.id, vt.trackId)).packets === relay.rtp, 'every packet of the real sender');
    await sendTo(other, senderReport(FORGED), vt.port); // while latched
    await waitFor(async () => dropped(await metrics(), 'wrong_source') - dropped(m0, 'wrong_source') >= 2, 'both forged reports dropped');
    assert.ok(relay.feedback.rr >= 1 && relay.feedback.pli >= 1, `feedback went to the real sender: ${JSON.stringify(relay.feedback)}`);
    await stopRec(r.id);
    const cap = readCapture(captureOf(r.id, vt.trackId));
    const rtcp = cap.records.filter((x) => x.kind === 2);
    assert.ok(rtcp.some((x) => x.data[1] === 200 && x.data.readUInt32BE(4) === 11111111), "the real sender's reports are kept (also its first, sent before its first RTP)");
    assert.ok(!rtcp.some((x) => x.data.length >= 8 && x.data.readUInt32BE(4) === FORGED), 'no forged report in the capture');
  } finally {
    relay.close();
    other.close();
  }
});

// ---- a sender restarts elsewhere -----------------------------------------------------------

test('a sender silent for 2 s is replaced by one on another port with another SSRC; the composed file covers both', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'restarter' }));
  const at = await registered(u.owner.token, r.id, audio({ peerId: 'restarter' }));
  const palette = { red: [230, 20, 20], blue: [20, 20, 230] };
  const part = (relays, colour, freq, ssrcBase) => run('ffmpeg', lavfiSenderArgs({
    seconds: 3,
    video: { port: relays.v.port, source: `color=c=${colour}:s=320x240:r=30`, codec: 'vp8', ssrc: ssrcBase + 1 },
    audio: { port: relays.a.port, source: `sine=f=${freq}:r=48000`, ssrc: ssrcBase + 2 },
  }), { timeoutMs: 60000 });
  const first = { v: await new MediaRelay(vt.port).start(), a: await new MediaRelay(at.port).start() };
  const stranger = await socketOn();
  let second = null;
  try {
    const m0 = await metrics();
    const run1 = part(first, 'red', 440, 1000);
    // while the first sender is live, another source is a stranger
    await waitFor(async () => (await trackOf(r.id, vt.trackId)).packets > 10, 'the first sender');
    for (let i = 0; i < 5; i++) await sendTo(stranger, rtpPacket({ pt: 96, ssrc: 777, seq: i, payload: 20 }), vt.port);
    const r1 = await run1;
    assert.equal(r1.code, 0, r1.stderr);
    const v1 = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.packets === first.v.rtp && x; }, 'the first part');
    assert.equal(v1.relatched, 0, 'no relatch while the sender was live');
    assert.ok(dropped(await metrics(), 'wrong_source') - dropped(m0, 'wrong_source') >= 5);
    await sleep(2500); // silence
    second = { v: await new MediaRelay(vt.port).start(), a: await new MediaRelay(at.port).start() };
    const r2 = await part(second, 'blue', 880, 5000);
    assert.equal(r2.code, 0, r2.stderr);
    const v2 = await waitFor(async () => {
      const x = await trackOf(r.id, vt.trackId);
      return x.packets === first.v.rtp + second.v.rtp && x;
    }, 'both parts counted');
    const a2 = await waitFor(async () => {
      const x = await trackOf(r.id, at.trackId);
      return x.packets === first.a.rtp + second.a.rtp && x;
    }, 'both audio parts counted');
    assert.equal(v2.relatched, 1, JSON.stringify(v2));
    assert.equal(v2.ssrcChanges, 1, JSON.stringify(v2));
    assert.equal(a2.relatched, 1, JSON.stringify(a2));
    assert.equal(v2.lost, 0, 'the new numbering is not loss');
    const m1 = await metrics();
    assert.ok(metric(m1, 'vtp_ingest_relatched_total') - metric(m0, 'vtp_ingest_relatched_total') >= 2, 'relatches counted');
    assert.ok(second.v.feedback.pli >= 1, `the new sender was asked for a keyframe: ${JSON.stringify(second.v.feedback)}`);
    await stopRec(r.id);

    // the packet log says so, and inspect shows it
    const f = captureOf(r.id, vt.trackId);
    const notes = readCapture(f).records.filter((x) => x.kind === 4).map((x) => JSON.parse(x.data.toString('utf8')));
    assert.equal(notes.length, 1, JSON.stringify(notes));
    assert.equal(notes[0].event, 'relatch');
    assert.equal(notes[0].previousSsrc, 1001);
    assert.ok(notes[0].silentMs >= 2000, JSON.stringify(notes[0]));
    const ins = await inspect(f);
    assert.equal(ins.relatches, 1);
    assert.equal(ins.ssrcChanged, true);
    assert.equal(ins.gaps, 0, 'no sequence gap counted across the senders');
    assert.ok(ins.mediaSeconds > 5 && ins.mediaSeconds < 7, `media ${ins.mediaSeconds} s`);
    const text = await run(BIN, ['inspect', f]);
    assert.match(text.stdout, /followed a new sender 1 time/);

    // the composed file: red then (after the silence) blue; 440 Hz then 880 Hz
    const { info, file } = await composed(r.id);
    const dur = Number(info.format.duration);
    assert.ok(dur > 7, `composed ${dur} s covers both parts (3 s + 2.5 s + 3 s)`);
    const frames = await A.videoFrames(file);
    const seen = (name) => frames.filter((fr) => A.colourRegions(fr, palette)[name].fraction > 0.1).map((fr) => fr.t);
    const red = seen('red');
    const blue = seen('blue');
    assert.ok(red.length > 45, `red shown in ${red.length} frames`);
    assert.ok(blue.length > 45, `blue shown in ${blue.length} frames`);
    assert.ok(Math.max(...red) < Math.min(...blue), 'the first part before the second');
    assert.ok(Math.min(...blue) - Math.max(...red) > 1.5, `the silence stays a gap: red until ${Math.max(...red)}, blue from ${Math.min(...blue)}`);
    const tones = A.toneTrack(await A.audioPcm(file), [440, 880]);
    const peak = (f0) => Math.max(...tones.map((w) => w.amps[f0]));
    const heard = (f0) => tones.filter((w) => w.amps[f0] >= 0.25 * peak(f0) && w.amps[f0] >= 0.01).map((w) => w.t);
    assert.ok(heard(440).length >= 8 && heard(880).length >= 8, `440 Hz in ${heard(440).length}, 880 Hz in ${heard(880).length} windows`);
    assert.ok(Math.max(...heard(440)) < Math.min(...heard(880)), '440 Hz before 880 Hz');
  } finally {
    for (const x of [first, second]) if (x) { x.v.close(); x.a.close(); }
    stranger.close();
  }
});

// ---- ports ------------------------------------------------------------------------------------

test('ports are handed out unpredictably within the range', async () => {
  const min = 20000 + 100 * Math.floor(Math.random() * 300);
  const s2 = await startServer({ env: { VTP_RTP_PORT_MIN: min, VTP_RTP_PORT_MAX: min + 199 } });
  const [o] = Object.values(await makeUsers(s2, { o: 'instructor' }));
  const r = await startRec(s2, o.token);
  const ports = [];
  for (let i = 0; i < 10; i++) {
    const res = await s2.api('POST', `/api/v1/recordings/${r.id}/tracks`, { token: o.token, body: audio({ peerId: `p${i}` }) });
    assert.equal(res.status, 201, show(res));
    ports.push(res.json.port);
  }
  assert.equal(new Set(ports).size, 10);
  for (const p of ports) assert.ok(p >= min && p <= min + 199, `port ${p} in VTP_RTP_PORT_MIN..MAX`);
  const steps = ports.slice(1).map((p, i) => p - ports[i]);
  assert.ok(steps.some((d) => d !== 1), `consecutive registrations got consecutive ports: ${ports.join(', ')}`);
  assert.ok(steps.filter((d) => d === 1).length <= 3, `too many neighbours: ${ports.join(', ')}`);
  await s2.stop();
});

// ---- SRTP ------------------------------------------------------------------------------------

/** GStreamer: VP8 test video, RTP, srtpenc with a 30-byte key, to port. */
function gstSrtpArgs(keyHex, port, buffers = 60) {
  return ['-q', 'videotestsrc', `num-buffers=${buffers}`, '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!',
    'vp8enc', 'deadline=1', '!', 'rtpvp8pay', 'pt=96', 'ssrc=424242', '!',
    'srtpenc', `key=${keyHex}`, 'rtp-cipher=aes-128-icm', 'rtp-auth=hmac-sha1-80',
    'rtcp-cipher=aes-128-icm', 'rtcp-auth=hmac-sha1-80', '!', 'udpsink', 'host=127.0.0.1', `port=${port}`];
}

/** True when every RTCP datagram carries an SRTCP trailer (E flag + index, 10-byte tag). */
function isSrtcp(msg) {
  let off = 0;
  while (off + 4 <= msg.length - 14) off += (msg.readUInt16BE(off + 2) + 1) * 4;
  return off === msg.length - 14 && (msg[off] & 0x80) !== 0;
}

test('SRTP: the key from the registration decrypts a real sender; a wrong key captures nothing; feedback is SRTCP', async () => {
  const r = await startRec(srv, u.owner.token);
  const bad = await addTrack(u.owner.token, r.id, video({ srtp: 'yes' }));
  expectError(bad, 400, 'invalid_input', 'srtp');
  expectError(await addTrack(u.owner.token, r.id, video({ srtp: { keyBase64: 'c2hvcnQ=' } })), 400, 'invalid_input', 'srtp.keyBase64');
  const vt = await registered(u.owner.token, r.id, video({ peerId: 'srtp-ok', srtp: true }));
  assert.equal(vt.srtp.suite, 'AES_CM_128_HMAC_SHA1_80');
  const key = Buffer.from(vt.srtp.keyBase64, 'base64');
  assert.equal(key.length, 30);
  const wrong = await registered(u.owner.token, r.id, video({ peerId: 'srtp-forger', srtp: true }));
  assert.notEqual(wrong.srtp.keyBase64, vt.srtp.keyBase64);
  const plain = await registered(u.owner.token, r.id, video({ peerId: 'plain' }));
  assert.equal(plain.srtp, undefined);
  const ft = await registered(u.owner.token, r.id, video({ peerId: 'srtp-ffmpeg', srtp: true }));
  const relay = await new Relay(vt.port).start();
  const frelay = await new Relay(ft.port).start();
  const forged = await new Relay(wrong.port).start();
  const feedback = [];
  relay.outSock.on('message', (m) => feedback.push(m));
  try {
    const m0 = await metrics();
    // the real sender: GStreamer srtpenc with the key the registration gave
    const g = await run('gst-launch-1.0', gstSrtpArgs(key.toString('hex'), relay.port));
    assert.equal(g.code, 0, g.stderr);
    // a sender with another key (the forger does not know the track's)
    const g2 = await run('gst-launch-1.0', gstSrtpArgs(crypto.randomBytes(30).toString('hex'), forged.port, 30));
    assert.equal(g2.code, 0, g2.stderr);
    // ffmpeg's srtp:// speaks it too
    const ff = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30:duration=1',
      '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-payload_type', '96', '-ssrc', '424242',
      '-f', 'rtp', '-srtp_out_suite', 'AES_CM_128_HMAC_SHA1_80', '-srtp_out_params', ft.srtp.keyBase64,
      `srtp://127.0.0.1:${frelay.port}?pkt_size=1200&rtcpport=${frelay.port}`]);
    assert.equal(ff.code, 0, ff.stderr);
    const t = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.packets === relay.rtp && x; }, 'every SRTP packet decrypted');
    assert.ok(relay.rtp >= 60, `sent ${relay.rtp}`);
    const tw = await waitFor(async () => {
      const x = await trackOf(r.id, wrong.trackId);
      return x.dropped >= forged.rtp && x;
    }, 'the forger dropped');
    assert.equal(tw.packets, 0, 'a wrong key captures nothing');
    const m1 = await metrics();
    assert.ok(dropped(m1, 'srtp_auth') - dropped(m0, 'srtp_auth') >= forged.rtp, 'counted as srtp_auth');
    assert.ok(feedback.length >= 1 && relay.feedback.pli >= 1, `feedback reached the sender: ${JSON.stringify(relay.feedback)}`);
    for (const m of feedback) assert.ok(isSrtcp(m), `feedback is SRTCP: ${m.toString('hex')}`);
    assert.equal(t.dropped, 0, JSON.stringify(t));
    await waitFor(async () => (await trackOf(r.id, ft.trackId)).packets === frelay.rtp, "every packet of ffmpeg's srtp://");
    assert.ok(frelay.rtp >= 30, `ffmpeg sent ${frelay.rtp}`);
    // mediasoup's way: the sender's own key in the request, ours back for its RTCP
    const senderKey = crypto.randomBytes(30);
    const mt = await registered(u.owner.token, r.id, video({ peerId: 'srtp-sfu', srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', keyBase64: senderKey.toString('base64') } }));
    assert.equal(mt.srtp.suite, 'AES_CM_128_HMAC_SHA1_80');
    assert.notEqual(mt.srtp.keyBase64, senderKey.toString('base64'), 'the answer carries the recorder\'s own key');
    const mrelay = await new Relay(mt.port).start();
    try {
      const g3 = await run('gst-launch-1.0', gstSrtpArgs(senderKey.toString('hex'), mrelay.port, 30));
      assert.equal(g3.code, 0, g3.stderr);
      await waitFor(async () => (await trackOf(r.id, mt.trackId)).packets === mrelay.rtp, "every packet of the sender's key");
      assert.ok(mrelay.rtp >= 15, `sent ${mrelay.rtp}`);
    } finally {
      mrelay.close();
    }
    await stopRec(r.id);
    // the capture holds the decrypted media: a decoder reads it
    const f = captureOf(r.id, vt.trackId);
    const dec = await decodeCapture(f);
    assert.ok(dec.frames >= 50, `decoded ${dec.frames} frames: ${dec.stderr}`);
    const fdec = await decodeCapture(captureOf(r.id, ft.trackId));
    assert.ok(fdec.frames >= 25, `decoded ${fdec.frames} frames of ffmpeg's: ${fdec.stderr}`);
    assert.equal(readCapture(captureOf(r.id, wrong.trackId)).records.length, 0);
    // the keys are nowhere in the server's log
    const log = srv.stderr() + srv.stdout();
    for (const k of [vt, ft, wrong]) assert.ok(!log.includes(k.srtp.keyBase64), 'the key is not logged');
  } finally {
    relay.close();
    frelay.close();
    forged.close();
  }
});

// ---- userId ---------------------------------------------------------------------------------

test('a service account credits tracks only to existing users', async () => {
  const r = await startRec(srv, u.owner.token);
  const ghost = crypto.randomUUID();
  expectError(await addTrack(u.svc.token, r.id, audio({ peerId: 'ghost', userId: ghost, role: 'student' })), 400, 'invalid_input', 'userId');
  expectError(await addTrack(u.owner.token, r.id, audio({ peerId: 'ghost', userId: ghost })), 400, 'invalid_input', 'userId');
  await registered(u.svc.token, r.id, audio({ peerId: 'real', userId: u.stu.id, role: 'student' }));
  await stopRec(r.id);
});
