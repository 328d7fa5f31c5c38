// Real-time events (README "Real-time events") through the real binary and the stock
// `socket.io-client` (tests/node_modules, Socket.IO v4 over the WebSocket
// transport only): the handshake and its token check, the polling transport
// refused with a clear 400, join-room / leave-room and the room-members
// broadcast, recording-start / recording-stop over the socket with the same
// rules (and error codes) as the REST endpoints, REST actions and the
// processing worker (a separate process) broadcast to the room's sockets, and
// a raw WebSocket client (node:net, frames built by hand) that sends garbage,
// malformed Socket.IO packets, huge and binary frames while a well-behaved
// client keeps working. A user deleted or demoted behind an open socket (in the
// database, as an operator would) is noticed without waiting for the token to
// expire; a second CONNECT never changes whose a socket is. Every wait is for
// an event, with a deadline.

// sanitizer pass: sqlite only: the jobs, spool, CLI and events code is the same C on both backends, and the store's PostgreSQL side runs under the sanitizers in unit_store; make test's time keeps the PostgreSQL variant to the release pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { startServer, cleanupAll, sleep, rand, BACKEND } from './lib/server.mjs';
import {
  UUID_RE, show, makeUsers, startRec, assertTime, decodeJwt, b64uJson, checkAll, signJwt, keyCandidates, keyMatches,
} from './lib/util.mjs';
import { run, Relay, ffmpegArgs } from './lib/media.mjs';

let srv;
let u; // inst, inst2, stu, stu2, admin
let expiredToken; // a real token with a 1 s lifetime, made in before()
const sockets = new Set();
const raws = new Set();

const room = (what = 'ev') => `${what}-${rand(5)}`;

before(async () => {
  srv = await startServer({ env: { VTP_WORKERS: 1 } });
  u = await makeUsers(srv, { inst: 'instructor', inst2: 'instructor', stu: 'student', stu2: 'student', admin: 'admin' });
  expiredToken = await srv.tokenFor(u.stu.email, 1);
});

after(async () => {
  for (const s of sockets) s.disconnect();
  for (const w of raws) w.destroy();
  await cleanupAll();
});

// ---- socket.io-client helpers ------------------------------------------------------------

function fail(message) {
  return new assert.AssertionError({ message });
}

/** Every event a socket receives is logged; once() takes the first unconsumed match. */
function record(s) {
  s.log = [];
  s.waiters = [];
  s.onAny((event, ...args) => {
    const e = { event, data: args[0], used: false };
    s.log.push(e);
    for (const w of s.waiters) {
      if (w.event === event && w.pred(e.data)) {
        e.used = true;
        s.waiters.splice(s.waiters.indexOf(w), 1);
        w.resolve(e.data);
        break;
      }
    }
  });
}

const summary = (s) => JSON.stringify(s.log.map((e) => [e.event, e.data])).slice(0, 1500);

/** The first (not yet consumed) `event` on s matching pred, logged already or arriving within timeoutMs. */
function once(s, event, timeoutMs = 5000, pred = () => true) {
  const hit = s.log.find((e) => !e.used && e.event === event && pred(e.data));
  if (hit) {
    hit.used = true;
    return Promise.resolve(hit.data);
  }
  return new Promise((resolve, reject) => {
    const w = {
      event,
      pred,
      resolve: (d) => { clearTimeout(timer); resolve(d); },
    };
    const timer = setTimeout(() => {
      s.waiters.splice(s.waiters.indexOf(w), 1);
      reject(fail(`${s.who}: no "${event}" (matching) within ${timeoutMs} ms; received: ${summary(s)}`));
    }, timeoutMs);
    s.waiters.push(w);
  });
}

/** Events named `event` on s whose data match pred (consumed or not). */
const seen = (s, event, pred = () => true) => s.log.filter((e) => e.event === event && pred(e.data)).map((e) => e.data);

function newSocket(auth, who) {
  const opts = { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 };
  if (auth !== undefined) opts.auth = auth;
  const s = io(srv.url, opts);
  s.who = who;
  record(s);
  sockets.add(s);
  return s;
}

/** A connected socket for `user` (a makeUsers entry). */
function connect(user, timeoutMs = 8000) {
  const s = newSocket({ token: user.token }, user.name);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(fail(`${user.name}: not connected within ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(timer); reject(fail(`${user.name}: connect_error ${e.message} (${JSON.stringify(e.data)})`)); });
  });
}

/** The connect_error of a connection with these auth options (fails if it connects). */
function connectError(auth, what, timeoutMs = 8000) {
  const s = newSocket(auth, what);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(fail(`${what}: neither connect nor connect_error within ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => { clearTimeout(timer); reject(fail(`${what}: connected, expected connect_error`)); });
    s.once('connect_error', (e) => { clearTimeout(timer); s.disconnect(); resolve(e); });
  });
}

/** emit with an acknowledgement; the ack's value, or a failure after timeoutMs. */
async function ack(s, event, ...args) {
  try {
    return await s.timeout(8000).emitWithAck(event, ...args);
  } catch (e) {
    throw fail(`${s.who}: no ack for ${event} ${JSON.stringify(args).slice(0, 200)}: ${e.message}; connected=${s.connected}`);
  }
}

/** One acknowledged request: everything the server queued for s before it has arrived. */
async function roundTrip(s) {
  await ack(s, 'leave-room', { roomId: `never-joined-${rand(4)}` });
}

function assertAckError(a, what, code) {
  assert.ok(a && typeof a === 'object' && a.error && typeof a.error === 'object', `${what}: expected {error}, got ${JSON.stringify(a)}`);
  assert.match(String(a.error.code), /^[a-z][a-z0-9_]*$/, `${what}: error.code ${JSON.stringify(a)}`);
  assert.ok(typeof a.error.message === 'string' && a.error.message.length > 0, `${what}: error.message ${JSON.stringify(a)}`);
  if (code !== undefined) assert.equal(a.error.code, code, `${what}: ${JSON.stringify(a)}`);
  return a.error;
}

function assertMembers(list, users, what) {
  assert.ok(Array.isArray(list), `${what}: members ${JSON.stringify(list)}`);
  for (const m of list) {
    assert.match(String(m.userId), UUID_RE, `${what}: member ${JSON.stringify(m)}`);
    assert.equal(typeof m.fullName, 'string', `${what}: member ${JSON.stringify(m)}`);
    assert.equal(typeof m.role, 'string', `${what}: member ${JSON.stringify(m)}`);
  }
  const got = [...new Set(list.map((m) => m.userId))].sort();
  assert.deepEqual(got, users.map((x) => x.id).sort(), `${what}: members ${JSON.stringify(list)}`);
  for (const x of users) {
    const m = list.find((y) => y.userId === x.id);
    assert.equal(m.fullName, x.name, `${what}: fullName of ${x.name}`);
    assert.equal(m.role, x.role, `${what}: role of ${x.name}`);
  }
}

const hasMember = (user) => (d) => Array.isArray(d?.members) && d.members.some((m) => m.userId === user.id);
const lacksMember = (user) => (d) => Array.isArray(d?.members) && !d.members.some((m) => m.userId === user.id);
const forRoom = (r, pred) => (d) => d && d.roomId === r && pred(d);
const forRec = (id) => (d) => d && d.recordingId === id;

