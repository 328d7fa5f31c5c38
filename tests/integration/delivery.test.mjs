// Delivery (issue 5) through the real binary on local files: the signed
// media URLs of a done Recording, the download (ranges, validators, HEAD,
// Content-Disposition, one access-log entry per download), HLS (a VOD
// playlist of ~4 s fMP4 segments that ffprobe reads over HTTP), the
// thumbnail (640x360, not the black opening of the fast-path recording),
// permissions (a student without a share gets 404 on every media URL; a
// revoked share stops a link at once), and retention: soft delete, restore,
// and the purge after VTP_RETENTION_DAYS under a moved clock (rows and files
// gone, the access log kept). The media are real captures made once by the
// server's own ingest from ffmpeg RTP senders: peer A sends 2 s of black,
// then a test pattern, and a tone; peer B a colour pattern.
// backend-independent: the media path (files, ranges, HLS); access-log rows are covered on both backends by sharing and recordings; runs on SQLite only (CMakeLists.txt).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, cleanupAll, sleep, rand, BACKEND } from './lib/server.mjs';
import { show, makeUsers } from './lib/util.mjs';
import { run, Relay, readCapture } from './lib/media.mjs';
import { startS3rver } from './lib/s3.mjs';

const MEDIA_SECONDS = 6;
const BLACK_SECONDS = 2;
let mediaDir;        // the captures
let peerOf = {};     // capture file -> peer id

// ---- helpers ---------------------------------------------------------------------------

async function getRec(srv, token, id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

async function waitStatus(srv, token, id, want, timeoutMs = 240000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getRec(srv, token, id);
    if (want.includes(r.status)) return r;
    if (Date.now() > deadline) assert.fail(`recording ${id} still ${r.status} (${r.progress} %, ${r.error})`);
    await sleep(150);
  }
}

/** A recording whose tracks are copies of the captures (of `peers`), stopped and composed.
 *  `root`: the local folder captures go to ("recordings" for file://, "spool" for s3://). */
async function composed(srv, token, { peers = ['a', 'b'], title = 'Delivery', root = 'recordings', roomId = `dl-${rand(5)}`, ...extra } = {}) {
  const res = await srv.api('POST', '/api/v1/recordings/start', { token, body: { roomId, title, ...extra } });
  assert.equal(res.status, 201, show(res));
  const id = res.json.recordingId;
  // the room's folder is its id encoded ("Class 3d" is "Class%203d"): the one holding this recording
  const base = path.join(srv.dataDir, root);
  const roomDir = fs.readdirSync(base).find((d) => fs.existsSync(path.join(base, d, id))) ?? roomId;
  const tracks = path.join(base, roomDir, id, 'tracks');
  fs.mkdirSync(tracks, { recursive: true, mode: 0o700 });
  for (const f of fs.readdirSync(mediaDir)) {
    if (peers.includes(peerOf[f])) fs.copyFileSync(path.join(mediaDir, f), path.join(tracks, f));
  }
  const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token });
  assert.equal(stop.status, 200, show(stop));
  const r = await waitStatus(srv, token, id, ['done', 'failed']);
  assert.equal(r.status, 'done', JSON.stringify(r));
  return { id, roomId, rec: r, dir: path.join(base, roomDir, id) };
}

