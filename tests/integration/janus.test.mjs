// Recording from an SFU (issue 16): a real Janus (Debian's `janus` 1.1.x,
// started by lib/janus.mjs with its own config in a temp dir) runs a
// VideoRoom; two headless Chromium publishers, each with its own solid
// colour camera and its own tone, publish to it over WebRTC; Janus
// `rtp_forward`s each publisher's audio and video to plain-RTP tracks
// registered on a recording of the real binary, with the payload types
// Chromium negotiated through Janus. The composed file must show both tiles
// and sound both tones. The last test adds a late joiner and an early
// leaver (her forwards dropped by Janus, her tracks ended by the platform):
// the grid and the sound change with them. The two in between pin down what
// the recipe in docs/integrations/janus.md rests on: what Janus forwards
// (payload type, SSRC, no sender reports), what it sends from a forward's
// rtcp_port socket, that feedback sent back to that socket reaches the
// publisher, and what leaving and publishing again do to the forwards.
//
// The recording tests follow the recipe: each forward's rtcp_port is the
// track's own port, Janus's feedback socket announces itself there with its
// keep-alives, and the recorder's keyframe requests reach the publisher
// through it; the rooms have fir_freq 0 (no periodic keyframe requests), so
// every picture in the file is there because the recorder asked for it.
//
// The last two tests run the doc itself: docs/integrations/janus-forward.mjs
// spawned with the doc's flags (passive join, pinned pt/ssrc, --srtp, --stop
// for an early leaver), and a forward whose pinned payload type is not the
// registered one, which the track must report as `misconfigured`.
// backend-independent: media path (RTP capture from an SFU); runs on SQLite only (CMakeLists.txt).
// sanitizer pass: skipped: Janus forwards plain RTP, which the sfu and latching suites send the server under the sanitizers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, makeUsers } from './lib/util.mjs';
import { videoFrames, audioPcm, toneTrack, colourRegions, bboxesOverlap } from './lib/analyze.mjs';
import { personMedia } from './lib/e2e.mjs';
import { janusInstalled, ownAddress, startJanus, servePublisherPage, Publisher, payloadTypeOf } from './lib/janus.mjs';

// Janus's own periodic keyframe request (the room's fir_freq, seconds): 0, so
// each forward's first picture comes from the recorder's PLI/FIR through the
// rtcp_port socket (without them, with fir_freq 0 a publisher's video never
// appears at all). Settable to compare.
const FIR_FREQ = Number(process.env.VTP_TEST_JANUS_FIR_FREQ ?? 0);
// "From the first second": the most a tile may start after the forwards (the
// file starts with the first packet), with slack for a busy machine.
const FIRST_PICTURE_S = 2.5;
const PEOPLE = {
  ada: { rgb: [200, 40, 160], freq: 660, name: 'Ada Lovelace' },
  bob: { rgb: [40, 170, 60], freq: 440, name: 'Bob Janus' },
  cat: { rgb: [40, 80, 220], freq: 550, name: 'Cat Late' },
};

let dir;
let janus;
let srv;
let users;
let page;
const media = {};

before(async () => {
  assert.ok(janusInstalled(), 'Janus is not installed: run scripts/install-deps.sh --test (Debian\'s janus package)');
  assert.ok(ownAddress(), 'this machine has no non-loopback IPv4 address; Janus\'s ICE (libnice) does not use loopback');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-janus-'));
  janus = await startJanus(path.join(dir, 'janus'));
  srv = await startServer({ env: { VTP_WORKERS: 1 } });
  users = await makeUsers(srv, { teacher: 'instructor' });
  page = await servePublisherPage();
  for (const [k, p] of Object.entries(PEOPLE)) {
    const d = path.join(dir, k);
    fs.mkdirSync(d);
    media[k] = await personMedia(d, { rgb: p.rgb, freq: p.freq, audioSeconds: 60 });
  }
});

