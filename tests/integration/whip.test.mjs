// WHIP (issue 6) through the real binary: browsers and other WebRTC
// publishers send straight to the recorder (RFC 9725). Debian's Chromium
// publishes its fake camera (a solid colour from a generated Y4M file) and
// microphone (a sine from a WAV) into a room with a recording running; the
// composed file must show that colour and sound that tone. A GStreamer
// webrtcbin publisher that starts before the recording is captured from
// Start on. vtp-whipgen (bench/whipgen.c) checks what a browser cannot
// show: both SRTP profiles, SRTP packets that fail authentication and
// STUN checks with a wrong password are dropped and counted, and RTCP
// feedback (receiver reports, PLI, REMB, and NACKs for lost video packets)
// reaches the publisher. Screen shares (issue 17): a ?source=screen session
// beside the camera is captured as screen and screen_audio of the same
// person, a second share replaces the first, and the room page's Share
// screen publishes a real getDisplayMedia(). Plus the
// HTTP side: 401, 400 with the reason, 415, 413, 405 for PATCH, CORS, and
// the session timeout.
// backend-independent: the media path (WebRTC ingest); runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, makeUsers, expectError, stopAndDownload } from './lib/util.mjs';
import { videoFrames, audioPcm, toneTrack, colourRegions } from './lib/analyze.mjs';
import { readCapture } from './lib/media.mjs';
import { fakeMedia, servePage, launchChromium, startGstPublisher, whipgen, metric } from './lib/whip.mjs';
import { signedInContext } from './lib/e2e.mjs';

const WHIPGEN = process.env.VTP_WHIPGEN || path.resolve(path.dirname(process.env.VTP_BIN || 'build/vtp-recorder'), 'vtp-whipgen');
const CHROME_RGB = [200, 40, 160];
const CHROME_HZ = 660;
const GST_HZ = 440;

let srv;
let users;
let dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-whip-'));
  srv = await startServer({ env: { VTP_WORKERS: 1, VTP_WHIP_TIMEOUT: 6 } });
  users = await makeUsers(srv, { teacher: 'instructor', student: 'student', other: 'student' });
});