/** GET (or another method) of a media URL, raw: {status, headers, body: Buffer}. */
async function fetchRaw(srv, url, { method = 'GET', headers = {}, token, redirect = 'manual' } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(url.startsWith('http') ? url : srv.url + url, { method, headers: h, redirect });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body };
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function accessTypes(srv, token, id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}/access-log?limit=100`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json.entries.map((e) => e.accessType).reverse();
}

/** ffprobe without blocking this process (an in-process s3rver must keep answering). */
async function ffprobeAsync(url) {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type,width,height:format=duration',
    '-of', 'json', url]);
  assert.equal(r.code, 0, `ffprobe ${url}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function ffprobe(url) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type,width,height:format=duration',
    '-of', 'json', url], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `ffprobe ${url}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Mean luma (0..255) of a JPEG, the share of its pixels brighter than black (luma > 40), and its size. */
function jpegLuma(buf) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-thumb-'));
  try {
    const f = path.join(dir, 't.jpg');
    fs.writeFileSync(f, buf);
    const probe = ffprobe(f);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-i', f, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { maxBuffer: 1 << 24 });
    assert.equal(r.status, 0, String(r.stderr));
    let sum = 0;
    let lit = 0;
    for (const v of r.stdout) {
      sum += v;
      if (v > 40) lit++;
    }
    return { mean: sum / r.stdout.length, lit: lit / r.stdout.length, width: probe.streams[0].width, height: probe.streams[0].height };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A media token signed with the server's own key (for expiry and scope probes). */
function forgeToken(srv, scope, recId, userId, exp) {
  // the key is the file's text without its line end (as the server reads it)
  const key = Buffer.from(fs.readFileSync(path.join(srv.dataDir, 'jwt.secret'), 'latin1').replace(/[\r\n]+$/, ''), 'latin1');
  const mk = crypto.createHmac('sha256', key).update('vtp-recorder media url key v1').digest();
  const user = userId.replace(/-/g, '');
  const mac = crypto.createHmac('sha256', mk).update(`media\n${scope}\n${recId}\n${user}\n${exp}`).digest('hex').slice(0, 32);
  return `${scope}.${user}.${exp}.${mac}`;
}

function dbRows(srv, sql) {
  if (BACKEND === 'postgres') {
    const r = spawnSync('psql', [srv.ctx.dbUrl, '-qAt', '-c', sql], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean);
  }
  const py = 'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print("|".join(str(x) for x in r))';
  const r = spawnSync('python3', ['-c', py, path.join(srv.dataDir, 'vtp.db'), sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean);
}

// ---- the captures -----------------------------------------------------------------------

before(async () => {
  mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-dl-media-'));
  const srv = await startServer({ env: { VTP_WORKERS: 0 } });
  const { o } = await makeUsers(srv, { o: 'instructor' });
  const res = await srv.api('POST', '/api/v1/recordings/start', { token: o.token, body: { roomId: `cap-${rand(4)}`, title: 'captures' } });
  assert.equal(res.status, 201, show(res));
  const id = res.json.recordingId;
  const add = async (body) => {
    const r = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, { token: o.token, body });
    assert.equal(r.status, 201, show(r));
    return new Relay(r.json.port).start();
  };
  const av = await add({ peerId: 'a', fullName: 'Ada', kind: 'video', codec: 'vp8', payloadType: 96 });
  const aa = await add({ peerId: 'a', fullName: 'Ada', kind: 'audio', codec: 'opus', payloadType: 111 });
  const bv = await add({ peerId: 'b', fullName: 'Bob', kind: 'video', codec: 'vp8', payloadType: 96 });
  const vp8 = ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k', '-g', '30'];
  const graphA = `color=c=black:s=320x240:r=30:d=${BLACK_SECONDS}[k];` +
    `testsrc2=s=320x240:r=30:d=${MEDIA_SECONDS - BLACK_SECONDS}[t];[k][t]concat=n=2:v=1:a=0[out0]`;
  const argsA = ['-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', graphA,
    '-re', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${MEDIA_SECONDS}`,
    '-map', '0:v', ...vp8, '-payload_type', '96', '-ssrc', '11111111', '-f', 'rtp', `rtp://127.0.0.1:${av.port}?pkt_size=1200&rtcpport=${av.port}`,
    '-map', '1:a', '-c:a', 'libopus', '-b:a', '48k', '-payload_type', '111', '-ssrc', '22222222', '-f', 'rtp', `rtp://127.0.0.1:${aa.port}?rtcpport=${aa.port}`];
  const argsB = ['-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', `smptebars=s=320x240:r=30:d=${MEDIA_SECONDS}`,
    '-map', '0:v', ...vp8, '-payload_type', '96', '-ssrc', '33333333', '-f', 'rtp', `rtp://127.0.0.1:${bv.port}?pkt_size=1200&rtcpport=${bv.port}`];
  try {
    const [x, y] = await Promise.all([run('ffmpeg', argsA), run('ffmpeg', argsB)]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    await sleep(400);
  } finally {
    for (const r of [av, aa, bv]) r.close();
  }
  const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: o.token });
  assert.equal(stop.status, 200, show(stop));
  const room = res.json.recording.roomId;
  const tracks = path.join(srv.dataDir, 'recordings', room, id, 'tracks');
  for (const f of fs.readdirSync(tracks).filter((n) => n.endsWith('.vtpcap'))) {
    fs.copyFileSync(path.join(tracks, f), path.join(mediaDir, f));
    peerOf[f] = readCapture(path.join(tracks, f)).meta.peerId;
  }
  assert.equal(Object.keys(peerOf).length, 3, JSON.stringify(peerOf));
  await srv.stop();
});

after(async () => {
  await cleanupAll();
  if (mediaDir) fs.rmSync(mediaDir, { recursive: true, force: true });
});

// ---- local files -----------------------------------------------------------------------------

