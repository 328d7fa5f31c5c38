// Keyframes on an interval (issue 17) through the real binary and real UDP:
// with VTP_KEYFRAME_INTERVAL, a live video sender that sent no keyframe for
// that long is asked for one (PLI) at its feedback address; a keyframe the
// sender sends on its own resets the timer, so a sender with a shorter
// interval of its own is never asked; 0 turns it off; WHIP publishers are
// asked the same way; a bad value stops `serve` with a message naming the
// variable. Requests are counted in vtp_ingest_keyframe_interval_requests_total
// and in the track's keyframeRequests.
// backend-independent: the media path; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, cleanupAll, sleep, runCli, freePort, Context } from './lib/server.mjs';
import { show, makeUsers, startRec, waitFor } from './lib/util.mjs';
import { feedbackSocket, Vp8Sender } from './lib/media.mjs';
import { whipgen, metric } from './lib/whip.mjs';

const WHIPGEN = process.env.VTP_WHIPGEN || path.resolve(path.dirname(process.env.VTP_BIN || 'build/vtp-recorder'), 'vtp-whipgen');
const INTERVAL_S = 1; // the interval of the server under test, seconds
const REQUESTS = 'vtp_ingest_keyframe_interval_requests_total';

let srv; // VTP_KEYFRAME_INTERVAL=1.0
let u;

before(async () => {
  srv = await startServer({ env: { VTP_KEYFRAME_INTERVAL: '1.0' } });
  u = await makeUsers(srv, { owner: 'instructor', stu: 'student' });
});
after(cleanupAll);

const video = (extra = {}) => ({ peerId: 'peer-a', fullName: 'Ada Lovelace', kind: 'video', codec: 'vp8', payloadType: 96, ...extra });
const intervalRequests = async (s) => metric(await (await fetch(`${s.url}/metrics`)).text(), REQUESTS);

async function registered(s, token, id, body) {
  const r = await s.api('POST', `/api/v1/recordings/${id}/tracks`, { token, body });
  assert.equal(r.status, 201, show(r));
  return r.json;
}

async function trackOf(s, token, id, trackId) {
  const r = await s.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(r.status, 200, show(r));
  return r.json.tracks.find((t) => t.trackId === trackId);
}

/**
 * A video track with a registered feedback address (an SFU's feedback
 * socket) and a node sender: a keyframe first, then delta frames; it
 * answers each PLI with a keyframe (as a browser does) unless `deaf`.
 */
async function videoTrack(s, user, senderOpts = {}, { deaf = false } = {}) {
  const r = await startRec(s, user.token);
  const sfu = await feedbackSocket();
  const vt = await registered(s, user.token, r.id, video({ feedback: { ip: '127.0.0.1', port: sfu.port } }));
  const media = await feedbackSocket();
  const sender = new Vp8Sender(media, vt.port, { firstKey: true, ...senderOpts });
  let answered = 0; // PLIs answered (receiver reports are not)
  if (!deaf) sfu.on('message', () => { if (sfu.fb.pli > answered) { answered = sfu.fb.pli; sender.key(); } });
  return {
    r, vt, sfu, media, sender,
    async close() { // the recording stopped ends the track: no request for it counts in the next test
      sender.stop();
      await s.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: user.token });
      media.close();
      sfu.close();
    },
  };
}

test('a sender that sends only delta frames is asked for a keyframe every VTP_KEYFRAME_INTERVAL', async () => {
  const before = await intervalRequests(srv);
  const tr = await videoTrack(srv, u.owner);
  try {
    const t0 = Date.now();
    tr.sender.start();
    // the first packet's PLI (a keyframe is already on its way), then one each second the sender sends no keyframe
    const asked = await waitFor(async () => { const n = (await intervalRequests(srv)) - before; return n >= 4 && n; },
      `four interval requests: ${JSON.stringify(tr.sfu.fb)}`, 30000);
    const elapsed = (Date.now() - t0) / 1000;
    // never more often than the interval: each needs a second since the last keyframe, which came after t0
    assert.ok(asked <= elapsed / INTERVAL_S + 1, `${asked} interval requests in ${elapsed.toFixed(1)} s`);
    await waitFor(() => tr.sfu.fb.pli >= asked + 1, `the first request and the interval ones at the feedback address: ${JSON.stringify(tr.sfu.fb)}`);
    const pli = tr.sfu.fb.pli;
    // (a loaded machine can add a request: a pause over 1 s between two packets asks too)
    assert.equal(tr.sfu.fb.fir, 1, 'a FIR only with the first request');
    await waitFor(() => tr.sender.keys >= asked, `the sender answered with keyframes: ${tr.sender.keys}`);
    const t = await trackOf(srv, u.owner.token, tr.r.id, tr.vt.trackId);
    assert.ok(t.keyframeRequests >= pli, `the track counts them too: ${JSON.stringify(t)}, ${pli} PLIs`);
    assert.equal(tr.media.fb.pli, 0, 'the requests went to the registered address');
    // a sender that stopped is not asked on the interval any more, though it counts as present until idle_seconds
    tr.sender.stop();
    await sleep(1500);
    const stopped = (await intervalRequests(srv)) - before;
    await sleep(3000);
    assert.equal((await intervalRequests(srv)) - before, stopped, `no interval request once the sender stopped: ${JSON.stringify(tr.sfu.fb)}`);
  } finally {
    await tr.close();
  }
});