after(async () => {
  await cleanupAll();
  if (!process.env.VTP_TEST_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

async function metrics() {
  const res = await fetch(`${srv.url}/metrics`);
  return res.text();
}

async function getRec(id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token: users.teacher.token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function start(roomId) {
  const res = await srv.api('POST', '/api/v1/recordings/start', { token: users.teacher.token, body: { roomId, title: `WHIP ${roomId}` } });
  assert.equal(res.status, 201, show(res));
  return res.json.recordingId;
}

function stopAndCompose(id) {
  return stopAndDownload(srv, users.teacher.token, id, dir);
}

/** WHIP tracks of a live recording with packets flowing. */
function whipTracks(rec) {
  return (rec.tracks || []).filter((t) => t.packets > 0);
}

/** Fraction of frames (after the first second) showing rgb, and tone presence. */
async function contents(file, rgb, freq, otherFreq) {
  const frames = await videoFrames(file);
  const late = frames.filter((f) => f.t >= 1.0);
  const showing = late.filter((f) => colourRegions(f, { x: rgb }).x.fraction >= 0.2).length;
  const pcm = await audioPcm(file);
  const wins = toneTrack(pcm, [freq, otherFreq]).filter((w) => w.t >= 1.0);
  const loud = wins.filter((w) => w.amps[freq] >= 0.02 && w.amps[freq] > 4 * w.amps[otherFreq]).length;
  return { frames: late.length, showing, windows: wins.length, loud };
}

for (const codec of ['VP8', 'H264']) test(`Chromium publishes camera (${codec}) and microphone with WHIP; the recording holds both`, async () => {
  const media = await fakeMedia(dir, { rgb: CHROME_RGB, freq: CHROME_HZ });
  const page = await servePage();
  const browser = await launchChromium(media);
  try {
    const roomId = `whip-chrome-${rand(4)}`;
    const id = await start(roomId);
    const tab = await browser.newPage();
    await tab.goto(page.url);
    const pub = await tab.evaluate(([u, t, c]) => publish(u, t, c), [`${srv.url}/whip/rooms/${encodeURIComponent(roomId)}`, users.student.token, codec]);
    assert.equal(pub.status, 201, `WHIP POST: ${JSON.stringify(pub)}`);
    assert.match(pub.location, new RegExp(`/whip/rooms/${roomId}/sessions/[0-9a-f-]{36}$`));
    for (const line of ['a=ice-lite', 'a=setup:passive', 'a=recvonly', 'a=rtcp-mux', 'a=group:BUNDLE', 'a=fingerprint:sha-256 ']) {
      assert.ok(pub.answer.includes(line), `answer lacks ${line}:\n${pub.answer}`);
    }
    await waitFor('the browser to connect', async () => (await tab.evaluate(() => state())).conn === 'connected');
    const live = await waitFor('audio and video captured', async () => {
      const r = await getRec(id);
      return whipTracks(r).length >= 2 ? r : null;
    });
    assert.deepEqual(whipTracks(live).map((t) => t.kind).sort(), ['audio', 'video']);
    assert.equal(whipTracks(live).find((t) => t.kind === 'video').codec, codec.toLowerCase());
    await sleep(5000);
    const parts = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
    assert.equal(parts.status, 200, show(parts));
    const list = parts.json.participants || parts.json;
    assert.ok(list.some((p) => p.userId === users.student.id), `the publisher is a participant: ${show(parts)}`);
    const { rec, file } = await stopAndCompose(id);
    assert.ok(rec.durationSeconds >= 3, `duration ${rec.durationSeconds}`);
    const c = await contents(file, CHROME_RGB, CHROME_HZ, GST_HZ);
    assert.ok(c.showing >= 0.8 * c.frames, `the camera's colour in ${c.showing} of ${c.frames} frames`);
    assert.ok(c.loud >= 0.8 * c.windows, `the microphone's ${CHROME_HZ} Hz in ${c.loud} of ${c.windows} windows`);
    assert.equal(await tab.evaluate((t) => unpublish(t), users.student.token), 200);
    await waitFor('the session to end', async () => metric(await metrics(), 'vtp_whip_sessions') === 0);
  } finally {
    await browser.close();
    await page.close();
  }
});

test('a GStreamer webrtcbin publisher that starts before the recording is captured from Start on', async () => {
  const roomId = `whip-gst-${rand(4)}`;
  const gst = startGstPublisher({ url: `${srv.url}/whip/rooms/${roomId}`, token: users.other.token, pattern: 'solid-color foreground-color=0xff20c020', freq: GST_HZ, seconds: 14 });
  await waitFor(`GStreamer to connect (${gst.errors()})`, async () => gst.output().includes('connected'), 25000);
  await sleep(1500); // published, nothing to capture yet
  const id = await start(roomId);
  await waitFor('the GStreamer tracks', async () => whipTracks(await getRec(id)).length >= 2);
  await sleep(5000);
  const { file } = await stopAndCompose(id);
  const c = await contents(file, [32, 192, 32], GST_HZ, CHROME_HZ);
  assert.ok(c.showing >= 0.8 * c.frames, `GStreamer's colour in ${c.showing} of ${c.frames} frames`);
  assert.ok(c.loud >= 0.8 * c.windows, `GStreamer's ${GST_HZ} Hz in ${c.loud} of ${c.windows} windows`);
  assert.equal(await gst.exited, 0, gst.errors());
  assert.match(gst.output(), /deleted 200/);
});

for (const profile of ['gcm', 'cm']) {
  test(`SRTP (${profile}): tampered packets and bad STUN are dropped and counted; feedback reaches the publisher`, async () => {
    const roomId = `whip-gen-${profile}-${rand(4)}`;
    const id = await start(roomId);
    const before = await metrics();
    const r = await whipgen(WHIPGEN, ['--url', `${srv.url}/whip/rooms/${roomId}`, '--token', users.student.token,
      '--seconds', '3', '--profile', profile, '--tamper', '7', '--bad-stun', '3', '--lose', '50']);
    assert.equal(r.connected, 1, JSON.stringify(r));
    const after = await metrics();
    const delta = (name, labels) => metric(after, name, labels) - metric(before, name, labels);
    assert.equal(delta('vtp_ingest_dropped_total', 'reason="srtp_auth"'), 7, 'tampered SRTP counted');
    assert.equal(delta('vtp_ingest_dropped_total', 'reason="stun"'), 3, 'bad STUN counted');
    assert.equal(r.stunErrors, 3, 'each bad check answered with an error (401)');
    assert.ok(r.feedback.rr >= 1 && r.feedback.pli >= 1 && r.feedback.remb >= 1, `feedback: ${JSON.stringify(r.feedback)}`);
    // every 50th video packet never comes: asked for again (generic NACK), then a keyframe (PLI)
    assert.ok(r.feedback.nack >= 3, `NACKs for the lost packets: ${JSON.stringify(r.feedback)}`);
    assert.ok(r.feedback.pli >= 3, `a keyframe asked for after unanswered NACKs: ${JSON.stringify(r.feedback)}`);
    const live = await getRec(id);
    const got = whipTracks(live);
    assert.equal(got.length, 2, JSON.stringify(live.tracks));
    assert.ok(got.every((t) => t.packets > 10), JSON.stringify(got));
    await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
  });
}

/** Every packet log of a recording: trackId -> its header metadata. */
function captureMetas(recId) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(recId) && p.endsWith('.vtpcap')) {
        const { meta } = readCapture(p);
        out[meta.trackId] = meta;
      }
    }
  };
  walk(path.join(srv.dataDir, 'recordings'));
  return out;
}

