// Recording from an SFU (issue 16, points 1 and 2) through the real binary
// and real UDP: feedback (PLI, FIR, receiver reports) reaches the socket an
// SFU reads feedback on, found from Janus's rtp_forward keep-alives (two
// 12-byte RTP headers, payload type 0, SSRC 0, from the forward's rtcp_port
// socket) or named in the track registration; a video track without a
// keyframe asks again with back-off until one comes; a track whose packets
// are all dropped says why in its own state and error.
// backend-independent: media path; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, cleanupAll, sleep } from './lib/server.mjs';
import { show, expectError, makeUsers, startRec, waitFor } from './lib/util.mjs';
import { run, Relay, ffmpegArgs, feedbackSocket, Vp8Sender } from './lib/media.mjs';

let srv;
let u;

before(async () => {
  // The back-off test counts every keyframe request: no periodic ones
  // (VTP_KEYFRAME_INTERVAL, tested in keyframes.test.mjs) among them.
  srv = await startServer({ env: { VTP_KEYFRAME_INTERVAL: '0' } });
  u = await makeUsers(srv, { owner: 'instructor' });
});
after(cleanupAll);

const addTrack = (id, body) => srv.api('POST', `/api/v1/recordings/${id}/tracks`, { token: u.owner.token, body });
const video = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'video', codec: 'vp8', payloadType: 96, ...extra });
const audio = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'audio', codec: 'opus', payloadType: 111, ...extra });

async function registered(id, body) {
  const r = await addTrack(id, body);
  assert.equal(r.status, 201, show(r));
  return r.json;
}

async function trackOf(id, trackId) {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.owner.token });
  assert.equal(r.status, 200, show(r));
  return r.json.tracks.find((t) => t.trackId === trackId);
}


const sendTo = (sock, buf, port) => new Promise((res) => sock.send(buf, port, '127.0.0.1', res));

/** What Janus's rtcp_port socket sends first, twice. */
const KEEPALIVE = Buffer.from('800000000000000000000000', 'hex');

/** ffmpeg sending `seconds` of VP8 test video through a counting relay to the track. */
async function ffmpegVideo(relay, seconds = 3, extra = {}) {
  const ff = await run('ffmpeg', ffmpegArgs({ videoPort: relay.port, seconds, video: 'vp8', ...extra }));
  assert.equal(ff.code, 0, ff.stderr);
}

// ---- where feedback goes ---------------------------------------------------------------------

test('Janus-style keep-alives sent before the media make their socket the feedback address; the media source stays the sender', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(r.id, video({ peerId: 'janus-before' }));
  const rtcpPort = await feedbackSocket(); // plays the forward's rtcp_port socket
  const relay = await new Relay(vt.port).start(); // ffmpeg's media arrives from the relay's own socket
  try {
    await sendTo(rtcpPort, KEEPALIVE, vt.port);
    await sendTo(rtcpPort, KEEPALIVE, vt.port);
    await ffmpegVideo(relay);
    const t = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.packets === relay.rtp && x; }, 'every packet of the sender');
    assert.ok(relay.rtp > 30, `ffmpeg sent ${relay.rtp}`);
    assert.equal(t.state, 'receiving', JSON.stringify(t));
    assert.equal(t.feedbackTo, `127.0.0.1:${rtcpPort.port}`, JSON.stringify(t));
    assert.equal(t.feedbackVia, 'keepalive');
    await waitFor(() => rtcpPort.fb.pli >= 1 && rtcpPort.fb.fir >= 1 && rtcpPort.fb.rr >= 1, `PLI, FIR and RR at the rtcp_port socket: ${JSON.stringify(rtcpPort.fb)}`);
    assert.equal(relay.feedback.pli, 0, `no keyframe request went to the media socket: ${JSON.stringify(relay.feedback)}`);
  } finally {
    relay.close();
    rtcpPort.close();
  }
});

