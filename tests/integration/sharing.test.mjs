// Sharing and the access log: user and role shares, permission levels
// (view < download < share), visibility through shares, revocation,
// re-sharing by holders of "share", and the audit trail's content.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, cleanupAll, rand, sleep } from './lib/server.mjs';
import {
  UUID_RE, PASSWORD, show, expectError, assertTime, assertTimesDeep, assertNoPaths, makeUsers, startRec, stopRec, sharesOf,
} from './lib/util.mjs';

let srv;
let u;

before(async () => {
  // no processing workers: the access log here holds only what people did
  srv = await startServer({ env: { VTP_WORKERS: 0 } });
  u = await makeUsers(srv, {
    admin: 'admin', owner: 'instructor', inst2: 'instructor', inst3: 'instructor', stu1: 'student', stu2: 'student', svc: 'service',
  });
});
after(cleanupAll);

const share = (token, id, body, headers) => srv.api('POST', `/api/v1/recordings/${id}/shares`, { token, body, headers });
const shares = (token, id) => srv.api('GET', `/api/v1/recordings/${id}/shares`, { token });
const unshare = (token, id, sid, headers) => srv.api('DELETE', `/api/v1/recordings/${id}/shares/${sid}`, { token, headers });
const get = (token, id, headers) => srv.api('GET', `/api/v1/recordings/${id}`, { token, headers });
const accessLog = (token, id, qs = '') => srv.api('GET', `/api/v1/recordings/${id}/access-log${qs ? `?${qs}` : ''}`, { token });
const listRoom = (token, room) => srv.api('GET', `/api/v1/recordings?room_id=${encodeURIComponent(room)}`, { token });

function checkShare(s, { recordingId, userId, role, permission, sharedBy }) {
  assert.match(String(s.id), UUID_RE, `share id: ${JSON.stringify(s)}`);
  assert.equal(s.recordingId, recordingId);
  if (userId) assert.equal(s.userId, userId);
  if (role) {
    assert.equal(s.role, role);
    assert.ok(s.userId === undefined || s.userId === null, `role share has a userId: ${JSON.stringify(s)}`);
  }
  assert.equal(s.permission, permission);
  assert.equal(s.sharedBy, sharedBy);
  assertTime(s.sharedAt, 'sharedAt');
  assertTimesDeep(s);
}

test('user share (view): the holder sees the recording, others still do not', async () => {
  const r = await startRec(srv, u.owner.token);
  const res = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.equal(res.status, 201, show(res));
  checkShare(res.json, { recordingId: r.id, userId: u.stu1.id, permission: 'view', sharedBy: u.owner.id });
  assertNoPaths(res, srv);

  const g = await get(u.stu1.token, r.id);
  assert.equal(g.status, 200, show(g));
  assert.equal(g.json.id, r.id);
  assertNoPaths(g, srv);
  assert.equal((await srv.api('GET', `/api/v1/recordings/get?id=${r.id}`, { token: u.stu1.token })).status, 200);
  assert.equal((await srv.api('GET', `/api/v1/recordings/${r.id}/participants`, { token: u.stu1.token })).status, 200);
  const l = await listRoom(u.stu1.token, r.room);
  assert.deepEqual(l.json.recordings.map((x) => x.id), [r.id]);
  assert.equal(l.json.total, 1);

  expectError(await get(u.stu2.token, r.id), 404, 'not_found');
  expectError(await get(u.inst2.token, r.id), 404, 'not_found');
  assert.equal((await listRoom(u.stu2.token, r.room)).json.total, 0);
  await stopRec(srv, u.owner.token, r.id);
});