async function getRec(token, id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

// ---- 1. handshake ---------------------------------------------------------------------------

test('handshake: a valid token connects; no, bad, tampered and expired tokens get connect_error "unauthorized…"', async () => {
  const s = await connect(u.inst);
  assert.ok(s.connected);
  assert.equal(typeof s.id, 'string');
  const j = await ack(s, 'join-room', { roomId: room() });
  assert.ok(j && !j.error, JSON.stringify(j));
  s.disconnect();

  // the expired token was valid for one second, made in before()
  const { payload } = decodeJwt(expiredToken);
  const wait = (payload.exp + 1) * 1000 - Date.now() + 100;
  if (wait > 0) await sleep(wait);
  const [h, p, sig] = u.inst.token.split('.');
  const flipped = Buffer.from(sig, 'base64url');
  flipped[0] ^= 1;
  const cases = [
    ['no auth at all', undefined],
    ['auth without token', {}],
    ['empty token', { token: '' }],
    ['token not a string', { token: 12345 }],
    ['not a JWT', { token: 'not-a-jwt' }],
    ['signature changed', { token: `${h}.${p}.${flipped.toString('base64url')}` }],
    ['claims changed (sub of the admin)', { token: `${h}.${b64uJson({ ...decodeJwt(u.inst.token).payload, sub: u.admin.id })}.${sig}` }],
    ['alg none', { token: `${b64uJson({ alg: 'none', typ: 'JWT' })}.${p}.` }],
    ['expired token', { token: expiredToken }],
  ];
  await checkAll(cases, async ([what, auth]) => {
    const e = await connectError(auth, what);
    assert.match(String(e.message), /^unauthorized/, `${what}: connect_error message ${JSON.stringify(e.message)}`);
  });
  // the refused ones left the server fine
  const again = await connect(u.stu);
  assert.ok(again.connected);
  again.disconnect();
});

test('the polling transport and Engine.IO 3 get HTTP 400 with a clear JSON message', async () => {
  const get = async (q, method = 'GET') => {
    const res = await fetch(`${srv.url}/socket.io/${q}`, { method, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, text, json };
  };
  for (const method of ['GET', 'POST']) {
    const r = await get('?EIO=4&transport=polling', method);
    assert.equal(r.status, 400, `${method} polling: ${show(r)}`);
    assert.equal(r.json?.code, 0, `${method} polling: ${show(r)}`);
    assert.match(String(r.json?.message), /^transport unknown/, show(r));
    assert.match(String(r.json?.message), /websocket only/i, show(r));
  }
  const v3 = await get('?EIO=3&transport=websocket');
  assert.equal(v3.status, 400, show(v3));
  assert.equal(typeof v3.json?.message, 'string', show(v3));
  const v3p = await get('?EIO=3&transport=polling');
  assert.equal(v3p.status, 400, show(v3p));
  // and the stock client, told to poll, is refused rather than left hanging
  const s = io(srv.url, { path: '/socket.io/', transports: ['polling'], reconnection: false, forceNew: true, timeout: 5000, auth: { token: u.inst.token } });
  sockets.add(s);
  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 8000);
    s.once('connect', () => { clearTimeout(timer); resolve('connected'); });
    s.once('connect_error', () => { clearTimeout(timer); resolve('connect_error'); });
  });
  s.disconnect();
  assert.equal(outcome, 'connect_error');
});

// ---- 2. rooms -------------------------------------------------------------------------------

test('join-room: ack shape and roomId validation; room-members on join, leave and disconnect', async () => {
  const r = room('join');
  const inst = await connect(u.inst);
  const a = await ack(inst, 'join-room', { roomId: r });
  assert.ok(a && !a.error, JSON.stringify(a));
  assert.equal(a.roomId, r, JSON.stringify(a));
  assert.equal(a.recording, null, `no recording in a new room: ${JSON.stringify(a)}`);
  assertMembers(a.members, [u.inst], 'first join ack');

  const stu = await connect(u.stu);
  const b = await ack(stu, 'join-room', { roomId: r });
  assert.equal(b.roomId, r, JSON.stringify(b));
  assert.equal(b.recording, null, JSON.stringify(b));
  assertMembers(b.members, [u.inst, u.stu], 'second join ack');
  const onJoin = await once(inst, 'room-members', 5000, forRoom(r, hasMember(u.stu)));
  assertMembers(onJoin.members, [u.inst, u.stu], 'room-members after the join');

  // leave-room: the others see it, the leaver gets no more events of the room
  const l = await ack(stu, 'leave-room', { roomId: r });
  assert.ok(l === undefined || l === null || !l.error, `leave-room: ${JSON.stringify(l)}`);
  const onLeave = await once(inst, 'room-members', 5000, forRoom(r, lacksMember(u.stu)));
  assertMembers(onLeave.members, [u.inst], 'room-members after leave-room');
  const rest = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: r, title: 'after leave' } });
  assert.equal(rest.status, 201, show(rest));
  await once(inst, 'recording-started', 5000, forRec(rest.json.recordingId));
  await roundTrip(stu);
  assert.deepEqual(seen(stu, 'recording-started', forRec(rest.json.recordingId)), [], 'a socket that left still got the room\'s event');
  const stop = await srv.api('POST', `/api/v1/recordings/${rest.json.recordingId}/stop`, { token: u.inst.token });
  assert.equal(stop.status, 200, show(stop));

  // join again, then disconnect: the others see the member go
  await ack(stu, 'join-room', { roomId: r });
  await once(inst, 'room-members', 5000, forRoom(r, hasMember(u.stu)));
  stu.disconnect();
  const onGone = await once(inst, 'room-members', 5000, forRoom(r, lacksMember(u.stu)));
  assertMembers(onGone.members, [u.inst], 'room-members after disconnect');

  // bad roomIds: an error ack with the code REST gives for the same roomId
  const restCode = async (roomId) => {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId, title: 'x' } });
    assert.equal(res.status, 400, `REST start with roomId ${JSON.stringify(roomId)?.slice(0, 40)}: ${show(res)}`);
    return res.json.error.code;
  };
  const bad = [
    ['missing roomId', {}, undefined],
    ['roomId a number', { roomId: 42 }, 42],
    ['roomId empty', { roomId: '' }, ''],
    ['roomId 256 chars', { roomId: 'r'.repeat(256) }, 'r'.repeat(256)],
    ['roomId null', { roomId: null }, null],
  ];
  await checkAll(bad, async ([what, payload, roomId]) => {
    assertAckError(await ack(inst, 'join-room', payload), `join-room ${what}`, await restCode(roomId));
  });
  await checkAll([['no payload'], ['a string payload', 'room-x'], ['an array payload', [r]]], async ([what, ...args]) => {
    assertAckError(await ack(inst, 'join-room', ...args), `join-room ${what}`);
  });
  const longest = 'r'.repeat(255);
  const ok = await ack(inst, 'join-room', { roomId: longest });
  assert.ok(ok && !ok.error && ok.roomId === longest, `255 chars is a valid roomId: ${JSON.stringify(ok).slice(0, 300)}`);
  inst.disconnect();
});

