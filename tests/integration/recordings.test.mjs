// Recording lifecycle over the REST API: start validation, one active
// recording per room (also under concurrency), stop / get / list / delete /
// restore with their query-string aliases, visibility, 405/404 handling,
// request ids, participants, health and metrics.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import {
  UUID_RE, STATUSES, show, expectError, expectStatus, assertTime, assertTimesDeep, assertNoPaths,
  makeUsers, startBody, startRec, stopRec, checkAll,
} from './lib/util.mjs';

let srv;
let u;

before(async () => {
  srv = await startServer();
  u = await makeUsers(srv, {
    admin: 'admin', inst: 'instructor', inst2: 'instructor', lonely: 'instructor', stu: 'student', svc: 'service',
  });
});
after(cleanupAll);

const start = (token, body, headers) => srv.api('POST', '/api/v1/recordings/start', { token, body, headers });
const get = (token, id) => srv.api('GET', `/api/v1/recordings/${id}`, { token });
const list = (token, qs = '') => srv.api('GET', `/api/v1/recordings${qs ? `?${qs}` : ''}`, { token });
const del = (token, id) => srv.api('DELETE', `/api/v1/recordings/${id}`, { token });
const restore = (token, id) => srv.api('POST', `/api/v1/recordings/${id}/restore`, { token });
const NIL_UUID = '00000000-0000-4000-8000-000000000000';

/** Full check of a Recording object. */
function checkRecording(r, { id, startedBy, body } = {}) {
  assert.ok(r && typeof r === 'object', 'recording object');
  assert.match(String(r.id), UUID_RE);
  if (id) assert.equal(r.id, id);
  for (const k of ['roomId', 'title', 'startedBy', 'status', 'format', 'videoCodec', 'audioCodec']) {
    assert.equal(typeof r[k], 'string', `Recording.${k} should be a string: ${JSON.stringify(r)}`);
  }
  assert.ok(STATUSES.includes(r.status), `status ${r.status}`);
  if (startedBy) assert.equal(r.startedBy, startedBy);
  assert.equal(typeof r.bitrate, 'number', 'bitrate');
  assertTime(r.createdAt, 'createdAt');
  for (const k of ['resolutionWidth', 'resolutionHeight', 'fps', 'fileSize', 'durationSeconds', 'progress']) {
    if (r[k] !== undefined && r[k] !== null) assert.equal(typeof r[k], 'number', `${k}: ${JSON.stringify(r[k])}`);
  }
  assert.equal(typeof r.participantCount, 'number', `participantCount: ${JSON.stringify(r)}`);
  assert.ok(Array.isArray(r.tracks), `tracks should be an array: ${JSON.stringify(r)}`);
  if (body) {
    assert.equal(r.roomId, body.roomId);
    assert.equal(r.title, body.title);
    if (body.description !== undefined) assert.equal(r.description, body.description);
  }
  assertTimesDeep(r);
}

// ---- start ---------------------------------------------------------------------

