// scripts/demo-class (issue 7) against the real binary: synthetic
// participants sent with ffmpeg as plain RTP into a room make a recording
// that ends done with every participant's tracks; the script joins a room's
// active recording instead of starting one, gets a token from the local
// binary when asked, ends early on SIGINT, and on any failure leaves no
// sender, no registered track and no running recording of its own behind.
// The server has exactly four media ports: two participants fill them, and
// every run after the first needs the ports its predecessors gave back.
// backend-independent: a script driving the REST API and RTP ingest; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, cleanupAll, sleep, rand, BIN } from './lib/server.mjs';
import { show, makeUsers, startRec, stopRec, UUID_RE } from './lib/util.mjs';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/demo-class');
const PORT_MIN = 10000 + 4 * Math.floor(Math.random() * 2000); // below the ephemeral range
let srv;
let users;
const groups = []; // process groups of every script run

before(async () => {
  srv = await startServer({ env: { VTP_WORKERS: 1, VTP_RTP_PORT_MIN: PORT_MIN, VTP_RTP_PORT_MAX: PORT_MIN + 3 } });
  users = await makeUsers(srv, { teacher: 'instructor' });
});

after(async () => {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone, as it should be */ }
  }
  await cleanupAll();
});

function scriptEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VTP_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Runs the script in its own process group; resolves {code, signal,
 * stdout, stderr, pgid}. onStderr(text so far, child) sees its progress.
 */
function demo(args, { env = scriptEnv(), timeoutMs = 60000, onStderr } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(SCRIPT, args, { env, cwd: os.tmpdir(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.push(p.pid);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; if (onStderr) onStderr(stderr, p); });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, pgid: p.pid }); });
  });
}

const tell = (r) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Nothing of the script's process group (its ffmpeg senders above all) is left. */
async function assertGroupGone(pgid) {
  for (let i = 0; i < 20; i++) {
    try { process.kill(-pgid, 0); } catch (e) { if (e.code === 'ESRCH') return; throw e; }
    await sleep(100);
  }
  assert.fail(`processes of the script's group ${pgid} are still running`);
}

async function getRec(id, token = users.teacher.token) {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(r.status, 200, show(r));
  return r.json;
}

async function waitFinal(id, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rec = await getRec(id);
    if (rec.status === 'done' || rec.status === 'failed') return rec;
    assert.ok(Date.now() < deadline, `recording ${id} still ${rec.status}`);
    await sleep(200);
  }
}