test('keep-alives after the media has started move the feedback there; keep-alives from another host do not', async () => {
  const r = await startRec(srv, u.owner.token);
  const at = await registered(r.id, audio({ peerId: 'janus-after' }));
  const rtcpPort = await feedbackSocket();
  const stranger = await feedbackSocket('127.0.0.2');
  const relay = await new Relay(at.port).start();
  try {
    const ff = run('ffmpeg', ffmpegArgs({ audioPort: relay.port, seconds: 4 }));
    await waitFor(async () => (await trackOf(r.id, at.trackId)).packets > 20, 'audio arriving');
    await sendTo(stranger, KEEPALIVE, at.port);
    await sendTo(stranger, KEEPALIVE, at.port);
    await sleep(300);
    let t = await trackOf(r.id, at.trackId);
    assert.notEqual(t.feedbackVia, 'keepalive', `another host's keep-alives are ignored: ${JSON.stringify(t)}`);
    await sendTo(rtcpPort, KEEPALIVE, at.port);
    await sendTo(rtcpPort, KEEPALIVE, at.port);
    t = await waitFor(async () => { const x = await trackOf(r.id, at.trackId); return x.feedbackVia === 'keepalive' && x; }, 'feedback moved to the keep-alive socket');
    assert.equal(t.feedbackTo, `127.0.0.1:${rtcpPort.port}`);
    await waitFor(() => rtcpPort.fb.rr >= 1, `a receiver report at the keep-alive socket: ${JSON.stringify(rtcpPort.fb)}`);
    assert.equal((await ff).code, 0);
    t = await waitFor(async () => { const x = await trackOf(r.id, at.trackId); return x.packets === relay.rtp && x; }, 'every packet of the sender');
    assert.equal(t.relatched, 0, 'the keep-alives never took the media source');
    assert.equal(stranger.fb.rr + stranger.fb.pli, 0, 'nothing went to the other host');
  } finally {
    relay.close();
    rtcpPort.close();
    stranger.close();
  }
});

test('a registered feedback address receives the keyframe requests and receiver reports', async () => {
  const r = await startRec(srv, u.owner.token);
  const sfu = await feedbackSocket();
  const vt = await registered(r.id, video({ peerId: 'explicit', feedback: { ip: '127.0.0.1', port: sfu.port } }));
  const relay = await new Relay(vt.port).start();
  try {
    let t = await trackOf(r.id, vt.trackId);
    assert.equal(t.feedbackTo, `127.0.0.1:${sfu.port}`, JSON.stringify(t));
    assert.equal(t.feedbackVia, 'registered');
    assert.equal(sfu.fb.rr + sfu.fb.pli, 0, 'nothing is sent before the media');
    await ffmpegVideo(relay);
    t = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.packets === relay.rtp && x; }, 'every packet of the sender');
    assert.equal(t.state, 'receiving');
    await waitFor(() => sfu.fb.pli >= 1 && sfu.fb.rr >= 1, `PLI and RR at the registered address: ${JSON.stringify(sfu.fb)}`);
    assert.equal(relay.feedback.pli + relay.feedback.rr, 0, `the sender's own socket got none: ${JSON.stringify(relay.feedback)}`);
  } finally {
    relay.close();
    sfu.close();
  }
});

test('a registered feedback address gets nothing once the sender has gone idle (the recorder is no reflector)', async () => {
  const r = await startRec(srv, u.owner.token);
  const sfu = await feedbackSocket();
  const at = await registered(r.id, audio({ peerId: 'gone', feedback: { ip: '127.0.0.1', port: sfu.port } }));
  const media = await feedbackSocket();
  const sender = new Vp8Sender(media, at.port, { pt: 111 }).start(50);
  try {
    await waitFor(() => sfu.fb.rr >= 1, `a receiver report while media arrives: ${JSON.stringify(sfu.fb)}`);
  } finally {
    sender.stop();
  }
  try {
    // idle after 10 s of silence (the ingest's idle timeout); from then on nothing goes to the address
    await waitFor(async () => (await trackOf(r.id, at.trackId)).state === 'idle', 'the track idle', 30000);
    const rr = sfu.fb.rr;
    await sleep(3000);
    assert.equal(sfu.fb.rr, rr, `receiver reports after the sender went idle: ${sfu.fb.rr - rr}`);
  } finally {
    media.close();
    sfu.close();
  }
});

test('a feedback address must be a unicast IPv4 literal and a port 1..65535', async () => {
  const r = await startRec(srv, u.owner.token);
  const bad = [
    ['not an object', 'feedback', '127.0.0.1:5000'],
    ['a host name', 'feedback.ip', { ip: 'localhost', port: 5000 }],
    ['IPv6', 'feedback.ip', { ip: '::1', port: 5000 }],
    ['no ip', 'feedback.ip', { port: 5000 }],
    ['unspecified', 'feedback.ip', { ip: '0.0.0.0', port: 5000 }],
    ['multicast', 'feedback.ip', { ip: '239.1.2.3', port: 5000 }],
    ['broadcast', 'feedback.ip', { ip: '255.255.255.255', port: 5000 }],
    ['port 0', 'feedback.port', { ip: '127.0.0.1', port: 0 }],
    ['port too large', 'feedback.port', { ip: '127.0.0.1', port: 65536 }],
    ['port as text', 'feedback.port', { ip: '127.0.0.1', port: '5000' }],
  ];
  for (const [what, field, feedback] of bad) {
    expectError(await addTrack(r.id, video({ feedback })), 400, 'invalid_input', field, what);
  }
});

