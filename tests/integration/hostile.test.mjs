// Hostile input: room ids that look like paths, oversized / non-UTF-8 names,
// and raw malformed HTTP (bad request lines, huge headers, traversal in the
// URL, very long URLs, lying Content-Length, invalid UTF-8 and deep nesting in
// JSON, request smuggling through ambiguous framing, request heads sent one
// byte at a time). The server must answer sanely, never touch files outside its data
// dir, never serve files it should not, and stay up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, cleanupAll, rand, sleep, BACKEND } from './lib/server.mjs';
import { show, expectError, makeUsers, startRec, stopRec, checkAll } from './lib/util.mjs';

let srv;
let u;
let secret;
const tmpX = path.join(os.tmpdir(), 'x');
let tmpXExisted;

before(async () => {
  tmpXExisted = existsSync(tmpX);
  srv = await startServer();
  u = await makeUsers(srv, { inst: 'instructor', admin: 'admin' });
  secret = readFileSync(path.join(srv.dataDir, 'jwt.secret'));
});
after(cleanupAll);

async function assertUp(what) {
  assert.ok(srv.alive(), `server died after ${what}\nstderr tail:\n${srv.stderr().slice(-2000)}`);
  assert.ok(await srv.healthy(), `healthz not 200 after ${what}`);
}

/** All entries under dir, as paths relative to dir. */
function walk(dir, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    out.push({ rel: r, name: e.name, dir: e.isDirectory() });
    if (e.isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

// ---- hostile room ids ------------------------------------------------------------------

const hostileRooms = [
  '../../x',
  '..',
  '.',
  '../',
  './x',
  'x/../../x',
  'a/b\\c',
  'a_b_c',
  'a%2Fb%5Cc',
  'a-b-c',
  '%2e%2e',
  '~root',
  ' leading and trailing ',
  'ÉCOLE',
  'école',
  'é'.repeat(255),
  '😀'.repeat(255),
  'z'.repeat(255),
  '*?<>|:"',
  '$(touch x)',
];

test('hostile room ids are accepted, listed back exactly, and stored safely inside the data dir', async () => {
  const created = [];
  for (const room of hostileRooms) {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: room, title: 'hostile' } });
    assert.equal(res.status, 201, `roomId ${JSON.stringify(room).slice(0, 60)}: ${show(res)}`);
    created.push({ room, id: res.json.recordingId });
  }
  // a second recording in the same room must land in the same room folder
  await stopRec(srv, u.inst.token, created[0].id);
  const again = await startRec(srv, u.inst.token, { roomId: hostileRooms[0] });
  created.push({ room: hostileRooms[0], id: again.id });

  for (const { room, id } of created) {
    const g = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.inst.token });
    assert.equal(g.status, 200, show(g));
    assert.equal(g.json.roomId, room, 'roomId not returned exactly');
    const l = await srv.api('GET', `/api/v1/recordings?room_id=${encodeURIComponent(room)}&limit=100`, { token: u.inst.token });
    assert.equal(l.status, 200, `list room_id=${JSON.stringify(room).slice(0, 40)}: ${show(l)}`);
    assert.ok(l.json.recordings.some((r) => r.id === id), `room ${JSON.stringify(room).slice(0, 40)} does not list ${id}`);
    for (const r of l.json.recordings) assert.equal(r.roomId, room, 'room filter must match exactly');
  }

  // nothing outside the data dir
  assert.deepEqual(readdirSync(srv.root), ['data'], `entries created next to the data dir: ${readdirSync(srv.root).join(', ')}`);
  if (!tmpXExisted) assert.ok(!existsSync(tmpX), `${tmpX} was created`);

  // every recording folder is exactly $DATA/recordings/<encoded room>/<id>/, 0700
  const entries = walk(srv.dataDir);
  const roomDirOf = new Map();
  for (const { room, id } of created) {
    const hits = entries.filter((e) => e.name === id);
    assert.equal(hits.length, 1, `recording ${id} (room ${JSON.stringify(room).slice(0, 30)}) folders: ${hits.map((h) => h.rel).join(', ') || 'none'}`);
    const parts = hits[0].rel.split(path.sep);
    assert.equal(parts.length, 3, `recording folder at ${hits[0].rel}`);
    assert.equal(parts[0], 'recordings', `recording folder at ${hits[0].rel}`);
    assert.ok(hits[0].dir, `${hits[0].rel} is not a directory`);
    assert.ok(Buffer.byteLength(parts[1]) <= 255, 'encoded room name longer than NAME_MAX');
    const mode = (p) => (statSync(path.join(srv.dataDir, p)).mode & 0o777).toString(8);
    assert.equal(mode(hits[0].rel), '700', `mode of ${hits[0].rel}`);
    assert.equal(mode(path.join(parts[0], parts[1])), '700', `mode of room folder ${parts[1]}`);
    if (roomDirOf.has(room)) assert.equal(parts[1], roomDirOf.get(room), `same room, different folders for ${JSON.stringify(room)}`);
    roomDirOf.set(room, parts[1]);
  }
  const dirs = [...roomDirOf.values()];
  assert.equal(new Set(dirs).size, hostileRooms.length, `different rooms share a folder: ${JSON.stringify([...roomDirOf])}`);
  // "x" only ever appears below recordings/<encoded>/
  for (const e of entries) {
    if (e.name !== 'x') continue;
    const parts = e.rel.split(path.sep);
    assert.ok(parts[0] === 'recordings' && parts.length > 3, `entry named "x" at ${e.rel}`);
  }
  assert.equal(mode0(path.join(srv.dataDir, 'recordings')), '700', 'mode of $DATA/recordings');

  for (const { id } of created) {
    const s = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });
    assert.ok([200, 409].includes(s.status), show(s));
  }
  await assertUp('hostile room ids');
});

