// The list endpoint keeps rendered pages (src/api/listcache.c). These tests
// prime that cache with a list request, change the data through every kind
// of write the API offers, and check that the very next list shows the
// change, for the writer and for other callers; and that callers or queries
// that differ never get each other's page. The same scenarios run on a
// second server with VTP_RESPONSE_CACHE=0, and both must answer alike.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanupAll, rand, sleep } from './lib/server.mjs';
import { show, makeUsers, startRec, stopRec } from './lib/util.mjs';

const servers = {};

before(async () => {
  // no processing workers: a stopped recording stays stopped, so that
  // every change seen here is one the test made
  servers.cached = await startServer({ env: { VTP_WORKERS: 0 } });
  servers.uncached = await startServer({ env: { VTP_RESPONSE_CACHE: '0', VTP_WORKERS: 0 } });
});
after(cleanupAll);

async function list(srv, token, qs = '') {
  const res = await srv.api('GET', `/api/v1/recordings${qs ? `?${qs}` : ''}`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}
const ids = (l) => l.recordings.map((x) => x.id);

for (const mode of ['cached', 'uncached']) {
  test(`${mode}: every write shows in the next list`, async () => {
    const srv = servers[mode];
    const u = await makeUsers(srv, { owner: 'instructor', other: 'instructor', stu: 'student', stu2: 'student' });
    const room = `room-${rand(5)}`;
    const qRoom = `room_id=${room}`;

    // prime: empty lists everywhere
    assert.deepEqual(ids(await list(srv, u.owner.token, qRoom)), []);
    assert.deepEqual(ids(await list(srv, u.stu.token)), []);
    assert.equal((await list(srv, u.owner.token)).total, 0);

    // start: the owner's lists show it at once, status recording
    const r = await startRec(srv, u.owner.token, { roomId: room });
    let l = await list(srv, u.owner.token, qRoom);
    assert.deepEqual(ids(l), [r.id]);
    assert.equal(l.recordings[0].status, 'recording');
    assert.equal((await list(srv, u.owner.token)).total, 1);
    assert.deepEqual(ids(await list(srv, u.owner.token, 'status=recording')), [r.id]);

    // stop: the status and the duration change in the next list
    await stopRec(srv, u.owner.token, r.id);
    l = await list(srv, u.owner.token, qRoom);
    assert.equal(l.recordings[0].status, 'stopped');
    assert.equal(typeof l.recordings[0].durationSeconds, 'number');
    assert.deepEqual(ids(await list(srv, u.owner.token, 'status=recording')), []);
    assert.deepEqual(ids(await list(srv, u.owner.token, 'status=stopped')), [r.id]);

    // a user share makes it visible to that student only
    const sh = await srv.api('POST', `/api/v1/recordings/${r.id}/shares`,
      { token: u.owner.token, body: { userId: u.stu.id, permission: 'view' } });
    assert.equal(sh.status, 201, show(sh));
    assert.deepEqual(ids(await list(srv, u.stu.token)), [r.id]);
    assert.deepEqual(ids(await list(srv, u.stu2.token)), []);
    assert.deepEqual(ids(await list(srv, u.other.token)), []);

    // revoking it hides it again
    const un = await srv.api('DELETE', `/api/v1/recordings/${r.id}/shares/${sh.json.id}`, { token: u.owner.token });
    assert.equal(un.status, 200, show(un));
    assert.deepEqual(ids(await list(srv, u.stu.token)), []);

    // a role share reaches every student, not the other instructor
    const rs = await srv.api('POST', `/api/v1/recordings/${r.id}/shares`,
      { token: u.owner.token, body: { role: 'student', permission: 'view' } });
    assert.equal(rs.status, 201, show(rs));
    assert.ok(ids(await list(srv, u.stu.token, qRoom)).includes(r.id));
    assert.ok(ids(await list(srv, u.stu2.token, qRoom)).includes(r.id));
    assert.deepEqual(ids(await list(srv, u.other.token, qRoom)), []);

    // delete: gone from every list; in the owner's deleted list
    const del = await srv.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.owner.token });
    assert.equal(del.status, 200, show(del));
    assert.deepEqual(ids(await list(srv, u.owner.token, qRoom)), []);
    assert.deepEqual(ids(await list(srv, u.stu.token, qRoom)), []);
    assert.deepEqual(ids(await list(srv, u.owner.token, 'deleted=true')), [r.id]);

    // restore: back for the owner and the role share's holders
    const res = await srv.api('POST', `/api/v1/recordings/${r.id}/restore`, { token: u.owner.token });
    assert.equal(res.status, 200, show(res));
    assert.deepEqual(ids(await list(srv, u.owner.token, qRoom)), [r.id]);
    assert.deepEqual(ids(await list(srv, u.stu2.token, qRoom)), [r.id]);
    assert.deepEqual(ids(await list(srv, u.owner.token, 'deleted=true')), []);
  });

  test(`${mode}: callers and queries never get each other's page`, async () => {
    const srv = servers[mode];
    const u = await makeUsers(srv, { a: 'instructor', b: 'instructor' });
    // Rooms whose names would collide if the key were a naive join.
    const base = `k-${rand(4)}`;
    const ra = await startRec(srv, u.a.token, { roomId: `${base}|1` });
    const rb = await startRec(srv, u.a.token, { roomId: `${base}` });
    const rc = await startRec(srv, u.b.token, { roomId: `${base}-b` });

    assert.deepEqual(ids(await list(srv, u.a.token, `room_id=${encodeURIComponent(`${base}|1`)}`)), [ra.id]);
    assert.deepEqual(ids(await list(srv, u.a.token, `room_id=${encodeURIComponent(base)}`)), [rb.id]);
    assert.deepEqual(ids(await list(srv, u.a.token, `room_id=${encodeURIComponent(base)}&status=stopped`)), []);
    // same query, other caller: b's own, never a's
    assert.deepEqual(ids(await list(srv, u.b.token, `room_id=${encodeURIComponent(base)}`)), []);
    assert.deepEqual(ids(await list(srv, u.b.token, `room_id=${encodeURIComponent(`${base}-b`)}`)), [rc.id]);
    // paging: the same caller with other limit/offset gets other pages
    const first = await list(srv, u.a.token, 'limit=1');
    const second = await list(srv, u.a.token, 'limit=1&offset=1');
    assert.equal(first.limit, 1);
    assert.equal(second.offset, 1);
    assert.equal(first.recordings.length, 1);
    assert.equal(second.recordings.length, 1);
    assert.notEqual(first.recordings[0].id, second.recordings[0].id);
    assert.deepEqual(ids(await list(srv, u.a.token, 'limit=2')), [first.recordings[0].id, second.recordings[0].id]);
    // a repeated request answers the same bytes
    const again = await srv.api('GET', '/api/v1/recordings?limit=2', { token: u.a.token });
    const again2 = await srv.api('GET', '/api/v1/recordings?limit=2', { token: u.a.token });
    assert.equal(again.text, again2.text);
    // bad input is still refused, cache or not
    const bad = await srv.api('GET', '/api/v1/recordings?limit=0', { token: u.a.token });
    assert.equal(bad.status, 400, show(bad));
  });
}