test('start → 201 StartRecordingResponse', async () => {
  const body = startBody({ description: 'Week 1' });
  const t0 = Date.now();
  const res = await start(u.inst.token, body);
  assert.equal(res.status, 201, show(res));
  const j = res.json;
  assert.match(String(j.recordingId), UUID_RE);
  assert.equal(j.status, 'recording');
  assert.equal(j.title, body.title);
  assertTime(j.startedAt, 'startedAt');
  assert.ok(Math.abs(Date.parse(j.startedAt) - t0) < 60000, `startedAt ${j.startedAt} is far from now`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assertNoPaths(res, srv);

  const g = await get(u.inst.token, j.recordingId);
  assert.equal(g.status, 200, show(g));
  checkRecording(g.json, { id: j.recordingId, startedBy: u.inst.id, body });
  assert.equal(g.json.status, 'recording');
  assertNoPaths(g, srv);
  await stopRec(srv, u.inst.token, j.recordingId);
});

test('start validation: each field\'s bounds and types → 400 naming the field', async () => {
  // undefined removes the field (JSON.stringify drops it)
  const cases = [
    [{ roomId: undefined }, 'roomId'],
    [{ title: undefined }, 'title'],
    [{ roomId: '' }, 'roomId'],
    [{ roomId: 'x'.repeat(256) }, 'roomId'],
    [{ roomId: 123 }, 'roomId'],
    [{ roomId: null }, 'roomId'],
    [{ roomId: ['r'] }, 'roomId'],
    [{ title: '' }, 'title'],
    [{ title: 'y'.repeat(501) }, 'title'],
    [{ title: 42 }, 'title'],
    [{ title: { a: 1 } }, 'title'],
    [{ description: 5 }, 'description'],
    [{ format: 'avi' }, 'format'],
    [{ format: 1 }, 'format'],
    [{ videoCodec: 'av1' }, 'videoCodec'],
    [{ audioCodec: 'mp3' }, 'audioCodec'],
    [{ bitrate: 99 }, 'bitrate'],
    [{ bitrate: 20001 }, 'bitrate'],
    [{ bitrate: 0 }, 'bitrate'],
    [{ bitrate: -5 }, 'bitrate'],
    [{ bitrate: '2000' }, 'bitrate'],
    [{ bitrate: 1500.5 }, 'bitrate'],
    [{ bitrate: 1e12 }, 'bitrate'],
  ];
  await checkAll(cases, async ([extra, field]) => {
    const body = { roomId: `v-${rand(4)}`, title: 'T', ...extra };
    const res = await start(u.inst.token, body);
    expectError(res, 400, 'invalid_input', field, `body ${JSON.stringify(body).slice(0, 120)}`);
  });
});

test('start validation: incompatible format/codec pairs → 400', async () => {
  const pairs = [
    { format: 'webm', videoCodec: 'h264' },
    { format: 'webm', audioCodec: 'aac' },
    { format: 'webm', videoCodec: 'h264', audioCodec: 'aac' },
    { format: 'webm', videoCodec: 'vp8', audioCodec: 'aac' },
    { videoCodec: 'h264' }, // default format is webm
  ];
  await checkAll(pairs, async (p) => {
    const res = await start(u.inst.token, startBody(p));
    expectError(res, 400, 'invalid_input', undefined, `${JSON.stringify(p)}`);
  });
});

test('start boundaries are accepted and defaults applied', async () => {
  const okCases = [
    [{ roomId: `${rand(4)}`.padEnd(255, 'r') }, {}],
    [{ roomId: `q${rand(2)}`, title: 'T' }, {}],
    [{ title: 'z'.repeat(500) }, {}],
    [{ title: 'z' }, {}],
    [{ bitrate: 100 }, { bitrate: 100 }],
    [{ bitrate: 20000 }, { bitrate: 20000 }],
    [{}, { format: 'webm', videoCodec: 'vp8', audioCodec: 'opus', bitrate: 2000 }],
    [{ format: 'mp4' }, { format: 'mp4', videoCodec: 'h264', audioCodec: 'aac', bitrate: 2000 }],
    [{ format: 'webm', videoCodec: 'vp8', audioCodec: 'opus', bitrate: 3000 }, { format: 'webm', videoCodec: 'vp8', audioCodec: 'opus', bitrate: 3000 }],
    [{ format: 'mp4', videoCodec: 'h264', audioCodec: 'aac', bitrate: 5000 }, { format: 'mp4', videoCodec: 'h264', audioCodec: 'aac', bitrate: 5000 }],
    [{ description: '' }, {}],
  ];
  for (const [extra, expect] of okCases) {
    const body = startBody(extra);
    const res = await start(u.inst.token, body);
    assert.equal(res.status, 201, `${JSON.stringify(extra).slice(0, 80)}: ${show(res)}`);
    const g = await get(u.inst.token, res.json.recordingId);
    assert.equal(g.status, 200, show(g));
    checkRecording(g.json, { body });
    for (const [k, v] of Object.entries(expect)) assert.equal(g.json[k], v, `${JSON.stringify(extra)} → ${k}`);
    await stopRec(srv, u.inst.token, res.json.recordingId);
  }
});

test('unknown fields are ignored (and cannot set server-owned fields)', async () => {
  const body = startBody({
    foo: 1, nested: { a: [1, 2] }, filePath: '/etc/passwd', status: 'done', id: NIL_UUID, startedBy: u.admin.id,
  });
  const res = await start(u.inst.token, body);
  assert.equal(res.status, 201, show(res));
  assert.notEqual(res.json.recordingId, NIL_UUID);
  assert.equal(res.json.status, 'recording');
  const g = await get(u.inst.token, res.json.recordingId);
  assert.equal(g.json.startedBy, u.inst.id);
  assert.equal(g.json.status, 'recording');
  assertNoPaths(g, srv);
  await stopRec(srv, u.inst.token, res.json.recordingId);
});

test('start: malformed bodies and content types', async () => {
  const h = { 'content-type': 'application/json' };
  for (const raw of ['not json', '{"roomId":"a","title":"b"', '{"roomId":"a","title":"b"} x', '{roomId:"a"}']) {
    expectError(await start(u.inst.token, raw, h), 400, 'invalid_json');
  }
  for (const raw of ['', '[]', '"str"', 'null', '42', '[{"roomId":"a","title":"b"}]']) {
    const res = await start(u.inst.token, raw, h);
    assert.equal(res.status, 400, `body ${JSON.stringify(raw)}: ${show(res)}`);
    assert.ok(['invalid_json', 'invalid_input'].includes(res.json?.error?.code), `body ${JSON.stringify(raw)}: ${show(res)}`);
  }
  const good = JSON.stringify(startBody());
  expectError(await start(u.inst.token, good, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
  expectError(await start(u.inst.token, good, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
  const charset = await start(u.inst.token, good, { 'content-type': 'application/json; charset=utf-8' });
  assert.equal(charset.status, 201, `charset parameter: ${show(charset)}`);
  await stopRec(srv, u.inst.token, charset.json.recordingId);
  const upper = await start(u.inst.token, JSON.stringify(startBody()), { 'content-type': 'Application/JSON' });
  assert.equal(upper.status, 201, `media types are case-insensitive: ${show(upper)}`);
  await stopRec(srv, u.inst.token, upper.json.recordingId);
});

test('start: a body without Content-Type → 415', async () => {
  const res = await start(u.inst.token, Buffer.from(JSON.stringify(startBody())));
  if (res.status === 201) await stopRec(srv, u.inst.token, res.json.recordingId);
  expectError(res, 415, 'unsupported_media_type');
});

test('start: body over 1 MiB → 413', async () => {
  const body = Buffer.from(JSON.stringify(startBody({ description: 'd'.repeat(1024 * 1024 + 10) })));
  const res = await srv.raw([
    `POST /api/v1/recordings/start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${u.inst.token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    body,
  ], { timeoutMs: 10000 });
  assert.equal(res.status, 413, `got ${res.statusLine} ${res.text.slice(0, 200)} (error ${res.error})`);
  assert.equal(JSON.parse(res.text).error.code, 'payload_too_large');
  assert.ok(await srv.healthy(), 'server unhealthy after a large body');
});

test('start by student or service → 403; admin may start', async () => {
  expectError(await start(u.stu.token, startBody()), 403, 'forbidden');
  expectError(await start(u.svc.token, startBody()), 403, 'forbidden');
  const r = await startRec(srv, u.admin.token);
  await stopRec(srv, u.admin.token, r.id);
});

test('second start in a busy room → 409 room_busy with activeRecordingId', async () => {
  const a = await startRec(srv, u.inst.token);
  for (const who of [u.inst, u.inst2, u.admin]) {
    const err = expectError(await start(who.token, startBody({ roomId: a.room })), 409, 'room_busy');
    assert.equal(err.activeRecordingId, a.id);
  }
  await stopRec(srv, u.inst.token, a.id);
  const b = await startRec(srv, u.inst2.token, { roomId: a.room });
  assert.notEqual(b.id, a.id);
  await stopRec(srv, u.inst2.token, b.id);
});

test('20 simultaneous starts in one fresh room → exactly one 201', async () => {
  const room = `race-${rand(6)}`;
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    start((i % 2 ? u.inst : u.inst2).token, { roomId: room, title: `race ${i}` })));
  const created = results.filter((r) => r.status === 201);
  const busy = results.filter((r) => r.status === 409);
  assert.equal(created.length, 1, `201s: ${created.length}; statuses ${results.map((r) => r.status).join(',')}`);
  assert.equal(busy.length, 19, `409s: ${busy.length}; statuses ${results.map((r) => r.status).join(',')}`);
  const winner = created[0].json.recordingId;
  for (const b of busy) {
    assert.equal(b.json.error.code, 'room_busy');
    assert.equal(b.json.error.activeRecordingId, winner);
  }
  const l = await list(u.admin.token, `room_id=${encodeURIComponent(room)}`);
  assert.equal(l.json.total, 1, `only one recording should exist in the room: ${show(l)}`);
  await stopRec(srv, u.admin.token, winner);
});

// ---- stop ----------------------------------------------------------------------

test('stop by REST path: 200 Recording with stoppedAt and a wall-clock duration', async () => {
  const t0 = Date.now();
  const a = await startRec(srv, u.inst.token);
  await sleep(1200);
  const res = await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.inst.token });
  const wall = (Date.now() - t0) / 1000;
  assert.equal(res.status, 200, show(res));
  checkRecording(res.json, { id: a.id, startedBy: u.inst.id, body: a.body });
  assert.ok(['stopped', 'processing', 'done', 'failed'].includes(res.json.status), `status after stop: ${res.json.status}`);
  assertTime(res.json.stoppedAt, 'stoppedAt');
  assert.ok(Date.parse(res.json.stoppedAt) >= Date.parse(res.json.createdAt), 'stoppedAt before createdAt');
  assert.equal(typeof res.json.durationSeconds, 'number', `durationSeconds: ${show(res)}`);
  assert.ok(res.json.durationSeconds > 0, `durationSeconds ${res.json.durationSeconds}`);
  assert.ok(res.json.durationSeconds >= 1.0 && res.json.durationSeconds <= wall + 0.5,
    `durationSeconds ${res.json.durationSeconds}, wall ${wall}`);
  assertNoPaths(res, srv);
  // the room is free again
  const b = await startRec(srv, u.inst.token, { roomId: a.room });
  await stopRec(srv, u.inst.token, b.id);
});

test('stop by ?id= alias; missing id → 400 field id; unknown/malformed → 404', async () => {
  const a = await startRec(srv, u.inst.token);
  const res = await srv.api('POST', `/api/v1/recordings/stop?id=${a.id}`, { token: u.inst.token });
  assert.equal(res.status, 200, show(res));
  assert.equal(res.json.id, a.id);
  expectError(await srv.api('POST', '/api/v1/recordings/stop', { token: u.inst.token }), 400, 'invalid_input', 'id');
  expectError(await srv.api('POST', '/api/v1/recordings/stop?id=', { token: u.inst.token }), 400, 'invalid_input', 'id');
  expectError(await srv.api('POST', `/api/v1/recordings/stop?id=${NIL_UUID}`, { token: u.inst.token }), 404, 'not_found');
  expectError(await srv.api('POST', '/api/v1/recordings/stop?id=not-a-uuid', { token: u.inst.token }), 404, 'not_found');
  expectError(await srv.api('POST', `/api/v1/recordings/${NIL_UUID}/stop`, { token: u.inst.token }), 404, 'not_found');
  expectError(await srv.api('POST', '/api/v1/recordings/not-a-uuid/stop', { token: u.inst.token }), 404, 'not_found');
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}x/stop`, { token: u.inst.token }), 404, 'not_found');
});

test('stop twice → 409 not_active (both forms)', async () => {
  const a = await startRec(srv, u.inst.token);
  await stopRec(srv, u.inst.token, a.id);
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.inst.token }), 409, 'not_active');
  expectError(await srv.api('POST', `/api/v1/recordings/stop?id=${a.id}`, { token: u.inst.token }), 409, 'not_active');
});

test('stop by another instructor or a student → 404; by a share holder → 403; by admin → 200', async () => {
  const a = await startRec(srv, u.inst.token);
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.inst2.token }), 404, 'not_found');
  expectError(await srv.api('POST', `/api/v1/recordings/stop?id=${a.id}`, { token: u.inst2.token }), 404, 'not_found');
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.stu.token }), 404, 'not_found');
  const share = await srv.api('POST', `/api/v1/recordings/${a.id}/shares`, { token: u.inst.token, body: { userId: u.inst2.id, permission: 'share' } });
  assert.equal(share.status, 201, show(share));
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.inst2.token }), 403, 'forbidden');
  const view = await srv.api('POST', `/api/v1/recordings/${a.id}/shares`, { token: u.inst.token, body: { userId: u.stu.id, permission: 'view' } });
  assert.equal(view.status, 201, show(view));
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.stu.token }), 403, 'forbidden');
  const g = await get(u.inst.token, a.id);
  assert.equal(g.json.status, 'recording', 'a refused stop must not change the status');
  const res = await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.admin.token });
  assert.equal(res.status, 200, show(res));
});