function mode0(p) { return (statSync(p).mode & 0o777).toString(8); }

test('room ids: 256 characters, NUL and non-strings → 400', async () => {
  const bad = ['é'.repeat(256), '😀'.repeat(256), 'x'.repeat(256), ''];
  for (const room of bad) {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: room, title: 't' } });
    expectError(res, 400, 'invalid_input', 'roomId', `roomId ${JSON.stringify(room).slice(0, 30)}`);
  }
  // NUL: rejected as bad JSON or as a bad roomId
  for (const room of ['a\u0000b', '\u0000']) {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: room, title: 't' } });
    expectError(res, 400, undefined, undefined, `roomId ${JSON.stringify(room)}`);
    assert.ok(['invalid_json', 'invalid_input'].includes(res.json.error.code), show(res));
    if (res.json.error.code === 'invalid_input') assert.equal(res.json.error.field, 'roomId');
  }
  // NUL in a query parameter is not a 5xx either
  const l = await srv.api('GET', '/api/v1/recordings?room_id=a%00b', { token: u.inst.token });
  assert.ok(l.status === 200 || l.status === 400, show(l));
  if (l.status === 200) assert.equal(l.json.total, 0);
  await assertUp('bad room ids');
});

test('invalid UTF-8 and pathological JSON → 400', async () => {
  const h = { 'content-type': 'application/json' };
  const bodies = [
    Buffer.concat([Buffer.from('{"roomId":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","title":"t"}')]),
    Buffer.concat([Buffer.from('{"roomId":"r-'), Buffer.from([0xc0, 0xaf]), Buffer.from('","title":"t"}')]),
    Buffer.concat([Buffer.from('{"roomId":"r-'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","title":"t"}')]),
    Buffer.concat([Buffer.from('{"roomId":"r","title":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]),
    Buffer.concat([Buffer.from('{"roomId":"r","title":"t","description":"'), Buffer.from([0x80]), Buffer.from('"}')]),
    Buffer.concat([Buffer.from('{"roomId":"r","title":"t'), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from('"}')]),
  ];
  for (const b of bodies) {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: b, headers: h });
    assert.equal(res.status, 400, `body ${b.toString('hex')}: ${show(res)}`);
    assert.ok(['invalid_json', 'invalid_input'].includes(res.json?.error?.code), show(res));
  }
  const patho = [
    '['.repeat(100000),
    `${'{"a":'.repeat(50000)}1${'}'.repeat(50000)}`,
    '{"roomId":"r","title":"t","bitrate":1e400}',
    '{"roomId":"r","title":"t","bitrate":123456789012345678901234567890}',
    '{"roomId":"\\ud800","title":"t"}',
    '{"roomId":"r\\u0000","title":"t"}',
    '{"roomId":"r","title":"t","x":"\\uZZZZ"}',
  ];
  for (const p of patho) {
    const res = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: p, headers: h });
    assert.ok([400, 413].includes(res.status), `body ${p.slice(0, 60)}: ${show(res)}`);
  }
  await assertUp('invalid JSON');
});

// ---- raw HTTP ----------------------------------------------------------------------------

const okOrClosed = (res, allowed) => res.status === null || allowed.includes(res.status);

test('raw HTTP sanity: a well-formed request over the raw socket', async () => {
  const res = await srv.raw('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 200, res.statusLine);
  assert.ok(res.headers['x-request-id'], 'X-Request-Id missing');
});

test('malformed request lines', async () => {
  const reqs = [
    'GARBAGE\r\n\r\n',
    'GET\r\n\r\n',
    'GET /healthz\r\n\r\n',
    'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /healthz FOO/1.1\r\nHost: x\r\n\r\n',
    'G\x00T /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
    'GET /he\x7flthz HTTP/1.1\r\nHost: x\r\n\r\n',
  ];
  for (const r of reqs) {
    const res = await srv.raw(r, { timeoutMs: 3000 });
    assert.ok(okOrClosed(res, [400, 404, 405, 414, 431, 501, 505]), `${JSON.stringify(r)} → ${res.statusLine}`);
    await assertUp(JSON.stringify(r));
  }
  // odd but survivable header lines: lenient parsers may ignore them
  for (const r of ['GET /healthz HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:\x00\x01\r\n\r\n']) {
    const res = await srv.raw(r, { timeoutMs: 3000 });
    assert.ok(okOrClosed(res, [200, 400, 431]), `${JSON.stringify(r)} → ${res.statusLine}`);
    await assertUp(JSON.stringify(r));
  }
});

test('huge and numerous headers', async () => {
  const big = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(256 * 1024)}\r\nConnection: close\r\n\r\n`;
  const r1 = await srv.raw(big, { timeoutMs: 5000 });
  assert.ok(okOrClosed(r1, [400, 413, 431]), `256 KiB header → ${r1.statusLine}`);
  await assertUp('a 256 KiB header');

  let many = 'GET /healthz HTTP/1.1\r\nHost: x\r\n';
  for (let i = 0; i < 5000; i++) many += `X-H-${i}: v\r\n`;
  many += 'Connection: close\r\n\r\n';
  const r2 = await srv.raw(many, { timeoutMs: 5000 });
  assert.ok(okOrClosed(r2, [200, 400, 413, 431]), `5000 headers → ${r2.statusLine}`);
  await assertUp('5000 headers');

  const auth = `GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'A'.repeat(100000)}\r\nConnection: close\r\n\r\n`;
  const r3 = await srv.raw(auth, { timeoutMs: 5000 });
  assert.ok(okOrClosed(r3, [400, 401, 413, 431]), `100 KB bearer → ${r3.statusLine}`);
  await assertUp('a 100 KB Authorization header');
});

test('path traversal in the URL never serves files', async () => {
  const paths = [
    '/api/v1/recordings/../../etc/passwd',
    '/api/v1/recordings/%2e%2e/%2e%2e/etc/passwd',
    '/api/v1/recordings/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
    '/api/v1/recordings/..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/api/v1/recordings/..%5c..%5cjwt.secret',
    '/api/v1/recordings/%2e%2e%2f%2e%2e%2fjwt.secret/download',
    '/api/v1/recordings/..%252f..%252fjwt.secret',
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/static/../../../../etc/passwd',
    '/web/..%2f..%2f..%2fetc/passwd',
    '//etc/passwd',
    '/jwt.secret',
    '/data/jwt.secret',
    '/vtp.db',
    '/recordings/',
    '/..%2fjwt.secret',
    '/%2e%2e%2fjwt.secret',
    '/api/v1/recordings/%00',
    '/api/v1/recordings/x%00.json',
  ];
  for (const p of paths) {
    const res = await srv.raw(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${u.admin.token}\r\nConnection: close\r\n\r\n`);
    const what = `GET ${p} → ${res.statusLine}`;
    assert.ok(res.status === null || res.status < 500, what);
    if (p.startsWith('/api/')) assert.ok(res.status === null || [400, 404].includes(res.status), what);
    assert.ok(!res.body.includes('root:x:0:0') && !res.body.includes('root:*:0:0'), `${what}: served /etc/passwd`);
    const st = secret.toString('latin1').trim();
    assert.ok(!res.body.includes(secret) && (st.length < 16 || !res.body.includes(st)), `${what}: served jwt.secret`);
    assert.ok(!res.body.includes('SQLite format 3'), `${what}: served the database`);
    await assertUp(what);
  }
});