test('media URLs, download, HLS, thumbnail and permissions on local files', async () => {
  const srv = await startServer();
  const u = await makeUsers(srv, { o: 'instructor', viewer: 'student', loader: 'student', other: 'student', boss: 'admin' });
  const title = 'Ünïcode "lecture" / part\\2; 100% ✓';
  const W = await composed(srv, u.o.token, { title });
  const M = await composed(srv, u.o.token, { format: 'mp4', title: 'mp4 one' });
  // a room whose folder has '%' followed by digits and 'd' ("Class%203d"), which the HLS muxer
  // once took for its segment-number template, so that processing failed
  const F = await composed(srv, u.o.token, { peers: ['a'], title: 'fast', roomId: `Class 3d ${rand(3)}` });

  // -- the Recording JSON --------------------------------------------------------------------
  const urlRe = (id, what) => new RegExp(`^/api/v1/recordings/${id}/${what}\\?token=[vd]\\.[0-9a-f]{32}\\.\\d+\\.[0-9a-f]{32}$`);
  for (const X of [W, M, F]) {
    assert.match(X.rec.downloadUrl, urlRe(X.id, 'download'));
    assert.match(X.rec.hlsUrl, urlRe(X.id, 'hls/index\\.m3u8'));
    assert.match(X.rec.thumbnailUrl, urlRe(X.id, 'thumbnail'));
    for (const k of ['downloadUrl', 'hlsUrl', 'thumbnailUrl']) assert.ok(!X.rec[k].includes(srv.dataDir));
  }
  const exp = Number(W.rec.downloadUrl.split('.')[2]);
  const now = Date.now() / 1000;
  assert.ok(exp >= now + 3600 - 5 && exp <= now + 3600 + 300 + 5, `token expiry ${exp - now} s from now`);
  const list = await srv.api('GET', '/api/v1/recordings?limit=100', { token: u.o.token });
  assert.equal(list.status, 200);
  const inList = list.json.recordings.find((r) => r.id === W.id);
  assert.match(inList.hlsUrl, urlRe(W.id, 'hls/index\\.m3u8'));
  assert.match(inList.downloadUrl, urlRe(W.id, 'download'));
  const live = await srv.api('POST', '/api/v1/recordings/start', { token: u.o.token, body: { roomId: `live-${rand(4)}`, title: 'live' } });
  const liveRec = await getRec(srv, u.o.token, live.json.recordingId);
  assert.deepEqual([liveRec.downloadUrl, liveRec.hlsUrl, liveRec.thumbnailUrl], [null, null, null]);
  const early = await fetchRaw(srv, `/api/v1/recordings/${liveRec.id}/download`, { token: u.o.token });
  assert.equal(early.status, 409);
  assert.equal(JSON.parse(early.body).error.code, 'not_ready');

  // -- download ------------------------------------------------------------------------------
  const file = fs.readFileSync(path.join(W.dir, 'recording.webm'));
  const full = await fetchRaw(srv, W.rec.downloadUrl);
  assert.equal(full.status, 200);
  assert.equal(full.headers.get('content-type'), 'video/webm');
  assert.equal(Number(full.headers.get('content-length')), W.rec.fileSize);
  assert.equal(full.headers.get('accept-ranges'), 'bytes');
  assert.equal(sha256(full.body), W.rec.metadata.sha256);
  assert.equal(full.body.length, file.length);
  const etag = full.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const cd = full.headers.get('content-disposition');
  const m = cd.match(/^attachment; filename="([^"]*)"; filename\*=UTF-8''(\S+)$/);
  assert.ok(m, cd);
  assert.match(m[1], /^[A-Za-z0-9 ._()-]+\.webm$/, `ASCII filename ${m[1]}`);
  assert.equal(decodeURIComponent(m[2]), `${title}.webm`);
  assert.ok(!/[/\\]/.test(m[1]));
  const size = W.rec.fileSize;
  const ranges = [
    ['bytes=0-99', 0, 99], ['bytes=100-', 100, size - 1], ['bytes=-50', size - 50, size - 1],
    [`bytes=${size - 10}-${size + 1000}`, size - 10, size - 1], ['bytes=0-0', 0, 0],
  ];
  for (const [h, a, b] of ranges) {
    const r = await fetchRaw(srv, W.rec.downloadUrl, { headers: { range: h } });
    assert.equal(r.status, 206, h);
    assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${size}`, h);
    assert.ok(r.body.equals(file.subarray(a, b + 1)), `${h}: body`);
  }
  for (const h of [`bytes=${size}-`, `bytes=${size + 5}-${size + 9}`, 'bytes=-0']) {
    const r = await fetchRaw(srv, W.rec.downloadUrl, { headers: { range: h } });
    assert.equal(r.status, 416, h);
    assert.equal(r.headers.get('content-range'), `bytes */${size}`, h);
  }
  for (const h of ['bytes=0-9,20-29', 'items=0-9', 'bytes=x-1', 'bytes=9-3']) {
    const r = await fetchRaw(srv, W.rec.downloadUrl, { headers: { range: h } });
    assert.equal(r.status, 200, `${h}: the whole file`);
    assert.equal(r.body.length, size, h);
  }
  const nm = await fetchRaw(srv, W.rec.downloadUrl, { headers: { 'if-none-match': etag } });
  assert.equal(nm.status, 304);
  assert.equal(nm.body.length, 0);
  const nm2 = await fetchRaw(srv, W.rec.downloadUrl, { headers: { 'if-none-match': '"nope", ' + etag } });
  assert.equal(nm2.status, 304);
  const ir = await fetchRaw(srv, W.rec.downloadUrl, { headers: { range: 'bytes=10-19', 'if-range': etag } });
  assert.equal(ir.status, 206);
  const ir2 = await fetchRaw(srv, W.rec.downloadUrl, { headers: { range: 'bytes=10-19', 'if-range': '"stale"' } });
  assert.equal(ir2.status, 200);
  assert.equal(ir2.body.length, size);
  const head = await fetchRaw(srv, W.rec.downloadUrl, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), size);
  assert.equal(head.body.length, 0);
  const bearer = await fetchRaw(srv, `/api/v1/recordings/${W.id}/download`, { token: u.o.token, headers: { range: 'bytes=0-9' } });
  assert.equal(bearer.status, 206, 'the Authorization header works too');
  // one download in the access log for all of that
  const types = await accessTypes(srv, u.o.token, W.id);
  assert.equal(types.filter((t) => t === 'download').length, 1, JSON.stringify(types));
  const mp4 = await fetchRaw(srv, M.rec.downloadUrl, { headers: { range: 'bytes=0-7' } });
  assert.equal(mp4.status, 206);
  assert.equal(mp4.headers.get('content-type'), 'video/mp4');
  assert.equal(mp4.body.subarray(4, 8).toString('latin1'), 'ftyp');

  // -- tokens ----------------------------------------------------------------------------------
  const tok = W.rec.downloadUrl.split('token=')[1];
  const flip = (t, i) => t.slice(0, i) + (t[i] === 'a' ? 'b' : 'a') + t.slice(i + 1);
  const probes = [
    [`/api/v1/recordings/${W.id}/download?token=${flip(tok, tok.length - 1)}`, 401, 'tampered MAC'],
    [`/api/v1/recordings/${W.id}/download?token=${flip(tok, 5)}`, 401, 'tampered user'],
    [`/api/v1/recordings/${W.id}/download?token=${tok.replace(/\.(\d+)\./, (x, e) => `.${Number(e) + 300}.`)}`, 401, 'moved expiry'],
    [`/api/v1/recordings/${M.id}/download?token=${tok}`, 401, "another recording's token"],
    [`/api/v1/recordings/${W.id}/download?token=`, 401, 'empty'],
    [`/api/v1/recordings/${W.id}/download?token=${'x'.repeat(5000)}`, 401, 'huge'],
    [`/api/v1/recordings/${W.id}/download`, 401, 'none'],
    [`/api/v1/recordings/${W.id}/download?token=${W.rec.hlsUrl.split('token=')[1]}`, 403, 'view token on the download'],
    [`/api/v1/recordings/${W.id}/thumbnail?token=${tok}`, 403, 'download token on the thumbnail'],
    [`/api/v1/recordings/${W.id}/download?token=${forgeToken(srv, 'd', W.id, u.o.id, Math.floor(Date.now() / 1000) - 1)}`, 401, 'expired'],
  ];
  for (const [url, status, what] of probes) {
    const r = await fetchRaw(srv, url);
    assert.equal(r.status, status, `${what}: ${r.body}`);
    if (status === 401) assert.equal(JSON.parse(r.body).error.code, 'unauthorized', what);
  }
  const expired = await fetchRaw(srv, probes[9][0]);
  assert.match(JSON.parse(expired.body).error.message, /expired/);
  const fresh = await fetchRaw(srv, `/api/v1/recordings/${W.id}/download?token=${forgeToken(srv, 'd', W.id, u.o.id, Math.floor(Date.now() / 1000) + 60)}`, { method: 'HEAD' });
  assert.equal(fresh.status, 200, 'a token signed with the server key works (the probes above are sound)');

  // -- HLS ---------------------------------------------------------------------------------------
  for (const [X, copied] of [[W, false], [M, true], [F, false]]) {
    const pl = await fetchRaw(srv, X.rec.hlsUrl);
    assert.equal(pl.status, 200);
    assert.equal(pl.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    const text = pl.body.toString('utf8');
    assert.match(text, /^#EXTM3U\n/);
    assert.match(text, /#EXT-X-PLAYLIST-TYPE:VOD/);
    assert.match(text, /#EXT-X-ENDLIST/);
    const vtok = X.rec.hlsUrl.split('token=')[1];
    assert.match(text, new RegExp(`#EXT-X-MAP:URI="init\\.mp4\\?token=${vtok.replace(/\./g, '\\.')}"`));
    const segs = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(segs.length >= 1, text);
    const durs = [...text.matchAll(/#EXTINF:([\d.]+),/g)].map((x) => Number(x[1]));
    assert.equal(durs.length, segs.length);
    durs.slice(0, -1).forEach((d) => assert.ok(d >= 3.5 && d <= 4.5, `segment of ${d} s: ${text}`));
    const total = durs.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - X.rec.durationSeconds) < 0.6, `HLS ${total} s vs ${X.rec.durationSeconds} s`);
    for (const s of [`init.mp4?token=${vtok}`, ...segs]) {
      const name = s.split('?')[0];
      assert.match(s, new RegExp(`^${name.replace('.', '\\.')}\\?token=`));
      const r = await fetchRaw(srv, `/api/v1/recordings/${X.id}/hls/${s}`);
      assert.equal(r.status, 200, s);
      assert.equal(r.headers.get('content-type'), 'video/mp4');
      assert.ok(r.body.length > 0);
    }
    const probe = ffprobe(srv.url + X.rec.hlsUrl);
    const kinds = probe.streams.map((st) => `${st.codec_type}:${st.codec_name}`).sort();
    assert.deepEqual(kinds, ['audio:aac', 'video:h264'], JSON.stringify(probe));
    assert.equal(X.rec.metadata.compose.hls.copied, copied, JSON.stringify(X.rec.metadata.compose));
    assert.equal(X.rec.metadata.compose.hls.segments, segs.length);
  }
  const mode = fs.statSync(path.join(W.dir, 'hls', 'index.m3u8')).mode & 0o777;
  assert.equal(mode, 0o600);
  assert.equal(fs.statSync(path.join(W.dir, 'hls')).mode & 0o777, 0o700);
  for (const bad of ['..%2F..%2Fjwt.secret', 'seg_1.m4s', 'index.m3u8.bak', 'init.mp4%00', '%2e%2e', 'seg_0000a.m4s']) {
    const r = await fetchRaw(srv, `/api/v1/recordings/${W.id}/hls/${bad}`, { token: u.o.token });
    assert.equal(r.status, 404, bad);
  }
  // a well-formed segment past the end: 404, and nothing logged as an error
  for (const name of ['seg_99999.m4s', 'seg_00000000000000000.m4s']) {
    const errorsBefore = srv.stderr().split('\n').filter((l) => l.includes('"level":"error"')).length;
    const r = await fetchRaw(srv, `/api/v1/recordings/${W.id}/hls/${name}`, { token: u.o.token });
    assert.equal(r.status, 404, name);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'not_found', name);
    const h = await fetchRaw(srv, `/api/v1/recordings/${W.id}/hls/${name}`, { token: u.o.token, method: 'HEAD' });
    assert.equal(h.status, 404, `HEAD ${name}`);
    await sleep(100);
    const errors = srv.stderr().split('\n').filter((l) => l.includes('"level":"error"'));
    assert.equal(errors.length, errorsBefore, `error lines for a missing segment: ${errors.slice(errorsBefore).join('\n')}`);
  }
  const viewLog = await accessTypes(srv, u.o.token, W.id);
  assert.ok(viewLog.includes('view'));

  // -- thumbnails ----------------------------------------------------------------------------------
  for (const X of [W, M, F]) {
    const r = await fetchRaw(srv, X.rec.thumbnailUrl);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/jpeg');
    const img = jpegLuma(r.body);
    assert.equal(img.width, 640);
    assert.equal(img.height, 360);
    // black bars around a 4:3 picture (and around the tiles of a composite) are expected
    assert.ok(img.lit > (X === F ? 0.4 : 0.15), `thumbnail of ${X.rec.title} is dark: ${JSON.stringify(img)}`);
    const again = await fetchRaw(srv, X.rec.thumbnailUrl, { headers: { 'if-none-match': r.headers.get('etag') } });
    assert.equal(again.status, 304);
  }
  // the fast-path recording opens with 2 s of black: the thumbnail comes after it
  const at = F.rec.metadata.compose.thumbnailAtSeconds;
  assert.ok(at >= BLACK_SECONDS - 0.3 && at <= BLACK_SECONDS + 1.5, `fast path thumbnail at ${at} s`);
  assert.equal(F.rec.metadata.compose.fastPath, true);

  // -- permissions --------------------------------------------------------------------------------
  const urls = (X) => [`/api/v1/recordings/${X.id}/download`, `/api/v1/recordings/${X.id}/hls/index.m3u8`,
    `/api/v1/recordings/${X.id}/hls/init.mp4`, `/api/v1/recordings/${X.id}/hls/seg_00000.m4s`, `/api/v1/recordings/${X.id}/thumbnail`];
  for (const url of urls(W)) {
    const r = await fetchRaw(srv, url, { token: u.other.token });
    assert.equal(r.status, 404, `student without a share: ${url}`);
    const h = await fetchRaw(srv, url, { token: u.other.token, method: 'HEAD' });
    assert.equal(h.status, 404, `HEAD ${url}`);
  }
  const share = async (userId, permission) => {
    const r = await srv.api('POST', `/api/v1/recordings/${W.id}/shares`, { token: u.o.token, body: { userId, permission } });
    assert.equal(r.status, 201, show(r));
    return r.json.id || r.json.share?.id;
  };
  const viewShare = await share(u.viewer.id, 'view');
  await share(u.loader.id, 'download');
  const asViewer = await getRec(srv, u.viewer.token, W.id);
  assert.equal(asViewer.downloadUrl, null, 'no download link for a view-only share');
  assert.match(asViewer.hlsUrl, urlRe(W.id, 'hls/index\\.m3u8'));
  const vdl = await fetchRaw(srv, `/api/v1/recordings/${W.id}/download`, { token: u.viewer.token });
  assert.equal(vdl.status, 403, 'visible but not downloadable');
  assert.equal((await fetchRaw(srv, asViewer.hlsUrl)).status, 200);
  assert.equal((await fetchRaw(srv, asViewer.thumbnailUrl)).status, 200);
  const asLoader = await getRec(srv, u.loader.token, W.id);
  assert.equal((await fetchRaw(srv, asLoader.downloadUrl, { method: 'HEAD' })).status, 200);
  const asBoss = await getRec(srv, u.boss.token, W.id);
  assert.equal((await fetchRaw(srv, asBoss.downloadUrl, { method: 'HEAD' })).status, 200);
  // revoking the share stops the viewer's link at once
  const del = await srv.api('DELETE', `/api/v1/recordings/${W.id}/shares/${viewShare}`, { token: u.o.token });
  assert.equal(del.status < 300, true, show(del));
  assert.equal((await fetchRaw(srv, asViewer.hlsUrl)).status, 404);
  assert.equal((await fetchRaw(srv, asViewer.thumbnailUrl)).status, 404);
  await srv.stop();
});