// ---- get -----------------------------------------------------------------------

test('get by REST path and by ?id= alias return the same Recording', async () => {
  const a = await startRec(srv, u.inst.token, { description: 'same' });
  await stopRec(srv, u.inst.token, a.id);
  const g1 = await get(u.inst.token, a.id);
  const g2 = await srv.api('GET', `/api/v1/recordings/get?id=${a.id}`, { token: u.inst.token });
  assert.equal(g1.status, 200, show(g1));
  assert.equal(g2.status, 200, show(g2));
  checkRecording(g1.json, { id: a.id, startedBy: u.inst.id, body: a.body });
  const stable = (r) => { const c = { ...r }; delete c.progress; return c; };
  assert.deepEqual(stable(g2.json), stable(g1.json));
  assertNoPaths(g1, srv);
  assertNoPaths(g2, srv);
});

test('get: visibility and bad ids', async () => {
  const a = await startRec(srv, u.inst.token);
  for (const who of [u.inst2, u.stu, u.svc]) {
    expectError(await get(who.token, a.id), 404, 'not_found');
    expectError(await srv.api('GET', `/api/v1/recordings/get?id=${a.id}`, { token: who.token }), 404, 'not_found');
  }
  assert.equal((await get(u.admin.token, a.id)).status, 200);
  expectError(await get(u.inst.token, NIL_UUID), 404, 'not_found');
  expectError(await get(u.inst.token, 'not-a-uuid'), 404, 'not_found');
  expectError(await get(u.inst.token, `${a.id}0`), 404, 'not_found');
  expectError(await get(u.inst.token, "1'%20OR%20'1'='1"), 404, 'not_found');
  expectError(await srv.api('GET', '/api/v1/recordings/get', { token: u.inst.token }), 400, 'invalid_input', 'id');
  expectError(await srv.api('GET', '/api/v1/recordings/get?id=zzz', { token: u.inst.token }), 404, 'not_found');
  await stopRec(srv, u.inst.token, a.id);
});

