// Shared assertions, JWT helpers and user fixtures for the integration tests.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { rand, sleep } from './server.mjs';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const STATUSES = ['pending', 'recording', 'stopped', 'processing', 'done', 'failed'];
export const PASSWORD = 'Correct-Horse-Battery-Staple-9';

/** Short description of a response for assertion messages. */
export function show(res) {
  const t = res.text === undefined ? '' : res.text;
  return `HTTP ${res.status} ${t.length > 600 ? `${t.slice(0, 600)}…` : t}`;
}

/** Asserts the error envelope {"error":{"code","message"[, "field"]}}; `what` prefixes messages. */
export function expectError(res, status, code, field, what) {
  const p = what ? `${what}: ` : '';
  assert.equal(res.status, status, `${p}expected ${status} ${code}${field ? ` (field ${field})` : ''}, got ${show(res)}`);
  assert.ok(res.json && typeof res.json.error === 'object' && res.json.error !== null, `${p}error envelope missing: ${show(res)}`);
  if (code !== undefined) assert.equal(res.json.error.code, code, `${p}error code: ${show(res)}`);
  assert.equal(typeof res.json.error.message, 'string', `${p}error.message: ${show(res)}`);
  assert.ok(res.json.error.message.length > 0, `${p}empty error.message: ${show(res)}`);
  if (field !== undefined) assert.equal(res.json.error.field, field, `${p}error.field: ${show(res)}`);
  return res.json.error;
}

export function expectStatus(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${show(res)}`);
  return res.json;
}

export function assertTime(v, what = 'time') {
  assert.equal(typeof v, 'string', `${what} should be an RFC 3339 string, got ${JSON.stringify(v)}`);
  assert.match(v, TIME_RE, `${what} should be RFC 3339 UTC with milliseconds: ${v}`);
  assert.ok(!Number.isNaN(Date.parse(v)), `${what} unparsable: ${v}`);
}

/** Every key ending in "At" with a non-null value must be an RFC 3339 ms UTC string. */
export function assertTimesDeep(obj, where = '$') {
  if (Array.isArray(obj)) { obj.forEach((x, i) => assertTimesDeep(x, `${where}[${i}]`)); return; }
  if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) {
      if (/At$/.test(k) && v !== null && v !== undefined) assertTime(v, `${where}.${k}`);
      else assertTimesDeep(v, `${where}.${k}`);
    }
  }
}

/** No filePath / file_path key anywhere and no server path in the body text. */
export function assertNoPaths(res, srv) {
  const walk = (o, where) => {
    if (Array.isArray(o)) { o.forEach((x, i) => walk(x, `${where}[${i}]`)); return; }
    if (o && typeof o === 'object') {
      for (const [k, v] of Object.entries(o)) {
        assert.ok(!/^file_?path$/i.test(k), `body exposes ${where}.${k}`);
        walk(v, `${where}.${k}`);
      }
    } else if (typeof o === 'string') {
      assert.ok(!/^\/(tmp|var|home|root|srv|opt|data|etc|usr)\//.test(o), `absolute path in body at ${where}: ${o}`);
    }
  };
  walk(res.json, '$');
  if (srv) {
    assert.ok(!res.text.includes(srv.root), `body contains the server's directory ${srv.root}: ${res.text.slice(0, 300)}`);
  }
}

// ---- JWT -------------------------------------------------------------------------

export const b64u = (buf) => Buffer.from(buf).toString('base64url');
export const b64uJson = (o) => b64u(JSON.stringify(o));

export function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')), payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')), signature: s };
}

const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

export function signJwt(header, payload, key, alg = header.alg) {
  const input = `${b64uJson(header)}.${b64uJson(payload)}`;
  if (!HASH[alg]) return `${input}.`;
  return `${input}.${crypto.createHmac(HASH[alg], key).update(input).digest('base64url')}`;
}

/** Re-signs exactly the given token's header.payload with key; true if it reproduces the signature. */
export function keyMatches(token, key) {
  const [h, p, s] = token.split('.');
  return crypto.createHmac('sha256', key).update(`${h}.${p}`).digest('base64url') === s;
}