// ---- retention ----------------------------------------------------------------------------------

test('retention: soft delete, restore, and the purge after VTP_RETENTION_DAYS (clock moved)', async () => {
  const srv = await startServer({ env: { VTP_RETENTION_DAYS: 30 } });
  const u = await makeUsers(srv, { o: 'instructor', boss: 'admin' });
  const X = await composed(srv, u.o.token, { peers: ['a'], title: 'to purge' });
  const keep = await composed(srv, u.o.token, { peers: ['a'], title: 'kept' });
  const del = await srv.api('DELETE', `/api/v1/recordings/${X.id}`, { token: u.o.token });
  assert.equal(del.status, 200, show(del));
  assert.equal((await fetchRaw(srv, X.rec.downloadUrl, { method: 'HEAD' })).status, 404, 'a deleted recording serves nothing');
  assert.equal((await srv.api('GET', `/api/v1/recordings/${X.id}`, { token: u.o.token })).status, 404);
  const res = await srv.api('POST', `/api/v1/recordings/${X.id}/restore`, { token: u.o.token });
  assert.equal(res.status, 200, show(res));
  assert.equal((await fetchRaw(srv, X.rec.downloadUrl, { method: 'HEAD' })).status, 200, 'restored: its links work again');
  assert.equal((await srv.api('DELETE', `/api/v1/recordings/${X.id}`, { token: u.o.token })).status, 200);
  assert.ok(fs.existsSync(X.dir));

  // 29 days later: still there (the sweep ran and left it)
  const day = 86400;
  await srv.restart({ VTP_TEST_NOW_OFFSET_S: 29 * day });
  assert.ok(await waitLog(srv, /retention: sweep done/), srv.stderr());
  assert.ok(fs.existsSync(path.join(X.dir, 'recording.webm')), 'purged too early');
  assert.equal(dbRows(srv, `SELECT COUNT(*) FROM recordings WHERE id = '${X.id}'`)[0], '1');

  // 31 days later: the row, the files and its shares are gone; the access log stays
  await srv.restart({ VTP_TEST_NOW_OFFSET_S: 31 * day });
  const deadline = Date.now() + 20000;
  while (fs.existsSync(X.dir) && Date.now() < deadline) await sleep(100);
  assert.ok(!fs.existsSync(X.dir), `${X.dir} still there\n${srv.stderr()}`);
  assert.equal(dbRows(srv, `SELECT COUNT(*) FROM recordings WHERE id = '${X.id}'`)[0], '0');
  const log = dbRows(srv, `SELECT access_type FROM recording_access_log WHERE recording_id = '${X.id}' ORDER BY accessed_at`);
  for (const t of ['start', 'stop', 'done', 'delete', 'restore', 'purged']) assert.ok(log.includes(t), `${t} missing from ${log}`);
  // tokens are minted on the moved clock now: log in again
  const login = await srv.login(u.boss.email, u.boss.password);
  assert.equal(login.status, 200, show(login));
  assert.equal((await srv.api('GET', `/api/v1/recordings/${X.id}`, { token: login.json.token })).status, 404);
  assert.equal((await srv.api('POST', `/api/v1/recordings/${X.id}/restore`, { token: login.json.token })).status, 404);
  // a recording never deleted is untouched
  assert.ok(fs.existsSync(path.join(keep.dir, 'recording.webm')));
  assert.equal((await srv.api('GET', `/api/v1/recordings/${keep.id}`, { token: login.json.token })).status, 200);
  await srv.stop();
});