test('join-room with watch: true hears the room\'s events but is not one of its people', async () => {
  const r = room('watch');
  const inst = await connect(u.inst);
  await ack(inst, 'join-room', { roomId: r });
  const lib = await connect(u.stu2);
  const w = await ack(lib, 'join-room', { roomId: r, watch: true });
  assert.ok(w && !w.error, JSON.stringify(w));
  assertMembers(w.members, [u.inst], 'a watcher\'s own join ack');
  assert.equal(w.count, 1, JSON.stringify(w));
  // a real member joins after it: the list the room gets has the member, never the watcher
  const stu = await connect(u.stu);
  await ack(stu, 'join-room', { roomId: r });
  const after = await once(inst, 'room-members', 5000, forRoom(r, hasMember(u.stu)));
  assertMembers(after.members, [u.inst, u.stu], 'room-members with a watcher in the room');
  assert.equal(after.count, 2, JSON.stringify(after));
  const rest = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: r, title: 'watched' } });
  assert.equal(rest.status, 201, show(rest));
  await once(lib, 'recording-started', 5000, forRec(rest.json.recordingId));
  const stop = await srv.api('POST', `/api/v1/recordings/${rest.json.recordingId}/stop`, { token: u.inst.token });
  assert.equal(stop.status, 200, show(stop));
  await once(lib, 'recording-stopped', 5000, forRec(rest.json.recordingId));
  // the same socket joining for real becomes one of the people
  await ack(lib, 'join-room', { roomId: r });
  await once(inst, 'room-members', 5000, forRoom(r, hasMember(u.stu2)));
  for (const s of [inst, lib, stu]) s.disconnect();
});

test('recording-start/stop over the socket: both members get the events, a late joiner sees the active recording', async () => {
  const r = room('sock');
  const inst = await connect(u.inst);
  const stu = await connect(u.stu);
  await ack(inst, 'join-room', { roomId: r });
  await ack(stu, 'join-room', { roomId: r });
  const title = `Socket lecture ${rand(3)}`;
  const t0 = Date.now();
  const a = await ack(inst, 'recording-start', { roomId: r, title, format: 'webm' });
  assert.ok(a && !a.error, `recording-start: ${JSON.stringify(a)}`);
  assert.match(String(a.recordingId), UUID_RE, JSON.stringify(a));
  assert.equal(a.status, 'recording', JSON.stringify(a));
  assert.equal(a.title, title, JSON.stringify(a));
  assertTime(a.startedAt, 'ack.startedAt');
  const id = a.recordingId;

  for (const s of [inst, stu]) {
    const e = await once(s, 'recording-started', 5000, forRec(id));
    assert.equal(e.title, title, `${s.who}: ${JSON.stringify(e)}`);
    assert.equal(e.startedBy, u.inst.id, `${s.who}: ${JSON.stringify(e)}`);
    assertTime(e.timestamp, `${s.who}: recording-started.timestamp`);
    assert.ok(Date.parse(e.timestamp) >= t0 - 2000, `timestamp ${e.timestamp}`);
  }
  const rec = await getRec(u.inst.token, id);
  assert.equal(rec.roomId, r);
  assert.equal(rec.title, title);
  assert.equal(rec.startedBy, u.inst.id);
  assert.equal(rec.status, 'recording');

  // a late joiner is told what is being recorded
  const late = await connect(u.stu2);
  const j = await ack(late, 'join-room', { roomId: r });
  assert.ok(j.recording && typeof j.recording === 'object', `late join-room ack: ${JSON.stringify(j)}`);
  assert.equal(j.recording.recordingId, id, JSON.stringify(j));
  assert.equal(j.recording.title, title, JSON.stringify(j));
  assert.equal(j.recording.startedBy, u.inst.id, JSON.stringify(j));
  assert.equal(j.recording.status, 'recording', JSON.stringify(j));
  assertTime(j.recording.startedAt, 'join-room ack recording.startedAt');
  assertMembers(j.members, [u.inst, u.stu, u.stu2], 'late join ack');

  const st = await ack(inst, 'recording-stop', { recordingId: id });
  assert.ok(st && !st.error, `recording-stop: ${JSON.stringify(st)}`);
  assert.equal(st.id, id, `recording-stop ack is the Recording: ${JSON.stringify(st)}`);
  assert.ok(['stopped', 'processing', 'done', 'failed'].includes(st.status), JSON.stringify(st));
  assert.equal(st.roomId, r);
  for (const s of [inst, stu, late]) {
    const e = await once(s, 'recording-stopped', 5000, forRec(id));
    assertTime(e.timestamp, `${s.who}: recording-stopped.timestamp`);
  }
  // nothing active any more
  const afterStop = await ack(late, 'join-room', { roomId: r });
  assert.ok(afterStop.recording === null || !['pending', 'recording'].includes(afterStop.recording.status),
    `join-room after the stop: ${JSON.stringify(afterStop)}`);
  // no media was sent: processing fails, and the room hears it
  const f = await once(inst, 'recording-failed', 30000, forRec(id));
  assert.equal(typeof f.error, 'string', JSON.stringify(f));
  for (const s of [inst, stu, late]) s.disconnect();
});

// ---- 3. the REST rules ------------------------------------------------------------------