test('a screen share (?source=screen) beside the camera: its own session, screen and screen_audio in the packet logs, the tracks and the participant', async () => {
  const roomId = `whip-screen-${rand(4)}`;
  const id = await start(roomId);
  const base = `${srv.url}/whip/rooms/${roomId}`;
  const camera = whipgen(WHIPGEN, ['--url', base, '--token', users.student.token, '--seconds', '10']);
  try {
    const camLive = await waitFor('the camera session captured', async () => {
      const r = await getRec(id);
      return whipTracks(r).length === 2 ? r : null;
    });
    const camPeer = whipTracks(camLive)[0].peerId;
    assert.deepEqual(whipTracks(camLive).map((t) => t.source).sort(), ['camera', 'microphone']);
    const screen = await whipgen(WHIPGEN, ['--url', `${base}?source=screen`, '--token', users.student.token, '--seconds', '3']);
    assert.equal(screen.connected, 1, JSON.stringify(screen));
    const cam = await camera;
    assert.equal(cam.connected, 1, JSON.stringify(cam));
  } finally {
    await camera.catch(() => {});
  }
  const live = await getRec(id);
  const got = whipTracks(live);
  assert.equal(got.length, 4, JSON.stringify(live.tracks));
  const bySource = Object.fromEntries(got.map((t) => [t.source, t]));
  assert.deepEqual(Object.keys(bySource).sort(), ['camera', 'microphone', 'screen', 'screen_audio'], JSON.stringify(got));
  assert.equal(bySource.screen.kind, 'video');
  assert.equal(bySource.screen_audio.kind, 'audio');
  // the share is the same person: one participant, the camera session's peerId
  assert.ok(got.every((t) => t.peerId === bySource.camera.peerId), `one peerId: ${JSON.stringify(got.map((t) => [t.source, t.peerId]))}`);
  // the composer's contract: the packet logs say which is the screen
  const metas = captureMetas(id);
  for (const t of got) {
    assert.equal(metas[t.trackId].source, t.source, JSON.stringify(metas[t.trackId]));
    assert.equal(metas[t.trackId].ingest, 'whip', JSON.stringify(metas[t.trackId]));
  }
  const parts = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
  assert.equal(parts.status, 200, show(parts));
  const mine = parts.json.participants.filter((p) => p.userId === users.student.id);
  assert.equal(mine.length, 1, show(parts));
  assert.deepEqual(mine[0].sources.map((x) => x.source).sort(), ['camera', 'microphone', 'screen', 'screen_audio']);
  // both sessions have ended (whipgen DELETEs): every source has its end
  for (const x of mine[0].sources) assert.ok(x.startedAt && x.endedAt, JSON.stringify(x));
  const stopped = (await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token })).json;
  assert.equal(stopped.tracks.filter((t) => t.source === 'screen').length, 1, JSON.stringify(stopped.tracks));
});