async function waitLog(srv, re, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (re.test(srv.stderr()) || re.test(srv.stdout())) return true;
    await sleep(50);
  }
  return false;
}

// ---- S3 ---------------------------------------------------------------------------------------

test('S3 (s3rver): outputs and tracks in the bucket before done, spool emptied, presigned redirects, proxy mode, purge', async () => {
  const s3 = await startS3rver();
  const env = {
    VTP_STORAGE_URL: s3.url, VTP_S3_ACCESS_KEY: s3.accessKey, VTP_S3_SECRET_KEY: s3.secretKey,
    // small multipart thresholds, so the real flow uploads in parts
    VTP_S3_MULTIPART_THRESHOLD: 256 * 1024, VTP_S3_PART_SIZE: 128 * 1024, VTP_LOG_LEVEL: 'debug',
  };
  const object = (key) => fetchRaw(null, `${s3.endpoint}/${s3.bucket}/${key}`);
  try {
    const srv = await startServer({ env });
    const health = await srv.api('GET', '/healthz');
    assert.equal(health.json.storage, 'ok', show(health));
    const u = await makeUsers(srv, { o: 'instructor', other: 'student' });
    const X = await composed(srv, u.o.token, { title: 'in the bucket', root: 'spool' });
    const key = `${X.roomId}/${X.id}`;
    // the local copies go once the recording is done (the child's last step)
    for (let i = 0; i < 100 && fs.existsSync(X.dir); i++) await sleep(100);
    assert.ok(!fs.existsSync(X.dir), `the spool keeps ${X.dir}`);
    const file = await object(`${key}/recording.webm`);
    assert.equal(file.status, 200);
    assert.equal(sha256(file.body), X.rec.metadata.sha256);
    assert.equal(file.body.length, X.rec.fileSize);
    // uploaded in parts: the knobs reached the compose child (its debug log says so)
    const parts = srv.stderr().match(/s3: put [^ ]+\/recording\.webm: \d+ bytes in (\d+) parts/);
    assert.ok(parts && Number(parts[1]) >= 2, 'recording.webm uploaded in parts');
    for (const f of Object.keys(peerOf)) {
      const t = await object(`${key}/tracks/${f}`);
      assert.equal(t.status, 200, `track ${f}`);
      assert.ok(t.body.equals(fs.readFileSync(path.join(mediaDir, f))), `track ${f} as captured`);
    }
    for (const f of ['hls/index.m3u8', 'hls/init.mp4', 'hls/seg_00000.m4s', 'thumbnail.jpg']) {
      assert.equal((await object(`${key}/${f}`)).status, 200, f);
    }

    // downloads: a 302 to a presigned URL of the bucket
    const dl = await fetchRaw(srv, X.rec.downloadUrl);
    assert.equal(dl.status, 302);
    const loc = dl.headers.get('location');
    assert.ok(loc.startsWith(`${s3.endpoint}/${s3.bucket}/${key}/recording.webm?`), loc);
    assert.match(loc, /X-Amz-Signature=[0-9a-f]{64}/);
    assert.match(loc, /X-Amz-Expires=\d+/);
    const followed = await fetchRaw(srv, X.rec.downloadUrl, { redirect: 'follow' });
    assert.equal(followed.status, 200);
    assert.equal(sha256(followed.body), X.rec.metadata.sha256);
    const part = await fetchRaw(srv, X.rec.downloadUrl, { redirect: 'follow', headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(file.body.subarray(100, 200)));
    assert.equal((await fetchRaw(srv, `/api/v1/recordings/${X.id}/download`, { token: u.other.token })).status, 404);
    const types = await accessTypes(srv, u.o.token, X.id);
    assert.equal(types.filter((t) => t === 'download').length, 1, JSON.stringify(types));
    // HLS: the playlist read from the bucket and rewritten; segments redirected
    const pl = await fetchRaw(srv, X.rec.hlsUrl);
    assert.equal(pl.status, 200);
    assert.match(pl.body.toString(), /seg_00000\.m4s\?token=/);
    const seg = await fetchRaw(srv, `/api/v1/recordings/${X.id}/hls/seg_00000.m4s?token=${X.rec.hlsUrl.split('token=')[1]}`);
    assert.equal(seg.status, 302);
    const missing = await fetchRaw(srv, `/api/v1/recordings/${X.id}/hls/seg_99999.m4s?token=${X.rec.hlsUrl.split('token=')[1]}`);
    assert.equal(missing.status, 404, 'a missing segment in the bucket');
    const probe = await ffprobeAsync(srv.url + X.rec.hlsUrl);
    assert.deepEqual(probe.streams.map((st) => st.codec_name).sort(), ['aac', 'h264']);
    const th = await fetchRaw(srv, X.rec.thumbnailUrl, { redirect: 'follow' });
    assert.equal(th.status, 200);
    assert.equal(jpegLuma(th.body).width, 640);

    // proxy mode: the same links answered by the server itself
    await srv.restart({ VTP_S3_PROXY: 1 });
    const px = await fetchRaw(srv, X.rec.downloadUrl);
    assert.equal(px.status, 200);
    assert.equal(px.headers.get('content-type'), 'video/webm');
    assert.match(px.headers.get('content-disposition'), /^attachment; filename="in the bucket\.webm"/);
    assert.equal(sha256(px.body), X.rec.metadata.sha256);
    const pr = await fetchRaw(srv, X.rec.downloadUrl, { headers: { range: `bytes=${X.rec.fileSize - 1000}-` } });
    assert.equal(pr.status, 206);
    assert.equal(pr.headers.get('content-range'), `bytes ${X.rec.fileSize - 1000}-${X.rec.fileSize - 1}/${X.rec.fileSize}`);
    assert.ok(pr.body.equals(file.body.subarray(X.rec.fileSize - 1000)));
    const ph = await fetchRaw(srv, X.rec.downloadUrl, { method: 'HEAD' });
    assert.equal(ph.status, 200);
    assert.equal(Number(ph.headers.get('content-length')), X.rec.fileSize);
    const ps = await fetchRaw(srv, `/api/v1/recordings/${X.id}/hls/seg_00000.m4s?token=${X.rec.hlsUrl.split('token=')[1]}`);
    assert.equal(ps.status, 200);
    assert.ok(ps.body.equals((await object(`${key}/hls/seg_00000.m4s`)).body));
    const proxied = await ffprobeAsync(srv.url + X.rec.hlsUrl);
    assert.deepEqual(proxied.streams.map((st) => st.codec_name).sort(), ['aac', 'h264']);

    // purge: the objects go with the row
    assert.equal((await srv.api('DELETE', `/api/v1/recordings/${X.id}`, { token: u.o.token })).status, 200);
    await srv.restart({ VTP_TEST_NOW_OFFSET_S: 31 * 86400 });
    const deadline = Date.now() + 20000;
    while ((await object(`${key}/recording.webm`)).status !== 404 && Date.now() < deadline) await sleep(100);
    for (const f of ['recording.webm', 'thumbnail.jpg', 'hls/index.m3u8', `tracks/${Object.keys(peerOf)[0]}`]) {
      assert.equal((await object(`${key}/${f}`)).status, 404, `${f} left in the bucket`);
    }
    assert.ok(await waitLog(srv, /retention: sweep done, 1 recording/), srv.stderr());
    await srv.stop();
  } finally {
    await s3.stop();
  }
});

// ---- a browser -------------------------------------------------------------------------------

test('Chromium plays the HLS stream with hls.js (the page and hls.js served by the recorder) to the end', async () => {
  const { chromium } = await import('playwright-core');
  const srv = await startServer();
  const u = await makeUsers(srv, { o: 'instructor', other: 'student' });
  const W = await composed(srv, u.o.token, { title: 'browser' });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const requests = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    await page.goto(`${srv.url}/web/player.html?src=${encodeURIComponent(W.rec.hlsUrl)}`);
    await page.waitForFunction(() => window.vtpPlayer && (window.vtpPlayer.ready || window.vtpPlayer.error), null, { timeout: 30000 });
    const st = await page.evaluate(() => ({ ...window.vtpPlayer }));
    assert.equal(st.error, null, JSON.stringify(st));
    assert.equal(st.engine, 'hls.js');
    assert.ok(Math.abs(st.duration - W.rec.durationSeconds) < 0.6, `player duration ${st.duration} vs ${W.rec.durationSeconds}`);
    await page.evaluate(() => { const v = document.getElementById('video'); v.muted = true; v.playbackRate = 4; return v.play(); });
    await page.waitForFunction(() => window.vtpPlayer.ended || window.vtpPlayer.error, null, { timeout: 60000 });
    const end = await page.evaluate(() => ({ ...window.vtpPlayer, t: document.getElementById('video').currentTime }));
    assert.equal(end.error, null, JSON.stringify(end));
    assert.equal(end.ended, true);
    assert.ok(end.t > W.rec.durationSeconds - 0.6, `stopped at ${end.t} s`);
    assert.ok(requests.includes('/web/vendor/hls.light.min.js'), 'hls.js came from the recorder');
    assert.ok(requests.some((p) => /\/hls\/seg_\d+\.m4s$/.test(p)), JSON.stringify(requests));
    assert.deepEqual(errors, []);
    // a link of another server, or of something else, is not played
    await page.goto(`${srv.url}/web/player.html?src=${encodeURIComponent('https://example.com/x.m3u8')}`);
    const refused = await page.evaluate(() => window.vtpPlayer.error);
    assert.match(refused, /No recording to play/);
    // a student without a share gets nothing out of the owner's page without the owner's link
    await page.goto(`${srv.url}/web/player.html?src=${encodeURIComponent(`/api/v1/recordings/${W.id}/hls/index.m3u8`)}`);
    await page.waitForFunction(() => window.vtpPlayer.error, null, { timeout: 30000 });
    assert.match(await page.evaluate(() => window.vtpPlayer.error), /expired or you may not watch/);
  } finally {
    await browser.close();
  }
  await srv.stop();
});
