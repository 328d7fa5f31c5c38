// Abuse cases found in review: a burst of parallel password guesses must not
// get past the login throttle, bytes from outside (User-Agent, query strings,
// methods, paths) must not break the audit log, error bodies or log lines,
// and a holder of "share" must not rewrite shares others granted.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanupAll, rand } from './lib/server.mjs';
import { PASSWORD, show, expectError, makeUsers, startRec } from './lib/util.mjs';

let srv;
let u;

before(async () => {
  srv = await startServer({ env: { VTP_LOG_FORMAT: 'json' } });
  u = await makeUsers(srv, { owner: 'instructor', inst2: 'instructor', stu1: 'student', victim: 'student' });
});
after(cleanupAll);

test('parallel wrong passwords for one account: exactly 5 are checked, the rest get 429', async () => {
  const bodies = Array.from({ length: 30 }, () => ({ email: u.victim.email, password: `wrong-${rand(4)}` }));
  const res = await Promise.all(bodies.map((b) => srv.api('POST', '/api/v1/auth/login', { body: b })));
  const counts = {};
  for (const r of res) counts[r.status] = (counts[r.status] || 0) + 1;
  assert.deepEqual(counts, { 401: 5, 429: 25 }, JSON.stringify(counts));
  const after = await srv.login(u.victim.email, PASSWORD);
  expectError(after, 429, 'too_many_requests');
  assert.match(after.headers.get('retry-after') || '', /^\d+$/);
});

test('a successful login gives its attempt back: many good logins are never throttled', async () => {
  for (let i = 0; i < 12; i++) {
    const r = await srv.login(u.stu1.email, PASSWORD);
    assert.equal(r.status, 200, show(r));
  }
});

test('a User-Agent with invalid UTF-8 and control bytes is still audited, cleaned', async () => {
  const rec = await startRec(srv, u.owner.token);
  const ua = Buffer.concat([Buffer.from('evil\x1b[31m'), Buffer.from([0xff, 0xfe]), Buffer.from('agent')]);
  const res = await srv.raw([
    Buffer.concat([
      Buffer.from(`POST /api/v1/recordings/${rec.id}/stop HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${u.owner.token}\r\nUser-Agent: `), ua,
      Buffer.from('\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
    ]),
  ]);
  assert.equal(res.status, 200, `${res.statusLine} ${res.text.slice(0, 200)}`);
  const log = await srv.api('GET', `/api/v1/recordings/${rec.id}/access-log`, { token: u.owner.token });
  assert.equal(log.status, 200, show(log));
  const stop = log.json.entries.find((e) => e.accessType === 'stop');
  assert.ok(stop, `no stop entry: ${log.text}`);
  assert.equal(typeof stop.userAgent, 'string', 'userAgent must be present');
  assert.ok(stop.userAgent.startsWith('evil') && stop.userAgent.endsWith('agent'), stop.userAgent);
  assert.ok(!/[\u0000-\u001f\u007f]/.test(stop.userAgent), `control characters kept: ${JSON.stringify(stop.userAgent)}`);
});

test('query strings that are not UTF-8 text are 400, never 500', async () => {
  for (const q of ['room_id=%ff', 'room_id=%c0%af', 'room_id=a%0ab', 'room_id=%ed%a0%80']) {
    expectError(await srv.api('GET', `/api/v1/recordings?${q}`, { token: u.owner.token }), 400, 'invalid_input', 'room_id', q);
  }
});

test('a method that is not UTF-8 still gets the JSON error shape with a message', async () => {
  const res = await srv.raw([
    Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' /api/v1/recordings/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
  ]);
  if (res.status === 405) {
    const body = JSON.parse(res.text);
    assert.equal(body.error.code, 'method_not_allowed');
    assert.equal(typeof body.error.message, 'string');
  } else {
    assert.equal(res.status, 400, `${res.statusLine} ${res.text.slice(0, 200)}`); // refused by the HTTP parser
  }
  assert.ok(await srv.healthy());
});

test('a holder of "share" may add shares but not rewrite one the starter granted', async () => {
  const rec = await startRec(srv, u.owner.token);
  const share = (token, body) => srv.api('POST', `/api/v1/recordings/${rec.id}/shares`, { token, body });
  assert.equal((await share(u.owner.token, { userId: u.stu1.id, permission: 'share' })).status, 201);
  assert.equal((await share(u.owner.token, { userId: u.inst2.id, permission: 'download' })).status, 201);
  expectError(await share(u.stu1.token, { userId: u.inst2.id, permission: 'view' }), 409, 'share_exists');
  const list = await srv.api('GET', `/api/v1/recordings/${rec.id}/shares`, { token: u.owner.token });
  const inst2 = list.json.shares.find((s) => s.userId === u.inst2.id);
  assert.equal(inst2.permission, 'download');
  assert.equal(inst2.sharedBy, u.owner.id);
  // a new share with a user is fine; a role share is for the starter and admins
  assert.equal((await share(u.stu1.token, { userId: u.victim.id, permission: 'view' })).status, 201);
  expectError(await share(u.stu1.token, { role: 'student', permission: 'view' }), 403, 'role_share_forbidden');
  // and the starter may still change any share
  assert.equal((await share(u.owner.token, { userId: u.inst2.id, permission: 'view' })).status, 200);
});

test('hostile paths and headers never break a JSON log line', async () => {
  await srv.raw([`GET /api/v1/recordings/%0a%1b[31m%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
  await srv.raw([Buffer.concat([Buffer.from('GET /healthz/'), Buffer.from([0xff, 0x0a, 0x41]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')])]);
  await srv.api('GET', '/api/v1/recordings/x%0d%0a{"level":"error"}', { token: u.owner.token });
  assert.ok(await srv.healthy());
  const lines = srv.stderr().split('\n').filter((l) => l.length > 0);
  assert.ok(lines.length > 10, 'expected request log lines');
  for (const l of lines) {
    let o;
    try { o = JSON.parse(l); } catch { assert.fail(`not a JSON log line: ${JSON.stringify(l)}`); }
    assert.equal(typeof o.msg, 'string', l);
  }
});