/** Plausible interpretations of a secret file's bytes as an HMAC key (raw bytes first). */
export function keyCandidates(raw) {
  const out = [raw];
  const trimmed = Buffer.from(raw.toString('latin1').trim(), 'latin1');
  out.push(trimmed);
  const t = trimmed.toString('latin1');
  if (/^[0-9a-f]+$/i.test(t) && t.length % 2 === 0) out.push(Buffer.from(t, 'hex'));
  if (/^[A-Za-z0-9+/_-]+=*$/.test(t)) {
    out.push(Buffer.from(t, 'base64'));
  }
  return out;
}

// ---- fixtures ----------------------------------------------------------------------

/**
 * Creates users on srv: spec = {name: role, ...}. Returns {name: {id, email, password, role, token}}.
 */
export async function makeUsers(srv, spec) {
  const out = {};
  for (const [name, role] of Object.entries(spec)) {
    const email = `${name}-${rand(4)}@example.test`;
    const id = await srv.createUser({ email, name: `Test ${name}`, role, password: PASSWORD });
    const token = await srv.tokenFor(email);
    out[name] = { id, email, password: PASSWORD, role, token, name: `Test ${name}` };
  }
  return out;
}

export function startBody(extra = {}) {
  return { roomId: `room-${rand(5)}`, title: `Lecture ${rand(3)}`, ...extra };
}

/** POST /recordings/start; asserts 201 and returns {id, room, body}. */
export async function startRec(srv, token, extra = {}) {
  const body = startBody(extra);
  const res = await srv.api('POST', '/api/v1/recordings/start', { token, body });
  assert.equal(res.status, 201, `start failed: ${show(res)}`);
  assert.match(String(res.json.recordingId), UUID_RE, `recordingId: ${show(res)}`);
  return { id: res.json.recordingId, room: body.roomId, body, res };
}

export async function stopRec(srv, token, id) {
  const res = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token });
  assert.equal(res.status, 200, `stop failed: ${show(res)}`);
  return res.json;
}

/** Extracts the list of shares from GET …/shares whatever its envelope. */
export function sharesOf(json) {
  if (Array.isArray(json)) return json;
  if (json && Array.isArray(json.shares)) return json.shares;
  assert.fail(`GET shares: no shares array in ${JSON.stringify(json)}`);
}

/** Runs fn over every case, collecting assertion failures, then fails once listing them all. */
export async function checkAll(cases, fn) {
  const failures = [];
  for (const c of cases) {
    try {
      await fn(c);
    } catch (e) {
      if (e && e.code === 'ERR_ASSERTION') failures.push(e.message.split('\n')[0]);
      else throw e;
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${cases.length} cases failed:\n  ${failures.join('\n  ')}`);
}

/** Polls fn every 100 ms until it returns something truthy (returned), failing after timeoutMs. */
export async function waitFor(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Stops recording id (asserts 200), waits for the worker to compose it
 * (done; failed fails the test), and downloads the file over its
 * downloadUrl into dir. Resolves {rec, file}.
 */
export async function stopAndDownload(srv, token, id, dir, timeoutMs = 180000) {
  await stopRec(srv, token, id);
  return downloadWhenDone(srv, token, id, dir, timeoutMs);
}

/** The second half of stopAndDownload, for a recording stopped otherwise (e.g. from a page). */
export async function downloadWhenDone(srv, token, id, dir, timeoutMs = 180000) {
  const rec = await waitFor(async () => {
    const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
    assert.equal(r.status, 200, show(r));
    if (r.json.status === 'failed') assert.fail(`composition failed: ${JSON.stringify(r.json.error)}`);
    return r.json.status === 'done' ? r.json : null;
  }, `recording ${id} done`, timeoutMs);
  const file = path.join(dir, `${id}.${rec.format}`);
  const dl = await fetch(rec.downloadUrl.startsWith('http') ? rec.downloadUrl : srv.url + rec.downloadUrl);
  assert.equal(dl.status, 200, `download ${rec.downloadUrl}`);
  fs.writeFileSync(file, Buffer.from(await dl.arrayBuffer()));
  return { rec, file };
}