test('view and download holders may not share, stop, delete, list shares, read the log or revoke', async () => {
  const r = await startRec(srv, u.owner.token);
  const v = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.equal(v.status, 201, show(v));
  const d = await share(u.owner.token, r.id, { userId: u.inst3.id, permission: 'download' });
  assert.equal(d.status, 201, show(d));
  for (const [who, name] of [[u.stu1, 'view'], [u.inst3, 'download']]) {
    expectError(await share(who.token, r.id, { userId: u.stu2.id, permission: 'view' }), 403, 'forbidden', undefined, `${name} holder shares`);
    expectError(await srv.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: who.token }), 403, 'forbidden', undefined, `${name} holder stops`);
    expectError(await srv.api('DELETE', `/api/v1/recordings/${r.id}`, { token: who.token }), 403, 'forbidden', undefined, `${name} holder deletes`);
    expectError(await shares(who.token, r.id), 403, 'forbidden', undefined, `${name} holder lists shares`);
    expectError(await accessLog(who.token, r.id), 403, 'forbidden', undefined, `${name} holder reads the access log`);
    expectError(await unshare(who.token, r.id, v.json.id), 403, 'forbidden', undefined, `${name} holder revokes`);
  }
  expectError(await get(u.stu2.token, r.id), 404, 'not_found', undefined, 'stu2 must not have gained access');
  const g = await get(u.owner.token, r.id);
  assert.equal(g.json.status, 'recording');
  await stopRec(srv, u.owner.token, r.id);
});

test('holders of "share" may re-share, nothing more', async () => {
  const r = await startRec(srv, u.owner.token);
  const s = await share(u.owner.token, r.id, { userId: u.inst2.id, permission: 'share' });
  assert.equal(s.status, 201, show(s));
  const re = await share(u.inst2.token, r.id, { userId: u.stu2.id, permission: 'view' });
  assert.equal(re.status, 201, show(re));
  checkShare(re.json, { recordingId: r.id, userId: u.stu2.id, permission: 'view', sharedBy: u.inst2.id });
  assert.equal((await get(u.stu2.token, r.id)).status, 200, 'the re-shared user should see the recording');

  expectError(await srv.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: u.inst2.token }), 403, 'forbidden', undefined, 'share holder stops');
  expectError(await srv.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.inst2.token }), 403, 'forbidden', undefined, 'share holder deletes');
  expectError(await srv.api('DELETE', `/api/v1/recordings/delete?id=${r.id}`, { token: u.inst2.token }), 403, 'forbidden', undefined, 'share holder deletes (alias)');
  expectError(await shares(u.inst2.token, r.id), 403, 'forbidden', undefined, 'share holder lists shares');
  expectError(await accessLog(u.inst2.token, r.id), 403, 'forbidden', undefined, 'share holder reads the log');
  expectError(await unshare(u.inst2.token, r.id, re.json.id), 403, 'forbidden', undefined, 'share holder revokes');

  const all = await shares(u.owner.token, r.id);
  assert.equal(all.status, 200, show(all));
  const list = sharesOf(all.json);
  assert.deepEqual(list.map((x) => x.id).sort(), [s.json.id, re.json.id].sort());
  for (const x of list) assertTimesDeep(x);
  await stopRec(srv, u.owner.token, r.id);
});