for (const mode of ['cached', 'uncached']) {
  test(`${mode}: GET by id follows every write, and a kept answer is never shown to someone who may not see it`, async () => {
    const srv = servers[mode];
    const u = await makeUsers(srv, { owner: 'instructor', stu: 'student', other: 'instructor', admin: 'admin' });
    const r = await startRec(srv, u.owner.token);
    const get = (token) => srv.api('GET', `/api/v1/recordings/${r.id}`, { token });
    assert.equal((await get(u.owner.token)).json.status, 'recording');
    await stopRec(srv, u.owner.token, r.id);
    // prime with the owner and an admin
    const first = await get(u.owner.token);
    assert.equal(first.json.status, 'stopped');
    assert.equal((await get(u.admin.token)).status, 200);
    // others: 404 although the answer is kept
    assert.equal((await get(u.stu.token)).status, 404);
    assert.equal((await get(u.other.token)).status, 404);
    // a share opens it to the student; revoking closes it again
    const sh = await srv.api('POST', `/api/v1/recordings/${r.id}/shares`, { token: u.owner.token, body: { userId: u.stu.id, permission: 'view' } });
    assert.equal(sh.status, 201, show(sh));
    assert.equal((await get(u.stu.token)).status, 200);
    await srv.api('DELETE', `/api/v1/recordings/${r.id}/shares/${sh.json.id}`, { token: u.owner.token });
    assert.equal((await get(u.stu.token)).status, 404);
    // delete: 404 for the owner too; restore: back, same bytes as before
    assert.equal((await srv.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.owner.token })).status, 200);
    assert.equal((await get(u.owner.token)).status, 404);
    assert.equal((await srv.api('POST', `/api/v1/recordings/${r.id}/restore`, { token: u.owner.token })).status, 200);
    const back = await get(u.owner.token);
    assert.equal(back.status, 200);
    assert.equal(back.text, first.text);
    // every GET answered is in the access log, kept answer or not (views
    // are written in batches within 10 ms)
    await sleep(100);
    const log = await srv.api('GET', `/api/v1/recordings/${r.id}/access-log?limit=100`, { token: u.owner.token });
    const views = log.json.entries.filter((e) => e.accessType === 'view').length;
    assert.equal(views, 5, `views logged: ${views}`);
  });
}
