// Processing jobs (issue 4, item 1) through the real binary: a stop queues a
// job, a worker thread runs `vtp-recorder compose --recording ID` as a child
// process, and its exit settles the recording. Crashes (the test kills the
// child it finds under the server in /proc), hangs (the test freezes it with
// SIGSTOP, the job timeout kills it), graceful and kill -9 restarts while a
// child runs, the `worker` subcommand beside a `serve` without workers, and
// the DB-less `compose --tracks` of the command line. The media are real
// captures made once by the server's own ingest from ffmpeg RTP senders and
// copied into each recording's tracks folder.

// sanitizer pass: sqlite only: the jobs, spool, CLI and events code is the same C on both backends, and the store's PostgreSQL side runs under the sanitizers in unit_store; make test's time keeps the PostgreSQL variant to the release pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, startProcess, cleanupAll, sleep, rand, Context, runCli } from './lib/server.mjs';
import { show, makeUsers, assertNoPaths } from './lib/util.mjs';
import { run, Relay, ffmpegArgs, readCapture } from './lib/media.mjs';
import { io } from 'socket.io-client';

let mediaDir; // real captures: peer A video+audio, peer B video, MEDIA_SECONDS each
let mediaSpan; // seconds from the first packet captured to the last
const MEDIA_SECONDS = 3;

// ---- helpers -------------------------------------------------------------------------

const room = () => `jobs-${rand(5)}`; // only [A-Za-z0-9-]: its folder name is itself

async function start(srv, token, extra = {}) {
  const body = { roomId: room(), title: 'jobs', ...extra };
  const res = await srv.api('POST', '/api/v1/recordings/start', { token, body });
  assert.equal(res.status, 201, show(res));
  return { id: res.json.recordingId, room: body.roomId };
}

async function getRec(srv, token, id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

async function stop(srv, token, id) {
  const res = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token, timeoutMs: 60000 });
  assert.equal(res.status, 200, show(res));
  assert.ok(['stopped', 'processing', 'done', 'failed'].includes(res.json.status), show(res));
  return res.json;
}

function recDir(srv, rec) {
  return path.join(srv.dataDir, 'recordings', rec.room, rec.id);
}

/** Copies the captures into the recording's tracks folder (as if the ingest had written them). */
function putMedia(srv, rec) {
  const dir = path.join(recDir(srv, rec), 'tracks');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of fs.readdirSync(mediaDir)) fs.copyFileSync(path.join(mediaDir, f), path.join(dir, f));
}

/** Polls the recording until its status is one of `want`; returns it. */
async function waitStatus(srv, token, id, want, timeoutMs = 180000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await getRec(srv, token, id);
    // done and failed are written to the access log just after the status:
    // a reader waits for both
    if (want.includes(last.status) && (!['done', 'failed'].includes(last.status) ||
        (await history(srv, token, id)).some((e) => e.accessType === last.status))) return last;
    if (Date.now() > deadline) assert.fail(`recording ${id} still ${last.status} (progress ${last.progress}, error ${last.error}) after ${timeoutMs} ms; wanted ${want.join('|')}`);
    await sleep(150);
  }
}

/** The access log, oldest first, without views. */
async function history(srv, token, id) {
  const all = [];
  for (let offset = 0; ; offset += 100) {
    const res = await srv.api('GET', `/api/v1/recordings/${id}/access-log?limit=100&offset=${offset}`, { token });
    assert.equal(res.status, 200, show(res));
    all.push(...res.json.entries);
    if (res.json.entries.length < 100 || all.length >= res.json.total) break;
  }
  return all.filter((e) => e.accessType !== 'view').reverse();
}

const types = (h) => h.map((e) => e.accessType);