test('a holder of "share" may not share with a role (403 role_share_forbidden); starter and admin may', async () => {
  const r = await startRec(srv, u.owner.token);
  const s = await share(u.owner.token, r.id, { userId: u.inst2.id, permission: 'share' });
  assert.equal(s.status, 201, show(s));
  for (const permission of ['share', 'download', 'view']) {
    const res = await share(u.inst2.token, r.id, { role: 'student', permission });
    expectError(res, 403, 'role_share_forbidden', 'role', `holder shares with the student role (${permission})`);
  }
  // nothing was created: no student sees it, the starter lists one share
  for (const st of [u.stu1, u.stu2]) expectError(await get(st.token, r.id), 404, 'not_found');
  assert.deepEqual(sharesOf((await shares(u.owner.token, r.id)).json).map((x) => x.id), [s.json.id]);
  // individual users are still fine
  const one = await share(u.inst2.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.equal(one.status, 201, show(one));
  // role shares stay for the starter and admins
  const byAdmin = await share(u.admin.token, r.id, { role: 'service', permission: 'view' });
  assert.equal(byAdmin.status, 201, show(byAdmin));
  const byOwner = await share(u.owner.token, r.id, { role: 'student', permission: 'view' });
  assert.equal(byOwner.status, 201, show(byOwner));
  await stopRec(srv, u.owner.token, r.id);
});

test('shares made by a holder end with the holder\'s grant, recursively, and the access log shows it', async () => {
  const r = await startRec(srv, u.owner.token);
  const ok = (res) => { assert.equal(res.status, 201, show(res)); return res.json; };
  const inst2 = ok(await share(u.owner.token, r.id, { userId: u.inst2.id, permission: 'share' }));
  const kept = ok(await share(u.owner.token, r.id, { userId: u.svc.id, permission: 'view' }));
  const inst3 = ok(await share(u.inst2.token, r.id, { userId: u.inst3.id, permission: 'share' }));
  const stu1 = ok(await share(u.inst3.token, r.id, { userId: u.stu1.id, permission: 'view' }));
  const stu2 = ok(await share(u.inst2.token, r.id, { userId: u.stu2.id, permission: 'download' }));
  for (const who of [u.inst2, u.inst3, u.stu1, u.stu2, u.svc]) assert.equal((await get(who.token, r.id)).status, 200);

  // the starter revokes the first holder: everything that hung on it goes
  const del = await unshare(u.owner.token, r.id, inst2.id);
  assert.ok([200, 204].includes(del.status), show(del));
  for (const who of [u.inst2, u.inst3, u.stu1, u.stu2]) expectError(await get(who.token, r.id), 404, 'not_found', undefined, who.name);
  assert.equal((await get(u.svc.token, r.id)).status, 200, 'the starter\'s own share must stay');
  assert.deepEqual(sharesOf((await shares(u.owner.token, r.id)).json).map((x) => x.id), [kept.id]);
  // a holder cut off cannot share any more either
  expectError(await share(u.inst3.token, r.id, { userId: u.stu1.id, permission: 'view' }), 404, 'not_found');

  const log = (await accessLog(u.owner.token, r.id, 'limit=100')).json.entries;
  const unshares = log.filter((e) => e.accessType === 'unshare');
  const direct = unshares.find((e) => e.detail.shareId === inst2.id);
  assert.ok(direct && !direct.detail.cascade, JSON.stringify(unshares));
  const cascaded = unshares.filter((e) => e.detail.cascade === true);
  assert.deepEqual(cascaded.map((e) => e.detail.shareId).sort(), [inst3.id, stu1.id, stu2.id].sort(), JSON.stringify(unshares));
  for (const e of cascaded) assert.equal(e.accessedBy, u.owner.id, 'the revocation that caused it is the starter\'s');
  assert.equal(cascaded.find((e) => e.detail.shareId === stu1.id).detail.sharedBy, u.inst3.id);

  // lowering a holder's share ends what they shared, too
  ok(await share(u.owner.token, r.id, { userId: u.inst2.id, permission: 'share' }));
  ok(await share(u.inst2.token, r.id, { userId: u.stu1.id, permission: 'view' }));
  assert.equal((await get(u.stu1.token, r.id)).status, 200);
  const lowered = await share(u.owner.token, r.id, { userId: u.inst2.id, permission: 'view' });
  assert.ok([200, 201].includes(lowered.status), show(lowered));
  expectError(await get(u.stu1.token, r.id), 404, 'not_found', undefined, 'share of a lowered holder');
  assert.equal((await get(u.inst2.token, r.id)).status, 200, 'the lowered holder keeps view');

  // and a holder through a role share loses theirs with the role share
  const roleShare = ok(await share(u.owner.token, r.id, { role: 'instructor', permission: 'share' }));
  ok(await share(u.inst3.token, r.id, { userId: u.stu2.id, permission: 'view' }));
  assert.equal((await get(u.stu2.token, r.id)).status, 200);
  assert.ok([200, 204].includes((await unshare(u.owner.token, r.id, roleShare.id)).status));
  expectError(await get(u.stu2.token, r.id), 404, 'not_found', undefined, 'share of a role-share holder');
  await stopRec(srv, u.owner.token, r.id);
});

test('re-sharing to the same user replaces the permission', async () => {
  const r = await startRec(srv, u.owner.token);
  const a = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.equal(a.status, 201, show(a));
  const b = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'download' });
  assert.ok([200, 201].includes(b.status), show(b));
  assert.equal(b.json.id, a.json.id, 'the same share should be updated');
  assert.equal(b.json.permission, 'download');
  const l = sharesOf((await shares(u.owner.token, r.id)).json);
  const mine = l.filter((x) => x.userId === u.stu1.id);
  assert.equal(mine.length, 1, `one share per user expected: ${JSON.stringify(l)}`);
  assert.equal(mine[0].permission, 'download');
  // downgrade works too and still grants view
  const c = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.ok([200, 201].includes(c.status), show(c));
  assert.equal(c.json.permission, 'view');
  assert.equal((await get(u.stu1.token, r.id)).status, 200);
  await stopRec(srv, u.owner.token, r.id);
});

