// The deployment example of docs/DEPLOY.md, run (issue 18, point 6): Debian's
// nginx with deploy/nginx.conf (only the lines marked "site:" changed: the
// two upstream nodes, the ports, a self-signed certificate made here with
// openssl) in front of two `serve` nodes on one PostgreSQL database. Over
// https through nginx: plain HTTP is redirected, login, start, a Socket.IO
// client (WebSocket transport, through the Upgrade) gets the room's event
// whichever node it reached, Socket.IO polling is refused (why the config
// needs no sticky routing), /metrics stays inside, and a WHIP POST and its
// DELETE land on different nodes (nginx's round robin) and the session ends
// on the node that holds it; with S3 storage (s3rver) and a `worker` process
// of its own, a class whose tracks came in through both nodes is composed by
// the worker from the bucket and downloaded through nginx. Also the systemd units of deploy/ pass
// `systemd-analyze verify` and carry the hardening DEPLOY.md describes.
// Two nodes share one database only on PostgreSQL: the nginx part is
// skipped on SQLite.

// sanitizer pass: skipped: nginx and the units are configuration; the forwarding it crosses runs under the sanitizers in whipnodes, S3 and the worker in delivery and jobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, startProcess, cleanupAll, rand, sleep, Context, BACKEND, BIN, freePort } from './lib/server.mjs';
import { MediaRelay, lavfiSenderArgs, run } from './lib/media.mjs';
import { startS3rver } from './lib/s3.mjs';
import { show, makeUsers, waitFor, PASSWORD } from './lib/util.mjs';
import { metric } from './lib/whip.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const DEPLOY = path.join(ROOT, 'deploy');
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const NGINX = fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
const PG = BACKEND === 'postgres';
const skipNginx = !PG ? 'two nodes on one database: PostgreSQL only' : !(have(NGINX) && have('openssl')) && 'nginx or openssl missing (scripts/install-deps.sh)';

let a;
let b;
let users;
let dir;
let nginx;
let httpsPort;
let httpPort;
let ca;
let s3;
let worker;
const sockets = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-deploy-'));
  if (skipNginx) return;
  // the whole example: S3 storage (s3rver), serve nodes that capture and
  // answer, and a worker process of its own that composes
  s3 = await startS3rver();
  const env = {
    VTP_JWT_SECRET: `deploy-${rand(16)}`, VTP_WORKERS: 0, VTP_WHIP_TIMEOUT: 600,
    VTP_STORAGE_URL: s3.url, VTP_S3_ACCESS_KEY: s3.accessKey, VTP_S3_SECRET_KEY: s3.secretKey,
  };
  a = await startServer({ env });
  const ctxB = new Context();
  ctxB.dbUrl = a.ctx.dbUrl;
  b = await startServer({ ctx: ctxB, env });
  const ctxW = new Context();
  ctxW.dbUrl = a.ctx.dbUrl;
  worker = startProcess(['worker'], { ctx: ctxW, extraEnv: { ...env, VTP_WORKERS: 1 } });
  users = await makeUsers(a, { teacher: 'instructor', student: 'student' });

  // a certificate for 127.0.0.1
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));

  // deploy/nginx.conf with the "site:" lines made local
  httpsPort = await freePort();
  httpPort = await freePort();
  let site = fs.readFileSync(path.join(DEPLOY, 'nginx.conf'), 'utf8');
  const replace = (re, to, what) => {
    const n = (site.match(re) || []).length;
    assert.ok(n >= 1, `deploy/nginx.conf has no ${what} line to adapt`);
    site = site.replace(re, to);
    return n;
  };
  const nodes = [a.port, b.port];
  let k = 0;
  assert.equal(replace(/^(\s*)server 10\.0\.0\.\d+:8080 /gm, (m, sp) => `${sp}server 127.0.0.1:${nodes[k++]} `, 'upstream server'), 2);
  replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${httpPort};`, 'listen 80');
  replace(/^(\s*)listen 443 ssl http2;/m, `$1listen 127.0.0.1:${httpsPort} ssl http2;`, 'listen 443');
  replace(/\/etc\/vtp-recorder\/tls\/fullchain\.pem/, path.join(dir, 'cert.pem'), 'ssl_certificate');
  replace(/\/etc\/vtp-recorder\/tls\/privkey\.pem/, path.join(dir, 'key.pem'), 'ssl_certificate_key');
  fs.writeFileSync(path.join(dir, 'vtp.conf'), site);
  fs.mkdirSync(path.join(dir, 'tmp'));
  // the main file a Debian nginx has, with this test's paths
  const user = process.getuid && process.getuid() === 0 ? 'user root;\n' : '';
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/vtp.conf;
}
`);
  const t = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(t.status, 0, `nginx -t: ${t.stderr}`);
  nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitFor(async () => {
    try {
      return (await req('GET', '/healthz')).status === 200;
    } catch {
      return false;
    }
  }, 'nginx answering /healthz over https');
});