test('participants: empty list for now; invisible → 404', async () => {
  const a = await startRec(srv, u.inst.token);
  const res = await srv.api('GET', `/api/v1/recordings/${a.id}/participants`, { token: u.inst.token });
  assert.equal(res.status, 200, show(res));
  assert.deepEqual(res.json.participants, []);
  assert.equal(res.json.count, 0);
  expectError(await srv.api('GET', `/api/v1/recordings/${a.id}/participants`, { token: u.inst2.token }), 404, 'not_found');
  await stopRec(srv, u.inst.token, a.id);
});

// ---- list ----------------------------------------------------------------------

test('list: room filter, total, newest first, pagination, status filter, visibility', async () => {
  const room = `list-${rand(5)}`;
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await startRec(srv, u.inst.token, { roomId: room, title: `L${i}` });
    ids.push(r.id);
    await stopRec(srv, u.inst.token, r.id);
    await sleep(15);
  }
  const active = await startRec(srv, u.inst.token, { roomId: room, title: 'L3' });
  ids.push(active.id);
  const newestFirst = [...ids].reverse();
  const q = `room_id=${encodeURIComponent(room)}`;

  const all = await list(u.inst.token, q);
  assert.equal(all.status, 200, show(all));
  assert.equal(all.json.total, 4);
  assert.equal(all.json.count, 4);
  assert.equal(all.json.limit, 10);
  assert.equal(all.json.offset, 0);
  assert.deepEqual(all.json.recordings.map((r) => r.id), newestFirst);
  for (const r of all.json.recordings) checkRecording(r, { startedBy: u.inst.id });
  for (let i = 1; i < all.json.recordings.length; i++) {
    assert.ok(Date.parse(all.json.recordings[i - 1].createdAt) >= Date.parse(all.json.recordings[i].createdAt), 'not newest first');
  }
  assertNoPaths(all, srv);

  const p1 = await list(u.inst.token, `${q}&limit=2`);
  assert.deepEqual([p1.json.count, p1.json.total, p1.json.limit, p1.json.offset], [2, 4, 2, 0]);
  assert.deepEqual(p1.json.recordings.map((r) => r.id), newestFirst.slice(0, 2));
  const p2 = await list(u.inst.token, `${q}&limit=2&offset=2`);
  assert.deepEqual([p2.json.count, p2.json.total, p2.json.offset], [2, 4, 2]);
  assert.deepEqual(p2.json.recordings.map((r) => r.id), newestFirst.slice(2, 4));
  const p3 = await list(u.inst.token, `${q}&offset=4`);
  assert.deepEqual([p3.json.count, p3.json.total], [0, 4]);
  assert.deepEqual(p3.json.recordings, []);
  const p4 = await list(u.inst.token, `${q}&limit=100&offset=3`);
  assert.deepEqual(p4.json.recordings.map((r) => r.id), newestFirst.slice(3));

  const rec = await list(u.inst.token, `${q}&status=recording`);
  assert.equal(rec.status, 200, show(rec));
  assert.deepEqual(rec.json.recordings.map((r) => r.id), [active.id]);
  assert.equal(rec.json.total, 1);
  // (stopped ones may move on to processing/done/failed at any time, so no exact counts for those)
  for (const s of STATUSES) {
    const r = await list(u.inst.token, `${q}&status=${s}`);
    assert.equal(r.status, 200, `status=${s}: ${show(r)}`);
    for (const x of r.json.recordings) assert.equal(x.status, s, `status=${s} listed a ${x.status} recording`);
    assert.ok(r.json.total <= (s === 'recording' ? 1 : 3), `status=${s}: total ${r.json.total}`);
    for (const x of r.json.recordings) assert.ok(ids.includes(x.id));
  }

  // visibility
  assert.equal((await list(u.inst2.token, q)).json.total, 0, 'another instructor sees the room\'s recordings');
  assert.equal((await list(u.stu.token, q)).json.total, 0, 'a student sees the room\'s recordings');
  assert.equal((await list(u.admin.token, q)).json.total, 4, 'admin sees everything');
  const other = await list(u.inst.token, `room_id=${encodeURIComponent(`${room}-other`)}`);
  assert.equal(other.json.total, 0);
  await stopRec(srv, u.inst.token, active.id);
});