test('recording-start follows the REST rules: students forbidden, busy room, bad inputs (same codes as REST)', async () => {
  const inst = await connect(u.inst);
  const stu = await connect(u.stu);

  // a student may not start
  const sr = room('stu');
  await ack(stu, 'join-room', { roomId: sr });
  const restStu = await srv.api('POST', '/api/v1/recordings/start', { token: u.stu.token, body: { roomId: sr, title: 't' } });
  assert.equal(restStu.status, 403, show(restStu));
  assertAckError(await ack(stu, 'recording-start', { roomId: sr, title: 't' }), 'student start', 'forbidden');
  assert.equal(restStu.json.error.code, 'forbidden');
  await roundTrip(stu);
  assert.deepEqual(seen(stu, 'recording-started'), [], 'a refused start was broadcast');

  // a busy room (busy through the socket and through REST)
  const br = room('busy');
  await ack(inst, 'join-room', { roomId: br });
  const first = await ack(inst, 'recording-start', { roomId: br, title: 'first' });
  assert.match(String(first.recordingId), UUID_RE, JSON.stringify(first));
  const busy = assertAckError(await ack(inst, 'recording-start', { roomId: br, title: 'second' }), 'busy room', 'room_busy');
  assert.equal(busy.activeRecordingId, first.recordingId, `room_busy names the active recording: ${JSON.stringify(busy)}`);
  const restBusy = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst2.token, body: { roomId: br, title: 'x' } });
  assert.equal(restBusy.status, 409, show(restBusy));
  assert.equal(restBusy.json.error.code, 'room_busy');
  const busy2 = assertAckError(await ack(inst, 'recording-start', { roomId: br, title: 'third' }), 'busy room again', 'room_busy');
  assert.equal(busy2.activeRecordingId, first.recordingId);
  const rb = room('restbusy');
  const viaRest = await startRec(srv, u.inst2.token, { roomId: rb });
  const busy3 = assertAckError(await ack(inst, 'recording-start', { roomId: rb, title: 'x' }), 'room busy through REST', 'room_busy');
  assert.equal(busy3.activeRecordingId, viaRest.id);
  await roundTrip(inst);
  assert.equal(seen(inst, 'recording-started', (d) => d?.recordingId !== first.recordingId).length, 0,
    `only the first start was broadcast: ${summary(inst)}`);

  // bad (and good) inputs: whatever REST answers for the same body, the socket answers too
  const cases = [
    ['no roomId', { title: 't' }],
    ['roomId empty', { roomId: '', title: 't' }],
    ['roomId 256 chars', { roomId: 'r'.repeat(256), title: 't' }],
    ['roomId a number', { roomId: 12345, title: 't' }],
    ['no title', { roomId: room() }],
    ['title empty', { roomId: room(), title: '' }],
    ['title 501 chars', { roomId: room(), title: 't'.repeat(501) }],
    ['title an object', { roomId: room(), title: { a: 1 } }],
    ['format avi', { roomId: room(), title: 't', format: 'avi' }],
    ['webm + h264', { roomId: room(), title: 't', format: 'webm', videoCodec: 'h264' }],
    ['webm + aac', { roomId: room(), title: 't', format: 'webm', audioCodec: 'aac' }],
    ['bitrate 99', { roomId: room(), title: 't', bitrate: 99 }],
    ['bitrate 20001', { roomId: room(), title: 't', bitrate: 20001 }],
    ['videoCodec av1', { roomId: room(), title: 't', videoCodec: 'av1' }],
    ['payload a string', 'not an object'],
    ['payload an array', [{ roomId: room(), title: 't' }]],
    ['payload null', null],
    // accepted by both
    ['mp4 + h264 + aac, bitrate 100', { roomId: room(), title: 'mp4', format: 'mp4', videoCodec: 'h264', audioCodec: 'aac', bitrate: 100 }],
    ['title 500 chars, roomId 255 chars', { roomId: `${rand(4)}${'r'.repeat(247)}`, title: 't'.repeat(500) }],
  ];
  await checkAll(cases, async ([what, body]) => {
    const rest = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: JSON.stringify(body) });
    if (rest.status === 201) {
      // REST accepted it: free the room, then the socket must accept it too
      const stop = await srv.api('POST', `/api/v1/recordings/${rest.json.recordingId}/stop`, { token: u.inst.token });
      assert.equal(stop.status, 200, show(stop));
      const a = await ack(inst, 'recording-start', body);
      assert.ok(a && !a.error && UUID_RE.test(String(a.recordingId)), `${what}: REST accepted it, the socket said ${JSON.stringify(a)}`);
      assert.equal(a.status, 'recording', `${what}: ${JSON.stringify(a)}`);
      const viaSocket = await getRec(u.inst.token, a.recordingId);
      const viaRest = await getRec(u.inst.token, rest.json.recordingId);
      for (const k of ['roomId', 'title', 'format', 'videoCodec', 'audioCodec', 'bitrate']) {
        assert.deepEqual(viaSocket[k], viaRest[k], `${what}: ${k} as through REST`);
      }
      const st = await ack(inst, 'recording-stop', { recordingId: a.recordingId });
      assert.ok(st && !st.error, `${what}: stop ${JSON.stringify(st)}`);
      return;
    }
    assert.equal(rest.status, 400, `${what}: REST ${show(rest)}`);
    assertAckError(await ack(inst, 'recording-start', body), `socket start, ${what}`, rest.json.error.code);
  });
  for (const s of [inst, stu]) s.disconnect();
});

test('recording-stop follows the REST rules: non-starters refused as by REST, admin allowed, then not_active', async () => {
  const r = room('stop');
  const inst = await connect(u.inst);
  await ack(inst, 'join-room', { roomId: r });
  const a = await ack(inst, 'recording-start', { roomId: r, title: 'stop rules' });
  const id = a.recordingId;
  assert.match(String(id), UUID_RE, JSON.stringify(a));

  const others = [['another instructor', u.inst2], ['a student', u.stu]];
  for (const [what, who] of others) {
    const s = await connect(who);
    const rest = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: who.token });
    assert.ok(rest.status === 403 || rest.status === 404, `REST stop by ${what}: ${show(rest)}`);
    assertAckError(await ack(s, 'recording-stop', { recordingId: id }), `socket stop by ${what}`, rest.json.error.code);
    s.disconnect();
  }
  assert.equal((await getRec(u.inst.token, id)).status, 'recording', 'a refused stop stopped the recording');

  // unknown and malformed ids
  const unknown = crypto.randomUUID();
  const restUnknown = await srv.api('POST', `/api/v1/recordings/${unknown}/stop`, { token: u.inst.token });
  assert.equal(restUnknown.status, 404, show(restUnknown));
  assertAckError(await ack(inst, 'recording-stop', { recordingId: unknown }), 'unknown recordingId', restUnknown.json.error.code);
  assertAckError(await ack(inst, 'recording-stop', {}), 'no recordingId');
  assertAckError(await ack(inst, 'recording-stop', { recordingId: 42 }), 'recordingId a number');
  assertAckError(await ack(inst, 'recording-stop', 'nope'), 'payload a string');

  // the admin may stop anyone's recording
  const admin = await connect(u.admin);
  const st = await ack(admin, 'recording-stop', { recordingId: id });
  assert.ok(st && !st.error, `admin stop: ${JSON.stringify(st)}`);
  assert.equal(st.id, id);
  assert.ok(['stopped', 'processing', 'done', 'failed'].includes(st.status), JSON.stringify(st));
  await once(inst, 'recording-stopped', 5000, forRec(id));

  // already stopped: not_active, as REST says
  const restAgain = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });
  assert.equal(restAgain.status, 409, show(restAgain));
  assert.equal(restAgain.json.error.code, 'not_active');
  assertAckError(await ack(inst, 'recording-stop', { recordingId: id }), 'stop again', 'not_active');
  await roundTrip(inst);
  assert.equal(seen(inst, 'recording-stopped', forRec(id)).length, 1, `one recording-stopped: ${summary(inst)}`);
  for (const s of [inst, admin]) s.disconnect();
});

// ---- 4. REST actions are broadcast ---------------------------------------------------------

test('a REST start/stop reaches the room\'s sockets, and only them; no media → recording-failed', async () => {
  const r = room('rest');
  const inst = await connect(u.inst);
  const stu = await connect(u.stu);
  const outsider = await connect(u.stu2);
  await ack(inst, 'join-room', { roomId: r });
  await ack(stu, 'join-room', { roomId: r });
  await ack(outsider, 'join-room', { roomId: room('elsewhere') });

  const title = `REST lecture ${rand(3)}`;
  const { id } = await startRec(srv, u.inst.token, { roomId: r, title });
  for (const s of [inst, stu]) {
    const e = await once(s, 'recording-started', 5000, forRec(id));
    assert.equal(e.title, title, JSON.stringify(e));
    assert.equal(e.startedBy, u.inst.id, JSON.stringify(e));
    assertTime(e.timestamp, 'recording-started.timestamp');
  }
  const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });
  assert.equal(stop.status, 200, show(stop));
  for (const s of [inst, stu]) {
    const e = await once(s, 'recording-stopped', 5000, forRec(id));
    assertTime(e.timestamp, 'recording-stopped.timestamp');
  }
  // no media: the worker fails it, and says why
  const f = await once(stu, 'recording-failed', 30000, forRec(id));
  assert.equal(typeof f.error, 'string', JSON.stringify(f));
  assert.ok(f.error.length > 0, JSON.stringify(f));
  await once(inst, 'recording-failed', 5000, forRec(id));
  const rec = await getRec(u.inst.token, id);
  assert.equal(rec.status, 'failed', JSON.stringify(rec));
  assert.equal(f.error, rec.error, 'recording-failed carries the Recording\'s error');
  // the socket in another room heard nothing of it
  await roundTrip(outsider);
  assert.deepEqual(outsider.log.filter((e) => e.data?.recordingId === id).map((e) => e.event), [],
    `a socket of another room got this room's events: ${summary(outsider)}`);
  for (const s of [inst, stu, outsider]) s.disconnect();
});