test('very long URLs', async () => {
  const long = `/api/v1/recordings/${'a'.repeat(100000)}`;
  const r1 = await srv.raw(`GET ${long} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.inst.token}\r\nConnection: close\r\n\r\n`, { timeoutMs: 5000 });
  assert.ok(okOrClosed(r1, [400, 404, 414, 431]), `100 KB URL → ${r1.statusLine}`);
  await assertUp('a 100 KB URL');
  const q = `/api/v1/recordings?room_id=${'b'.repeat(6000)}&limit=${'9'.repeat(3000)}`;
  const r2 = await srv.raw(`GET ${q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.inst.token}\r\nConnection: close\r\n\r\n`, { timeoutMs: 5000 });
  assert.ok(okOrClosed(r2, [400, 414, 431]), `9 KB query → ${r2.statusLine}`);
  await assertUp('a long query');
  const mid = await srv.api('GET', `/api/v1/recordings/${'c'.repeat(4000)}`, { token: u.inst.token });
  expectError(mid, 404, 'not_found', undefined, '4 KB id');
});

test('lying and oversized Content-Length, chunked bodies over the limit', async () => {
  const head = (extra) => `POST /api/v1/recordings/start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.inst.token}\r\n` +
    `Content-Type: application/json\r\n${extra}Connection: close\r\n\r\n`;

  const huge = await srv.raw([head('Content-Length: 9999999999\r\n'), '{"roomId":'], { timeoutMs: 5000 });
  assert.equal(huge.status, 413, `Content-Length 9999999999 → ${huge.statusLine} (should be refused before reading)`);
  await assertUp('a huge Content-Length');

  const short = await srv.raw(head('Content-Length: 100\r\n') + '{"roomId":', { timeoutMs: 1500 });
  assert.ok(okOrClosed(short, [400, 408]), `short body → ${short.statusLine}`);
  await assertUp('a short body');

  const neg = await srv.raw(head('Content-Length: -1\r\n') + '{}', { timeoutMs: 3000 });
  assert.ok(okOrClosed(neg, [400, 411, 413]), `Content-Length -1 → ${neg.statusLine}`);
  await assertUp('a negative Content-Length');

  const dup = await srv.raw(head('Content-Length: 2\r\nContent-Length: 40\r\n') + '{}', { timeoutMs: 3000 });
  assert.ok(okOrClosed(dup, [400]), `conflicting Content-Length → ${dup.statusLine}`);
  await assertUp('conflicting Content-Length');

  const chunk = Buffer.alloc(64 * 1024, 'a');
  const parts = [head('Transfer-Encoding: chunked\r\n'), `${(15).toString(16)}\r\n{"roomId":"r","\r\n`];
  for (let i = 0; i < 40; i++) parts.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
  parts.push('0\r\n\r\n');
  const ch = await srv.raw(parts, { timeoutMs: 10000 });
  assert.equal(ch.status, 413, `2.5 MiB chunked body → ${ch.statusLine}`);
  await assertUp('a large chunked body');

  const okChunked = JSON.stringify({ roomId: `chunked-${rand(4)}`, title: 'chunked' });
  const good = await srv.raw(head('Transfer-Encoding: chunked\r\n') +
    `${Buffer.byteLength(okChunked).toString(16)}\r\n${okChunked}\r\n0\r\n\r\n`, { timeoutMs: 5000 });
  assert.equal(good.status, 201, `small chunked JSON body → ${good.statusLine} ${good.text}`);
  const id = JSON.parse(good.text).recordingId;
  await stopRec(srv, u.inst.token, id);
});

