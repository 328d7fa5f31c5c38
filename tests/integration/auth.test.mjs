// Authentication: login, /users/me, JWT validation (expiry, nbf, tampering,
// alg confusion), the ignored X-User-ID header and login throttling (which
// must not let one address lock an account's owner out from another; the
// other addresses are other loopback addresses, 127.0.0.x).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import {
  UUID_RE, PASSWORD, show, expectError, assertTime, assertNoPaths, decodeJwt, signJwt, b64uJson,
  keyMatches, keyCandidates, makeUsers, startBody,
} from './lib/util.mjs';

let srv;
let u;
let secretRaw;
let key = null; // the HMAC key as the server uses it, if one of the candidates reproduces a real token

before(async () => {
  srv = await startServer();
  u = await makeUsers(srv, { admin: 'admin', inst: 'instructor', stu: 'student', cmp: 'student', thr: 'student', other: 'instructor', victim: 'instructor', victim2: 'student' });
  secretRaw = readFileSync(path.join(srv.dataDir, 'jwt.secret'));
  for (const k of keyCandidates(secretRaw)) {
    if (keyMatches(u.admin.token, k)) { key = k; break; }
  }
});
after(cleanupAll);

const me = (token, headers = {}) => srv.api('GET', '/api/v1/users/me', { token, headers });

test('login returns a working token and the user', async () => {
  const res = await srv.login(u.inst.email, PASSWORD);
  assert.equal(res.status, 200, show(res));
  const j = res.json;
  assert.equal(typeof j.token, 'string');
  assertTime(j.expiresAt, 'expiresAt');
  assert.ok(Date.parse(j.expiresAt) > Date.now(), 'expiresAt is in the past');
  assert.deepEqual(
    { id: j.user.id, email: j.user.email, fullName: j.user.fullName, role: j.user.role },
    { id: u.inst.id, email: u.inst.email, fullName: u.inst.name, role: 'instructor' },
  );
  assert.ok(!/password|hash|salt/i.test(JSON.stringify(j)), `login response leaks password data: ${res.text}`);
  assertNoPaths(res, srv);

  const { header, payload } = decodeJwt(j.token);
  assert.equal(header.alg, 'HS256');
  assert.equal(payload.sub, u.inst.id, 'sub must be the user id');
  assert.equal(typeof payload.exp, 'number', 'exp claim required');
  assert.ok(Math.abs(payload.exp * 1000 - Date.parse(j.expiresAt)) < 2000, 'exp and expiresAt disagree');

  const m = await me(j.token);
  assert.equal(m.status, 200, show(m));
  assert.equal(m.json.id, u.inst.id);
  assert.equal(m.json.email, u.inst.email);
  assert.equal(m.json.role, 'instructor');
  assert.ok(!/password|hash/i.test(m.text), `/users/me leaks password data: ${m.text}`);
});

test('CLI token works and honours --ttl', async () => {
  const m = await me(u.stu.token);
  assert.equal(m.status, 200, show(m));
  assert.equal(m.json.id, u.stu.id);
  assert.equal(m.json.role, 'student');
  const t = await srv.tokenFor(u.stu.email, 120);
  const { payload } = decodeJwt(t);
  assert.ok(Math.abs(payload.exp - (Date.now() / 1000 + 120)) < 15, `--ttl 120 gave exp ${payload.exp}`);
  assert.equal((await me(t)).status, 200);
});

test('wrong password and unknown email: same status, same message', async () => {
  const wrong = await srv.login(u.cmp.email, 'not-the-password-123');
  const unknown = await srv.login(`nobody-${rand(4)}@example.test`, 'not-the-password-123');
  expectError(wrong, 401);
  expectError(unknown, 401);
  assert.equal(wrong.json.error.message, unknown.json.error.message, 'messages differ: user enumeration');
  assert.equal(wrong.json.error.code, unknown.json.error.code);
  assert.equal(wrong.json.error.code, 'invalid_credentials', 'bad credentials have their own code');
});

test('login input errors are 4xx, never 5xx', async () => {
  const empty = await srv.api('POST', '/api/v1/auth/login', { body: {} });
  assert.ok([400, 401].includes(empty.status), `empty login: ${show(empty)}`);
  const types = await srv.api('POST', '/api/v1/auth/login', { body: { email: 5, password: true } });
  assert.ok([400, 401].includes(types.status), `wrong types: ${show(types)}`);
  expectError(await srv.api('POST', '/api/v1/auth/login', { body: '{"email":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  expectError(await srv.api('POST', '/api/v1/auth/login', {
    body: JSON.stringify({ email: u.other.email, password: PASSWORD }), headers: { 'content-type': 'text/plain' },
  }), 415, 'unsupported_media_type');
  const ok = await srv.api('POST', '/api/v1/auth/login', {
    body: JSON.stringify({ email: u.other.email, password: PASSWORD }), headers: { 'content-type': 'application/json; charset=utf-8' },
  });
  assert.equal(ok.status, 200, `charset parameter must be accepted: ${show(ok)}`);
});