test('list without filters shows only visible recordings', async () => {
  const r = await startRec(srv, u.lonely.token);
  await stopRec(srv, u.lonely.token, r.id);
  const l = await list(u.lonely.token, 'limit=100');
  assert.equal(l.status, 200, show(l));
  assert.equal(l.json.total, 1, `lonely should see exactly their one recording: ${show(l)}`);
  assert.equal(l.json.recordings[0].id, r.id);
  const s = await list(u.svc.token);
  assert.equal(s.status, 200, show(s));
  assert.equal(s.json.total, 0);
  const adm = await list(u.admin.token, 'limit=100');
  assert.ok(adm.json.total >= 12, `admin total ${adm.json.total}`);
  assert.equal(adm.json.count, Math.min(adm.json.total, 100));
  const def = await list(u.admin.token);
  assert.equal(def.json.limit, 10, 'default limit');
  assert.equal(def.json.count, 10, 'default page size');
  assert.equal(def.json.recordings.length, 10);
  assert.equal(def.json.total, adm.json.total);
  assert.deepEqual(def.json.recordings.map((r) => r.id), adm.json.recordings.slice(0, 10).map((r) => r.id));
});

test('list: bad parameters → 400 naming the parameter', async () => {
  const bad = [
    ['limit=0', 'limit'], ['limit=101', 'limit'], ['limit=-1', 'limit'], ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'], ['limit=99999999999999999999', 'limit'], ['limit=10abc', 'limit'], ['limit=', 'limit'],
    ['offset=-1', 'offset'], ['offset=x', 'offset'], ['offset=1e3', 'offset'], ['offset=99999999999999999999999', 'offset'],
    ['status=bogus', 'status'], ['status=', 'status'], ['status=deleted', 'status'],
  ];
  await checkAll(bad, async ([qs, field]) => {
    const res = await list(u.inst.token, qs);
    expectError(res, 400, 'invalid_input', field, `?${qs}`);
  });
  for (const qs of ['limit=1', 'limit=100', 'offset=0', 'offset=100000']) {
    assert.equal((await list(u.inst.token, qs)).status, 200, qs);
  }
});