after(async () => {
  if (page) await page.close();
  if (janus) {
    await janus.stop();
    if (process.env.VTP_TEST_ARTIFACTS) {
      fs.mkdirSync(process.env.VTP_TEST_ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(process.env.VTP_TEST_ARTIFACTS, 'janus.log'), janus.log());
    }
  }
  await cleanupAll();
  if (dir && !process.env.VTP_TEST_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what, fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function getRec(id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token: users.teacher.token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

async function stopAndCompose(id) {
  const res = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
  assert.equal(res.status, 200, show(res));
  const rec = await waitFor(`recording ${id} done`, async () => {
    const r = await getRec(id);
    if (r.status === 'failed') assert.fail(`composition failed: ${r.error}`);
    return r.status === 'done' ? r : null;
  }, 180000);
  const file = path.join(dir, `${id}.${rec.format}`);
  const dl = await fetch(rec.downloadUrl.startsWith('http') ? rec.downloadUrl : srv.url + rec.downloadUrl);
  assert.equal(dl.status, 200);
  fs.writeFileSync(file, Buffer.from(await dl.arrayBuffer()));
  return { rec, file };
}

/** Publishes each person in `names` to the room, one Chromium each. */
async function publishAll(room, names) {
  const pubs = {};
  try {
    for (const k of names) {
      const p = new Publisher(janus, media[k], PEOPLE[k].name);
      pubs[k] = p;
      await p.publish(room, page.url);
      await waitFor(`${k}'s browser sending`, async () => {
        const s = await p.state();
        return s.conn === 'connected' && s.bytes > 0;
      });
    }
  } catch (e) {
    for (const p of Object.values(pubs)) await p.close();
    throw e;
  }
  return pubs;
}

/** The negotiated VP8 and Opus payload types: Janus's answer echoes the offer's. */
function negotiated(pub) {
  const pt = { video: payloadTypeOf(pub.answer, 'video', 'VP8'), audio: payloadTypeOf(pub.answer, 'audio', 'opus') };
  assert.ok(pt.video !== null && pt.audio !== null, `VP8 and Opus in Janus's answer:\n${pub.answer}`);
  assert.equal(pt.video, payloadTypeOf(pub.offer, 'video', 'VP8'), 'Janus answers with the offer\'s VP8 payload type');
  assert.equal(pt.audio, payloadTypeOf(pub.offer, 'audio', 'opus'), 'Janus answers with the offer\'s Opus payload type');
  return pt;
}

/** The SSRCs Chromium announced in its offer, per kind (the first of each m-section). */
function offeredSsrc(sdp, kind) {
  const sec = sdp.split(/\r?\n(?=m=)/).find((s) => s.startsWith(`m=${kind} `));
  const m = sec && sec.match(/^a=ssrc:(\d+) /m);
  return m ? Number(m[1]) : null;
}

/**
 * The recipe's step for one publisher: two tracks registered with the
 * negotiated payload types, then rtp_forward to their ports with rtcp_port
 * the same port (see FIR_FREQ). Returns a line for the diagnostics; pub.tracks = the
 * registrations.
 */
async function recordPublisher(id, room, k, pub) {
  const pt = negotiated(pub);
  pub.tracks = {};
  for (const kind of ['audio', 'video']) {
    const res = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
      token: users.teacher.token,
      body: { peerId: `janus-${pub.id}`, fullName: PEOPLE[k].name, kind, codec: kind === 'video' ? 'vp8' : 'opus', payloadType: pt[kind] },
    });
    assert.equal(res.status, 201, show(res));
    pub.tracks[kind] = res.json;
  }
  // rtcp_port = the track's own port: Janus's forward socket for feedback announces itself
  // there with two keep-alives, and the recorder's PLI/FIR/RR go back to it
  const fw = await janus.rtpForward(room, pub.id, ['audio', 'video'].map((kind) =>
    ({ mid: pub.mid(kind), port: pub.tracks[kind].port, rtcp_port: pub.tracks[kind].port })));
  assert.deepEqual(fw.map((f) => f.type).sort(), ['audio', 'video'], JSON.stringify(fw));
  return `${k}: publisher ${pub.id}, mids ${pub.mid('audio')}/${pub.mid('video')}, pt opus ${pt.audio} vp8 ${pt.video}`;
}

/** Waits until `n` of the recording's tracks have captured packets; resolves the recording. */
function capturing(id, n) {
  return waitFor(`${n} forwarded tracks capturing`, async () => {
    const r = await getRec(id);
    return (r.tracks || []).filter((t) => t.packets > 0).length >= n ? r : null;
  });
}

test('two Chromium publishers in a Janus VideoRoom, rtp_forwarded to the recorder: both tiles and both tones are in the file', async () => {
  const room = await janus.createRoom({ fir_freq: FIR_FREQ });
  const pubs = await publishAll(room, ['ada', 'bob']);
  try {
    const start = await srv.api('POST', '/api/v1/recordings/start', { token: users.teacher.token, body: { roomId: `janus-${room}`, title: `Janus room ${room}` } });
    assert.equal(start.status, 201, show(start));
    const id = start.json.recordingId;
    const diag = [];
    for (const [k, pub] of Object.entries(pubs)) diag.push(await recordPublisher(id, room, k, pub));
    const live = await capturing(id, 4);
    diag.push(`tracks: ${JSON.stringify(live.tracks.map((t) => ({ kind: t.kind, state: t.state, packets: t.packets })))}`);
    await sleep(8000);
    const { rec, file } = await stopAndCompose(id);
    assert.ok(rec.durationSeconds >= 6, `duration ${rec.durationSeconds}`);

    const palette = { ada: PEOPLE.ada.rgb, bob: PEOPLE.bob.rgb };
    const frames = await videoFrames(file);
    const regs = frames.map((f) => colourRegions(f, palette));
    const both = (r) => r.ada.fraction >= 0.05 && r.bob.fraction >= 0.05;
    // each forward's first keyframe comes when the recorder asks for it, through the rtcp_port socket
    const first = regs.findIndex(both);
    assert.ok(first >= 0, `no frame shows both tiles (${diag.join('; ')})`);
    assert.ok(frames[first].t <= FIRST_PICTURE_S, `both tiles only from t=${frames[first].t.toFixed(2)} s (${diag.join('; ')})`);
    const after = regs.slice(first);
    const shown = after.filter(both).length;
    const span = frames[frames.length - 1].t - frames[first].t;
    diag.push(`both tiles from t=${frames[first].t.toFixed(2)} s of ${frames[frames.length - 1].t.toFixed(2)} s`);
    assert.ok(span >= 4, `both tiles shown for only ${span.toFixed(2)} s (${diag.join('; ')})`);
    assert.ok(shown >= 0.9 * after.length, `both tiles in ${shown} of ${after.length} frames from the first with both (${diag.join('; ')})`);
    const r = regs[first + Math.floor(after.length / 2)];
    assert.ok(!bboxesOverlap(r.ada.bbox, r.bob.bbox), 'the two tiles do not overlap');

    const pcm = await audioPcm(file);
    const wins = toneTrack(pcm, [PEOPLE.ada.freq, PEOPLE.bob.freq]).filter((w) => w.t >= 1.0 && w.t <= pcm.samples.length / pcm.rate - 0.5);
    for (const k of ['ada', 'bob']) {
      const f = PEOPLE[k].freq;
      const loud = wins.filter((w) => w.amps[f] >= 0.01).length;
      assert.ok(loud >= 0.8 * wins.length, `${k}'s ${f} Hz in ${loud} of ${wins.length} windows (${diag.join('; ')})`);
    }
    console.log(`# janus: ${diag.join('; ')}`);
  } finally {
    for (const p of Object.values(pubs)) await p.close();
  }
});

/** A UDP socket on 127.0.0.1 that keeps what it receives. */
async function listener() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  s.got = [];
  s.on('message', (m, from) => s.got.push({ m, port: from.port, at: Date.now() }));
  return s;
}

const isRtcp = (m) => m.length >= 8 && m[1] >= 192 && m[1] <= 223;

/** Whether an RTP packet starts a VP8 keyframe (RFC 7741 descriptor, then the frame tag's P bit). */
function vp8Keyframe(m) {
  let o = 12 + 4 * (m[0] & 0x0f);
  if (m[0] & 0x10) o += 4 + 4 * m.readUInt16BE(o + 2);
  const d = m[o++];
  if (d & 0x80) {
    const x = m[o++];
    if (x & 0x80) o += (m[o] & 0x80) ? 2 : 1;
    if (x & 0x40) o++;
    if (x & 0x30) o++;
  }
  return Boolean(d & 0x10) && (d & 0x07) === 0 && (m[o] & 0x01) === 0;
}

test('what Janus forwards: the negotiated payload type, the publisher\'s SSRC, no sender reports; its rtcp_port socket sends two keep-alives and carries a PLI to the publisher', async () => {
  const room = await janus.createRoom({ fir_freq: 0 }); // no periodic keyframes: the PLI below is the only request
  const { ada: pub } = await publishAll(room, ['ada']);
  const socks = [];
  try {
    const pt = negotiated(pub);
    const [a, v, ar, vr] = await Promise.all([listener(), listener(), listener(), listener()]);
    socks.push(a, v, ar, vr);
    const fw = await janus.rtpForward(room, pub.id, [
      { mid: pub.mid('audio'), port: a.address().port, rtcp_port: ar.address().port },
      { mid: pub.mid('video'), port: v.address().port, rtcp_port: vr.address().port },
    ]);
    const vfw = fw.find((f) => f.type === 'video');
    assert.ok(vfw && vfw.local_rtcp_port > 0 && vfw.remote_rtcp_port === vr.address().port, JSON.stringify(fw));
    await waitFor('forwarded audio and video, and the rtcp sockets\' keep-alives', async () =>
      a.got.length >= 50 && v.got.length >= 20 && ar.got.length >= 2 && vr.got.length >= 2);

    // RTP: the payload types negotiated with Chromium, the SSRCs of Chromium's offer
    for (const [s, kind] of [[a, 'audio'], [v, 'video']]) {
      const rtp = s.got.filter((x) => !isRtcp(x.m));
      assert.deepEqual([...new Set(rtp.map((x) => x.m[1] & 0x7f))], [pt[kind]], `${kind} payload types`);
      assert.deepEqual([...new Set(rtp.map((x) => x.m.readUInt32BE(8)))], [offeredSsrc(pub.offer, kind)], `${kind} SSRC`);
    }
    // the keep-alives: 12-byte RTP headers, payload type 0, SSRC 0, from the socket Janus reads feedback on
    for (const s of [ar, vr]) {
      const first = s.got.slice(0, 2);
      assert.ok(first.every((x) => x.m.length === 12 && x.m.equals(Buffer.from('800000000000000000000000', 'hex'))), first.map((x) => x.m.toString('hex')).join(' '));
    }
    assert.equal(vr.got[0].port, vfw.local_rtcp_port, 'keep-alives come from local_rtcp_port');
    assert.notEqual(v.got[0].port, vfw.local_rtcp_port, 'RTP comes from another socket (the one feedback sent back to the RTP source never leaves)');

    // feedback to the rtcp socket reaches the publisher: a PLI brings a keyframe
    const ssrc = offeredSsrc(pub.offer, 'video');
    const sentAt = v.got.length;
    const pli = Buffer.alloc(12);
    pli[0] = 0x81; pli[1] = 206; pli.writeUInt16BE(2, 2); pli.writeUInt32BE(1, 4); pli.writeUInt32BE(ssrc, 8);
    vr.send(pli, vfw.local_rtcp_port, '127.0.0.1');
    await waitFor('a keyframe after the PLI', async () => v.got.slice(sentAt).some((x) => !isRtcp(x.m) && vp8Keyframe(x.m)), 15000);

    await sleep(2000);
    assert.equal(a.got.filter((x) => isRtcp(x.m)).length + v.got.filter((x) => isRtcp(x.m)).length, 0, 'no RTCP (no sender reports) on the forwards');
    assert.equal(ar.got.filter((x) => isRtcp(x.m)).length + vr.got.filter((x) => isRtcp(x.m)).length, 0, 'nor on the rtcp sockets');
    console.log(`# janus forwards: pt opus ${pt.audio} vp8 ${pt.video}, ssrc audio ${offeredSsrc(pub.offer, 'audio')} video ${ssrc}, ` +
      `rtcp sockets sent ${ar.got.length}+${vr.got.length} keep-alives`);
  } finally {
    for (const s of socks) s.close();
    await pub.close();
  }
});

test('unpublish drops a publisher\'s forwards; publishing again brings new SSRCs and needs a new rtp_forward', async () => {
  const room = await janus.createRoom({ fir_freq: 0 });
  const { bob: pub } = await publishAll(room, ['bob']);
  const socks = [];
  try {
    const [a, v] = await Promise.all([listener(), listener()]);
    socks.push(a, v);
    const forward = () => janus.rtpForward(room, pub.id, [{ mid: pub.mid('audio'), port: a.address().port }, { mid: pub.mid('video'), port: v.address().port }]);
    const forwarders = async () => {
      const r = await janus.admin.request({ request: 'listforwarders', room });
      return (r.publishers || []).flatMap((p) => p.forwarders);
    };
    const ssrcs = (s, from) => [...new Set(s.got.slice(from).filter((x) => !isRtcp(x.m)).map((x) => x.m.readUInt32BE(8)))];
    await forward();
    assert.equal((await forwarders()).length, 2);
    await waitFor('forwarded packets', async () => a.got.length >= 20 && v.got.length >= 10);
    const firstSsrc = { audio: offeredSsrc(pub.offer, 'audio'), video: offeredSsrc(pub.offer, 'video') };
    assert.deepEqual(ssrcs(v, 0), [firstSsrc.video]);

    let from = await pub.session.send({ request: 'unpublish' });
    await pub.session.waitEvent('unpublished', (e) => e.plugindata?.data?.unpublished === 'ok', { from });
    assert.deepEqual(await forwarders(), [], 'no forwarders once unpublished');
    await sleep(500); // packets in flight
    const quiet = { a: a.got.length, v: v.got.length };
    await sleep(1500);
    assert.deepEqual({ a: a.got.length, v: v.got.length }, quiet, 'nothing forwarded while unpublished');

    // the same handle publishes again from a new PeerConnection
    await pub.tab.evaluate(() => close());
    const offer = await pub.tab.evaluate(() => makeOffer());
    from = await pub.session.send({ request: 'publish' }, { type: 'offer', sdp: offer });
    const ev = await pub.session.waitEvent('the answer', (e) => e.jsep?.type === 'answer', { from });
    await pub.tab.evaluate((sdp) => setAnswer(sdp), ev.jsep.sdp);
    await pub.session.waitEvent('webrtcup', (e) => e.janus === 'webrtcup', { from });
    await waitFor('the browser sending again', async () => (await pub.state()).bytes > 0);
    assert.deepEqual(await forwarders(), [], 'publishing again does not bring the forwarders back');
    const again = { audio: offeredSsrc(offer, 'audio'), video: offeredSsrc(offer, 'video') };
    assert.notEqual(again.video, firstSsrc.video, 'a new PeerConnection, new SSRCs');
    await forward();
    await waitFor('packets from the new forwards', async () => a.got.length >= quiet.a + 20 && v.got.length >= quiet.v + 10);
    assert.deepEqual(ssrcs(a, quiet.a), [again.audio], 'the new audio SSRC');
    assert.deepEqual(ssrcs(v, quiet.v), [again.video], 'the new video SSRC');

    from = await pub.session.send({ request: 'leave' });
    await pub.session.waitEvent('left', (e) => e.plugindata?.data?.leaving === 'ok', { from });
    assert.deepEqual(await forwarders(), [], 'no forwarders once left');
  } finally {
    for (const s of socks) s.close();
    await pub.close();
  }
});

test('a late joiner and an early leaver: the grid grows to three tiles, then the leaver\'s tile and tone go', async () => {
  const room = await janus.createRoom({ fir_freq: FIR_FREQ });
  const pubs = await publishAll(room, ['ada', 'bob']);
  try {
    const start = await srv.api('POST', '/api/v1/recordings/start', { token: users.teacher.token, body: { roomId: `janus-${room}`, title: `Janus room ${room}` } });
    assert.equal(start.status, 201, show(start));
    const id = start.json.recordingId;
    const diag = [];
    for (const k of ['ada', 'bob']) diag.push(await recordPublisher(id, room, k, pubs[k]));
    await capturing(id, 4);
    await sleep(4000); // cat is not there for (at least) the first 4 s
    Object.assign(pubs, await publishAll(room, ['cat']));
    diag.push(await recordPublisher(id, room, 'cat', pubs.cat));
    await capturing(id, 6);
    await sleep(4000 + 1000 * FIR_FREQ); // with fir_freq, cat's picture would start at the next FIR
    // ada leaves: Janus drops her forwards; the platform ends her tracks
    await pubs.ada.leave();
    for (const kind of ['audio', 'video']) {
      const res = await srv.api('DELETE', `/api/v1/recordings/${id}/tracks/${pubs.ada.tracks[kind].trackId}`, { token: users.teacher.token });
      assert.equal(res.status, 200, show(res));
    }
    await sleep(4000);
    const { file } = await stopAndCompose(id);

    const palette = Object.fromEntries(Object.entries(PEOPLE).map(([k, p]) => [k, p.rgb]));
    const frames = await videoFrames(file);
    const regs = frames.map((f) => colourRegions(f, palette));
    const on = (r, k) => r[k].fraction >= 0.03;
    const who = regs.map((r) => Object.keys(PEOPLE).filter((k) => on(r, k)).join('+') || '-');
    const runs = who.reduce((acc, w, i) => {
      if (!acc.length || acc[acc.length - 1].w !== w) acc.push({ w, t: frames[i].t, n: 0 });
      acc[acc.length - 1].n++;
      return acc;
    }, []).map((x) => `${x.t.toFixed(2)}:${x.w}(${x.n})`).join(' ');
    const why = `tiles over time: ${runs} (${diag.join('; ')})`;
    const firstCat = regs.findIndex((r) => on(r, 'cat'));
    const lastAda = regs.findLastIndex((r) => on(r, 'ada'));
    assert.ok(firstCat > 0 && lastAda > firstCat, `cat joins while ada is there: ${why}`);
    const count = (from, to, pred) => regs.slice(from, to).filter(pred).length;
    const duo = count(0, firstCat, (r) => on(r, 'ada') && on(r, 'bob'));
    assert.ok(duo >= 15, `ada and bob together before cat: ${duo} frames: ${why}`);
    const trio = count(firstCat, lastAda + 1, (r) => on(r, 'ada') && on(r, 'bob') && on(r, 'cat'));
    assert.ok(trio >= 0.9 * (lastAda + 1 - firstCat) && trio >= 15, `all three from cat's first frame to ada's last: ${trio} of ${lastAda + 1 - firstCat}: ${why}`);
    // the tracks end at Stop a few packets apart: the last half second may show fewer tiles
    const endT = frames[frames.length - 1].t - 0.5;
    const tail = regs.slice(lastAda + 1).filter((r, i) => frames[lastAda + 1 + i].t <= endT);
    assert.ok(tail.length >= 15 && tail.every((r) => on(r, 'bob') && on(r, 'cat')), `bob and cat after ada left: ${why}`);
    const trioAt = regs[firstCat + Math.floor((lastAda - firstCat) / 2)];
    assert.ok(!bboxesOverlap(trioAt.ada.bbox, trioAt.bob.bbox) && !bboxesOverlap(trioAt.ada.bbox, trioAt.cat.bbox) &&
      !bboxesOverlap(trioAt.bob.bbox, trioAt.cat.bbox), `three tiles apart: ${why}`);

    // sound: cat silent in the first seconds (she joined 4 s or more after the start),
    // ada silent once her tile has gone (her sound stopped when she left, before that)
    const pcm = await audioPcm(file);
    const end = pcm.samples.length / pcm.rate;
    const freqs = Object.values(PEOPLE).map((p) => p.freq);
    const wins = toneTrack(pcm, freqs);
    const loud = (w, k) => w.amps[PEOPLE[k].freq] >= 0.01;
    const quiet = (w, k) => w.amps[PEOPLE[k].freq] < 0.003;
    const early = wins.filter((w) => w.t >= 1 && w.t <= 3.5);
    const late = wins.filter((w) => w.t >= frames[lastAda].t + 0.75 && w.t <= end - 0.5);
    const heard = `early ${early.map((w) => freqs.map((f) => w.amps[f].toFixed(3)).join('/')).join(' ')}; late ${late.map((w) => freqs.map((f) => w.amps[f].toFixed(3)).join('/')).join(' ')}`;
    assert.ok(early.length >= 8 && late.length >= 4, `windows: ${heard}`);
    // absence everywhere; presence in most windows (a busy machine may lose a packet or two)
    const most = (ws, pred) => ws.filter(pred).length >= 0.8 * ws.length;
    assert.ok(early.every((w) => quiet(w, 'cat')) && most(early, (w) => loud(w, 'ada') && loud(w, 'bob')), `early: ada and bob, not cat (${freqs.join('/')} Hz): ${heard}`);
    assert.ok(late.every((w) => quiet(w, 'ada')) && most(late, (w) => loud(w, 'bob') && loud(w, 'cat')), `late: bob and cat, not ada (${freqs.join('/')} Hz): ${heard}`);
    // the late joiner's picture from her first second: her tone (forwarded at the same moment) tells when that was
    const catHeard = wins.find((w) => loud(w, 'cat'));
    assert.ok(catHeard && frames[firstCat].t - catHeard.t <= FIRST_PICTURE_S,
      `cat heard from t=${catHeard?.t.toFixed(2)} s, seen from t=${frames[firstCat].t.toFixed(2)} s: ${why}`);
    console.log(`# janus late joiner: ${why}`);
  } finally {
    for (const p of Object.values(pubs)) await p.close();
  }
});

// ---- the doc's recipe, as a platform engineer runs it ---------------------

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'integrations', 'janus-forward.mjs');