test('missing, garbage and malformed tokens → 401', async () => {
  expectError(await me(undefined), 401, 'unauthorized');
  const variants = [
    'Bearer garbage',
    'Bearer ',
    'Bearer',
    'Basic dXNlcjpwYXNz',
    `Token ${u.inst.token}`,
    `Bearer ${u.inst.token.split('.').slice(0, 2).join('.')}`,
    `Bearer ${u.inst.token}.extra`,
    `Bearer a.b.c`,
    `Bearer ${'A'.repeat(4000)}`,
  ];
  for (const v of variants) {
    expectError(await me(undefined, { authorization: v }), 401, 'unauthorized');
  }
  // other endpoints are protected too
  expectError(await srv.api('GET', '/api/v1/recordings'), 401, 'unauthorized');
  expectError(await srv.api('POST', '/api/v1/recordings/start', { body: startBody() }), 401, 'unauthorized');
});

test('expired token → 401', async () => {
  const t = await srv.tokenFor(u.stu.email, 1);
  const { payload } = decodeJwt(t);
  assert.equal(typeof payload.exp, 'number');
  const wait = (payload.exp + 1) * 1000 - Date.now() + 100;
  if (wait > 0) await sleep(wait);
  expectError(await me(t), 401, 'unauthorized');
});

test('tampered tokens → 401', async () => {
  const [h, p, s] = u.stu.token.split('.');
  const payload = decodeJwt(u.stu.token).payload;
  // claims changed, signature kept
  const forgedSub = `${h}.${b64uJson({ ...payload, sub: u.admin.id })}.${s}`;
  expectError(await me(forgedSub), 401, 'unauthorized');
  const forgedExp = `${h}.${b64uJson({ ...payload, exp: payload.exp + 3600 })}.${s}`;
  expectError(await me(forgedExp), 401, 'unauthorized');
  // signature changed: flip one bit of the decoded signature
  const sig = Buffer.from(s, 'base64url');
  sig[5] ^= 0x01;
  expectError(await me(`${h}.${p}.${sig.toString('base64url')}`), 401, 'unauthorized');
  // signed with some other key
  expectError(await me(signJwt({ alg: 'HS256', typ: 'JWT' }, payload, 'not-the-secret')), 401, 'unauthorized');
});

test('alg:none tokens → 401', async () => {
  const payload = { ...decodeJwt(u.stu.token).payload, sub: u.admin.id };
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    const t = `${b64uJson({ alg, typ: 'JWT' })}.${b64uJson(payload)}.`;
    expectError(await me(t), 401, 'unauthorized');
    // with the original signature attached
    const t2 = `${b64uJson({ alg, typ: 'JWT' })}.${b64uJson(payload)}.${u.stu.token.split('.')[2]}`;
    expectError(await me(t2), 401, 'unauthorized');
  }
});

test('HS512 / HS384 tokens signed with the real secret → 401', async () => {
  const payload = decodeJwt(u.admin.token).payload;
  const keys = key ? [key, ...keyCandidates(secretRaw)] : keyCandidates(secretRaw);
  for (const alg of ['HS512', 'HS384']) {
    for (const k of keys) {
      const t = signJwt({ alg, typ: 'JWT' }, payload, k);
      expectError(await me(t), 401, 'unauthorized');
    }
  }
  // RS256 header with an HMAC signature (key confusion)
  const t = signJwt({ alg: 'RS256', typ: 'JWT' }, payload, keys[0], 'HS256');
  expectError(await me(t), 401, 'unauthorized');
});

test('claims are enforced (forged with the real key)', async (t) => {
  if (!key) {
    t.skip('no interpretation of jwt.secret reproduces the server\'s signatures');
    return;
  }
  const hdr = { alg: 'HS256', typ: 'JWT' };
  const base = decodeJwt(u.stu.token).payload;
  const now = Math.floor(Date.now() / 1000);
  // positive control: our forging works, so the negatives below are meaningful
  const good = await me(signJwt(hdr, { ...base, iat: now, exp: now + 600 }, key));
  assert.equal(good.status, 200, `positive control: ${show(good)}`);
  assert.equal(good.json.id, u.stu.id);

  const noExp = { ...base, iat: now };
  delete noExp.exp;
  expectError(await me(signJwt(hdr, noExp, key)), 401, 'unauthorized');
  expectError(await me(signJwt(hdr, { ...base, exp: now - 30 }, key)), 401, 'unauthorized');
  expectError(await me(signJwt(hdr, { ...base, exp: now + 600, sub: crypto.randomUUID() }, key)), 401, 'unauthorized');
  const noSub = { ...base, exp: now + 600 };
  delete noSub.sub;
  expectError(await me(signJwt(hdr, noSub, key)), 401, 'unauthorized');
  expectError(await me(signJwt(hdr, { ...base, exp: `${now + 600}` }, key)), 401, 'unauthorized');
});

