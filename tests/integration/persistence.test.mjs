// Durability: users, recordings, shares and soft deletes survive a graceful
// restart (SIGTERM) and a crash (SIGKILL) on the same data dir / database;
// logins and previously issued tokens keep working.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, cleanupAll, rand } from './lib/server.mjs';
import { PASSWORD, show, expectError, makeUsers, startRec, stopRec } from './lib/util.mjs';

let srv;
let u;
const state = {};

before(async () => {
  srv = await startServer();
  u = await makeUsers(srv, { admin: 'admin', inst: 'instructor', stu: 'student' });
});
after(cleanupAll);

const get = (token, id) => srv.api('GET', `/api/v1/recordings/${id}`, { token });
const stable = (r) => {
  const c = { ...r };
  delete c.progress;
  delete c.status; // processing may advance across a restart
  delete c.completedAt;
  delete c.error;
  return c;
};

test('populate, then restart gracefully', async () => {
  const login = await srv.login(u.inst.email, PASSWORD);
  assert.equal(login.status, 200, show(login));
  state.loginToken = login.json.token;

  const r1 = await startRec(srv, u.inst.token, { description: 'kept', roomId: `p-${rand(4)}` });
  await stopRec(srv, u.inst.token, r1.id);
  const sh = await srv.api('POST', `/api/v1/recordings/${r1.id}/shares`, { token: u.inst.token, body: { userId: u.stu.id, permission: 'view' } });
  assert.equal(sh.status, 201, show(sh));
  state.share = sh.json;
  state.r1 = r1;
  state.r1json = (await get(u.inst.token, r1.id)).json;

  state.r2 = await startRec(srv, u.inst.token); // left active across the restart
  const r3 = await startRec(srv, u.inst.token);
  await stopRec(srv, u.inst.token, r3.id);
  assert.equal((await srv.api('DELETE', `/api/v1/recordings/${r3.id}`, { token: u.inst.token })).status, 200);
  state.r3 = r3;
  state.logLen = (await srv.api('GET', `/api/v1/recordings/${r1.id}/access-log?limit=100`, { token: u.inst.token })).json.total;
  state.secret = readFileSync(path.join(srv.dataDir, 'jwt.secret'));

  const st = await srv.stop();
  assert.equal(st.escalated, false, 'server did not exit within 10 s of SIGTERM');
  assert.equal(st.code, 0, `exit code after SIGTERM: ${st.code} (signal ${st.signal})\nstderr tail:\n${srv.stderr().slice(-2000)}`);
  await srv.restart();
});

test('after restart: tokens, logins, recordings, shares, deletes are all there', async () => {
  assert.doesNotMatch(srv.stdout(), /password:\s*\S+/, 'restart printed an admin password');
  assert.ok(readFileSync(path.join(srv.dataDir, 'jwt.secret')).equals(state.secret), 'jwt.secret changed');

  for (const [name, tok] of [['CLI token', u.inst.token], ['login token', state.loginToken], ['admin token', u.admin.token]]) {
    const m = await srv.api('GET', '/api/v1/users/me', { token: tok });
    assert.equal(m.status, 200, `${name} after restart: ${show(m)}`);
  }
  const login = await srv.login(u.stu.email, PASSWORD);
  assert.equal(login.status, 200, `login after restart: ${show(login)}`);

  const g = await get(u.inst.token, state.r1.id);
  assert.equal(g.status, 200, show(g));
  assert.deepEqual(stable(g.json), stable(state.r1json));

  assert.equal((await get(u.stu.token, state.r1.id)).status, 200, 'share lost across restart');
  const shares = await srv.api('GET', `/api/v1/recordings/${state.r1.id}/shares`, { token: u.inst.token });
  assert.equal(shares.status, 200, show(shares));
  const list = Array.isArray(shares.json) ? shares.json : shares.json.shares;
  assert.ok(list.some((s) => s.id === state.share.id && s.permission === 'view'), 'share row lost');

  const r2 = await get(u.inst.token, state.r2.id);
  assert.equal(r2.status, 200, show(r2));
  assert.ok(typeof r2.json.status === 'string');

  expectError(await get(u.inst.token, state.r3.id), 404, 'not_found');
  const del = await srv.api('GET', '/api/v1/recordings?deleted=true&limit=100', { token: u.inst.token });
  assert.ok(del.json.recordings.some((r) => r.id === state.r3.id), 'soft delete lost across restart');
  assert.equal((await srv.api('POST', `/api/v1/recordings/${state.r3.id}/restore`, { token: u.inst.token })).status, 200);

  const log = await srv.api('GET', `/api/v1/recordings/${state.r1.id}/access-log?limit=100`, { token: u.inst.token });
  assert.ok(log.json.total >= state.logLen, `access log shrank: ${log.json.total} < ${state.logLen}`);

  // the active-per-room rule still holds after a restart
  const again = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: state.r2.room, title: 'again' } });
  if (r2.json.status === 'recording' || r2.json.status === 'pending') {
    expectError(again, 409, 'room_busy');
    assert.equal(again.json.error.activeRecordingId, state.r2.id);
    await stopRec(srv, u.inst.token, state.r2.id);
  } else {
    assert.equal(again.status, 201, show(again));
    await stopRec(srv, u.inst.token, again.json.recordingId);
  }
});

test('after a crash (SIGKILL): committed data survives', async () => {
  const r = await startRec(srv, u.inst.token, { description: 'before crash' });
  await stopRec(srv, u.inst.token, r.id);
  const email = `crash-${rand(4)}@example.test`;
  const id = await srv.createUser({ email, name: 'Crash', role: 'student', password: PASSWORD });
  await srv.kill9();
  await srv.restart();
  const g = await get(u.inst.token, r.id);
  assert.equal(g.status, 200, show(g));
  assert.equal(g.json.description, 'before crash');
  const login = await srv.login(email, PASSWORD);
  assert.equal(login.status, 200, show(login));
  assert.equal(login.json.user.id, id);
  assert.equal((await get(u.stu.token, state.r1.id)).status, 200);
});