/** Runs `node docs/integrations/janus-forward.mjs <args>`; resolves {code, stdout, stderr}. */
function forwardScript(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { timeout: 60000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr, line: `janus-forward.mjs ${args.map((a) => (a === users.teacher.token ? '$TOKEN' : a)).join(' ')}` }));
  });
}

test('the recipe\'s janus-forward.mjs: two publishers (one with --srtp), fir_freq 0: both tiles and tones from each forward\'s first second; --stop ends the leaver\'s tracks and her tile goes', async () => {
  const room = await janus.createRoom({ fir_freq: 0 });
  const pubs = await publishAll(room, ['ada', 'bob']);
  try {
    const diag = [];
    // the doc's command line; --state in the test's folder, --wait shortened
    const common = ['--recorder', srv.url, '--token', users.teacher.token, '--janus', janus.url, '--room', String(room), '--wait', '1'];
    const state = { ada: path.join(dir, `fwd-ada-${room}.json`), bob: path.join(dir, `fwd-bob-${room}.json`) };
    const run = {};
    for (const [k, extra] of [['ada', []], ['bob', ['--srtp']]]) {
      const r = await forwardScript([...common, '--publisher', String(pubs[k].id), '--state', state[k], ...extra]);
      diag.push(`${k}: ${r.stderr.trim().replace(/\n/g, ' | ')}`);
      assert.equal(r.code, 0, `${k}: ${r.line}\n${r.stdout}\n${r.stderr}`);
      run[k] = JSON.parse(r.stdout);
      assert.deepEqual(JSON.parse(fs.readFileSync(state[k], 'utf8')), run[k], 'the state file holds what it printed');
      assert.deepEqual(run[k].tracks.map((t) => t.kind), ['audio', 'video'], r.stdout);
      assert.ok(run[k].tracks.every((t) => t.streamId), `every stream forwarded: ${r.stdout}`);
    }
    // the first run started the recording, the second found it active and used it
    const id = run.ada.recordingId;
    assert.equal(run.bob.recordingId, id);
    const live = await capturing(id, 4);
    const mine = (k) => live.tracks.filter((t) => run[k].tracks.some((x) => x.trackId === t.trackId));
    assert.equal(mine('ada').length + mine('bob').length, 4, JSON.stringify(live.tracks));
    // Janus forwards bob's streams with SRTP, ada's in the clear
    const fwdOf = (r, k) => (r.publishers || []).filter((p) => String(p.publisher_id) === String(pubs[k].id)).flatMap((p) => p.forwarders || []);
    const both = await janus.admin.request({ request: 'listforwarders', room });
    assert.ok(fwdOf(both, 'bob').length === 2 && fwdOf(both, 'bob').every((f) => f.srtp === true), `bob's forwards SRTP: ${JSON.stringify(both)}`);
    assert.ok(fwdOf(both, 'ada').length === 2 && fwdOf(both, 'ada').every((f) => !f.srtp), `ada's forwards plain: ${JSON.stringify(both)}`);
    await sleep(5000);

    // ada leaves early: Janus drops her forwards (doc, section 7), the script's --stop ends her tracks
    await pubs.ada.leave();
    const stop = await forwardScript(['--stop', '--token', users.teacher.token, '--state', state.ada]);
    assert.equal(stop.code, 0, `${stop.line}\n${stop.stdout}\n${stop.stderr}`);
    assert.match(stop.stdout, /stopped: 2 tracks ended/);
    assert.ok(!fs.existsSync(state.ada), '--stop removes the state file');
    assert.match(stop.stderr, /already gone \(the publisher left\)/, 'her forwards went with her');
    diag.push(`ada --stop: ${stop.stderr.trim().replace(/\n/g, ' | ')}`);
    const afterStop = await getRec(id);
    for (const t of run.ada.tracks) {
      assert.equal(afterStop.tracks.find((x) => x.trackId === t.trackId)?.state, 'ended', `ada's ${t.kind} track ended: ${JSON.stringify(afterStop.tracks)}`);
    }
    for (const t of run.bob.tracks) {
      const x = afterStop.tracks.find((y) => y.trackId === t.trackId);
      assert.ok(x && x.state !== 'ended' && x.packets > 0, `bob's ${t.kind} track (SRTP) still capturing: ${JSON.stringify(x)}`);
    }
    diag.push(`tracks: ${JSON.stringify(afterStop.tracks.map((t) => ({ n: t.fullName, k: t.kind, s: t.state, p: t.packets, d: t.dropped, via: t.feedbackVia, kf: t.keyframeRequests })))}`);
    await sleep(4000);
    const { file } = await stopAndCompose(id);

    const palette = { ada: PEOPLE.ada.rgb, bob: PEOPLE.bob.rgb };
    const frames = await videoFrames(file);
    const regs = frames.map((f) => colourRegions(f, palette));
    const on = (r, k) => r[k].fraction >= 0.03;
    const who = regs.map((r) => ['ada', 'bob'].filter((k) => on(r, k)).join('+') || '-');
    const runs = who.reduce((acc, w, i) => {
      if (!acc.length || acc[acc.length - 1].w !== w) acc.push({ w, t: frames[i].t, n: 0 });
      acc[acc.length - 1].n++;
      return acc;
    }, []).map((x) => `${x.t.toFixed(2)}:${x.w}(${x.n})`).join(' ');
    const why = `tiles over time: ${runs} (${diag.join('; ')})`;
    const firstAda = regs.findIndex((r) => on(r, 'ada'));
    const firstBob = regs.findIndex((r) => on(r, 'bob'));
    const lastAda = regs.findLastIndex((r) => on(r, 'ada'));
    assert.ok(firstAda >= 0 && firstBob >= 0, `both tiles: ${why}`);
    // the file starts with ada's forward: her picture from its first second
    assert.ok(frames[firstAda].t <= FIRST_PICTURE_S, `ada's tile only from t=${frames[firstAda].t.toFixed(2)} s: ${why}`);
    const duoFrames = regs.slice(firstBob, lastAda + 1).filter((r) => on(r, 'ada') && on(r, 'bob')).length;
    assert.ok(lastAda > firstBob && duoFrames >= 15 && duoFrames >= 0.9 * (lastAda + 1 - firstBob), `both tiles from bob's first frame to ada's last: ${duoFrames} of ${lastAda + 1 - firstBob}: ${why}`);
    const mid = regs[firstBob + Math.floor((lastAda - firstBob) / 2)];
    assert.ok(!bboxesOverlap(mid.ada.bbox, mid.bob.bbox), `the two tiles do not overlap: ${why}`);
    // her tracks ended: her tile gone, bob's there until the end (the last half second may lose a tile at Stop)
    const endT = frames[frames.length - 1].t - 0.5;
    const tail = regs.slice(lastAda + 1).filter((r, i) => frames[lastAda + 1 + i].t <= endT);
    assert.ok(tail.length >= 15 && tail.every((r) => on(r, 'bob') && !on(r, 'ada')), `bob alone after ada's --stop: ${why}`);

    const pcm = await audioPcm(file);
    const end = pcm.samples.length / pcm.rate;
    const wins = toneTrack(pcm, [PEOPLE.ada.freq, PEOPLE.bob.freq]);
    const loud = (w, k) => w.amps[PEOPLE[k].freq] >= 0.01;
    const quiet = (w, k) => w.amps[PEOPLE[k].freq] < 0.003;
    const heard = `${wins.map((w) => `${w.t.toFixed(1)}:${w.amps[PEOPLE.ada.freq].toFixed(3)}/${w.amps[PEOPLE.bob.freq].toFixed(3)}`).join(' ')}`;
    // bob's forward started after ada's: his picture from the first second of his sound (forwarded at the same moment)
    const bobHeard = wins.find((w) => loud(w, 'bob'));
    assert.ok(bobHeard && frames[firstBob].t - bobHeard.t <= FIRST_PICTURE_S,
      `bob heard from t=${bobHeard?.t.toFixed(2)} s, seen from t=${frames[firstBob].t.toFixed(2)} s: ${why}`);
    const most = (ws, pred) => ws.length >= 4 && ws.filter(pred).length >= 0.8 * ws.length;
    const duo = wins.filter((w) => w.t >= frames[firstBob].t && w.t <= frames[lastAda].t - 0.5);
    const late = wins.filter((w) => w.t >= frames[lastAda].t + 0.75 && w.t <= end - 0.5);
    assert.ok(most(duo, (w) => loud(w, 'ada') && loud(w, 'bob')), `both tones while both forward (${PEOPLE.ada.freq}/${PEOPLE.bob.freq} Hz): ${heard}`);
    assert.ok(late.every((w) => quiet(w, 'ada')) && most(late, (w) => loud(w, 'bob')), `only bob's tone after ada's --stop: ${heard}`);
    console.log(`# janus-forward.mjs: ${why}`);

    // bob is still publishing: --stop after the recording stopped stops his forwards (the tracks ended with the recording)
    const bobStop = await forwardScript(['--stop', '--token', users.teacher.token, '--state', state.bob]);
    assert.equal(bobStop.code, 0, `${bobStop.line}\n${bobStop.stdout}\n${bobStop.stderr}`);
    assert.match(bobStop.stdout, /stopped: 2 tracks ended/);
    const fwds = await janus.admin.request({ request: 'listforwarders', room });
    assert.deepEqual(fwdOf(fwds, 'bob'), [], `--stop stopped bob's forwarders: ${JSON.stringify(fwds)}`);
  } finally {
    for (const p of Object.values(pubs)) await p.close();
  }
});

