// Integration-test harness: runs the real `vtp-recorder` binary on a free
// loopback port with its own temporary data directory (and, for the postgres
// backend, its own freshly created database), and offers small helpers to
// drive it: the CLI (`user add`, `token`), JSON API calls and raw TCP requests.
// Everything started here is registered and torn down by cleanupAll(); a
// synchronous process 'exit' hook is the last line of defence.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.VTP_BIN || path.resolve('build/vtp-recorder');
export const BACKEND = (process.env.VTP_TEST_BACKEND || 'sqlite').toLowerCase();
const PG_URL_FILE = process.env.VTP_TEST_PG_URL_FILE || '';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const rand = (n = 6) => crypto.randomBytes(n).toString('hex');

// ---- cleanup registry -------------------------------------------------------

const liveProcs = new Set();
const contexts = new Set();

/** Stops every server/process started by this module, drops databases, removes temp dirs. */
export async function cleanupAll() {
  for (const p of [...liveProcs]) {
    await terminate(p, 'SIGKILL', 5000);
  }
  for (const ctx of [...contexts]) ctx.destroy();
}

process.on('exit', () => {
  for (const p of liveProcs) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const ctx of contexts) ctx.destroy();
});

function trackProc(p) {
  liveProcs.add(p);
  p.once('exit', () => liveProcs.delete(p));
  return p;
}

function exited(p) {
  return p.exitCode !== null || p.signalCode !== null;
}

/** Sends `signal` and waits for exit; escalates to SIGKILL after timeoutMs. */
async function terminate(p, signal = 'SIGTERM', timeoutMs = 10000) {
  if (exited(p)) return { code: p.exitCode, signal: p.signalCode, escalated: false };
  const done = new Promise((r) => p.once('exit', (code, sig) => r({ code, signal: sig })));
  try { p.kill(signal); } catch { /* gone */ }
  let escalated = false;
  const timer = setTimeout(() => { escalated = true; try { p.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  const res = await done;
  clearTimeout(timer);
  return { ...res, escalated };
}

// ---- environment / context --------------------------------------------------

function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('VTP_')) env[k] = v;
  }
  return env;
}

function psql(url, sql) {
  const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`psql failed (${sql}): ${r.stderr || r.error}`);
  return r.stdout;
}

function replaceDbName(url, name) {
  const m = url.match(/^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?(.*)$/);
  if (!m) throw new Error(`cannot parse postgres URL ${url}`);
  return `${m[1]}/${name}${m[3] || ''}`;
}

/**
 * A test context: temporary root (root/data is the data dir, so that the root's
 * other entries reveal anything written outside the data dir) and a database.
 */