test('WHIP screen shares: a second one from the same user replaces the first, cameras are not replaced, an unknown source is a 400', async () => {
  const room = `room-${rand(4)}`;
  const sdp = `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 ${Array(32).fill('AB').join(':')}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n`;
  const post = (query, token = users.student.token) => fetch(`${srv.url}/whip/rooms/${room}${query}`, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` }, body: sdp,
  });
  for (const q of ['?source=slides', '?source=SCREEN', '?source=', '?source=screen_audio', '?source=microphone']) {
    const res = await post(q);
    assert.equal(res.status, 400, q);
    const j = await res.json();
    assert.equal(j.error.code, 'invalid_input', q);
    assert.equal(j.error.field, 'source', q);
  }
  const created = async (q, token) => {
    const res = await post(q, token);
    assert.equal(res.status, 201, await res.clone().text());
    return res.headers.get('location');
  };
  const cam1 = await created('');
  const cam2 = await created('?source=camera');
  const first = await created('?source=screen');
  const otherUsers = await created('?source=screen', users.other.token);
  const second = await created('?source=screen');
  // the first share has ended: its URL is gone; everything else lives on
  expectError(await srv.api('DELETE', first, { token: users.student.token }), 404, 'not_found');
  for (const [loc, token] of [[second, users.student.token], [cam1, users.student.token], [cam2, users.student.token], [otherUsers, users.other.token]]) {
    const res = await srv.api('DELETE', loc, { token });
    assert.equal(res.status, 200, `${loc}: ${show(res)}`);
  }
});

test('the room page: Share screen publishes a real getDisplayMedia() beside the camera (?source=screen), Stop sharing ends it', async () => {
  // Chromium's --use-fake-ui-for-media-stream with fake devices answers
  // getDisplayMedia() with a generated 1280x720 "screen" and audio: the real
  // API, no stand-in (lib/whip.mjs launchChromium)
  const media = await fakeMedia(dir, { rgb: CHROME_RGB, freq: CHROME_HZ, seconds: 4 });
  const browser = await launchChromium(media);
  try {
    const roomId = `whip-page-${rand(4)}`;
    const id = await start(roomId);
    const context = await signedInContext(browser, srv, users.student);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.url}/web/room.html?room=${encodeURIComponent(roomId)}`);
    const phase = (what) => page.evaluate((w) => window.vtpRoom && window.vtpRoom[w], what);
    await page.getByRole('button', { name: 'Start camera and microphone' }).click();
    await waitFor('the camera to be live', async () => (await phase('publish')) === 'live', 30000);
    await page.getByRole('button', { name: 'Share screen' }).click();
    await waitFor('the screen share to be live', async () => {
      const p = await phase('share');
      if (p === 'failed') assert.fail(`sharing failed: ${await phase('shareError')}`);
      return p === 'live';
    }, 30000);
    assert.equal(await page.getByRole('button', { name: 'Stop sharing' }).isVisible(), true);
    const live = await waitFor('camera, microphone, screen and screen audio captured', async () => {
      const r = await getRec(id);
      const got = whipTracks(r);
      return got.length === 4 && got.every((t) => t.packets > 20) ? r : null;
    }, 30000);
    const got = whipTracks(live);
    assert.deepEqual(got.map((t) => t.source).sort(), ['camera', 'microphone', 'screen', 'screen_audio'], JSON.stringify(got));
    assert.equal(new Set(got.map((t) => t.peerId)).size, 1, `one person: ${JSON.stringify(got.map((t) => [t.source, t.peerId]))}`);
    const screenTrack = got.find((t) => t.source === 'screen');
    assert.equal(captureMetas(id)[screenTrack.trackId].source, 'screen');

    // Stop sharing: the screen session ends, the camera goes on
    await page.getByRole('button', { name: 'Stop sharing' }).click();
    await waitFor('the share to stop', async () => (await phase('share')) === 'stopped');
    const after = await waitFor('the screen tracks to end', async () => {
      const r = await getRec(id);
      const scr = r.tracks.filter((t) => t.source === 'screen' || t.source === 'screen_audio');
      return scr.length === 2 && scr.every((t) => t.state === 'ended') ? r : null;
    });
    assert.equal(after.tracks.find((t) => t.source === 'camera').state, 'receiving', JSON.stringify(after.tracks));
    const parts = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
    const me = parts.json.participants.find((p) => p.userId === users.student.id);
    assert.ok(me.sources.find((x) => x.source === 'screen').endedAt, JSON.stringify(me));
    assert.equal(me.sources.find((x) => x.source === 'camera').endedAt, null, JSON.stringify(me));
    assert.equal(await page.getByRole('button', { name: 'Share screen' }).isVisible(), true);
    // the teacher's recording page: the share on the student's timeline row, the tracks' sources
    const tctx = await signedInContext(browser, srv, users.teacher);
    const recPage = await tctx.newPage();
    recPage.on('pageerror', (e) => errors.push(e.message));
    await recPage.goto(`${srv.url}/web/recording.html?id=${id}`);
    await recPage.waitForFunction(() => window.vtpRecordingPage && window.vtpRecordingPage.participants, null, { timeout: 20000 });
    assert.equal(await recPage.locator('.timeline .seg.screen').count(), 1);
    assert.match(await recPage.locator('.timeline li').first().innerText(), /shared the screen from/);
    const sourcesShown = await recPage.locator('#tracks td').allInnerTexts();
    for (const label of ['Camera', 'Microphone', 'Screen share', 'Screen audio']) assert.ok(sourcesShown.includes(label), `${label} in ${sourcesShown}`);
    await tctx.close();
    assert.deepEqual(errors, []);
    await page.getByRole('button', { name: 'Stop camera and microphone' }).click();
    await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
    await context.close();
  } finally {
    await browser.close();
  }
});