// ---- delete / restore -------------------------------------------------------------

test('delete → 404 on get, gone from lists, listed with deleted=true; restore brings it back', async () => {
  const a = await startRec(srv, u.inst.token);
  await stopRec(srv, u.inst.token, a.id);
  const q = `room_id=${encodeURIComponent(a.room)}`;

  expectError(await del(u.inst2.token, a.id), 404, 'not_found');
  expectError(await del(u.stu.token, a.id), 404, 'not_found');

  const d = await del(u.inst.token, a.id);
  assert.equal(d.status, 200, show(d));
  assert.equal(d.json.success, true);
  assert.equal(d.json.recordingId, a.id);
  assertTime(d.json.deletedAt, 'deletedAt');

  expectError(await get(u.inst.token, a.id), 404, 'not_found');
  expectError(await get(u.admin.token, a.id), 404, 'not_found');
  assert.equal((await list(u.inst.token, q)).json.total, 0);

  const dl = await list(u.inst.token, `deleted=true&${q}`);
  assert.equal(dl.status, 200, show(dl));
  assert.deepEqual(dl.json.recordings.map((r) => r.id), [a.id]);
  assertNoPaths(dl, srv);
  const dlAll = await list(u.inst.token, 'deleted=true&limit=100');
  assert.ok(dlAll.json.recordings.some((r) => r.id === a.id));
  assert.ok(!(await list(u.inst2.token, 'deleted=true&limit=100')).json.recordings.some((r) => r.id === a.id),
    'another instructor lists my deleted recording');
  assert.ok((await list(u.admin.token, 'deleted=true&limit=100')).json.recordings.some((r) => r.id === a.id),
    'admin should list all deleted recordings');

  // deleting it again is a conflict for those who could restore it (CONTRACT
  // §3: 409 state conflict), and still not found for everyone else
  expectError(await del(u.inst.token, a.id), 409, 'already_deleted', undefined, 'delete twice');
  expectError(await srv.api('DELETE', `/api/v1/recordings/delete?id=${a.id}`, { token: u.inst.token }), 409,
    'already_deleted', undefined, 'delete twice (alias)');
  expectError(await del(u.admin.token, a.id), 409, 'already_deleted', undefined, 'admin deletes twice');
  expectError(await del(u.inst2.token, a.id), 404, 'not_found', undefined, 'another instructor deletes a deleted one');
  expectError(await del(u.stu.token, a.id), 404, 'not_found', undefined, 'a student deletes a deleted one');

  expectError(await restore(u.inst2.token, a.id), 404, 'not_found');
  const r = await restore(u.inst.token, a.id);
  assert.equal(r.status, 200, show(r));
  checkRecording(r.json, { id: a.id, startedBy: u.inst.id });
  assert.ok(r.json.deletedAt === undefined || r.json.deletedAt === null, 'restored recording still has deletedAt');
  assert.equal((await get(u.inst.token, a.id)).status, 200);
  assert.equal((await list(u.inst.token, q)).json.total, 1);
  assert.equal((await list(u.inst.token, `deleted=true&${q}`)).json.total, 0);
  expectError(await restore(u.inst.token, a.id), 409, 'not_deleted');
});

test('delete by ?id= alias; admin can delete and restore; missing id → 400', async () => {
  const a = await startRec(srv, u.inst.token);
  await stopRec(srv, u.inst.token, a.id);
  const d = await srv.api('DELETE', `/api/v1/recordings/delete?id=${a.id}`, { token: u.inst.token });
  assert.equal(d.status, 200, show(d));
  assert.equal(d.json.recordingId, a.id);
  expectError(await get(u.inst.token, a.id), 404, 'not_found');
  assert.equal((await restore(u.admin.token, a.id)).status, 200);
  assert.equal((await del(u.admin.token, a.id)).status, 200);
  assert.equal((await restore(u.inst.token, a.id)).status, 200);
  expectError(await srv.api('DELETE', '/api/v1/recordings/delete', { token: u.inst.token }), 400, 'invalid_input', 'id');
  expectError(await srv.api('DELETE', `/api/v1/recordings/delete?id=${NIL_UUID}`, { token: u.inst.token }), 404, 'not_found');
  expectError(await srv.api('DELETE', '/api/v1/recordings/delete?id=bogus', { token: u.inst.token }), 404, 'not_found');
  expectError(await restore(u.inst.token, NIL_UUID), 404, 'not_found');
});