test('role shares apply to every user of that role, including later ones', async () => {
  const r = await startRec(srv, u.owner.token);
  const res = await share(u.owner.token, r.id, { role: 'student', permission: 'view' });
  assert.equal(res.status, 201, show(res));
  checkShare(res.json, { recordingId: r.id, role: 'student', permission: 'view', sharedBy: u.owner.id });
  for (const s of [u.stu1, u.stu2]) assert.equal((await get(s.token, r.id)).status, 200);
  const email = `late-${rand(4)}@example.test`;
  await srv.createUser({ email, name: 'Late Student', role: 'student', password: PASSWORD });
  const late = await srv.tokenFor(email);
  assert.equal((await get(late, r.id)).status, 200, 'a student created after the role share should see it');
  assert.deepEqual((await listRoom(late, r.room)).json.recordings.map((x) => x.id), [r.id]);
  for (const who of [u.inst2, u.inst3, u.svc]) expectError(await get(who.token, r.id), 404, 'not_found');
  // a role share does not confer more than its permission
  expectError(await share(u.stu1.token, r.id, { userId: u.inst2.id, permission: 'view' }), 403, 'forbidden');

  const ir = await share(u.owner.token, r.id, { role: 'instructor', permission: 'share' });
  assert.equal(ir.status, 201, show(ir));
  assert.equal((await get(u.inst3.token, r.id)).status, 200);
  const viaRole = await share(u.inst3.token, r.id, { userId: u.svc.id, permission: 'view' });
  assert.equal(viaRole.status, 201, `a role-level "share" holder may share: ${show(viaRole)}`);
  assert.equal((await get(u.svc.token, r.id)).status, 200);

  // revoking the role share removes access for the whole role
  assert.ok([200, 204].includes((await unshare(u.owner.token, r.id, res.json.id)).status));
  for (const s of [u.stu1, u.stu2]) expectError(await get(s.token, r.id), 404, 'not_found');
  expectError(await get(late, r.id), 404, 'not_found');
  await stopRec(srv, u.owner.token, r.id);
});

test('revoke: access ends; unknown share → 404; admin may revoke', async () => {
  const r = await startRec(srv, u.owner.token);
  const s = await share(u.owner.token, r.id, { userId: u.stu1.id, permission: 'view' });
  assert.equal(s.status, 201, show(s));
  assert.equal((await get(u.stu1.token, r.id)).status, 200);
  const del = await unshare(u.owner.token, r.id, s.json.id);
  assert.ok([200, 204].includes(del.status), show(del));
  expectError(await get(u.stu1.token, r.id), 404, 'not_found');
  assert.equal((await listRoom(u.stu1.token, r.room)).json.total, 0);
  assert.ok(!sharesOf((await shares(u.owner.token, r.id)).json).some((x) => x.id === s.json.id));
  expectError(await unshare(u.owner.token, r.id, s.json.id), 404, 'not_found');
  expectError(await unshare(u.owner.token, r.id, crypto.randomUUID()), 404, 'not_found');
  expectError(await unshare(u.owner.token, r.id, 'not-a-uuid'), 404, 'not_found');

  const s2 = await share(u.owner.token, r.id, { userId: u.stu2.id, permission: 'view' });
  assert.equal(s2.status, 201, show(s2));
  // the share id belongs to r; using it under another recording must not work
  const other = await startRec(srv, u.owner.token);
  expectError(await unshare(u.owner.token, other.id, s2.json.id), 404, 'not_found');
  assert.equal((await get(u.stu2.token, r.id)).status, 200);
  assert.ok([200, 204].includes((await unshare(u.admin.token, r.id, s2.json.id)).status));
  expectError(await get(u.stu2.token, r.id), 404, 'not_found');
  await stopRec(srv, u.owner.token, r.id);
  await stopRec(srv, u.owner.token, other.id);
});