test('WHIP over HTTP: authentication, bad offers, limits, PATCH, CORS, ownership, timeout', async () => {
  const url = `/whip/rooms/room-${rand(4)}`;
  const sdp = (extra = '') => `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 ${Array(32).fill('AB').join(':')}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n${extra}`;
  const post = (body, { token = users.student.token, type = 'application/sdp' } = {}) =>
    fetch(srv.url + url, { method: 'POST', headers: { 'Content-Type': type, ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body });

  let res = await post(sdp(), { token: `${users.student.token}x` });
  assert.equal(res.status, 401);
  res = await post(sdp(), { token: null });
  assert.equal(res.status, 401);
  res = await post(sdp(), { type: 'application/json' });
  assert.equal(res.status, 415);
  res = await post('x'.repeat(70 * 1024));
  assert.equal(res.status, 413);
  res = await post('hello');
  assert.equal(res.status, 400);
  let j = await res.json();
  assert.equal(j.error.code, 'invalid_sdp');
  res = await post(sdp().replace('a=ice-ufrag:abcd\r\n', ''));
  j = await res.json();
  assert.equal(res.status, 400);
  assert.match(j.error.message, /ufrag/i);
  res = await post(sdp().replace('actpass', 'passive'));
  assert.equal(res.status, 400);
  res = await post(sdp().replace('opus/48000/2', 'PCMU/8000').replace(/111/g, '0'));
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /codec|opus/i);

  // a good offer: 201, Location, CORS
  res = await post(sdp(), { type: 'application/sdp; charset=utf-8' });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'application/sdp');
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match(res.headers.get('access-control-expose-headers') || '', /Location/i);
  const loc = res.headers.get('location');
  assert.match(loc, /^\/whip\/rooms\/room-[0-9a-f]+\/sessions\/[0-9a-f-]{36}$/);
  const answer = await res.text();
  assert.match(answer, /^v=0\r\n/);
  assert.match(answer, /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);

  // hostile datagrams at the session's port: each dropped and counted, none answered as valid
  const port = Number(answer.match(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/)[1]);
  const before = await metrics();
  const sock = dgram.createSocket('udp4');
  let replies = 0;
  sock.on('message', () => { replies++; });
  const send = (buf) => new Promise((r) => sock.send(buf, port, '127.0.0.1', r));
  const stunResponse = Buffer.alloc(20);
  stunResponse.writeUInt16BE(0x0101, 0); // a Binding success nobody asked for
  stunResponse.writeUInt32BE(0x2112a442, 4);
  await send(stunResponse);
  const stunRequest = Buffer.alloc(20); // a Binding request without our ufrag: no reply (no reflection)
  stunRequest.writeUInt16BE(0x0001, 0);
  stunRequest.writeUInt32BE(0x2112a442, 4);
  await send(stunRequest);
  await send(Buffer.from('GET / HTTP/1.1\r\n\r\n')); // neither STUN, DTLS nor RTP, from nobody checked
  const rtp = Buffer.alloc(172);
  rtp[0] = 0x80; rtp[1] = 111; // SRTP-looking, from an address no check came from
  await send(rtp);
  const dtls = Buffer.alloc(40);
  dtls[0] = 22; dtls[1] = 0xfe; dtls[2] = 0xfd; // a DTLS record, also unchecked
  await send(dtls);
  await waitFor('the hostile datagrams to be counted', async () => {
    const m = await metrics();
    const d = (reason) => metric(m, 'vtp_ingest_dropped_total', `reason="${reason}"`) - metric(before, 'vtp_ingest_dropped_total', `reason="${reason}"`);
    return d('stun') === 2 && d('wrong_source') === 3; // nothing but STUN is read before a check
  }, 5000);
  await sleep(200);
  sock.close();
  assert.equal(replies, 0, 'nothing answered to a sender that does not know the session');

  // CORS preflight
  res = await fetch(srv.url + url, { method: 'OPTIONS', headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(res.status, 204);
  assert.match(res.headers.get('access-control-allow-methods') || '', /POST/);
  assert.match(res.headers.get('access-control-allow-headers') || '', /Authorization/i);

  // trickle ICE / ICE restart: 405
  res = await fetch(srv.url + loc, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', Authorization: `Bearer ${users.student.token}` }, body: 'a=end-of-candidates\r\n' });
  assert.equal(res.status, 405);
  assert.match(res.headers.get('allow') || '', /DELETE/);

  // someone else's session: 404; the publisher's: 200, then 404
  expectError(await srv.api('DELETE', loc, { token: users.other.token }), 404, 'not_found');
  res = await srv.api('DELETE', loc, { token: users.student.token });
  assert.equal(res.status, 200, show(res));
  expectError(await srv.api('DELETE', loc, { token: users.student.token }), 404, 'not_found');

  // a session that never sends media ends after VTP_WHIP_TIMEOUT (6 s here)
  res = await post(sdp());
  assert.equal(res.status, 201);
  const loc2 = res.headers.get('location');
  const ended = await metrics().then((m) => metric(m, 'vtp_whip_sessions_ended_total'));
  await waitFor('the idle session to end', async () => metric(await metrics(), 'vtp_whip_sessions_ended_total') > ended, 15000);
  expectError(await srv.api('DELETE', loc2, { token: users.student.token }), 404, 'not_found');
});