// ---- 5. real media: progress and done from the worker -----------------------------------

test('real media: recording-stopped, then recording-progress, then recording-done with the file\'s size and duration', async () => {
  const r = room('media');
  const inst = await connect(u.inst);
  const stu = await connect(u.stu);
  await ack(inst, 'join-room', { roomId: r });
  await ack(stu, 'join-room', { roomId: r });
  const a = await ack(inst, 'recording-start', { roomId: r, title: 'with media' });
  const id = a.recordingId;
  assert.match(String(id), UUID_RE, JSON.stringify(a));

  const relays = [];
  try {
    for (const [kind, codec, payloadType] of [['video', 'vp8', 96], ['audio', 'opus', 111]]) {
      const res = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
        token: u.inst.token, body: { peerId: 'peer-a', fullName: 'Ada', kind, codec, payloadType },
      });
      assert.equal(res.status, 201, show(res));
      relays.push(await new Relay(res.json.port).start());
    }
    const ff = await run('ffmpeg', ffmpegArgs({ videoPort: relays[0].port, audioPort: relays[1].port, seconds: 3 }), { timeoutMs: 30000 });
    assert.equal(ff.code, 0, ff.stderr);
    assert.ok(relays[0].rtp > 50 && relays[1].rtp > 50, `RTP sent: video ${relays[0].rtp}, audio ${relays[1].rtp}`);
    await sleep(300); // the last datagrams reach the capture
  } finally {
    for (const x of relays) x.close();
  }
  const st = await ack(inst, 'recording-stop', { recordingId: id });
  assert.ok(st && !st.error && st.id === id, JSON.stringify(st));

  const done = {};
  for (const s of [inst, stu]) {
    await once(s, 'recording-stopped', 5000, forRec(id));
    done[s.who] = await once(s, 'recording-done', 90000, forRec(id));
  }
  const rec = await getRec(u.inst.token, id);
  assert.equal(rec.status, 'done', JSON.stringify(rec));
  for (const s of [inst, stu]) {
    const d = done[s.who];
    assert.equal(typeof d.durationSeconds, 'number', JSON.stringify(d));
    assert.ok(d.durationSeconds > 0, JSON.stringify(d));
    assert.ok(Math.abs(d.durationSeconds - rec.durationSeconds) < 0.01, `durationSeconds ${d.durationSeconds} vs GET ${rec.durationSeconds}`);
    assert.equal(d.fileSize, rec.fileSize, `fileSize of recording-done vs GET: ${JSON.stringify(d)}`);
    assert.ok(rec.fileSize > 0);
    // order: stopped, progress (at least one), done
    const evs = s.log.filter((e) => e.data?.recordingId === id).map((e) => e.event);
    const progress = seen(s, 'recording-progress', forRec(id)).map((e) => e.progress);
    assert.ok(progress.length >= 1, `${s.who}: no recording-progress before recording-done: ${evs.join(', ')}`);
    for (const p of progress) assert.ok(typeof p === 'number' && p >= 0 && p <= 100, `${s.who}: progress ${p}`);
    const iStop = evs.indexOf('recording-stopped');
    const iProg = evs.indexOf('recording-progress');
    const iDone = evs.indexOf('recording-done');
    assert.ok(iStop >= 0 && iStop < iProg && iProg < iDone, `${s.who}: order ${evs.join(', ')}`);
    assert.equal(evs.lastIndexOf('recording-progress') < iDone, true, `${s.who}: progress after done: ${evs.join(', ')}`);
    assert.equal(evs.filter((e) => e === 'recording-done').length, 1, `${s.who}: ${evs.join(', ')}`);
    assert.equal(evs.includes('recording-failed'), false, `${s.who}: ${evs.join(', ')}`);
  }
  for (const s of [inst, stu]) s.disconnect();
});

// ---- 6. unknown events and hostile input -------------------------------------------------

test('unknown events: an ack gets unknown_event, without an ack they are ignored; the connection stays up', async () => {
  const s = await connect(u.inst);
  assertAckError(await ack(s, 'no-such-event', { x: 1 }), 'unknown event', 'unknown_event');
  assertAckError(await ack(s, 'Join-Room', { roomId: room() }), 'event names are exact', 'unknown_event');
  s.emit('no-such-event', 1, 2, 3);
  s.emit('recording-start'); // known, no ack and no payload: nothing to answer
  s.emit('join-room', { roomId: room() });
  const j = await ack(s, 'join-room', { roomId: room() });
  assert.ok(j && !j.error, JSON.stringify(j));
  assert.ok(s.connected);
  s.disconnect();
});

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Builds one client→server WebSocket frame. */
function frame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true, declaredLength } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = declaredLength ?? data.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** A hand-made WebSocket client over node:net: any bytes can be sent, every frame received is kept. */
class RawWs {
  constructor(sock, rest) {
    this.sock = sock;
    this.buf = rest;
    this.msgs = [];
    this.waiters = [];
    this.frag = null;
    this.closeCode = undefined; // set when a close frame arrives
    this.closed = false; // the TCP connection ended
    this.serverMasked = false;
    this.closedP = new Promise((r) => { this.onClosed = r; });
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    sock.on('error', () => {});
    sock.on('close', () => { this.closed = true; this.onClosed(); this.wake(); });
    raws.add(this);
    this.parse();
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      let key = null;
      if (masked) {
        if (b.length < off + 4) return;
        key = b.subarray(off, off + 4);
        off += 4;
        this.serverMasked = true;
      }
      if (b.length < off + len) return;
      const data = Buffer.from(b.subarray(off, off + len));
      if (key) for (let i = 0; i < data.length; i++) data[i] ^= key[i & 3];
      this.buf = b.subarray(off + len);
      const opcode = b[0] & 0x0f;
      const fin = (b[0] & 0x80) !== 0;
      if (opcode === 0x8) {
        this.closeCode = data.length >= 2 ? data.readUInt16BE(0) : null;
        this.wake();
      } else if (opcode === 0x9) {
        this.write(frame(0xa, data));
      } else if (opcode === 0xa) {
        // pong: nothing to do
      } else {
        if (opcode !== 0) this.frag = { opcode, parts: [] };
        if (!this.frag) continue;
        this.frag.parts.push(data);
        if (fin) {
          const all = Buffer.concat(this.frag.parts);
          const m = { opcode: this.frag.opcode, data: all, text: this.frag.opcode === 1 ? all.toString('utf8') : null, used: false };
          this.frag = null;
          if (m.text === '2') this.sendText('3'); // Engine.IO ping → pong
          this.msgs.push(m);
          this.wake();
        }
      }
    }
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  write(buf) {
    if (this.sock.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const ok = this.sock.write(buf, (err) => resolve(!err));
      if (!ok) this.sock.once('close', () => resolve(false));
    });
  }

  sendText(s, opts) { return this.write(frame(0x1, s, opts)); }

  /** The first unused message matching pred (or null when the connection ends or at the deadline). */
  next(pred, timeoutMs = 5000) {
    return new Promise((resolve) => {
      const check = () => {
        const m = this.msgs.find((x) => !x.used && pred(x));
        if (m) { m.used = true; done(m); return; }
        if (this.closed) done(null);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (v) => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(v);
      };
      this.waiters.push(check);
      check();
    });
  }

  /**
   * After hostile input: resolves how the server reacted within timeoutMs:
   * 'closed' (close frame or TCP end), 'error: <frame>' (a message after
   * `since` that reports an error), or 'nothing: <frames>'.
   */
  reaction(since, timeoutMs = 2000) {
    const isError = (m) => m.text !== null && m.text !== '2' && (/error/i.test(m.text) || /^44/.test(m.text));
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || this.closeCode !== undefined) { done(`closed${this.closeCode ? ` (${this.closeCode})` : ''}`); return; }
        const m = this.msgs.slice(since).find(isError);
        if (m) done(`error: ${m.text.slice(0, 200)}`);
      };
      const timer = setTimeout(() => done(`nothing: ${JSON.stringify(this.msgs.slice(since).map((m) => m.text ?? `<binary ${m.data.length}>`)).slice(0, 300)}`), timeoutMs);
      const done = (v) => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(v);
      };
      this.waiters.push(check);
      check();
    });
  }

  destroy() {
    raws.delete(this);
    this.sock.destroy();
  }
}