test('the server is still up and serving', async () => {
  await assertUp('everything');
  const r = await startRec(srv, u.inst.token);
  await stopRec(srv, u.inst.token, r.id);
});

// ---- request smuggling and slow heads (RFC 9112 §6.3) ----------------------------------------

/** Sends bytes and reads until the server closes (or timeoutMs): {text, closed}. */
function rawUntilClose(port, data, timeoutMs = 15000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); resolve({ text: buf.toString('latin1'), closed: false }); }, timeoutMs);
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve({ text: buf.toString('latin1'), closed: true }); });
    sock.on('connect', () => sock.write(Buffer.from(data, 'latin1')));
  });
}

// every status line in a stream of responses (the next one starts right after a body)
const statusLines = (text) => [...text.matchAll(/HTTP\/1\.[01] (\d{3}) [A-Za-z][^\r\n]*\r\n/g)].map((m) => Number(m[1]));

test('ambiguous framing (CL+TE, two Content-Lengths, bad Transfer-Encoding lines) is refused with 400 and the connection closed: the bytes after it never run', async () => {
  // the smuggled request would answer 200 with the caller's identity
  const smuggled = `GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.inst.token}\r\n\r\n`;
  const head = (lines, version = 'HTTP/1.1') => `POST /api/v1/auth/login ${version}\r\nHost: x\r\nContent-Type: application/json\r\n${lines}\r\n`;
  const cases = {
    'CL then TE': head('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n' + smuggled,
    'TE then CL': head('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n') + '0\r\n\r\n' + smuggled,
    'two different Content-Lengths': head('Content-Length: 0\r\nContent-Length: 2\r\n') + '{}' + smuggled,
    'two Transfer-Encoding lines': head('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n' + smuggled,
    'chunked twice in one line': head('Transfer-Encoding: chunked, chunked\r\n') + '0\r\n\r\n' + smuggled,
    'space before the colon': head('Transfer-Encoding : chunked\r\n') + '0\r\n\r\n' + smuggled,
    'control character in the value': head('Transfer-Encoding: \x0bchunked\r\n') + '0\r\n\r\n' + smuggled,
    'bare CR hiding a Transfer-Encoding line': head('X-Pad: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n') + '0\r\n\r\n' + smuggled,
    'quoted coding': head('Transfer-Encoding: "chunked"\r\n') + '0\r\n\r\n' + smuggled,
    'Transfer-Encoding on HTTP/1.0': head('Transfer-Encoding: chunked\r\n', 'HTTP/1.0') + '0\r\n\r\n' + smuggled,
  };
  await checkAll(Object.entries(cases), async ([what, bytes]) => {
    const res = await rawUntilClose(srv.port, bytes);
    const statuses = statusLines(res.text);
    assert.deepEqual(statuses, [400], `${what}: responses ${JSON.stringify(statuses)}\n${res.text.slice(0, 600)}`);
    assert.match(res.text, /\r\nConnection: close\r\n/i, `${what}: no Connection: close`);
    assert.ok(res.closed, `${what}: the connection was left open`);
    assert.ok(!res.text.includes(u.inst.email), `${what}: the smuggled request ran`);
  });
  // the well-formed versions still work, pipelined requests included
  const fine = await rawUntilClose(srv.port,
    `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n${smuggled.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')}`);
  assert.deepEqual(statusLines(fine.text), [200, 200], fine.text.slice(0, 600));
  await assertUp('ambiguous framing');
});

test('an unknown transfer coding gets 501 at once instead of hanging', async () => {
  for (const te of ['gzip', 'chunked, gzip', 'gzip, chunked', 'chunked;ext=1']) {
    const res = await rawUntilClose(srv.port,
      `POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`, 20000);
    assert.deepEqual(statusLines(res.text), [501], `Transfer-Encoding: ${te} → ${res.text.slice(0, 300) || (res.closed ? 'closed' : 'no answer in 20 s')}`);
    assert.ok(res.closed, `Transfer-Encoding: ${te}: left open`);
  }
  await assertUp('unknown transfer codings');
});

/**
 * Connects, sends `first` (whole requests, answered), then a request head one
 * byte every 250 ms (which keeps libmicrohttpd's idle timeout, 30 s, from ever
 * firing) until the server closes or limitMs pass. Resolves {closed, got}.
 */
async function dribbleHead(port, first = '', limitMs = 45000) {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  let closed = false;
  sock.on('data', (d) => { got += d.toString('latin1'); });
  sock.on('error', () => {});
  sock.on('close', () => { closed = true; });
  await new Promise((r) => sock.once('connect', r));
  if (first) {
    sock.write(first);
    for (const deadline = Date.now() + 10000; !/\r\n\r\n\{[^}]*\}$/.test(got) && !closed && Date.now() < deadline;) await sleep(20);
  }
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  for (const deadline = Date.now() + limitMs; !closed && Date.now() < deadline; await sleep(250)) sock.write('a');
  sock.destroy();
  return { closed, got };
}

// The head deadline is the HTTP layer's, the same whatever the backend: this
// 40-second test runs with SQLite (in both passes), not again with PostgreSQL.
test('a request head sent one byte at a time is cut off at VTP_HTTP_HEADER_TIMEOUT (408, closed); complete requests, keep-alive and Socket.IO are not', { skip: BACKEND === 'postgres' && 'the HTTP layer alone: checked with SQLite' }, async () => {
  const slow = await startServer({ env: { VTP_HTTP_HEADER_TIMEOUT: 2 } });
  const fresh = await dribbleHead(slow.port);
  assert.ok(fresh.closed, 'a head dribbled for 45 s was never cut off');
  assert.ok(fresh.got === '' || /^HTTP\/1\.1 408 /.test(fresh.got), `answer to a slow head: ${fresh.got.slice(0, 200)}`);
  // the same on a kept-alive connection after a first request (which may idle 30 s first):
  // closed, without a 408 (it may just be idle)
  const kept = await dribbleHead(slow.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 90000);
  assert.ok(kept.closed, 'a second head dribbled for 90 s was never cut off');
  assert.deepEqual(statusLines(kept.got), [200], `answers on the kept-alive connection: ${kept.got.slice(0, 400)}`);

  // a whole head in time is served, and so are two requests on one kept-alive connection
  const keep = await rawUntilClose(slow.port,
    'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusLines(keep.text), [200, 200], keep.text.slice(0, 400));
  const m = await fetch(`${slow.url}/metrics`).then((r) => r.text());
  assert.match(m, /^vtp_http_head_timeouts_total [1-9]/m, 'the cut-off is not counted');

  // an upgraded (Socket.IO) connection has no head: it outlives the deadline
  const users = await makeUsers(slow, { inst: 'instructor' });
  const s = io(slow.url, { transports: ['websocket'], auth: { token: users.inst.token }, reconnection: false });
  try {
    await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
    let disconnected = null;
    s.once('disconnect', (why) => { disconnected = why; });
    await sleep(5000); // more than twice the head deadline
    const a = await s.timeout(10000).emitWithAck('join-room', { roomId: 'slow-head' });
    assert.equal(a.roomId, 'slow-head', JSON.stringify(a));
    assert.equal(disconnected, null, `the socket was dropped: ${disconnected}`);
  } finally {
    s.disconnect();
  }
  assert.ok(await slow.healthy());
  await slow.stop();
});