test('deleting an active recording stops it first and frees the room', async () => {
  const a = await startRec(srv, u.inst.token);
  const d = await del(u.inst.token, a.id);
  assert.equal(d.status, 200, show(d));
  expectError(await srv.api('POST', `/api/v1/recordings/${a.id}/stop`, { token: u.inst.token }), 404, 'not_found');
  const b = await startRec(srv, u.inst.token, { roomId: a.room });
  await stopRec(srv, u.inst.token, b.id);
  const r = await restore(u.inst.token, a.id);
  assert.equal(r.status, 200, show(r));
  assert.ok(['stopped', 'processing', 'done', 'failed'].includes(r.json.status), `restored status ${r.json.status}`);
  assertTime(r.json.stoppedAt, 'stoppedAt');
});

// ---- protocol ------------------------------------------------------------------------

test('recording ids are accepted in any letter case; answers spell them in lowercase', async () => {
  const a = await startRec(srv, u.inst.token);
  const upper = a.id.toUpperCase();
  const mixed = a.id.split('').map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
  assert.notEqual(upper, a.id);
  for (const id of [upper, mixed]) {
    const g = await get(u.inst.token, id);
    assert.equal(g.status, 200, show(g));
    assert.equal(g.json.id, a.id);
    const alias = await srv.api('GET', `/api/v1/recordings/get?id=${id}`, { token: u.inst.token });
    assert.equal(alias.status, 200, show(alias));
    assert.equal(alias.json.id, a.id);
    for (const sub of ['participants', 'access-log', 'shares']) {
      const res = await srv.api('GET', `/api/v1/recordings/${id}/${sub}`, { token: u.inst.token });
      assert.equal(res.status, 200, `${sub}: ${show(res)}`);
    }
  }
  const sh = await srv.api('POST', `/api/v1/recordings/${upper}/shares`, { token: u.inst.token, body: { userId: u.stu.id.toUpperCase(), permission: 'view' } });
  assert.equal(sh.status, 201, show(sh));
  assert.equal(sh.json.recordingId, a.id);
  assert.equal(sh.json.userId, u.stu.id);
  const unsh = await srv.api('DELETE', `/api/v1/recordings/${upper}/shares/${sh.json.id.toUpperCase()}`, { token: u.inst.token });
  assert.ok([200, 204].includes(unsh.status), show(unsh));
  const st = await srv.api('POST', `/api/v1/recordings/${upper}/stop`, { token: u.inst.token });
  assert.equal(st.status, 200, show(st));
  assert.equal(st.json.id, a.id);
  const d = await del(u.inst.token, upper);
  assert.equal(d.status, 200, show(d));
  assert.equal(d.json.recordingId, a.id, 'the delete answer spells the id as every other answer does');
  expectError(await del(u.inst.token, mixed), 409, 'already_deleted');
  const r = await restore(u.inst.token, mixed);
  assert.equal(r.status, 200, show(r));
  assert.equal(r.json.id, a.id);
});