test('usage: --help, unknown flags and bad values', async () => {
  const help = await demo(['--help']);
  assert.equal(help.code, 0, tell(help));
  assert.match(help.stdout, /--participants/);
  assert.match(help.stdout, /--seconds/);
  for (const args of [['--bogus'], ['-n', '17'], ['-n', 'x'], ['--seconds', '0'], ['--url', 'ftp://x'], ['--room'], ['stray']]) {
    const r = await demo(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${tell(r)}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    assert.match(r.stderr, /^demo-class: /, r.stderr);
  }
});

test('a bad token: a clear error, nonzero exit, no recording', async () => {
  const room = `demo-${rand(4)}`;
  const r = await demo(['--url', srv.url, '--room', room, '--token', 'not.a.token']);
  assert.equal(r.code, 1, tell(r));
  assert.match(r.stderr, /credentials.*401.*invalid token/i, r.stderr);
  assert.equal(r.stdout, '');
  const list = await srv.api('GET', `/api/v1/recordings?room_id=${room}`, { token: users.teacher.token });
  assert.equal(list.json.total, 0, show(list));
});

test('a failure half way leaves no sender, no track and no running recording', async () => {
  // three participants need six ports; the server has four
  const room = `demo-${rand(4)}`;
  const r = await demo(['--url', srv.url, '--room', room, '-n', '3', '--seconds', '20', '--token', users.teacher.token]);
  assert.equal(r.code, 1, tell(r));
  assert.match(r.stderr, /no_ports/, r.stderr);
  await assertGroupGone(r.pgid);
  const list = await srv.api('GET', `/api/v1/recordings?room_id=${room}`, { token: users.teacher.token });
  assert.equal(list.json.total, 1, show(list));
  assert.notEqual(list.json.recordings[0].status, 'recording', 'the recording the script started is stopped');
});

test('two participants make a recording that ends done', async () => {
  const room = `demo-${rand(4)}`;
  const r = await demo(['--url', srv.url, '--room', room, '-n', '2', '--seconds', '4', '--wait', '--title', 'Demo "quoted" \\ title'],
    { env: scriptEnv({ VTP_TOKEN: users.teacher.token }) });
  assert.equal(r.code, 0, tell(r));
  const id = r.stdout.trim();
  assert.match(id, UUID_RE, tell(r));
  assert.match(r.stderr, /\/web\/library\.html/, 'the library URL is printed');
  assert.match(r.stderr, new RegExp(`/api/v1/recordings/${id}/download`), 'the download hint is printed');
  await assertGroupGone(r.pgid);
  const rec = await waitFinal(id);
  assert.equal(rec.status, 'done', JSON.stringify(rec));
  assert.equal(rec.roomId, room);
  assert.equal(rec.title, 'Demo "quoted" \\ title');
  assert.equal(rec.participantCount, 2, JSON.stringify(rec));
  assert.equal(rec.tracks.length, 4, JSON.stringify(rec.tracks));
  for (const t of rec.tracks) assert.ok(t.packets > 0, `no packets on ${JSON.stringify(t)}`);
  const kinds = rec.tracks.map((t) => `${t.fullName}/${t.kind}/${t.codec}`).sort();
  assert.deepEqual(kinds, ['Demo participant 1/audio/opus', 'Demo participant 1/video/vp8',
    'Demo participant 2/audio/opus', 'Demo participant 2/video/vp8']);
  assert.ok(rec.durationSeconds >= 3, `duration ${rec.durationSeconds}`);
});

test('joins the active recording of a room with a token from the local binary, and leaves it running', async () => {
  const { id, room } = await startRec(srv, users.teacher.token);
  const env = scriptEnv({ ...srv.ctx.env(), VTP_BIN: BIN });
  const r = await demo(['--url', srv.url, '--room', room, '-n', '1', '--seconds', '2', '--email', users.teacher.email], { env });
  assert.equal(r.code, 0, tell(r));
  assert.equal(r.stdout.trim(), id, tell(r));
  assert.match(r.stderr, /token from/, r.stderr);
  const rec = await getRec(id);
  assert.equal(rec.status, 'recording', 'a recording the script did not start keeps running');
  assert.equal(rec.tracks.length, 2, JSON.stringify(rec.tracks));
  for (const t of rec.tracks) assert.ok(t.packets > 0, `no packets on ${JSON.stringify(t)}`);
  const parts = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
  assert.equal(parts.status, 200, show(parts));
  assert.ok(parts.json.participants.every((p) => p.leftAt), `participants left: ${parts.text}`);
  await stopRec(srv, users.teacher.token, id);
});

test('SIGINT ends the class early and still stops the recording', async () => {
  const room = `demo-${rand(4)}`;
  let sent = false;
  const started = Date.now();
  const r = await demo(['--url', srv.url, '--room', room, '-n', '1', '--seconds', '60', '--token', users.teacher.token], {
    onStderr: (text, child) => {
      if (!sent && /sending 1 participant/.test(text)) {
        sent = true;
        setTimeout(() => child.kill('SIGINT'), 1500);
      }
    },
  });
  assert.ok(sent, tell(r));
  assert.equal(r.code, 0, tell(r));
  assert.ok(Date.now() - started < 20000, 'ended early');
  await assertGroupGone(r.pgid);
  const rec = await getRec(r.stdout.trim());
  assert.notEqual(rec.status, 'recording', JSON.stringify(rec));
  assert.ok(rec.tracks.every((t) => t.packets > 0 && t.state === 'ended'), JSON.stringify(rec.tracks));
});