/**
 * Opens a TCP connection and sends a WebSocket upgrade for path. Resolves
 * {status, headers, ws} (ws when 101 with a correct Sec-WebSocket-Accept) or
 * {status, headers, text} for a refused handshake.
 */
function wsHandshake({ path = '/socket.io/?EIO=4&transport=websocket', key = crypto.randomBytes(16).toString('base64'), headers = null, timeoutMs = 5000 } = {}) {
  const hdrs = headers || {
    Host: `127.0.0.1:${srv.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  const req = `GET ${path} HTTP/1.1\r\n${Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let head = null;
    const timer = setTimeout(() => { sock.destroy(); reject(fail(`handshake: no answer within ${timeoutMs} ms (${buf.toString('latin1').slice(0, 200)})`)); }, timeoutMs);
    const finishRefused = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...head, text: buf.subarray(head.bodyAt).toString('utf8') });
    };
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (!head) {
        const sep = buf.indexOf('\r\n\r\n');
        if (sep < 0) return;
        const lines = buf.subarray(0, sep).toString('latin1').split('\r\n');
        const m = lines[0].match(/^HTTP\/1\.1 (\d{3})/);
        const h = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        head = { status: m ? Number(m[1]) : null, headers: h, bodyAt: sep + 4 };
        if (head.status === 101) {
          clearTimeout(timer);
          sock.off('data', onData);
          const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
          resolve({ status: 101, headers: h, accept, ws: new RawWs(sock, buf.subarray(sep + 4)) });
          return;
        }
      }
      const body = buf.subarray(head.bodyAt);
      const cl = head.headers['content-length'];
      if (cl !== undefined ? body.length >= Number(cl)
        : /chunked/i.test(head.headers['transfer-encoding'] || '') ? body.includes('0\r\n\r\n') : true) finishRefused();
    };
    sock.on('data', onData);
    sock.on('error', (e) => { if (!head) { clearTimeout(timer); reject(e); } });
    sock.on('close', () => { if (head && head.status !== 101) finishRefused(); });
    sock.on('connect', () => sock.write(req));
  });
}

/** A raw Engine.IO/Socket.IO session: the open packet read and, with a token, the namespace joined. */
async function rawSession(token) {
  const h = await wsHandshake();
  assert.equal(h.status, 101, `upgrade refused: ${h.status} ${h.text}`);
  const ws = h.ws;
  assert.equal(h.headers['sec-websocket-accept'], h.accept, 'Sec-WebSocket-Accept');
  assert.match(h.headers.upgrade || '', /^websocket$/i, 'Upgrade: websocket');
  const open = await ws.next((m) => m.text?.startsWith('0'), 5000);
  assert.ok(open, `no Engine.IO open packet (closed=${ws.closed})`);
  const hs = JSON.parse(open.text.slice(1));
  if (token !== undefined) {
    await ws.sendText(`40${JSON.stringify({ token })}`);
    const ok = await ws.next((m) => m.text?.startsWith('4'), 5000);
    assert.ok(ok, `no Socket.IO CONNECT answer (closed=${ws.closed})`);
    assert.match(ok.text, /^40\{/, `Socket.IO CONNECT answer: ${ok.text}`);
    assert.equal(typeof JSON.parse(ok.text.slice(2)).sid, 'string', ok.text);
  }
  return { ws, hs };
}

test('raw WebSocket: a well-formed session works; a connection dropped without a goodbye leaves room-members', async () => {
  const r = room('raw');
  const watcher = await connect(u.inst);
  await ack(watcher, 'join-room', { roomId: r });

  const { ws, hs } = await rawSession(u.stu2.token);
  assert.equal(typeof hs.sid, 'string', JSON.stringify(hs));
  assert.ok(Array.isArray(hs.upgrades), JSON.stringify(hs));
  assert.ok(Number.isInteger(hs.pingInterval) && hs.pingInterval > 0, JSON.stringify(hs));
  assert.ok(Number.isInteger(hs.pingTimeout) && hs.pingTimeout > 0, JSON.stringify(hs));
  assert.equal(ws.serverMasked, false, 'server frames must not be masked');
  await ws.sendText(`427${JSON.stringify(['join-room', { roomId: r }])}`);
  const a = await ws.next((m) => m.text?.startsWith('437'), 5000);
  assert.ok(a, `no ack 7 for the raw join-room: ${JSON.stringify(ws.msgs.map((m) => m.text))}`);
  const body = JSON.parse(a.text.slice(3));
  assert.ok(Array.isArray(body) && body[0]?.roomId === r, a.text);
  assertMembers(body[0].members, [u.inst, u.stu2], 'raw join ack');
  await once(watcher, 'room-members', 5000, forRoom(r, hasMember(u.stu2)));
  // the raw client gets the room's events as Socket.IO EVENT packets
  const { id } = await startRec(srv, u.inst.token, { roomId: r });
  const sioEvent = (name) => (m) => {
    if (!m.text?.startsWith('42')) return false;
    try { return JSON.parse(m.text.slice(2))[0] === name; } catch { return false; }
  };
  const ev = await ws.next(sioEvent('recording-started'), 5000);
  assert.ok(ev, `raw client: no recording-started: ${JSON.stringify(ws.msgs.map((m) => m.text))}`);
  assert.equal(JSON.parse(ev.text.slice(2))[1].recordingId, id);
  await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });

  // the TCP connection just ends: no close frame, no Socket.IO disconnect
  ws.destroy();
  const gone = await once(watcher, 'room-members', 10000, forRoom(r, lacksMember(u.stu2)));
  assertMembers(gone.members, [u.inst], 'room-members after the drop');
  watcher.disconnect();
});