test('a forward whose payload type is not the registered one: the track says misconfigured, naming both payload types', async () => {
  const room = await janus.createRoom({ fir_freq: 0 });
  const { cat: pub } = await publishAll(room, ['cat']);
  try {
    const start = await srv.api('POST', '/api/v1/recordings/start', { token: users.teacher.token, body: { roomId: `janus-${room}`, title: `Janus room ${room}` } });
    assert.equal(start.status, 201, show(start));
    const id = start.json.recordingId;
    // video registered with 100 but forwarded with pt 96 pinned; audio right, as a control
    const want = { audio: { pt: 111, reg: 111, codec: 'opus' }, video: { pt: 96, reg: 100, codec: 'vp8' } };
    const tracks = {};
    for (const kind of ['audio', 'video']) {
      const ssrc = 1000 + Math.floor(Math.random() * 1e9);
      const res = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
        token: users.teacher.token,
        body: { peerId: `janus-${pub.id}`, fullName: PEOPLE.cat.name, kind, codec: want[kind].codec, payloadType: want[kind].reg, ssrc },
      });
      assert.equal(res.status, 201, show(res));
      tracks[kind] = { ...res.json, ssrc };
    }
    await janus.rtpForward(room, pub.id, ['audio', 'video'].map((kind) =>
      ({ mid: pub.mid(kind), port: tracks[kind].port, rtcp_port: tracks[kind].port, pt: want[kind].pt, ssrc: tracks[kind].ssrc })));
    // the product says within about a second; generous for a busy machine
    const rec = await waitFor('the video track misconfigured and the audio receiving', async () => {
      const r = await getRec(id);
      const v = r.tracks.find((t) => t.trackId === tracks.video.trackId);
      const a = r.tracks.find((t) => t.trackId === tracks.audio.trackId);
      return v?.state === 'misconfigured' && a?.state === 'receiving' ? r : null;
    }, 10000);
    const v = rec.tracks.find((t) => t.trackId === tracks.video.trackId);
    assert.match(v.error || '', /payload type 96 received, 100 registered/, JSON.stringify(v));
    assert.ok(v.packets === 0 && v.dropped > 0, JSON.stringify(v));
    const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
    assert.equal(stop.status, 200, show(stop));
  } finally {
    await pub.close();
  }
});