export class Context {
  constructor({ sqliteUrl = false } = {}) {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'vtp-it-'));
    this.dataDir = path.join(this.root, 'data');
    mkdirSync(this.dataDir, { mode: 0o700 });
    this.dbName = null;
    this.dbUrl = null;
    if (BACKEND === 'postgres') {
      if (!PG_URL_FILE || !existsSync(PG_URL_FILE)) {
        throw new Error(`VTP_TEST_BACKEND=postgres but VTP_TEST_PG_URL_FILE (${PG_URL_FILE}) is missing`);
      }
      this.adminUrl = readFileSync(PG_URL_FILE, 'utf8').trim();
      this.dbName = `vtp_it_${rand(6)}`;
      psql(this.adminUrl, `CREATE DATABASE ${this.dbName}`);
      this.dbUrl = replaceDbName(this.adminUrl, this.dbName);
    } else if (sqliteUrl) {
      this.dbUrl = `sqlite://${this.dataDir}/vtp.db`;
    }
    this.destroyed = false;
    contexts.add(this);
  }

  /** Environment for any `vtp-recorder` process of this context. */
  env(extra = {}) {
    // VTP_DRAIN_SECONDS=0: a SIGTERM hands running jobs back at once, as
    // before draining existed (suites that kill servers mid-compose expect a
    // quick stop); the drain tests set their own.
    const env = { ...baseEnv(), VTP_DATA_DIR: this.dataDir, VTP_LOG_FORMAT: 'json', VTP_DRAIN_SECONDS: '0' };
    if (this.dbUrl) env.VTP_DATABASE_URL = this.dbUrl;
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined || v === null) delete env[k];
      else env[k] = String(v);
    }
    return env;
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    contexts.delete(this);
    if (this.dbName) {
      try { psql(this.adminUrl, `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`); } catch { /* best effort */ }
    }
    try { rmSync(this.root, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

// ---- CLI ----------------------------------------------------------------------

/**
 * Runs `vtp-recorder ...args` to completion. Resolves {code, signal, stdout, stderr, timedOut}.
 * Pass env (full environment) or ctx (+ extraEnv).
 */
export function runCli(args, { ctx, env, extraEnv = {}, input, timeoutMs = 20000 } = {}) {
  const fullEnv = env || (ctx ? ctx.env(extraEnv) : { ...baseEnv(), ...extraEnv });
  return new Promise((resolve, reject) => {
    const cwd = ctx ? ctx.root : os.tmpdir();
    const p = trackProc(spawn(BIN, args, { env: fullEnv, cwd, stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    p.stdin.on('error', () => {});
    p.on('error', reject);
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

/**
 * Starts `vtp-recorder ...args` and leaves it running (e.g. `worker`); it is
 * registered for cleanup. Returns {proc, stdout(), stderr(), stop(signal,
 * timeoutMs) → {code, signal, escalated}}.
 */
export function startProcess(args, { ctx, extraEnv = {} } = {}) {
  const env = ctx ? ctx.env(extraEnv) : { ...baseEnv(), ...extraEnv };
  const p = trackProc(spawn(BIN, args, { env, cwd: ctx ? ctx.root : os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  p.on('error', () => {});
  return {
    proc: p,
    stdout: () => out,
    stderr: () => err,
    stop: (signal = 'SIGTERM', timeoutMs = 10000) => terminate(p, signal, timeoutMs),
  };
}

const UUID_IN_TEXT = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** `user add`; returns the new user's id. */
export async function createUserIn(ctx, { email, name, role, password }, extraEnv = {}) {
  const r = await runCli(['user', 'add', '--email', email, '--name', name, '--role', role, '--password-stdin'],
    { ctx, extraEnv, input: `${password}\n` });
  if (r.code !== 0) throw new Error(`user add ${email} exited ${r.code}: ${r.stderr}`);
  const m = r.stdout.match(UUID_IN_TEXT);
  if (!m) throw new Error(`user add printed no id: ${JSON.stringify(r.stdout)}`);
  return m[0].toLowerCase();
}

/** `token --email E [--ttl S]`; returns the JWT. */
export async function tokenIn(ctx, email, ttl, extraEnv = {}) {
  const args = ['token', '--email', email];
  if (ttl !== undefined) args.push('--ttl', String(ttl));
  const r = await runCli(args, { ctx, extraEnv });
  if (r.code !== 0) throw new Error(`token ${email} exited ${r.code}: ${r.stderr}`);
  const m = r.stdout.match(/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/);
  if (!m) throw new Error(`token printed no JWT: ${JSON.stringify(r.stdout)}`);
  return m[0];
}

// ---- ports ------------------------------------------------------------------

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- server -------------------------------------------------------------------

export class Server {
  constructor(ctx, extraEnv) {
    this.ctx = ctx;
    this.extraEnv = extraEnv;
    this.dataDir = ctx.dataDir;
    this.root = ctx.root;
    this.proc = null;
    this._stdout = '';
    this._stderr = '';
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  stdout() { return this._stdout; }
  stderr() { return this._stderr; }
  alive() { return this.proc !== null && !exited(this.proc); }

  async _spawn() {
    // The port is free when picked but another process could take it before the
    // server binds: retry with a new port when the server says so.
    for (let attempt = 1; ; attempt++) {
      try {
        await this._spawnOnce();
        return;
      } catch (e) {
        const busy = this.proc && exited(this.proc) && /in use|EADDRINUSE|bind/i.test(this._stderr);
        if (!busy || attempt >= 3) throw e;
      }
    }
  }

  async _spawnOnce() {
    this.port = await freePort();
    // A private, random RTP range so that parallel runs never fight over UDP ports.
    const rtpMin = 20000 + 100 * Math.floor(Math.random() * 300);
    const env = this.ctx.env({
      VTP_LISTEN: `127.0.0.1:${this.port}`,
      VTP_RTP_PORT_MIN: rtpMin,
      VTP_RTP_PORT_MAX: rtpMin + 99,
      ...this.extraEnv,
    });
    this._stdout = '';
    this._stderr = '';
    const p = trackProc(spawn(BIN, ['serve'], { env, cwd: this.root, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.proc = p;
    p.stdout.setEncoding('utf8').on('data', (d) => { this._stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { this._stderr += d; });
    const spawnErr = new Promise((_, rej) => p.once('error', rej));
    spawnErr.catch(() => {});
    await Promise.race([this._waitHealthy(20000), spawnErr]);
  }

  async _waitHealthy(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (exited(this.proc)) {
        await sleep(50); // let the pipes drain
        throw new Error(`server exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode}) before healthy.\n` +
          `stderr:\n${this._stderr}\nstdout:\n${this._stdout}`);
      }
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
        last = `status ${res.status}`;
      } catch (e) {
        last = String(e.cause?.code || e.message);
      }
      await sleep(50);
    }
    throw new Error(`server not healthy within ${timeoutMs} ms (${last}).\nstderr:\n${this._stderr}\nstdout:\n${this._stdout}`);
  }

  /** SIGTERM (graceful); resolves {code, signal, escalated}. */
  async stop(timeoutMs = 10000) {
    if (!this.proc) return null;
    return terminate(this.proc, 'SIGTERM', timeoutMs);
  }

  async kill9() {
    if (!this.proc) return null;
    return terminate(this.proc, 'SIGKILL', 5000);
  }

  /** Stops (if running) and starts again on the same data dir and database (new port). */
  async restart(extraEnv) {
    if (this.alive()) await this.stop();
    if (extraEnv) this.extraEnv = { ...this.extraEnv, ...extraEnv };
    await this._spawn();
    return this;
  }

  /** Waits until stdout matches re (the server may print after it is healthy). */
  async waitStdout(re, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this._stdout.match(re);
      if (m || Date.now() >= deadline) return m;
      await sleep(25);
    }
  }

  // -- CLI against this server's data dir / database --
  // (the server's extra environment, e.g. VTP_JWT_SECRET, applies to them too)
  cli(args, opts = {}) { return runCli(args, { ctx: this.ctx, ...opts, extraEnv: { ...this.extraEnv, ...(opts.extraEnv || {}) } }); }
  createUser(u) { return createUserIn(this.ctx, u, this.extraEnv); }
  tokenFor(email, ttl) { return tokenIn(this.ctx, email, ttl, this.extraEnv); }

  // -- HTTP --
  /** JSON API call: resolves {status, headers, json, text}. body: object → JSON; string → as is
   *  (as application/json unless headers say otherwise); Buffer → as is, with no Content-Type. */
  async api(method, p, { token, body, headers = {}, timeoutMs = 20000 } = {}) {
    const h = {};
    for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v;
    if (token) h.authorization = `Bearer ${token}`;
    let b;
    if (body !== undefined) {
      b = (typeof body === 'string' || body instanceof Uint8Array) ? body : JSON.stringify(body);
      if (!('content-type' in h) && !(body instanceof Uint8Array)) h['content-type'] = 'application/json';
    }
    const res = await fetch(this.url + p, { method, headers: h, body: b, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, json, text };
  }

  async login(email, password, headers = {}) {
    return this.api('POST', '/api/v1/auth/login', { body: { email, password }, headers });
  }

  async healthy() {
    try {
      const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Raw bytes over TCP; see rawRequest. */
  raw(data, opts) { return rawRequest(this.port, data, opts); }
}

/**
 * Starts `vtp-recorder serve` in a new context (or the given one).
 * opts.env: extra environment (undefined/null values unset a variable).
 */
export async function startServer({ env = {}, ctx, sqliteUrl = false } = {}) {
  const c = ctx || new Context({ sqliteUrl });
  const srv = new Server(c, env);
  await srv._spawn();
  return srv;
}

// ---- raw TCP ------------------------------------------------------------------

function parseResponse(buf) {
  const sep = buf.indexOf('\r\n\r\n');
  if (sep < 0) return null;
  const head = buf.subarray(0, sep).toString('latin1');
  const lines = head.split('\r\n');
  const m = lines[0].match(/^HTTP\/\d\.\d (\d{3})/);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = buf.subarray(sep + 4);
  let complete = false;
  if (headers['content-length'] !== undefined) {
    complete = body.length >= Number(headers['content-length']);
  } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    complete = body.includes('0\r\n\r\n');
  }
  return { status: m ? Number(m[1]) : null, statusLine: lines[0], headers, body, complete };
}

/**
 * Sends raw bytes (string or Buffer, or an array of them sent one after another)
 * and collects the response. Stops writing as soon as a response starts arriving
 * (servers may answer 413 early and close). Resolves
 * {status, statusLine, headers, body(Buffer), text, rawLength, closed, error}.
 */
export function rawRequest(port, data, { timeoutMs = 5000, chunkSize = 65536, pauseMs = 100 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let error = null;
    let closed = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const r = parseResponse(buf) || { status: null, statusLine: '', headers: {}, body: Buffer.alloc(0) };
      resolve({ ...r, text: r.body.toString('utf8'), rawLength: buf.length, closed, error });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResponse(buf);
      if (r && r.complete) finish();
    });
    sock.on('error', (e) => { error = e.code || e.message; });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('connect', async () => {
      const parts = (Array.isArray(data) ? data : [data]).map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x));
      try {
        for (const [k, part] of parts.entries()) {
          // Give the server a moment after the head to answer early (e.g. 413 on
          // Content-Length) before the body floods its receive buffer: a server
          // that then closes resets the connection and the answer would be lost.
          if (k === 1) await new Promise((r) => setTimeout(r, pauseMs));
          for (let off = 0; off < part.length; off += chunkSize) {
            if (buf.length > 0 || sock.destroyed) return;
            const ok = sock.write(part.subarray(off, off + chunkSize));
            if (!ok) {
              await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
            }
          }
        }
      } catch (e) {
        error = e.code || e.message;
      }
    });
  });
}