test('hostile frames and packets: each connection is closed or answered with an error; another client keeps working', async () => {
  const r = room('hostile');
  const watcher = await connect(u.inst);
  await ack(watcher, 'join-room', { roomId: r });
  const probe = await rawSession(u.stu2.token);
  const maxPayload = Number.isInteger(probe.hs.maxPayload) && probe.hs.maxPayload > 0 ? probe.hs.maxPayload : 1000000;
  probe.ws.destroy();
  const huge = Math.min(Math.max(2 * maxPayload + 1024, 2 << 20), 16 << 20);

  const join = (ackId, roomId) => `42${ackId}${JSON.stringify(['join-room', { roomId }])}`;
  const cases = [
    // Engine.IO level
    ['text that is not an Engine.IO packet', (ws) => ws.sendText('hello world')],
    ['empty text frame', (ws) => ws.sendText('')],
    ['unknown Engine.IO packet type', (ws) => ws.sendText('9{"x":1}')],
    ['Engine.IO message without a Socket.IO packet', (ws) => ws.sendText('4')],
    // Socket.IO level
    ['unknown Socket.IO packet type', (ws) => ws.sendText('47["x"]')],
    ['Socket.IO type not a digit', (ws) => ws.sendText('4xyz')],
    // (with an ack id: a server that parses it must answer)
    ['EVENT with broken JSON', (ws) => ws.sendText('421["join-room",{"roomId":')],
    ['EVENT payload not an array', (ws) => ws.sendText('421{"roomId":"x"}')],
    ['EVENT with an empty array', (ws) => ws.sendText('421[]')],
    ['EVENT name not a string', (ws) => ws.sendText('421[42,{"roomId":"x"}]')],
    ['EVENT with an ack id of 400 digits', (ws) => ws.sendText(`42${'9'.repeat(400)}["join-room",{"roomId":"x"}]`)],
    ['EVENT with 100,000 levels of nesting', (ws) => ws.sendText(`421["join-room",${'['.repeat(100000)}${']'.repeat(100000)}]`)],
    ['CONNECT to an unknown namespace', (ws) => ws.sendText('40/nope,')],
    // WebSocket level
    ['binary frame', (ws) => ws.write(frame(0x2, crypto.randomBytes(64)))],
    ['text frame with invalid UTF-8', (ws) => ws.write(frame(0x1, Buffer.from([0x34, 0x32, 0xff, 0xfe, 0xc0])))],
    ['unmasked client frame', (ws) => ws.write(frame(0x1, join(3, r), { mask: false }))],
    ['reserved opcode 0x3', (ws) => ws.write(frame(0x3, 'x'))],
    ['RSV1 set without an extension', (ws) => ws.write(frame(0x1, join(3, r), { rsv: 4 }))],
    ['continuation without a start', (ws) => ws.write(frame(0x0, 'abc'))],
    ['fragmented ping', (ws) => ws.write(frame(0x9, 'x', { fin: false }))],
    ['ping with 126 bytes', (ws) => ws.write(frame(0x9, Buffer.alloc(126, 1)))],
    [`a ${(huge / 1048576).toFixed(1)} MiB message (maxPayload ${maxPayload})`, (ws) => ws.sendText(join(5, 'r'.repeat(huge)))],
    ['a header declaring a 1 TiB payload', (ws) => ws.write(Buffer.concat([frame(0x1, Buffer.alloc(0), { declaredLength: 2 ** 40 }).subarray(0, 14), Buffer.alloc(1024, 0x61)]))],
    [`fragments adding up to ${(huge / 1048576).toFixed(1)} MiB`, async (ws) => {
      const part = Buffer.alloc(256 * 1024, 0x61);
      await ws.write(frame(0x1, Buffer.concat([Buffer.from('42["join-room",{"roomId":"'), part]), { fin: false }));
      for (let sent = part.length; sent < huge && !ws.closed; sent += part.length) await ws.write(frame(0x0, part, { fin: false }));
    }],
  ];
  await checkAll(cases, async ([what, send]) => {
    const { ws } = await rawSession(u.stu2.token);
    const since = ws.msgs.length;
    // a server that stops reading must not hang the test: the reaction decides
    await Promise.race([send(ws), sleep(5000)]);
    const how = await ws.reaction(since, 2000);
    ws.destroy();
    assert.match(how, /^(closed|error)/, `${what}: the server neither closed the connection nor answered with an error (${how})`);
    // the well-behaved client still gets its acks
    const a = await ack(watcher, 'join-room', { roomId: r });
    assert.ok(a && a.roomId === r, `after "${what}": ${JSON.stringify(a)}`);
  });

  // before the Socket.IO CONNECT: no events
  const early = await rawSession(undefined);
  const since = early.ws.msgs.length;
  await early.ws.sendText(join(1, r));
  const how = await early.ws.reaction(since, 2000);
  assert.match(how, /^(closed|error)/, `EVENT before CONNECT: ${how}`);
  assert.equal(seen(watcher, 'room-members', hasMember(u.stu2)).length, 0, 'an unauthenticated connection joined the room');
  early.ws.destroy();

  // a raw connection that authenticates with a bad token gets CONNECT_ERROR "unauthorized…"
  const bad = await rawSession(undefined);
  await bad.ws.sendText('40{"token":"nope"}');
  const ce = await bad.ws.next((m) => m.text?.startsWith('4'), 5000);
  assert.ok(ce, `no answer to a CONNECT with a bad token (closed=${bad.ws.closed})`);
  assert.match(ce.text, /^44\{/, ce.text);
  assert.match(JSON.parse(ce.text.slice(2)).message, /^unauthorized/, ce.text);
  bad.ws.destroy();

  assert.ok(watcher.connected, 'the well-behaved client was disconnected');
  const j = await ack(watcher, 'join-room', { roomId: r });
  assertMembers(j.members, [u.inst], 'members after the hostile connections are gone');
  assert.ok(srv.alive(), `server died: ${srv.stderr().slice(-2000)}`);
  assert.ok(await srv.healthy(), 'server unhealthy');
  watcher.disconnect();
});

test('hostile handshakes: a WebSocket upgrade without a key, with another version or to another path is refused with HTTP 4xx', async () => {
  const base = { Host: `127.0.0.1:${srv.port}`, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' };
  const cases = [
    ['no Sec-WebSocket-Key', { headers: base }],
    ['Sec-WebSocket-Version 8', { headers: { ...base, 'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '8' } }],
    ['Engine.IO 3', { path: '/socket.io/?EIO=3&transport=websocket' }],
    ['no transport', { path: '/socket.io/?EIO=4' }],
    ['polling transport with an upgrade', { path: '/socket.io/?EIO=4&transport=polling' }],
  ];
  await checkAll(cases, async ([what, opts]) => {
    const h = await wsHandshake(opts);
    if (h.ws) h.ws.destroy();
    assert.ok(h.status >= 400 && h.status < 500, `${what}: HTTP ${h.status}`);
  });
  assert.ok(srv.alive());
});

// ---- the user behind an open socket --------------------------------------------------------

/** Runs one SQL statement on the server's database (as an operator would: there is no user admin API). */
function sql(statement) {
  const r = BACKEND === 'postgres'
    ? spawnSync('psql', [srv.ctx.dbUrl, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', statement], { encoding: 'utf8', timeout: 30000 })
    : spawnSync('sqlite3', ['-cmd', '.timeout 10000', path.join(srv.dataDir, 'vtp.db'), statement], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${statement}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Resolves the socket's 'disconnect' reason (or fails after timeoutMs). */
function disconnected(s, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(fail(`${s.who}: still connected after ${timeoutMs} ms; events ${summary(s)}`)), timeoutMs);
    s.once('disconnect', (why) => { clearTimeout(timer); resolve(why); });
  });
}

test('a user deleted behind an open socket: it is told why and disconnected within seconds, leaves its rooms, and cannot connect again', async () => {
  const [gone] = Object.values(await makeUsers(srv, { gone: 'student' }));
  const r = room('deleted');
  const watcher = await connect(u.inst);
  await ack(watcher, 'join-room', { roomId: r });
  const s = await connect(gone);
  const j = await ack(s, 'join-room', { roomId: r });
  assert.equal(j.roomId, r, JSON.stringify(j));
  await once(watcher, 'room-members', 5000, forRoom(r, hasMember(gone)));
  const bye = disconnected(s, 20000);

  sql(`DELETE FROM users WHERE id = '${gone.id}'`);
  // REST refuses the token within 2 s …
  let restStatus = 0;
  for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(200)) {
    restStatus = (await srv.api('GET', '/api/v1/users/me', { token: gone.token })).status;
    if (restStatus === 401) break;
  }
  assert.equal(restStatus, 401, 'REST still accepts the deleted user\'s token');
  // … and the socket is ended with a reason, without sending anything
  const ended = await once(s, 'session-ended', 20000);
  assert.equal(ended.code, 'user_deleted', JSON.stringify(ended));
  assert.equal(typeof ended.message, 'string');
  assert.equal(await bye, 'io server disconnect', 'the server should end the session (no automatic reconnect)');
  const left = await once(watcher, 'room-members', 10000, forRoom(r, lacksMember(gone)));
  assertMembers(left.members, [u.inst], 'room-members after the deletion');
  // the same token cannot come back
  const e = await connectError({ token: gone.token }, 'deleted user reconnecting');
  assert.match(e.message, /^unauthorized/, e.message);
  watcher.disconnect();
});

test('a demoted instructor: recording-start is refused at once and the room sees the new role', async () => {
  const [demo] = Object.values(await makeUsers(srv, { demo: 'instructor' }));
  const r = room('demoted');
  const watcher = await connect(u.inst);
  await ack(watcher, 'join-room', { roomId: r });
  const s = await connect(demo);
  await ack(s, 'join-room', { roomId: r });
  await once(watcher, 'room-members', 5000, forRoom(r, hasMember(demo)));

  sql(`UPDATE users SET role = 'student' WHERE id = '${demo.id}'`);
  const a = await ack(s, 'recording-start', { roomId: r, title: 'after the demotion' });
  assertAckError(a, 'recording-start by a demoted instructor', 'forbidden');
  const l = await srv.api('GET', `/api/v1/recordings?room_id=${encodeURIComponent(r)}`, { token: u.admin.token });
  assert.equal(l.json.total, 0, `a recording was started: ${show(l)}`);
  // the member list catches up without anyone joining or leaving
  const roleOf = (d) => d.members.find((m) => m.userId === demo.id)?.role;
  const m = await once(watcher, 'room-members', 15000, forRoom(r, (d) => roleOf(d) === 'student'));
  assert.equal(roleOf(m), 'student');
  assert.ok(s.connected, 'a demoted (not deleted) user keeps the connection');
  s.disconnect();
  watcher.disconnect();
});

test('an expired token: the socket is told why and disconnected', async () => {
  const [brief] = Object.values(await makeUsers(srv, { brief: 'student' }));
  const token = await srv.tokenFor(brief.email, 3);
  const s = newSocket({ token }, 'brief');
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
  const bye = disconnected(s, 20000);
  const ended = await once(s, 'session-ended', 20000);
  assert.equal(ended.code, 'token_expired', JSON.stringify(ended));
  assert.equal(await bye, 'io server disconnect');
});

test('a second CONNECT cannot switch a socket to another user; the same user may renew its token', async () => {
  const r = room('second-connect');
  // another user's token on stu2's connection
  const { ws } = await rawSession(u.stu2.token);
  await ws.sendText(`40${JSON.stringify({ token: u.inst.token })}`);
  const answer = await ws.next((m) => m.text?.startsWith('4'), 5000);
  assert.ok(answer && /^44\{/.test(answer.text), `second CONNECT with another user's token answered ${answer?.text}`);
  assert.match(JSON.parse(answer.text.slice(2)).message, /^unauthorized: .*another user/, answer.text);
  await ws.sendText(`421${JSON.stringify(['recording-start', { roomId: r, title: 'as someone else' }])}`);
  const a = await ws.next((m) => m.text?.startsWith('431'), 3000);
  assert.ok(a === null || /"error"/.test(a.text), `a command after the switch attempt: ${a?.text}`);
  ws.destroy();
  const l = await srv.api('GET', `/api/v1/recordings?room_id=${encodeURIComponent(r)}`, { token: u.admin.token });
  assert.equal(l.json.total, 0, `the socket acted as the other user: ${show(l)}`);

  // the same user with a fresh token: still that user, still working
  const same = await rawSession(u.inst2.token);
  await same.ws.sendText(`40${JSON.stringify({ token: await srv.tokenFor(u.inst2.email) })}`);
  const again = await same.ws.next((m) => m.text?.startsWith('4'), 5000);
  assert.ok(again && /^40\{/.test(again.text), `renewal: ${again?.text}`);
  await same.ws.sendText(`427${JSON.stringify(['join-room', { roomId: r }])}`);
  const j = await same.ws.next((m) => m.text?.startsWith('437'), 5000);
  assert.ok(j, 'no ack after the renewal');
  assertMembers(JSON.parse(j.text.slice(3))[0].members, [u.inst2], 'members after the renewal');
  same.ws.destroy();
});

test('a token whose nbf is in the future is refused at CONNECT', async (t) => {
  const raw = readFileSync(path.join(srv.dataDir, 'jwt.secret'));
  const key = keyCandidates(raw).find((k) => keyMatches(u.stu.token, k));
  if (!key) {
    t.skip('no interpretation of jwt.secret reproduces the server\'s signatures');
    return;
  }
  const now = Math.floor(Date.now() / 1000);
  const base = decodeJwt(u.stu.token).payload;
  const early = signJwt({ alg: 'HS256', typ: 'JWT' }, { ...base, iat: now, exp: now + 3600, nbf: now + 600 }, key);
  const e = await connectError({ token: early }, 'nbf in the future');
  assert.match(e.message, /^unauthorized: .*not valid yet/, e.message);
  const ok = signJwt({ alg: 'HS256', typ: 'JWT' }, { ...base, iat: now, exp: now + 3600, nbf: now - 5 }, key);
  const s = newSocket({ token: ok }, 'nbf passed');
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', (err) => reject(fail(`nbf passed: ${err.message}`))); });
  s.disconnect();
});