// ---- keyframes --------------------------------------------------------------------------------

test('a video track without a keyframe asks again with back-off, and stops once one arrives', async () => {
  const r = await startRec(srv, u.owner.token);
  const sfu = await feedbackSocket();
  const vt = await registered(r.id, video({ peerId: 'no-keyframe', feedback: { ip: '127.0.0.1', port: sfu.port } }));
  const media = await feedbackSocket();
  const sender = new Vp8Sender(media, vt.port).start();
  try {
    // delta frames only: the first request comes with the first packet, then again after 0.25, 0.5, 1, 2, 2 ... s
    await waitFor(() => sfu.fb.pli >= 5, `five keyframe requests: ${JSON.stringify(sfu.fb)}`, 30000);
    const at = sfu.fb.pliAt;
    const gaps = at.slice(1).map((x, i) => x - at[i]);
    assert.ok(gaps[gaps.length - 1] >= 900, `the requests back off: gaps ${gaps.join(', ')} ms`);
    assert.ok(sfu.fb.fir >= 1, 'the first request carries a FIR too');
    const t = await trackOf(r.id, vt.trackId);
    assert.ok(t.keyframeRequests >= 5, JSON.stringify(t));
    sender.key();
    // once the keyframe is in, the requests stop; the longest back-off is 2 s, so 4 s would show the next one
    await waitFor(() => !sender.keyNext, 'the keyframe sent');
    await sleep(500);
    const after = sfu.fb.pli;
    await sleep(4500);
    assert.ok(sfu.fb.pli - after <= 0, `no request after the keyframe: ${sfu.fb.pli - after} more, gaps ${gaps.join(', ')} ms`);
    assert.ok(media.fb.pli === 0, 'the requests went to the registered address');
  } finally {
    sender.stop();
    media.close();
    sfu.close();
  }
});

// ---- misconfiguration shows on the track -------------------------------------------------------

test('a track whose packets all carry another payload type says so in its state and error, and recovers when right ones come', async () => {
  const r = await startRec(srv, u.owner.token);
  const vt = await registered(r.id, video({ peerId: 'wrong-pt' }));
  const media = await feedbackSocket();
  const wrong = new Vp8Sender(media, vt.port, { pt: 100 }).start();
  try {
    const t = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.state === 'misconfigured' && x; }, 'the track misconfigured', 10000);
    assert.equal(t.error, 'payload type 100 received, 96 registered');
    assert.equal(t.packets, 0);
    wrong.pt = 96;
    wrong.key();
    const ok = await waitFor(async () => { const x = await trackOf(r.id, vt.trackId); return x.state === 'receiving' && x; }, 'the track receiving once the payload type is right');
    assert.equal(ok.error, undefined, JSON.stringify(ok));
    assert.ok(ok.packets > 0);
  } finally {
    wrong.stop();
    media.close();
  }
});

test('a track whose packets all carry another SSRC than the registered one says so', async () => {
  const r = await startRec(srv, u.owner.token);
  const at = await registered(r.id, audio({ peerId: 'wrong-ssrc', ssrc: 1234 }));
  const media = await feedbackSocket();
  const wrong = new Vp8Sender(media, at.port, { pt: 111, ssrc: 5678 }).start(50);
  try {
    const t = await waitFor(async () => { const x = await trackOf(r.id, at.trackId); return x.state === 'misconfigured' && x; }, 'the track misconfigured', 10000);
    assert.equal(t.error, 'SSRC 5678 received, 1234 registered');
  } finally {
    wrong.stop();
    media.close();
  }
  // a stopped recording keeps the reason in its tracks
  const stop = await srv.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: u.owner.token, timeoutMs: 60000 });
  assert.equal(stop.status, 200, show(stop));
  const t = await trackOf(r.id, at.trackId);
  assert.equal(t.state, 'ended');
  assert.equal(t.error, 'SSRC 5678 received, 1234 registered');
});

// ---- a participant that gave the file nothing ---------------------------------------------------