test('/metrics names no recording or track; with VTP_METRICS_TOKEN it needs the token and shows them', async () => {
  const a = await startRec(srv, u.inst.token);
  const track = await srv.api('POST', `/api/v1/recordings/${a.id}/tracks`, {
    token: u.inst.token, body: { peerId: 'p1', fullName: 'Ada', kind: 'audio', codec: 'opus', payloadType: 111 },
  });
  assert.equal(track.status, 201, show(track));
  const pub = await fetch(`${srv.url}/metrics`);
  assert.equal(pub.status, 200);
  const text = await pub.text();
  assert.match(text, /^vtp_recordings_active \d+$/m, 'the aggregate series stay');
  assert.match(text, /^vtp_ingest_tracks \d+$/m, 'the aggregate track gauge stays');
  assert.ok(!text.includes(a.id), 'a recording id in the public /metrics');
  assert.ok(!text.includes(track.json.trackId), 'a track id in the public /metrics');
  assert.doesNotMatch(text, /recording="/);
  await stopRec(srv, u.inst.token, a.id);

  const token = `metrics-${rand(12)}`;
  const prot = await startServer({ env: { VTP_METRICS_TOKEN: token, VTP_WORKERS: 0 } });
  try {
    const pu = await makeUsers(prot, { i: 'instructor' });
    const b = await startRec(prot, pu.i.token);
    const t = await prot.api('POST', `/api/v1/recordings/${b.id}/tracks`, {
      token: pu.i.token, body: { peerId: 'p1', fullName: 'Ada', kind: 'audio', codec: 'opus', payloadType: 111 },
    });
    assert.equal(t.status, 201, show(t));
    for (const headers of [{}, { authorization: `Bearer ${token}x` }, { authorization: `Bearer ${token.slice(0, -1)}` },
      { authorization: token }, { authorization: `Bearer ${pu.i.token}` }]) {
      const res = await fetch(`${prot.url}/metrics`, { headers });
      assert.equal(res.status, 401, `${JSON.stringify(headers)} → ${res.status}`);
      const body = await res.json();
      assert.equal(body.error.code, 'unauthorized');
    }
    const ok = await fetch(`${prot.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    const full = await ok.text();
    assert.match(full, new RegExp(`^vtp_track_packets_total\\{recording="${b.id}",track="${t.json.trackId}",kind="audio"\\} 0$`, 'm'));
    await stopRec(prot, pu.i.token, b.id);
  } finally {
    await prot.stop();
  }
});

test('405 with Allow for wrong methods', async () => {
  const a = await startRec(srv, u.inst.token);
  const cases = [
    ['PUT', '/api/v1/recordings/start', ['POST']],
    ['GET', '/api/v1/recordings/start', ['POST']],
    ['PATCH', `/api/v1/recordings/${a.id}`, ['GET', 'DELETE']],
    ['GET', `/api/v1/recordings/${a.id}/stop`, ['POST']],
    ['DELETE', '/api/v1/recordings', ['GET']],
    ['GET', '/api/v1/auth/login', ['POST']],
  ];
  await checkAll(cases, async ([m, p, allow]) => {
    const res = await srv.api(m, p, { token: u.inst.token });
    expectError(res, 405, 'method_not_allowed', undefined, `${m} ${p}`);
    const got = (res.headers.get('allow') || '').split(',').map((s) => s.trim().toUpperCase());
    for (const x of allow) assert.ok(got.includes(x), `${m} ${p}: Allow "${res.headers.get('allow')}" lacks ${x}`);
  });
  await stopRec(srv, u.inst.token, a.id);
});

test('unknown paths → 404 JSON', async () => {
  await checkAll(['/api/v1/nope', '/api/v2/recordings', `/api/v1/recordings/${NIL_UUID}/nope`, '/api/v1/users/me/extra'], async (p) => {
    const res = await srv.api('GET', p, { token: u.inst.token });
    expectError(res, 404, 'not_found', undefined, `GET ${p}`);
    assert.match(res.headers.get('content-type') || '', /^application\/json/);
  });
});

test('every response carries a distinct X-Request-Id', async () => {
  const responses = [
    await srv.api('GET', '/healthz'),
    await srv.api('GET', '/api/v1/users/me', { token: u.inst.token }),
    await srv.api('GET', '/api/v1/users/me'),
    await srv.api('GET', '/api/v1/nope', { token: u.inst.token }),
    await srv.api('PUT', '/api/v1/recordings/start', { token: u.inst.token }),
    await start(u.inst.token, { roomId: '' }),
    await start(u.inst.token, 'x', { 'content-type': 'text/plain' }),
    await list(u.inst.token),
  ];
  const ids = responses.map((r) => r.headers.get('x-request-id'));
  ids.forEach((id, i) => assert.ok(id && id.length > 0, `response ${i} (${responses[i].status}) has no X-Request-Id`));
  assert.equal(new Set(ids).size, ids.length, `request ids repeat: ${ids.join(' ')}`);
});

// ---- operations ------------------------------------------------------------------------

test('healthz and metrics', async () => {
  const h = await srv.api('GET', '/healthz');
  assert.equal(h.status, 200, show(h));
  assert.equal(h.json.status, 'ok');

  const a = await startRec(srv, u.inst.token);
  const active = (await list(u.admin.token, 'status=recording&limit=1')).json.total +
    (await list(u.admin.token, 'status=pending&limit=1')).json.total;
  const m = await srv.api('GET', '/metrics', { token: u.admin.token });
  assert.equal(m.status, 200, show(m));
  assert.match(m.headers.get('content-type') || '', /^text\/plain/);
  assert.match(m.text, /^vtp_http_requests_total\{[^}]*\} \d/m, 'vtp_http_requests_total counter missing');
  assert.match(m.text, /^# TYPE vtp_http_request_duration_seconds histogram/m, 'duration histogram TYPE line missing');
  assert.match(m.text, /^vtp_http_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} \d/m, 'histogram +Inf bucket missing');
  assert.match(m.text, /^vtp_http_request_duration_seconds_count/m);
  const gauge = [...m.text.matchAll(/^vtp_recordings_active(?:\{[^}]*\})? (\S+)/gm)].map((x) => Number(x[1]));
  assert.ok(gauge.length > 0, 'vtp_recordings_active gauge missing');
  assert.equal(gauge.reduce((s, x) => s + x, 0), active, `vtp_recordings_active ≠ ${active} active recordings`);
  await stopRec(srv, u.inst.token, a.id);
  const m2 = await srv.api('GET', '/metrics', { token: u.admin.token });
  const gauge2 = [...m2.text.matchAll(/^vtp_recordings_active(?:\{[^}]*\})? (\S+)/gm)].map((x) => Number(x[1]));
  assert.equal(gauge2.reduce((s, x) => s + x, 0), active - 1, 'gauge did not drop after stop');
  // the audit trail reports what it could not write (nothing, here)
  assert.match(m2.text, /^vtp_audit_entries_lost_total 0$/m, 'audit loss counter missing or non-zero');
});