test('a sender that does not answer is asked again with back-off, not every interval on top', async () => {
  const before = await intervalRequests(srv);
  const tr = await videoTrack(srv, u.owner, {}, { deaf: true });
  try {
    tr.sender.start();
    await waitFor(() => tr.sfu.fb.pli >= 4, `requests: ${JSON.stringify(tr.sfu.fb)}`, 30000);
    // the first interval request starts the back-off (0.25, 0.5, 1, 2, 2 s ...), which goes on until a keyframe
    await sleep(3000);
    assert.equal((await intervalRequests(srv)) - before, 1, 'one interval request; the rest are its retries');
    const n = tr.sfu.fb.pli;
    tr.sender.key();
    await waitFor(() => tr.sender.keys >= 2, 'the keyframe sent');
    await waitFor(async () => (await intervalRequests(srv)) - before >= 2, 'the next interval request after the keyframe', 20000);
    assert.ok(tr.sfu.fb.pli > n, JSON.stringify(tr.sfu.fb));
  } finally {
    await tr.close();
  }
});

test('a sender with keyframes of its own more often than the interval is never asked (beyond the first packet)', async () => {
  const before = await intervalRequests(srv);
  const tr = await videoTrack(srv, u.owner, { keyEveryMs: 250 }, { deaf: true });
  try {
    tr.sender.start();
    await waitFor(() => tr.sfu.fb.pli >= 1 && tr.sfu.fb.rr >= 1, `the first request and a report: ${JSON.stringify(tr.sfu.fb)}`);
    await waitFor(() => tr.sender.sent >= 180, 'six seconds of video', 30000);
    assert.ok(tr.sender.keys >= 12, `the sender's own keyframes: ${tr.sender.keys}`);
    assert.equal((await intervalRequests(srv)) - before, 0, 'no interval request');
    // the first packet's request; a loaded machine may add a pause's (over 1 s between two
    // packets); on the interval there would be one a second
    assert.ok(tr.sfu.fb.pli >= 1 && tr.sfu.fb.pli <= 3, `only the first packet's request: ${JSON.stringify(tr.sfu.fb)}`);
  } finally {
    await tr.close();
  }
});

test('WHIP: a publisher whose keyframes are further apart than the interval is asked between them', async () => {
  const before = await intervalRequests(srv);
  const { id, room } = await startRec(srv, u.owner.token);
  // whipgen sends a keyframe every 2 s (60 frames) and does not answer PLIs
  const r = await whipgen(WHIPGEN, ['--url', `${srv.url}/whip/rooms/${room}`, '--token', u.stu.token, '--seconds', '5']);
  assert.equal(r.connected, 1, JSON.stringify(r));
  const asked = (await intervalRequests(srv)) - before;
  assert.ok(asked >= 1, `interval requests for the WHIP video: ${asked}; feedback ${JSON.stringify(r.feedback)}`);
  assert.ok(r.feedback.pli >= 2, `PLIs reached the publisher: ${JSON.stringify(r.feedback)}`);
  await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.owner.token });
});

test('VTP_KEYFRAME_INTERVAL=0: a sender of delta frames gets only the first packet\'s request', async () => {
  const off = await startServer({ env: { VTP_KEYFRAME_INTERVAL: '0' } });
  const users = await makeUsers(off, { owner: 'instructor' });
  const tr = await videoTrack(off, users.owner);
  try {
    tr.sender.start();
    await waitFor(() => tr.sfu.fb.pli >= 1 && tr.sfu.fb.rr >= 1, `the first request and a report: ${JSON.stringify(tr.sfu.fb)}`);
    await waitFor(() => tr.sender.sent >= 180, 'six seconds of video', 30000);
    assert.equal(await intervalRequests(off), 0, 'no interval request');
    // as above: the first packet's, perhaps a pause's; with an interval of 1 s, one a second
    assert.ok(tr.sfu.fb.pli >= 1 && tr.sfu.fb.pli <= 3, `only the first packet's request: ${JSON.stringify(tr.sfu.fb)}`);
  } finally {
    await tr.close();
  }
});

for (const value of ['abc', '-1', '0.1', '1e3', '2.5s', '']) {
  test(`VTP_KEYFRAME_INTERVAL=${JSON.stringify(value)}: serve exits 2 naming the variable`, async () => {
    const ctx = new Context();
    const extraEnv = { VTP_LISTEN: `127.0.0.1:${await freePort()}`, VTP_KEYFRAME_INTERVAL: value };
    const r = await runCli(['serve'], { ctx, extraEnv, timeoutMs: 10000 });
    assert.equal(r.timedOut, false, 'serve kept running instead of failing');
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /VTP_KEYFRAME_INTERVAL: invalid value .*expected 0 \(off\) or seconds/, r.stderr);
    ctx.destroy();
  });
}