test('a recording whose participant never sent a keyframe, or whose track dropped everything, ends done with warnings naming them', async () => {
  const r = await startRec(srv, u.owner.token);
  const ada = { a: await registered(r.id, audio({ peerId: 'ada', fullName: 'Ada Lovelace' })), v: await registered(r.id, video({ peerId: 'ada', fullName: 'Ada Lovelace' })) };
  const bob = await registered(r.id, video({ peerId: 'bob', fullName: 'Bob Nokey' }));
  const cat = await registered(r.id, video({ peerId: 'cat', fullName: 'Cat Wrongpt' }));
  const [bobSock, catSock] = [await feedbackSocket(), await feedbackSocket()];
  const bobSender = new Vp8Sender(bobSock, bob.port).start(); // delta frames only
  const catSender = new Vp8Sender(catSock, cat.port, { pt: 100 }).start();
  try {
    const ff = await run('ffmpeg', ffmpegArgs({ videoPort: ada.v.port, audioPort: ada.a.port, seconds: 3 }));
    assert.equal(ff.code, 0, ff.stderr);
    await waitFor(async () => (await trackOf(r.id, cat.trackId)).state === 'misconfigured', 'cat misconfigured');
  } finally {
    bobSender.stop();
    catSender.stop();
    bobSock.close();
    catSock.close();
  }
  const stop = await srv.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: u.owner.token, timeoutMs: 60000 });
  assert.equal(stop.status, 200, show(stop));
  const rec = await waitFor(async () => {
    const x = await srv.api('GET', `/api/v1/recordings/${r.id}`, { token: u.owner.token, timeoutMs: 60000 });
    assert.notEqual(x.json.status, 'failed', `composition failed: ${JSON.stringify(x.json.error)}`);
    return x.json.status === 'done' ? x.json : null;
  }, 'the composed recording', 180000);
  const w = rec.warnings || [];
  const of = (trackId) => w.find((x) => x.trackId === trackId);
  assert.equal(of(bob.trackId)?.code, 'no_video_decoded', JSON.stringify(w));
  assert.equal(of(bob.trackId).peerId, 'bob');
  assert.ok(of(bob.trackId).packets > 0 && /Bob Nokey's video track: \d+ packets received, but no keyframe/.test(of(bob.trackId).message), JSON.stringify(w));
  assert.equal(of(cat.trackId)?.code, 'no_video_decoded', JSON.stringify(w));
  assert.equal(of(cat.trackId).packets, 0);
  assert.match(of(cat.trackId).message, /^Cat Wrongpt's video track recorded nothing/);
  assert.equal(of(ada.v.trackId), undefined, 'Ada gave a picture');
  assert.equal(of(ada.a.trackId), undefined, 'Ada gave sound');
  const catTrack = rec.tracks.find((t) => t.trackId === cat.trackId);
  assert.equal(catTrack.error, 'payload type 100 received, 96 registered');
  await pageShows(r.id, [of(bob.trackId).message, of(cat.trackId).message], ['payload type 100 received, 96 registered']);
});

/** Chromium, when installed: the recording page shows the warnings and the tracks' errors. */
async function pageShows(id, warnings, trackErrors) {
  if (!fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) {
    console.log('# sfu: no Chromium; the page was not checked');
    return;
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.log('# sfu: playwright-core is not installed (tests/package.json); the page was not checked');
    return;
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const me = await srv.api('GET', '/api/v1/users/me', { token: u.owner.token });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const session = { token: u.owner.token, expiresAt: new Date(Date.now() + 3600e3).toISOString(), user: me.json };
    await context.addInitScript((x) => localStorage.setItem('vtp.session', x), JSON.stringify(session));
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${srv.url}/web/recording.html?id=${id}`);
    await page.waitForSelector('#warnings li[data-code="no_video_decoded"]', { timeout: 30000 });
    await page.waitForSelector('#tracks .track-error', { timeout: 30000 });
    const shownWarnings = await page.textContent('#warnings');
    for (const m of warnings) assert.ok(shownWarnings.includes(m), `the page shows: ${m}\n${shownWarnings}`);
    const shownTracks = await page.textContent('#tracks');
    for (const m of trackErrors) assert.ok(shownTracks.includes(m), `the tracks table shows: ${m}\n${shownTracks}`);
    if (process.env.VTP_TEST_ARTIFACTS) {
      const dir = path.join(process.env.VTP_TEST_ARTIFACTS, 'sfu');
      fs.mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: path.join(dir, 'recording-undecoded.png'), fullPage: true });
    }
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await browser.close();
  }
}