test('share validation and visibility', async () => {
  const r = await startRec(srv, u.owner.token);
  const t = u.owner.token;
  expectError(await share(t, r.id, { userId: u.stu1.id, permission: 'admin' }), 400, 'invalid_input', 'permission');
  expectError(await share(t, r.id, { userId: u.stu1.id, permission: 5 }), 400, 'invalid_input', 'permission');
  expectError(await share(t, r.id, { userId: u.stu1.id }), 400, 'invalid_input', 'permission');
  expectError(await share(t, r.id, { role: 'superuser', permission: 'view' }), 400, 'invalid_input', 'role');
  expectError(await share(t, r.id, { userId: 'nope', permission: 'view' }), 400, 'invalid_input', 'userId');
  expectError(await share(t, r.id, { permission: 'view' }), 400, 'invalid_input');
  const ghost = await share(t, r.id, { userId: crypto.randomUUID(), permission: 'view' });
  assert.ok([400, 404].includes(ghost.status), `share with an unknown user: ${show(ghost)}`);
  expectError(await share(t, r.id, 'nope', { 'content-type': 'application/json' }), 400, 'invalid_json');
  expectError(await share(t, r.id, JSON.stringify({ userId: u.stu1.id, permission: 'view' }), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');

  // not visible → 404 for everything
  for (const who of [u.stu2, u.inst2]) {
    expectError(await share(who.token, r.id, { userId: who.id, permission: 'view' }), 404, 'not_found');
    expectError(await shares(who.token, r.id), 404, 'not_found');
    expectError(await accessLog(who.token, r.id), 404, 'not_found');
  }
  expectError(await share(t, crypto.randomUUID(), { userId: u.stu1.id, permission: 'view' }), 404, 'not_found');
  expectError(await shares(t, 'not-a-uuid'), 404, 'not_found');

  // admin may do all of it
  const a = await share(u.admin.token, r.id, { userId: u.stu2.id, permission: 'view' });
  assert.equal(a.status, 201, show(a));
  assert.equal(a.json.sharedBy, u.admin.id);
  assert.equal((await shares(u.admin.token, r.id)).status, 200);
  assert.equal((await accessLog(u.admin.token, r.id)).status, 200);
  await stopRec(srv, u.owner.token, r.id);
});

test('access log records who did what, from where, newest first', async () => {
  const H = (ua, extra = {}) => ({ 'user-agent': ua, ...extra });
  // distinct milliseconds, so that "newest first" has exactly one right answer
  const tick = () => sleep(3);
  const start = await srv.api('POST', '/api/v1/recordings/start', {
    token: u.owner.token, body: { roomId: `log-${rand(4)}`, title: 'Logged' }, headers: H('vtp-it/owner-start'),
  });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  await tick();
  const s = await share(u.owner.token, id, { userId: u.stu1.id, permission: 'view' }, H('vtp-it/share'));
  await tick();
  assert.equal(s.status, 201, show(s));
  await tick();
  assert.equal((await get(u.stu1.token, id, H('vtp-it/stu1-view-path'))).status, 200);
  await tick();
  assert.equal((await srv.api('GET', `/api/v1/recordings/get?id=${id}`, {
    token: u.stu1.token, headers: H('vtp-it/stu1-view-alias', { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' }),
  })).status, 200);
  await tick();
  assert.equal((await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.owner.token, headers: H('vtp-it/stop') })).status, 200);
  await tick();
  assert.ok([200, 204].includes((await unshare(u.owner.token, id, s.json.id, H('vtp-it/unshare'))).status));
  await tick();
  assert.equal((await srv.api('DELETE', `/api/v1/recordings/${id}`, { token: u.owner.token, headers: H('vtp-it/delete') })).status, 200);
  await tick();
  assert.equal((await srv.api('POST', `/api/v1/recordings/${id}/restore`, { token: u.owner.token, headers: H('vtp-it/restore') })).status, 200);
  // "view" entries may be written in the background: allow them a moment to land
  let res;
  const deadline = Date.now() + 3000;
  for (;;) {
    res = await accessLog(u.owner.token, id, 'limit=100');
    const views = (res.json?.entries || []).filter((e) => e.accessType === 'view').length;
    if (res.status !== 200 || views >= 2 || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.equal(res.status, 200, show(res));
  const { entries } = res.json;
  assert.ok(Array.isArray(entries), show(res));
  assert.equal(res.json.count, entries.length);
  assert.equal(res.json.total, entries.length);
  assert.equal(res.json.limit, 100);
  assert.equal(res.json.offset, 0);
  assertNoPaths(res, srv);
  for (const e of entries) {
    assert.match(String(e.id), UUID_RE);
    assert.equal(e.recordingId, id);
    assert.match(String(e.accessedBy), UUID_RE);
    assert.ok(['start', 'stop', 'view', 'share', 'unshare', 'delete', 'restore', 'download'].includes(e.accessType), `accessType ${e.accessType}`);
    assert.equal(e.ipAddress, '127.0.0.1', `ipAddress of ${e.accessType} (X-Forwarded-For must not be trusted): ${JSON.stringify(e)}`);
    assertTime(e.accessedAt, 'accessedAt');
  }
  for (let i = 1; i < entries.length; i++) {
    assert.ok(Date.parse(entries[i - 1].accessedAt) >= Date.parse(entries[i].accessedAt), 'access log not newest first');
  }
  const expected = [
    ['start', u.owner.id, 'vtp-it/owner-start'],
    ['share', u.owner.id, 'vtp-it/share'],
    ['view', u.stu1.id, 'vtp-it/stu1-view-path'],
    ['view', u.stu1.id, 'vtp-it/stu1-view-alias'],
    ['stop', u.owner.id, 'vtp-it/stop'],
    ['unshare', u.owner.id, 'vtp-it/unshare'],
    ['delete', u.owner.id, 'vtp-it/delete'],
    ['restore', u.owner.id, 'vtp-it/restore'],
  ];
  // oldest → newest; the expected actions must appear in this order
  const chrono = [...entries].reverse();
  let pos = 0;
  for (const [type, by, ua] of expected) {
    const i = chrono.findIndex((e, k) => k >= pos && e.accessType === type && e.accessedBy === by && e.userAgent === ua);
    assert.ok(i >= 0, `no "${type}" entry by ${by} with User-Agent ${ua} after position ${pos}: ${JSON.stringify(chrono)}`);
    pos = i + 1;
  }
  assert.equal(entries.filter((e) => e.accessType === 'view' && e.accessedBy === u.stu1.id).length, 2, 'each GET logs one view');

  const p = await accessLog(u.owner.token, id, 'limit=2&offset=1');
  assert.equal(p.status, 200, show(p));
  assert.equal(p.json.count, 2);
  assert.equal(p.json.total, entries.length);
  assert.deepEqual(p.json.entries.map((e) => e.id), entries.slice(1, 3).map((e) => e.id));
  expectError(await accessLog(u.owner.token, id, 'limit=0'), 400, 'invalid_input', 'limit');
  expectError(await accessLog(u.owner.token, id, 'offset=-3'), 400, 'invalid_input', 'offset');
  assert.equal((await accessLog(u.admin.token, id)).status, 200);
  expectError(await accessLog(u.stu1.token, id), 404, 'not_found', undefined, 'revoked user reads the log');
});