after(async () => {
  for (const s of sockets) s.disconnect();
  if (nginx && nginx.exitCode === null) {
    const gone = new Promise((r) => nginx.once('exit', r));
    nginx.kill('SIGQUIT');
    await Promise.race([gone, sleep(5000)]);
    if (nginx.exitCode === null) nginx.kill('SIGKILL');
  }
  if (worker) await worker.stop('SIGKILL');
  await cleanupAll();
  if (s3) await s3.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One request through nginx over https, trusting only the test's certificate. */
function req(method, p, { token, body, headers = {}, port, plain = false } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let data;
  if (body !== undefined) {
    data = typeof body === 'string' ? body : JSON.stringify(body);
    if (!h['content-type']) h['content-type'] = 'application/json';
  }
  const mod = plain ? http : https;
  return new Promise((resolve, reject) => {
    const r = mod.request({ host: '127.0.0.1', port: port || httpsPort, path: p, method, headers: h, ca, timeout: 20000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error('timed out')));
    if (data !== undefined) r.write(data);
    r.end();
  });
}

async function nodeMetrics(node) {
  return (await fetch(`${node.url}/metrics`)).text();
}

const OFFER = `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 ${Array(32).fill('AB').join(':')}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n`;

test('through nginx over https (deploy/nginx.conf): redirect, login, start, Socket.IO events over WebSocket, WHIP POST and DELETE on different nodes', { skip: skipNginx }, async () => {
  // plain HTTP: to https
  const plain = await req('GET', '/web/index.html', { port: httpPort, plain: true });
  assert.equal(plain.status, 301, show(plain));
  assert.match(plain.headers.location, /^https:\/\//);

  // login through nginx
  const login = await req('POST', '/api/v1/auth/login', { body: { email: users.teacher.email, password: PASSWORD } });
  assert.equal(login.status, 200, show(login));
  const token = login.json.token;
  assert.ok(token, show(login));
  assert.equal((await req('GET', '/api/v1/users/me', { token })).json.email, users.teacher.email);

  // Socket.IO over the WebSocket upgrade; long polling is refused (so no
  // sticky routing is needed)
  const poll = await req('GET', '/socket.io/?EIO=4&transport=polling');
  assert.equal(poll.status, 400, show(poll));
  const roomId = `deploy-${rand(4)}`;
  const s = io(`https://127.0.0.1:${httpsPort}`, { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, timeout: 10000, ca, auth: { token: users.student.token } });
  sockets.push(s);
  const events = [];
  s.onAny((event, data) => events.push({ event, data }));
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', (e) => reject(new Error(`Socket.IO through nginx: ${e.message}`)));
  });
  const joined = await s.timeout(10000).emitWithAck('join-room', { roomId });
  assert.ok(joined && !joined.error, JSON.stringify(joined));

  // start through nginx: the event reaches the socket from whichever node
  const start = await req('POST', '/api/v1/recordings/start', { token, body: { roomId, title: 'behind nginx' } });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  await waitFor(() => events.some((e) => e.event === 'recording-started' && e.data?.recordingId === id),
    `recording-started through nginx (got ${JSON.stringify(events).slice(0, 500)})`);

  // WHIP: the POST lands on one node, the DELETE (the next request: nginx
  // takes the nodes in turn) on the other, which forwards it
  const before = await Promise.all([a, b].map(nodeMetrics));
  const deletes = (text) => metric(text, 'vtp_http_requests_total', 'route="whip_session",method="DELETE",status="200"');
  const post = await req('POST', `/whip/rooms/${roomId}`, { token: users.student.token, body: OFFER, headers: { 'content-type': 'application/sdp' } });
  assert.equal(post.status, 201, show(post));
  assert.match(post.text, /^v=0\r\n/);
  assert.match(post.headers.location, /^\/whip\/rooms\/[^/]+\/sessions\/[0-9a-f-]{36}$/);
  const del = await req('DELETE', post.headers.location, { token: users.student.token });
  assert.equal(del.status, 200, show(del));
  assert.equal(del.json.sessionId, post.headers.location.split('/').pop());
  const afterM = await Promise.all([a, b].map(nodeMetrics));
  const created = afterM.map((t, i) => metric(t, 'vtp_whip_sessions_created_total') - metric(before[i], 'vtp_whip_sessions_created_total'));
  const owner = created.indexOf(1);
  assert.ok(owner >= 0 && created[1 - owner] === 0, `the POST landed on one node: ${created}`);
  const other = 1 - owner;
  assert.equal(deletes(afterM[other]) - deletes(before[other]), 1, 'the DELETE landed on the other node');
  assert.equal(deletes(afterM[owner]) - deletes(before[owner]), 1, 'and was forwarded to the owner');
  assert.equal(metric(afterM[owner], 'vtp_whip_sessions'), 0, 'the session ended on its node');
  assert.equal(metric(afterM[owner], 'vtp_whip_sessions_ended_total') - metric(before[owner], 'vtp_whip_sessions_ended_total'), 1);

  // /metrics is for the inside: scraped from each node, not through nginx
  assert.equal((await req('GET', '/metrics')).status, 404);
  const stop = await req('POST', `/api/v1/recordings/${id}/stop`, { token });
  assert.equal(stop.status, 200, show(stop));
});

test('through nginx: a class whose tracks were registered on both nodes is composed by the worker from the bucket and downloaded', { skip: skipNginx }, async () => {
  const login = await req('POST', '/api/v1/auth/login', { body: { email: users.teacher.email, password: PASSWORD } });
  assert.equal(login.status, 200, show(login));
  const token = login.json.token;
  const roomId = `deploy-class-${rand(4)}`;
  const start = await req('POST', '/api/v1/recordings/start', { token, body: { roomId, title: 'the whole example' } });
  assert.equal(start.status, 201, show(start));
  const id = start.json.recordingId;
  // two peers, each registered through nginx: its round robin puts them on
  // both nodes (told apart by the ports' nodes' metrics below)
  const before = await Promise.all([a, b].map(nodeMetrics));
  const peers = [];
  for (const [peerId, color, freq] of [['ana', 'red', 440], ['ben', 'blue', 660]]) {
    const peer = { peerId, relays: {} };
    for (const kind of ['video', 'audio']) {
      const r = await req('POST', `/api/v1/recordings/${id}/tracks`, {
        token, body: { peerId, fullName: `Peer ${peerId}`, kind, codec: kind === 'video' ? 'vp8' : 'opus', payloadType: kind === 'video' ? 96 : 111 },
      });
      assert.equal(r.status, 201, show(r));
      peer.relays[kind] = await new MediaRelay(r.json.port).start();
    }
    peer.args = lavfiSenderArgs({
      seconds: 6,
      video: { source: `color=c=${color}:s=320x240:r=15`, port: peer.relays.video.port, gop: 15 },
      audio: { source: `sine=f=${freq}:r=48000`, port: peer.relays.audio.port },
    });
    peers.push(peer);
  }
  const afterM = await Promise.all([a, b].map(nodeMetrics));
  const tracks = afterM.map((t, i) => metric(t, 'vtp_ingest_tracks') - metric(before[i], 'vtp_ingest_tracks'));
  assert.ok(tracks[0] > 0 && tracks[1] > 0, `tracks on both nodes: ${tracks}`);
  try {
    const sent = await Promise.all(peers.map((p) => run('ffmpeg', p.args, { timeoutMs: 60000 })));
    for (const r of sent) assert.equal(r.code, 0, r.stderr);
  } finally {
    for (const p of peers) for (const r of Object.values(p.relays)) r.close();
  }
  const stop = await req('POST', `/api/v1/recordings/${id}/stop`, { token });
  assert.equal(stop.status, 200, show(stop));
  const done = await waitFor(async () => {
    const r = await req('GET', `/api/v1/recordings/${id}`, { token });
    if (r.json?.status === 'failed') assert.fail(show(r));
    return r.json?.status === 'done' ? r.json : null;
  }, 'the recording done by the worker', 180000);
  assert.equal(done.metadata.compose.peers, 2, JSON.stringify(done.metadata.compose));
  assert.equal(done.metadata.compose.tracks, 4, JSON.stringify(done.metadata.compose));
  assert.deepEqual((done.warnings || []).map((w) => w.code), [], JSON.stringify(done.warnings));
  assert.match(worker.stderr(), new RegExp(`recording ${id} done`), 'composed by the worker process');
  // the download through nginx: a redirect to the bucket, whose bytes match
  const dl = await req('GET', done.downloadUrl.replace(/^https?:\/\/[^/]+/, ''));
  assert.equal(dl.status, 302, show(dl));
  const file = await fetch(dl.headers.location);
  assert.equal(file.status, 200);
  assert.equal(Buffer.from(await file.arrayBuffer()).length, done.fileSize);
});

test('deploy/ systemd units: systemd-analyze verify is clean, and they drain, restart and are hardened as DEPLOY.md says', { skip: !have('systemd-analyze') && 'systemd-analyze missing' }, () => {
  for (const name of ['vtp-recorder-serve.service', 'vtp-recorder-worker.service']) {
    const text = fs.readFileSync(path.join(DEPLOY, name), 'utf8');
    const keys = {};
    for (const line of text.split('\n')) {
      const m = line.match(/^([A-Za-z]+)=(.*)$/);
      if (m) keys[m[1]] = m[2];
    }
    assert.equal(keys.User, 'vtp-recorder', name);
    assert.equal(keys.StateDirectory, 'vtp-recorder', name);
    assert.equal(keys.EnvironmentFile, '/etc/vtp-recorder/env', name);
    assert.equal(keys.NoNewPrivileges, 'yes', name);
    assert.equal(keys.ProtectSystem, 'strict', name);
    assert.equal(keys.ReadWritePaths, '/var/lib/vtp-recorder', name);
    assert.equal(keys.Restart, 'on-failure', name);
    assert.equal(keys.KillMode, 'mixed', `${name}: SIGTERM to the server only (it stops its composers)`);
    assert.ok(Number(keys.LimitNOFILE) >= 65536, name);
    // the default drain (VTP_DRAIN_SECONDS=60) fits before systemd's SIGKILL
    assert.ok(parseInt(keys.TimeoutStopSec, 10) > 60, `${name}: TimeoutStopSec ${keys.TimeoutStopSec}`);
    assert.match(keys.ExecStart, name.includes('worker') ? / worker$/ : / serve$/);
    // verify needs an ExecStart that exists: the binary under test
    const unit = path.join(dir, name);
    fs.writeFileSync(unit, text.replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`));
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const mine = (r.stderr + r.stdout).split('\n').filter((l) => l.includes(name));
    assert.deepEqual(mine, [], `${name}: systemd-analyze verify complains`);
  }
});