/** Composer children of pid: [{pid, cmd}] from /proc (ppid in /proc/N/stat, argv with "compose"). */
function composers(parentPid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== parentPid || fields[0] === 'Z') continue;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('compose')) out.push({ pid: Number(d), cmd });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** Waits for a composer child of parentPid other than the `seen` pids. */
async function waitComposer(parentPid, seen = new Set(), timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = composers(parentPid).find((x) => !seen.has(x.pid));
    if (c) return c;
    if (Date.now() > deadline) assert.fail(`no composer child of ${parentPid} within ${timeoutMs} ms`);
    await sleep(3);
  }
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) assert.fail(`${what} (pid ${pid}) still alive after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** /metrics once no composer runs any more: the worker counts a job's
 * outcome after its child exits, a moment after the child wrote the
 * recording's status. */
async function settled(srv) {
  const until = Date.now() + 15000;
  for (;;) {
    const m = await metrics(srv);
    if (m.running === 0 || Date.now() > until) return m;
    await sleep(50);
  }
}

async function metrics(srv) {
  const text = await fetch(`${srv.url}/metrics`).then((r) => r.text());
  const get = (name) => {
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    assert.ok(m, `${name} missing from /metrics`);
    return Number(m[1]);
  };
  return {
    claimed: get('vtp_jobs_claimed_total'), succeeded: get('vtp_jobs_succeeded_total'),
    retried: get('vtp_jobs_retried_total'), failed: get('vtp_jobs_failed_total'),
    running: get('vtp_jobs_running'), workers: get('vtp_jobs_workers'),
  };
}

/** The media's duration: at least what each sender sent, at most the span of the arrivals (a busy sender stretches it). */
function assertDuration(d) {
  assert.ok(d > MEDIA_SECONDS - 0.5 && d < mediaSpan + 0.5, `durationSeconds ${d}: ${MEDIA_SECONDS} s sent, arrivals over ${mediaSpan.toFixed(3)} s`);
}

const sha256File = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** What a composed recording must show: the file beside its tracks, its size and hash. */
function assertComposed(srv, rec, r) {
  assert.equal(r.status, 'done', JSON.stringify(r));
  assert.equal(r.progress, 100);
  assert.equal(r.error, null);
  assert.ok(r.completedAt, 'completedAt');
  const file = path.join(recDir(srv, rec), `recording.${r.format}`);
  assert.ok(fs.existsSync(file), `${file} missing`);
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600, `${file} mode ${(st.mode & 0o777).toString(8)}`);
  assert.equal(r.fileSize, st.size);
  assert.equal(r.metadata.sha256, sha256File(file));
  assertDuration(r.durationSeconds);
  const c = r.metadata.compose;
  assert.ok(c && typeof c === 'object', JSON.stringify(r.metadata));
  assert.equal(c.tracks, 3);
  assert.equal(c.peers, 2);
  assert.equal(c.fastPath, false);
  assert.ok(c.framesOut > 0);
  for (const k of ['framesDropped', 'audioConcealedMs', 'decodeErrors']) assert.equal(typeof c[k], 'number', k);
}

// ---- the captures ----------------------------------------------------------------------

before(async () => {
  mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-jobs-media-'));
  const srv = await startServer({ env: { VTP_WORKERS: 0 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  const add = async (body) => {
    const res = await srv.api('POST', `/api/v1/recordings/${rec.id}/tracks`, { token: o.token, body });
    assert.equal(res.status, 201, show(res));
    return new Relay(res.json.port).start();
  };
  const av = await add({ peerId: 'a', fullName: 'Ada', kind: 'video', codec: 'vp8', payloadType: 96 });
  const aa = await add({ peerId: 'a', fullName: 'Ada', kind: 'audio', codec: 'opus', payloadType: 111 });
  const bv = await add({ peerId: 'b', fullName: 'Bob', kind: 'video', codec: 'vp8', payloadType: 96 });
  try {
    const [x, y] = await Promise.all([
      run('ffmpeg', ffmpegArgs({ videoPort: av.port, audioPort: aa.port, seconds: MEDIA_SECONDS })),
      run('ffmpeg', ffmpegArgs({ videoPort: bv.port, seconds: MEDIA_SECONDS })),
    ]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    await sleep(400);
  } finally {
    for (const r of [av, aa, bv]) r.close();
  }
  await stop(srv, o.token, rec.id);
  const tracks = path.join(recDir(srv, rec), 'tracks');
  const files = fs.readdirSync(tracks).filter((f) => f.endsWith('.vtpcap'));
  assert.equal(files.length, 3, JSON.stringify(files));
  // every file: a track's later segments (<track>.vtpcap.000002...) too
  for (const f of fs.readdirSync(tracks)) fs.copyFileSync(path.join(tracks, f), path.join(mediaDir, f));
  let first = Infinity;
  let last = 0;
  for (const f of files) {
    for (const r of readCapture(path.join(tracks, f)).records) {
      if (r.kind !== 1) continue; // RTP only
      const t = Number(r.arrivalNs) / 1e9;
      if (t < first) first = t;
      if (t > last) last = t;
    }
  }
  mediaSpan = last - first;
  assert.ok(mediaSpan > MEDIA_SECONDS - 0.5, `captured ${mediaSpan} s`);
  await srv.stop();
});

after(async () => {
  await cleanupAll();
  if (mediaDir) fs.rmSync(mediaDir, { recursive: true, force: true });
});

// ---- no media ----------------------------------------------------------------------------

test('no media: stopped → processing → failed "no_media" on the first attempt, not retried', async () => {
  const srv = await startServer();
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const m0 = await metrics(srv);
  assert.equal(m0.workers, 1);
  const rec = await start(srv, o.token);
  await stop(srv, o.token, rec.id);
  const r = await waitStatus(srv, o.token, rec.id, ['failed', 'done'], 30000);
  assert.equal(r.status, 'failed', JSON.stringify(r));
  assert.equal(r.error, 'no_media');
  assert.ok(r.completedAt);
  assert.equal(r.fileSize, null);
  assertNoPaths({ json: r, text: JSON.stringify(r) }, srv);
  await sleep(1500); // a retry would have started by now
  const h = await history(srv, o.token, rec.id);
  assert.deepEqual(types(h), ['start', 'stop', 'processing', 'failed'], JSON.stringify(h));
  assert.equal(h[2].detail.attempt, 1);
  assert.equal(h[2].accessedBy, null, 'the system moved it');
  assert.equal(h[3].detail.error, 'no_media');
  const m = await settled(srv);
  assert.equal(m.claimed - m0.claimed, 1);
  assert.equal(m.failed - m0.failed, 1);
  assert.equal(m.retried - m0.retried, 0);
  assert.equal(m.running, 0);

  // deleting an active recording stops it, and the stop queues processing too
  const gone = await start(srv, o.token);
  assert.equal((await srv.api('DELETE', `/api/v1/recordings/${gone.id}`, { token: o.token })).status, 200);
  await sleep(1000);
  assert.equal((await srv.api('POST', `/api/v1/recordings/${gone.id}/restore`, { token: o.token })).status, 200);
  const g = await waitStatus(srv, o.token, gone.id, ['failed', 'done'], 30000);
  assert.equal(g.error, 'no_media');
});

test('a recording interrupted by kill -9 is stopped at the restart and then processed', async () => {
  const srv = await startServer();
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  await srv.kill9();
  await srv.restart();
  const r = await waitStatus(srv, o.token, rec.id, ['failed', 'done'], 30000);
  assert.equal(r.error, 'no_media', JSON.stringify(r));
  assert.match(JSON.stringify(r.metadata), /interrupted|stopped while recording/);
  assert.deepEqual(types(await history(srv, o.token, rec.id)), ['start', 'stop', 'processing', 'failed']);
});

// ---- composed ------------------------------------------------------------------------------

test('composed: done, with the file, its size, media duration and SHA-256; no path exposed', async () => {
  const srv = await startServer();
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token, { description: 'kept' });
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  assert.equal(r.description, 'kept');
  const res = await srv.api('GET', `/api/v1/recordings/${rec.id}`, { token: o.token });
  assertNoPaths(res, srv);
  assert.doesNotMatch(res.text, /recording\.webm/, 'the storage key leaked');
  const h = await history(srv, o.token, rec.id);
  assert.deepEqual(types(h), ['start', 'stop', 'processing', 'done'], JSON.stringify(h));
  assert.equal(h[3].detail.fileSize, r.fileSize);
  // composing it again is refused: it is done
  const again = await srv.cli(['compose', '--recording', rec.id]);
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, /is done/);
  const m = await settled(srv);
  assert.equal(m.succeeded, 1);
  assert.equal(m.running, 0);
});

// ---- crash, hang, restart ------------------------------------------------------------------

test('a composer killed with SIGKILL is retried after the back-off; the attempts show', async () => {
  const srv = await startServer({ env: { VTP_JOB_BACKOFF: '0.3' } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);
  const child = await waitComposer(srv.proc.pid);
  assert.deepEqual(child.cmd.slice(1, 4), ['compose', '--recording', rec.id]);
  process.kill(child.pid, 'SIGKILL');
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  // (the killed child may or may not have written its "processing" entry)
  const h = (await history(srv, o.token, rec.id)).filter((e) => e.accessType !== 'processing' || e.detail.attempt !== 1);
  assert.deepEqual(types(h), ['start', 'stop', 'retry', 'processing', 'done'], JSON.stringify(h));
  assert.equal(h[2].detail.attempt, 1);
  assert.match(h[2].detail.error, /^composer crashed \(SIGKILL\)/);
  assert.equal(h[2].detail.retryInSeconds, 0.3);
  assert.equal(h[3].detail.attempt, 2);
  const m = await settled(srv);
  assert.equal(m.retried, 1);
  assert.equal(m.succeeded, 1);
  assert.equal(m.claimed, 2);
});

test('a composer that hangs is killed at the timeout, retried, then the recording fails with a readable error', async () => {
  const srv = await startServer({ env: { VTP_JOB_TIMEOUT: '1', VTP_JOB_TIMEOUT_FACTOR: '0', VTP_JOB_BACKOFF: '0.2' } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);
  const seen = new Set();
  for (let attempt = 1; attempt <= 3; attempt++) {
    const child = await waitComposer(srv.proc.pid, seen);
    seen.add(child.pid);
    process.kill(child.pid, 'SIGSTOP'); // hung (before or after its "processing" entry)
  }
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed'], 30000);
  assert.equal(r.status, 'failed', JSON.stringify(r));
  assert.equal(r.error, 'composer timed out after 1.0 s on 3 attempts');
  for (const pid of seen) await waitGone(pid, 'a timed-out composer');
  const h = (await history(srv, o.token, rec.id)).filter((e) => e.accessType !== 'processing');
  assert.deepEqual(types(h), ['start', 'stop', 'retry', 'retry', 'failed'], JSON.stringify(h));
  assert.deepEqual(h.slice(2, 4).map((e) => [e.detail.attempt, e.detail.error]),
    [[1, 'composer timed out after 1.0 s'], [2, 'composer timed out after 1.0 s']]);
  assert.equal(h[4].detail.attempts, 3);
  assert.equal(h[4].detail.error, r.error);
  const m = await settled(srv);
  assert.equal(m.retried, 2);
  assert.equal(m.failed, 1);
  assert.equal(m.running, 0);
  assert.deepEqual(composers(srv.proc.pid), []);
});

test('restarts while a composer runs (SIGTERM, then kill -9): the job runs again after each', async () => {
  const srv = await startServer();
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);

  // graceful: the child is killed and its job queued again
  let child = await waitComposer(srv.proc.pid);
  process.kill(child.pid, 'SIGSTOP'); // still busy when the server stops
  const st = await srv.stop();
  assert.equal(st.escalated, false, 'server did not stop within 10 s of SIGTERM');
  assert.equal(st.code, 0, srv.stderr().slice(-2000));
  await waitGone(child.pid, 'the composer of a stopped server');
  await srv.restart();

  // crash: the child dies with its server (PR_SET_PDEATHSIG); the restart re-queues the job
  child = await waitComposer(srv.proc.pid);
  process.kill(child.pid, 'SIGSTOP');
  await srv.kill9();
  await waitGone(child.pid, 'the composer of a killed server');
  await srv.restart();

  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  // the third claim composed it: the job came back after each stop (the
  // frozen children may or may not have written their "processing" entry);
  // the graceful stop gave its attempt back, the crash did not
  const h = await history(srv, o.token, rec.id);
  assert.deepEqual(types(h).filter((t) => t !== 'processing'), ['start', 'stop', 'done'], JSON.stringify(h));
  assert.deepEqual(types(h).slice(-2), ['processing', 'done']);
  assert.equal(h.at(-2).detail.attempt, 2);
});

test('three graceful restarts while composing do not use up the attempts: the recording ends done', async () => {
  const srv = await startServer();
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);
  for (let i = 1; i <= 3; i++) {
    const child = await waitComposer(srv.proc.pid);
    process.kill(child.pid, 'SIGSTOP'); // still busy when the server stops
    const st = await srv.stop();
    assert.equal(st.escalated, false, `restart ${i}: server did not stop within 10 s of SIGTERM`);
    assert.equal(st.code, 0, srv.stderr().slice(-2000));
    await waitGone(child.pid, `the composer of stopped server ${i}`);
    await srv.restart();
  }
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  const h = await history(srv, o.token, rec.id);
  assert.deepEqual(types(h).filter((t) => t !== 'processing'), ['start', 'stop', 'done'], JSON.stringify(h));
  assert.equal(h.at(-2).detail.attempt, 1, 'every cut attempt was given back');
});

// ---- retry -----------------------------------------------------------------------------------

test('POST /retry queues a failed recording again (starter, admin); 409 not_failed, 403 for a viewer, 404 unseen', async () => {
  const srv = await startServer();
  const { o, admin, viewer, other } = await makeUsers(srv, { o: 'instructor', admin: 'admin', viewer: 'student', other: 'instructor' });
  const rec = await start(srv, o.token);
  await stop(srv, o.token, rec.id);
  const failed = await waitStatus(srv, o.token, rec.id, ['failed', 'done'], 30000);
  assert.equal(failed.error, 'no_media');
  const sh = await srv.api('POST', `/api/v1/recordings/${rec.id}/shares`, { token: o.token, body: { userId: viewer.id, permission: 'download' } });
  assert.equal(sh.status, 201, show(sh));
  const retry = (token, id = rec.id) => srv.api('POST', `/api/v1/recordings/${id}/retry`, { token });

  const v = await retry(viewer.token);
  assert.equal(v.status, 403, show(v));
  assert.equal(v.json.error.code, 'forbidden');
  const x = await retry(other.token);
  assert.equal(x.status, 404, show(x));
  assert.equal(x.json.error.code, 'not_found');
  assert.equal((await retry(o.token, crypto.randomUUID())).status, 404);
  assert.equal((await getRec(srv, o.token, rec.id)).status, 'failed', 'a refused retry changed nothing');

  // the room hears it like any other transition
  const sock = io(srv.url, { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: o.token } });
  const heard = [];
  for (const ev of ['recording-stopped', 'recording-progress', 'recording-done']) sock.on(ev, (d) => heard.push([ev, d]));
  try {
    await sock.timeout(8000).emitWithAck('join-room', { roomId: rec.room });
  } catch (e) {
    sock.disconnect();
    throw e;
  }

  // the tracks are there now (as after a fixed fault): the starter retries
  putMedia(srv, rec);
  const ok = await retry(o.token, rec.id.toUpperCase());
  assert.equal(ok.status, 202, show(ok));
  assert.equal(ok.json.id, rec.id);
  assert.ok(['stopped', 'processing'].includes(ok.json.status), show(ok));
  assert.equal(ok.json.error, null);
  assert.equal(ok.json.completedAt, null);
  // already queued: a second retry is a conflict
  const again = await retry(o.token);
  assert.equal(again.status, 409, show(again));
  assert.equal(again.json.error.code, 'not_failed');
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  const deadline = Date.now() + 15000;
  while (!heard.some(([ev]) => ev === 'recording-done') && Date.now() < deadline) await sleep(50);
  sock.disconnect();
  const evs = heard.filter(([, d]) => d.recordingId === rec.id).map(([ev]) => ev);
  assert.equal(evs[0], 'recording-stopped', `room events after the retry: ${JSON.stringify(heard)}`);
  assert.equal(evs.at(-1), 'recording-done', `room events after the retry: ${JSON.stringify(heard)}`);
  const done = await retry(admin.token);
  assert.equal(done.status, 409, show(done));
  assert.equal(done.json.error.code, 'not_failed');

  const h = await history(srv, o.token, rec.id);
  const t = types(h).filter((y) => y !== 'share');
  assert.deepEqual(t, ['start', 'stop', 'processing', 'failed', 'retry', 'processing', 'done'], JSON.stringify(h));
  const entry = h.find((e) => e.accessType === 'retry');
  assert.equal(entry.accessedBy, o.id, 'the retry is the starter\'s');
  assert.equal(entry.detail.previousError, 'no_media');

  // an admin may retry too, and a deleted recording is not found
  const rec2 = await start(srv, o.token);
  await stop(srv, o.token, rec2.id);
  await waitStatus(srv, o.token, rec2.id, ['failed'], 30000);
  assert.equal((await srv.api('DELETE', `/api/v1/recordings/${rec2.id}`, { token: o.token })).status, 200);
  assert.equal((await retry(admin.token, rec2.id)).status, 404);
  assert.equal((await srv.api('POST', `/api/v1/recordings/${rec2.id}/restore`, { token: o.token })).status, 200);
  const byAdmin = await retry(admin.token, rec2.id);
  assert.equal(byAdmin.status, 202, show(byAdmin));
  const again2 = await waitStatus(srv, o.token, rec2.id, ['failed', 'done'], 30000);
  assert.equal(again2.error, 'no_media');
});

// ---- leftovers and the running gauge -----------------------------------------------------------

/** A pid that no process has: above pid_max. */
const DEAD_PID = 999999999;

test('temporary outputs of killed composers are removed by the next attempt; a live one is kept', async () => {
  const srv = await startServer({ env: { VTP_JOB_BACKOFF: '0.3' } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  const dir = recDir(srv, rec);
  // what a composer killed by -9 leaves (another run's, long gone) ...
  fs.writeFileSync(path.join(dir, `recording.webm.tmp-${DEAD_PID}`), 'half a file');
  fs.mkdirSync(path.join(dir, `hls.tmp-${DEAD_PID - 1}`));
  fs.writeFileSync(path.join(dir, `hls.tmp-${DEAD_PID - 1}`, 'seg_00000.m4s'), 'half a segment');
  // ... and one of a process that still runs (this test's): not touched
  const live = path.join(dir, `thumbnail.jpg.tmp-${process.pid}`);
  fs.writeFileSync(live, 'in progress');
  await stop(srv, o.token, rec.id);
  // a real kill -9 of the first composer, too
  const child = await waitComposer(srv.proc.pid);
  process.kill(child.pid, 'SIGKILL');
  const r = await waitStatus(srv, o.token, rec.id, ['done', 'failed']);
  assertComposed(srv, rec, r);
  const left = fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
  assert.deepEqual(left, [path.basename(live)], `leftovers: ${JSON.stringify(left)}`);
  assert.ok(fs.existsSync(path.join(dir, 'hls', 'index.m3u8')));

  // at start: the folders of finished recordings are swept too
  const failed = await start(srv, o.token);
  await stop(srv, o.token, failed.id);
  await waitStatus(srv, o.token, failed.id, ['failed'], 30000);
  const fdir = recDir(srv, failed);
  fs.mkdirSync(fdir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(fdir, `recording.webm.tmp-${DEAD_PID}`), 'half a file');
  fs.writeFileSync(path.join(dir, `recording.webm.tmp-${DEAD_PID}`), 'half a file');
  await srv.restart();
  for (const d of [fdir, dir]) {
    const rest = fs.readdirSync(d).filter((f) => f.includes('.tmp-'));
    assert.deepEqual(rest, d === dir ? [path.basename(live)] : [], `after the restart, in ${d}: ${JSON.stringify(rest)}`);
  }
});

test('vtp_jobs_running never goes negative: a job that finds nothing to do starts no child and counts none', async () => {
  const srv = await startServer({ env: { VTP_WORKERS: 0 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const rec = await start(srv, o.token);
  putMedia(srv, rec);
  await stop(srv, o.token, rec.id);
  // an operator composes it by hand while its job waits in the queue
  const c = await srv.cli(['compose', '--recording', rec.id], { timeoutMs: 120000 });
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await getRec(srv, o.token, rec.id)).status, 'done');
  await srv.restart({ VTP_WORKERS: 1 });
  const running = async () => {
    const text = await fetch(`${srv.url}/metrics`).then((x) => x.text());
    const m = text.match(/^vtp_jobs_running (-?\d+)$/m);
    assert.ok(m, 'vtp_jobs_running missing');
    return { running: Number(m[1]), claimed: Number(text.match(/^vtp_jobs_claimed_total (\d+)$/m)[1]),
      succeeded: Number(text.match(/^vtp_jobs_succeeded_total (\d+)$/m)[1]) };
  };
  const deadline = Date.now() + 30000;
  let m = await running();
  while (m.succeeded < 1 && Date.now() < deadline) {
    await sleep(100);
    m = await running();
  }
  assert.equal(m.claimed, 1, JSON.stringify(m));
  assert.equal(m.succeeded, 1, `the job was settled as done: ${JSON.stringify(m)}`);
  assert.equal(m.running, 0, `vtp_jobs_running after a job without a child: ${JSON.stringify(m)}`);
});

// ---- the worker subcommand -------------------------------------------------------------------

test('`worker` processes the jobs a `serve` with VTP_WORKERS=0 queued on the same database', async () => {
  const srv = await startServer({ env: { VTP_WORKERS: 0 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  assert.equal((await metrics(srv)).workers, 0);
  const empty = await start(srv, o.token);
  await stop(srv, o.token, empty.id);
  const full = await start(srv, o.token);
  putMedia(srv, full);
  await stop(srv, o.token, full.id);
  await sleep(1500);
  assert.equal((await getRec(srv, o.token, empty.id)).status, 'stopped', 'processed without a worker');
  assert.equal((await getRec(srv, o.token, full.id)).status, 'stopped');

  // bad job knobs and no workers: one line, exit 2
  for (const [env, name] of [[{ VTP_JOB_TIMEOUT: '0' }, 'VTP_JOB_TIMEOUT'], [{ VTP_JOB_TIMEOUT_FACTOR: 'x' }, 'VTP_JOB_TIMEOUT_FACTOR'],
    [{ VTP_JOB_BACKOFF: '10,,40' }, 'VTP_JOB_BACKOFF'], [{ VTP_JOB_BACKOFF: '-1' }, 'VTP_JOB_BACKOFF'], [{ VTP_WORKERS: 0 }, 'VTP_WORKERS'],
    [{ VTP_NODE_TIMEOUT: '0' }, 'VTP_NODE_TIMEOUT'], [{ VTP_JOB_SEGMENT_WAIT: 'soon' }, 'VTP_JOB_SEGMENT_WAIT']]) {
    const bad = await srv.cli(['worker'], { extraEnv: { VTP_WORKERS: 1, ...env }, timeoutMs: 10000 });
    assert.equal(bad.code, 2, `${JSON.stringify(env)}: ${bad.stderr}`);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(name));
  }

  const w = startProcess(['worker'], { ctx: srv.ctx, extraEnv: { VTP_WORKERS: 2 } });
  try {
    const e = await waitStatus(srv, o.token, empty.id, ['failed', 'done'], 30000);
    assert.equal(e.error, 'no_media');
    const f = await waitStatus(srv, o.token, full.id, ['done', 'failed']);
    assertComposed(srv, full, f);
    assert.match(w.stdout(), /worker running 2 processing worker/);
  } finally {
    const st = await w.stop();
    assert.equal(st.escalated, false, 'worker did not stop within 10 s of SIGTERM');
    assert.equal(st.code, 0, w.stderr().slice(-2000));
  }
});

// ---- capacity and draining -----------------------------------------------------------------

/** The capacity gauges of /metrics: {capacity, cost, ratio, draining}. */
async function load(srv) {
  const text = await fetch(`${srv.url}/metrics`).then((r) => r.text());
  const get = (name) => {
    const m = text.match(new RegExp(`^${name} ([0-9.]+)$`, 'm'));
    assert.ok(m, `${name} missing from /metrics`);
    return Number(m[1]);
  };
  assert.match(text, /^# TYPE vtp_load_ratio gauge$/m);
  return { capacity: get('vtp_worker_capacity'), cost: get('vtp_jobs_running_cost'),
    ratio: get('vtp_load_ratio'), draining: get('vtp_draining') };
}

/** Waits until the gauges satisfy ok(g); returns them. */
async function waitLoad(srv, ok, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const g = await load(srv);
    if (ok(g)) return g;
    if (Date.now() > deadline) assert.fail(`${what}: /metrics still ${JSON.stringify(g)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A recording with one audio track captured through the real ingest (so the
 * store knows its tracks: an audio-only job, the lightest), still recording. */
async function audioOnly(srv, token) {
  const rec = await start(srv, token);
  const res = await srv.api('POST', `/api/v1/recordings/${rec.id}/tracks`, { token, body: { peerId: 'c', fullName: 'Cy', kind: 'audio', codec: 'opus', payloadType: 111 } });
  assert.equal(res.status, 201, show(res));
  const relay = await new Relay(res.json.port).start();
  try {
    const x = await run('ffmpeg', ffmpegArgs({ audioPort: relay.port, seconds: 2 }));
    assert.equal(x.code, 0, x.stderr);
    await sleep(400);
  } finally {
    relay.close();
  }
  return rec;
}

/** Resolves with {code, signal} when the process exits by itself. */
function exitOf(proc, what, timeoutMs = 60000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: still running after ${timeoutMs} ms`)), timeoutMs);
    proc.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
  });
}

test('capacity: a second heavy composite waits while a light audio-only job runs beside the first; vtp_load_ratio follows', async () => {
  // 2 workers, capacity 2: a 2-camera 720p30 composite costs 1.5, audio only 0.2
  const srv = await startServer({ env: { VTP_WORKERS: 2, VTP_WORKER_CAPACITY: 2 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const idle = await load(srv);
  assert.deepEqual(idle, { capacity: 2, cost: 0, ratio: 0, draining: 0 });
  const light = await audioOnly(srv, o.token);

  const h1 = await start(srv, o.token);
  putMedia(srv, h1);
  await stop(srv, o.token, h1.id);
  const c1 = await waitComposer(srv.proc.pid);
  assert.deepEqual(c1.cmd.slice(1, 4), ['compose', '--recording', h1.id]);
  process.kill(c1.pid, 'SIGSTOP'); // the first heavy job holds its share
  let h2;
  try {
    const busy = await waitLoad(srv, (g) => g.ratio > 0, 'a heavy job running');
    assert.equal(busy.cost, 1.5);
    assert.equal(busy.ratio, 0.75);

    // the second heavy one is queued first, but does not fit beside the first
    h2 = await start(srv, o.token);
    putMedia(srv, h2);
    await stop(srv, o.token, h2.id);
    await sleep(2500); // the free worker has looked at the queue (every second, and woken by the stop)
    assert.deepEqual(composers(srv.proc.pid).map((c) => c.pid), [c1.pid], 'a second composer started beside the heavy one');
    assert.equal((await getRec(srv, o.token, h2.id)).status, 'stopped');

    // the light one, queued after it, passes it and runs beside the heavy one
    await stop(srv, o.token, light.id);
    const l = await waitStatus(srv, o.token, light.id, ['done', 'failed']);
    assert.equal(l.status, 'done', JSON.stringify(l));
    assert.ok(alive(c1.pid), 'the heavy composer is still there');
    assert.equal((await getRec(srv, o.token, h2.id)).status, 'stopped', 'the second heavy one still waits');
    assert.match(srv.stderr(), new RegExp(`recording ${light.id}: composing \\(attempt 1 of 3, timeout [0-9.]+ s, cost 0\\.20 of capacity 2\\.00\\)`));
  } finally {
    process.kill(c1.pid, 'SIGCONT');
  }
  // the first ends, then the second runs: both done
  const r1 = await waitStatus(srv, o.token, h1.id, ['done', 'failed']);
  assertComposed(srv, h1, r1);
  const r2 = await waitStatus(srv, o.token, h2.id, ['done', 'failed']);
  assertComposed(srv, h2, r2);
  const m = await settled(srv);
  assert.equal(m.succeeded, 3);
  assert.deepEqual(await waitLoad(srv, (g) => g.cost === 0, 'every job ended'), { capacity: 2, cost: 0, ratio: 0, draining: 0 });
});

test('draining (SIGTERM): /healthz 503 "draining", no new claims, the running job finishes; one still running at the drain time is handed back and composed after the restart', async () => {
  const srv = await startServer({ env: { VTP_DRAIN_SECONDS: 120 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  assert.equal((await srv.api('GET', '/healthz')).status, 200);
  const a = await start(srv, o.token);
  putMedia(srv, a);
  await stop(srv, o.token, a.id);
  const ca = await waitComposer(srv.proc.pid);
  process.kill(ca.pid, 'SIGSTOP'); // still busy when the node is told to stop
  const b = await start(srv, o.token);
  putMedia(srv, b);
  await stop(srv, o.token, b.id); // queued behind it (one worker)

  const proc = srv.proc;
  const exited = exitOf(proc, 'the draining server', 120000);
  proc.kill('SIGTERM');
  try {
    const deadline = Date.now() + 20000;
    let h;
    for (;;) {
      h = await srv.api('GET', '/healthz');
      if (h.status === 503 || Date.now() > deadline) break;
      await sleep(50);
    }
    assert.equal(h.status, 503, show(h));
    assert.equal(h.json.status, 'draining', show(h));
    assert.equal((await load(srv)).draining, 1);
    // the API still answers while draining
    assert.equal((await getRec(srv, o.token, a.id)).id, a.id);
  } finally {
    process.kill(ca.pid, 'SIGCONT');
  }
  // the node exits once its job is settled (so it is read after the restart)
  const st = await exited;
  assert.equal(st.code, 0, srv.stderr().slice(-2000));
  assert.match(srv.stderr(), /draining: every running job finished/);

  // the queued one was not claimed by the draining node; the next start composes it
  await srv.restart({ VTP_DRAIN_SECONDS: 1 });
  assertComposed(srv, a, await getRec(srv, o.token, a.id));
  const cb = await waitComposer(srv.proc.pid);
  assert.deepEqual(cb.cmd.slice(1, 4), ['compose', '--recording', b.id]);
  process.kill(cb.pid, 'SIGSTOP'); // will not finish within the 1 s drain
  const st2 = await srv.stop(30000);
  assert.equal(st2.escalated, false, 'server did not stop after its drain time');
  assert.equal(st2.code, 0, srv.stderr().slice(-2000));
  await waitGone(cb.pid, 'the composer of a drained server');
  assert.match(srv.stderr(), /draining: 1 job\(s\) still running after 1 s: handing them back/);
  assert.match(srv.stderr(), new RegExp(`recording ${b.id}: composer stopped by the shutdown \\(the drain time was over\\); the job is queued again`));

  // handed back: composed after the restart, the cut attempt given back
  await srv.restart({ VTP_DRAIN_SECONDS: 0 });
  const rb = await waitStatus(srv, o.token, b.id, ['done', 'failed']);
  assertComposed(srv, b, rb);
  const hb = await history(srv, o.token, b.id);
  assert.deepEqual(types(hb).slice(-2), ['processing', 'done']);
  assert.equal(hb.at(-2).detail.attempt, 1, 'the handed-back attempt was given back');
});

// ---- compose on the command line ------------------------------------------------------------

test('compose --tracks: every flag validated (exit 2, one line), no media exit 3, a folder composed', async () => {
  const ctx = new Context();
  const out = path.join(ctx.root, 'out');
  fs.mkdirSync(out);
  const cases = [
    [[], /--recording ID or --tracks DIR/],
    [['--tracks', mediaDir], /--output/],
    [['--output', `${out}/x.webm`], /--recording ID or --tracks DIR/],
    [['--tracks', path.join(ctx.root, 'nope'), '--output', `${out}/x.webm`], /--tracks/],
    [['--tracks', path.join(mediaDir, fs.readdirSync(mediaDir)[0]), '--output', `${out}/x.webm`], /not a directory/],
    [['--tracks', mediaDir, '--output', path.join(ctx.root, 'nope', 'x.webm')], /--output/],
    [['--tracks', mediaDir, '--output', out], /is a directory/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--format', 'avi'], /--format/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--video-codec', 'h264'], /--video-codec/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--audio-codec', 'aac'], /--audio-codec/],
    [['--tracks', mediaDir, '--output', `${out}/x.mp4`, '--video-codec', 'vp8'], /--video-codec/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--video-codec', 'av1'], /--video-codec/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--bitrate', '99'], /--bitrate/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--bitrate', '20001'], /--bitrate/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--bitrate', '2k'], /--bitrate/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--width', '640'], /--width and --height/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--width', '641', '--height', '480'], /--width/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--width', '640', '--height', '0'], /--height/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--fps', '0'], /--fps/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--fps', '121'], /--fps/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--threads', '-1'], /--threads/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--threads'], /--threads needs a value/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--json=yes'], /--json takes no value/],
    [['--tracks', mediaDir, '--tracks', mediaDir, '--output', `${out}/x.webm`], /given twice/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, '--frobnicate'], /unknown option '--frobnicate'/],
    [['--tracks', mediaDir, '--output', `${out}/x.webm`, 'extra'], /unexpected argument 'extra'/],
    [['--recording', 'not-a-uuid'], /--recording/],
    [['--recording', '00000000-0000-4000-8000-000000000000', '--output', `${out}/x.webm`], /--output does not go with --recording/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['compose', ...args], { ctx });
    const what = `compose ${args.join(' ')}`;
    assert.equal(r.code, 2, `${what}: exit ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, re, what);
    assert.equal(r.stdout, '', what);
  }
  assert.deepEqual(fs.readdirSync(out), [], 'a refused run left a file');

  // an unknown recording is refused (exit 2) once the database is open
  const unknown = await runCli(['compose', '--recording', '00000000-0000-4000-8000-000000000000'], { ctx });
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /no recording/);

  // an empty folder: no media, exit 3, no file
  fs.mkdirSync(path.join(ctx.root, 'empty'));
  const none = await runCli(['compose', '--tracks', path.join(ctx.root, 'empty'), '--output', `${out}/none.webm`], { ctx });
  assert.equal(none.code, 3, none.stderr);
  assert.match(none.stderr, /no_media/);
  assert.equal(fs.existsSync(`${out}/none.webm`), false);

  // the captures: a JSON summary that matches the file; mp4 inferred from the name
  const file = `${out}/class.mp4`;
  const ok = await runCli(['compose', '--tracks', mediaDir, '--output', file, '--width', '640', '--height', '360', '--fps', '25', '--bitrate', '800', '--json'], { ctx, timeoutMs: 120000 });
  assert.equal(ok.code, 0, ok.stderr);
  const s = JSON.parse(ok.stdout);
  assert.equal(s.format, 'mp4');
  assert.equal(s.videoCodec, 'h264');
  assert.equal(s.audioCodec, 'aac');
  assert.equal(s.fileSize, fs.statSync(file).size);
  assert.equal(s.sha256, sha256File(file));
  assertDuration(s.durationSeconds);
  assert.equal(s.fastPath, false);
  assert.equal(s.tracks, 3);
  assert.equal(s.videoTracks, 2);
  assert.equal(s.audioTracks, 1);
  assert.equal(s.peers, 2);
  assert.ok(s.framesOut >= (MEDIA_SECONDS - 1) * 25, `framesOut ${s.framesOut}`);
  for (const k of ['framesDropped', 'audioConcealedMs', 'decodeErrors', 'elapsedSeconds', 'speed']) assert.equal(typeof s[k], 'number', k);
  const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file]);
  assert.equal(probe.code, 0, probe.stderr);
  const streams = JSON.parse(probe.stdout).streams;
  assert.deepEqual(streams.map((x) => x.codec_name).sort(), ['aac', 'h264']);
  const v = streams.find((x) => x.codec_name === 'h264');
  assert.deepEqual([v.width, v.height], [640, 360]);
  // text summary without --json
  const text = await runCli(['compose', '--tracks', mediaDir, '--output', `${out}/class.webm`, '--width', '320', '--height', '180'], { ctx, timeoutMs: 120000 });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /sha256 [0-9a-f]{64}/);
  assert.match(text.stdout, new RegExp(`sha256 ${sha256File(`${out}/class.webm`)}`));
  ctx.destroy();
});