test('X-User-ID is ignored', async () => {
  expectError(await me(undefined, { 'x-user-id': u.admin.id }), 401, 'unauthorized');
  expectError(await srv.api('POST', '/api/v1/recordings/start', { body: startBody(), headers: { 'x-user-id': u.admin.id } }), 401, 'unauthorized');
  const m = await me(u.stu.token, { 'x-user-id': u.admin.id });
  assert.equal(m.status, 200, show(m));
  assert.equal(m.json.id, u.stu.id, 'X-User-ID changed the identity');
  const st = await srv.api('POST', '/api/v1/recordings/start', { token: u.stu.token, body: startBody(), headers: { 'x-user-id': u.admin.id } });
  expectError(st, 403, 'forbidden');
});

test('login throttling: 6th attempt after 5 failures is 429 with Retry-After', async () => {
  for (let i = 0; i < 5; i++) {
    expectError(await srv.login(u.thr.email, `wrong-password-${i}`), 401);
  }
  const res = await srv.login(u.thr.email, PASSWORD);
  expectError(res, 429, 'too_many_requests');
  const ra = res.headers.get('retry-after');
  assert.ok(ra !== null, 'Retry-After header missing');
  assert.match(ra, /^\d+$/, `Retry-After should be delta-seconds: ${ra}`);
  assert.ok(Number(ra) >= 1, `Retry-After ${ra}`);
  // only that email is throttled
  const other = await srv.login(u.other.email, PASSWORD);
  assert.equal(other.status, 200, `another account must not be throttled: ${show(other)}`);
  // existing tokens of the throttled user keep working
  assert.equal((await me(u.thr.token)).status, 200);
});

/** POST /api/v1/auth/login from a chosen local (loopback) address: {status, json, headers}. */
function loginFrom(localAddress, email, password) {
  const body = JSON.stringify({ email, password });
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: srv.port, path: '/api/v1/auth/login', method: 'POST', localAddress,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' },
      timeout: 20000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text, headers: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error('login timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

test('login throttling cannot lock the owner out: failures from one address never refuse the right password from another', async () => {
  // an attacker at 127.0.0.2 guesses until refused, and keeps trying
  let refused = 0;
  for (let i = 0; i < 12; i++) {
    const r = await loginFrom('127.0.0.2', u.victim.email, `guess-${i}`);
    assert.ok([401, 429].includes(r.status), `guess ${i}: ${r.status} ${r.text}`);
    if (r.status === 429) refused++;
  }
  assert.ok(refused > 0, 'the guessing address was never throttled');
  // the attacker's address stays refused, even with the right password
  expectError(await loginFrom('127.0.0.2', u.victim.email, PASSWORD), 429, 'too_many_requests');
  // the owner, elsewhere, gets in
  const owner = await loginFrom('127.0.0.3', u.victim.email, PASSWORD);
  assert.equal(owner.status, 200, `owner at another address refused: ${owner.status} ${owner.text}`);
  assert.equal(owner.json.user.id, u.victim.id);

  // guesses spread over several addresses: each is throttled once it failed, the owner still gets in
  for (const addr of ['127.0.0.4', '127.0.0.5', '127.0.0.6']) {
    for (let i = 0; i < 6; i++) {
      const r = await loginFrom(addr, u.victim2.email, `spread-${i}`);
      assert.ok([401, 429].includes(r.status), `${addr} guess ${i}: ${r.status} ${r.text}`);
    }
  }
  const owner2 = await loginFrom('127.0.0.7', u.victim2.email, PASSWORD);
  assert.equal(owner2.status, 200, `owner refused after spread guesses: ${owner2.status} ${owner2.text}`);
  // correct logins are no failures: many in a row from one address all pass
  for (let i = 0; i < 8; i++) {
    const r = await loginFrom('127.0.0.7', u.victim2.email, PASSWORD);
    assert.equal(r.status, 200, `correct login ${i}: ${r.status} ${r.text}`);
  }
});

test('JWT nbf is honoured: a token not valid yet is 401; one whose nbf has passed works', async (t) => {
  if (!key) {
    t.skip('no interpretation of jwt.secret reproduces the server\'s signatures');
    return;
  }
  const hdr = { alg: 'HS256', typ: 'JWT' };
  const base = decodeJwt(u.stu.token).payload;
  const now = Math.floor(Date.now() / 1000);
  const early = await me(signJwt(hdr, { ...base, iat: now, exp: now + 3600, nbf: now + 600 }, key));
  expectError(early, 401, 'unauthorized');
  assert.match(early.json.error.message, /not valid yet/, show(early));
  expectError(await me(signJwt(hdr, { ...base, iat: now, exp: now + 3600, nbf: `${now}` }, key)), 401, 'unauthorized');
  const ok = await me(signJwt(hdr, { ...base, iat: now, exp: now + 3600, nbf: now - 5 }, key));
  assert.equal(ok.status, 200, show(ok));
  assert.equal(ok.json.id, u.stu.id);
});

test('UUID ids everywhere', () => {
  for (const x of Object.values(u)) assert.match(x.id, UUID_RE);
});
