// An S3 endpoint for tests: s3rver (installed into tests/node_modules by
// scripts/install-deps.sh --test) on 127.0.0.1 and a free port, storing in a
// temp folder, with one bucket made at start.
//
// As a module (node tests):
//   const s3 = await startS3rver();   // { url, endpoint, bucket, accessKey, secretKey, dir, stop }
//   env: VTP_STORAGE_URL = s3.url, VTP_S3_ACCESS_KEY = s3.accessKey, VTP_S3_SECRET_KEY = s3.secretKey
//   await s3.stop();
//
// As a script (the ctest fixture of the C storage tests, see CMakeLists.txt):
//   node s3.mjs start DIR   starts a detached server, writes DIR/url (the VTP_STORAGE_URL),
//                           DIR/endpoint and DIR/pid, and exits once it answers
//   node s3.mjs stop DIR    stops that server (by its recorded pid) and removes DIR
//
// s3rver checks that a request names its built-in account (access key
// "S3RVER") but does not verify SigV4 signatures; the signing itself is
// proved by tests/unit/storage/test_sigv4.c against AWS's examples and curl.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

// s3rver 3.7 makes ListObjectsV2 continuation tokens with single DES, which
// OpenSSL 3 keeps in its legacy provider only ("digital envelope routines::
// unsupported", HTTP 500 on the second page). Triple DES with the key three
// times over is single DES, and is in the default provider.
function shimSingleDes() {
  if (crypto.createCipheriv.vtpDesShim) return;
  const wrap = (fn) => {
    const shim = (alg, key, iv, opts) => {
      if (typeof alg === 'string' && alg.toLowerCase() === 'des' && key?.length === 8) {
        return fn('des-ede3-cbc', Buffer.concat([key, key, key]), iv, opts);
      }
      return fn(alg, key, iv, opts);
    };
    shim.vtpDesShim = true;
    return shim;
  };
  crypto.createCipheriv = wrap(crypto.createCipheriv.bind(crypto));
  crypto.createDecipheriv = wrap(crypto.createDecipheriv.bind(crypto));
}

export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET_KEY = 'S3RVER';
const MAX_LIFETIME_MS = 2 * 60 * 60 * 1000; // a fixture server whose stop never came

/**
 * Starts s3rver in this process. `dir` (optional) holds its data; without it a
 * temp folder is made and removed by stop().
 */
export async function startS3rver({ bucket = 'vtp-test', dir, region = 'us-east-1' } = {}) {
  shimSingleDes();
  const S3rver = require('s3rver');
  const own = !dir;
  const data = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-s3rver-'));
  fs.mkdirSync(data, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: data,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url: `s3://${bucket}?endpoint=${endpoint}&region=${region}`,
    endpoint,
    bucket,
    region,
    accessKey: S3RVER_ACCESS_KEY,
    secretKey: S3RVER_SECRET_KEY,
    dir: data,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      if (own) fs.rmSync(data, { recursive: true, force: true });
    },
  };
}

// ---- fixture mode ----------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid recorded in dir, if that process still is our server. */
function serverPid(dir) {
  let pid;
  try {
    pid = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return null;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes('s3.mjs') || !cmd.includes('serve')) return null; // a reused pid
  } catch {
    return null;
  }
  return pid;
}

async function stop(dir) {
  const pid = serverPid(dir);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

async function start(dir) {
  await stop(dir); // a leftover of an interrupted run
  fs.mkdirSync(dir, { recursive: true });
  const log = fs.openSync(path.join(dir, 'log'), 'a');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', dir], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  child.unref();
  const urlFile = path.join(dir, 'url');
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(urlFile)) {
      console.log(`s3rver at ${fs.readFileSync(path.join(dir, 'endpoint'), 'utf8')} (pid ${child.pid})`);
      process.exit(0);
    }
    if (exited !== null) break;
    await sleep(100);
  }
  console.error(`s3rver did not start:\n${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`);
  if (alive(child.pid)) process.kill(child.pid, 'SIGKILL');
  process.exit(1);
}

async function serve(dir) {
  const s3 = await startS3rver({ dir: path.join(dir, 'data') });
  const done = async () => {
    await s3.stop();
    process.exit(0);
  };
  process.on('SIGTERM', done);
  process.on('SIGINT', done);
  setTimeout(done, MAX_LIFETIME_MS).unref();
  setInterval(() => {}, 1 << 30); // stay up until told
  fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
  fs.writeFileSync(path.join(dir, 'endpoint'), s3.endpoint);
  fs.writeFileSync(path.join(dir, 'url.tmp'), s3.url);
  fs.renameSync(path.join(dir, 'url.tmp'), path.join(dir, 'url'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [cmd, dir] = process.argv.slice(2);
  const run = { start, stop, serve }[cmd];
  if (!run || !dir) {
    console.error('usage: node s3.mjs start|stop DIR');
    process.exit(2);
  }
  run(path.resolve(dir)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
