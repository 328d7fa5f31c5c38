// Many machines (README "Running several nodes"): three `serve` nodes and one
// `worker`, each with its own data directory (so its own node id and spool),
// on one PostgreSQL database and one S3 endpoint (s3rver). One recording
// whose tracks come in through all three nodes (plain RTP on two, WHIP from
// GStreamer on the third), started on one node and stopped on another, is
// composed whole by the worker from what the nodes' spools committed to the
// bucket; Socket.IO clients on every node hear its events and see the people
// of every node in the room. Then a node is
// killed (kill -9) mid-recording: the recording still ends done, without at
// most the one segment that node had open, and says so in its warnings; when
// the node comes back its spool commits what it had left. And when the node
// that started a recording dies and restarts, the class goes on on the
// others (its restart ends only its own tracks). Also: a node holding tracks
// of 66 recordings ends its track of the oldest one when another node stops
// it, and file:// storage that the nodes do not share is named in warnings.
//
// PostgreSQL only: several processes sharing one database is what the
// PostgreSQL backend is for (with SQLite the suite reports itself skipped).
// sanitizer pass: skipped: its C paths (the spool, jobs waiting for segments, merging tracks, track_incomplete) run under the sanitizers in the spool, jobs, whip and compose suites; it took a sanitized run clean when written, and make test's time keeps it to the release pass.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';

import { BACKEND, Context, Server, startProcess, cleanupAll, sleep, rand } from './lib/server.mjs';
import { MediaRelay, lavfiSenderArgs, run } from './lib/media.mjs';
import { startS3rver } from './lib/s3.mjs';
import { startGstPublisher } from './lib/whip.mjs';
import { show, waitFor, makeUsers } from './lib/util.mjs';

const PG = BACKEND === 'postgres';
const SEGMENT_SECONDS = 2;
const NODE_TIMEOUT = 6;

after(async () => { await cleanupAll(); });

/** A node's own context: its data dir under the shared context's root, the same database. */
function nodeContext(base, name) {
  const dataDir = path.join(base.root, name);
  fs.mkdirSync(dataDir, { mode: 0o700 });
  return { root: base.root, dataDir, env: (extra = {}) => base.env({ VTP_DATA_DIR: dataDir, ...extra }) };
}

async function startNode(base, name, env) {
  const n = new Server(nodeContext(base, name), env);
  await n._spawn();
  n.name = name;
  n.nodeId = fs.readFileSync(path.join(n.dataDir, 'node.id'), 'utf8').trim();
  return n;
}

async function getRec(node, token, id) {
  const r = await node.api('GET', `/api/v1/recordings/${id}`, { token });
  assert.equal(r.status, 200, show(r));
  return r.json;
}

/** Polls the recording through `node` until it is done (failed fails the test). */
function waitDone(node, token, id, what) {
  return waitFor(async () => {
    const r = await getRec(node, token, id);
    if (r.status === 'failed') assert.fail(`${what}: failed: ${JSON.stringify(r.error)}`);
    return r.status === 'done' ? r : null;
  }, what, 180000);
}

/** Registers a plain-RTP peer on `node` and puts a relay in front of each track. */
async function addPeer(node, token, recId, { peerId, fullName, video, audio }) {
  const peer = { peerId, tracks: {}, relays: {}, video, audio };
  for (const kind of ['video', 'audio']) {
    if (!(kind === 'video' ? video : audio)) continue;
    const res = await node.api('POST', `/api/v1/recordings/${recId}/tracks`, {
      token, body: { peerId, fullName, kind, codec: kind === 'video' ? 'vp8' : 'opus', payloadType: kind === 'video' ? 96 : 111 },
    });
    assert.equal(res.status, 201, `register ${peerId} ${kind} on ${node.name}: ${show(res)}`);
    peer.tracks[kind] = res.json;
    peer.relays[kind] = await new MediaRelay(res.json.port).start();
  }
  return peer;
}

/** ffmpeg sending the peer's media for `seconds` (a promise of its end; killable). */
function sendPeer(peer, seconds) {
  const args = lavfiSenderArgs({
    seconds,
    video: peer.video && { source: `${peer.video}:s=320x240:r=15`, port: peer.relays.video.port, gop: 15 },
    audio: peer.audio && { source: `sine=f=${peer.audio}:r=48000`, port: peer.relays.audio.port },
  });
  return run('ffmpeg', args, { timeoutMs: (seconds + 60) * 1000 });
}

function closePeer(peer) {
  for (const r of Object.values(peer.relays)) r.close();
}

/** A Socket.IO client on `node` joined to `roomId`, recording every event. */
async function joinedSocket(node, token, roomId) {
  const s = io(node.url, { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, timeout: 8000, auth: { token } });
  s.events = [];
  s.onAny((event, data) => s.events.push({ event, data }));
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', (e) => reject(new Error(`${node.name}: connect_error ${e.message}`)));
  });
  const ack = await new Promise((resolve) => s.emit('join-room', { roomId }, resolve));
  assert.ok(ack && !ack.error, `${node.name}: join-room ${JSON.stringify(ack)}`);
  return s;
}

/** Keys of the bucket under prefix (ListObjectsV2; s3rver takes it unsigned). */
async function bucketKeys(s3, prefix) {
  const res = await fetch(`${s3.endpoint}/${s3.bucket}?list-type=2&max-keys=1000&prefix=${encodeURIComponent(prefix)}`);
  const xml = await res.text();
  assert.equal(res.status, 200, xml);
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

test('three serve nodes and a worker on one PostgreSQL and one bucket: one recording from all three, composed whole; a node killed mid-class loses at most its open segment', { skip: !PG && 'several nodes share a PostgreSQL database (run with VTP_TEST_BACKEND=postgres)' }, async () => {
  const s3 = await startS3rver();
  const base = new Context();
  const env = {
    VTP_STORAGE_URL: s3.url, VTP_S3_ACCESS_KEY: s3.accessKey, VTP_S3_SECRET_KEY: s3.secretKey,
    VTP_JWT_SECRET: `cluster-secret-${rand(8)}`, VTP_SEGMENT_SECONDS: SEGMENT_SECONDS,
    VTP_NODE_TIMEOUT: NODE_TIMEOUT, VTP_WORKERS: 0, VTP_LOG_LEVEL: 'debug',
  };
  const sockets = [];
  const peers = [];
  let gst;
  let worker;
  try {
    const A = await startNode(base, 'a', env);
    const B = await startNode(base, 'b', env);
    const C = await startNode(base, 'c', env);
    assert.equal(new Set([A.nodeId, B.nodeId, C.nodeId]).size, 3, 'three node ids');
    const u = await makeUsers(A, { inst: 'instructor', stu: 'student', s2: 'student', s3: 'student' });
    // the worker: its own data dir (spool), the same database and bucket
    const wctx = nodeContext(base, 'w');
    worker = startProcess(['worker'], { ctx: wctx, extraEnv: { ...env, VTP_WORKERS: 1 } });

    // ---- 1. one recording, tracks through all three nodes ------------------------------
    const roomId = `room-${rand(5)}`;
    // one person on each node: every node's clients see all three present
    const present = [u.stu, u.s2, u.s3];
    for (const [i, n] of [A, B, C].entries()) sockets.push(await joinedSocket(n, present[i].token, roomId));
    for (const [i, s] of sockets.entries()) {
      await waitFor(async () => s.events.some((e) => e.event === 'room-members' && e.data?.roomId === roomId &&
        present.every((p) => e.data.members?.some((m) => m.userId === p.id))),
      `room-members on node ${'abc'[i]} lists the people of all three nodes (got ${JSON.stringify(s.events.filter((e) => e.event === 'room-members').slice(-1))})`, 20000);
    }
    gst = startGstPublisher({ url: `${B.url}/whip/rooms/${roomId}`, token: u.stu.token, pattern: 'solid-color foreground-color=0xff20c020', freq: 440, seconds: 40 });
    await waitFor(async () => gst.output().includes('connected'), `GStreamer connected to node b (${gst.errors()})`, 30000);
    const st = await A.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId, title: 'Across nodes' } });
    assert.equal(st.status, 201, show(st));
    const id = st.json.recordingId;
    const alice = await addPeer(A, u.inst.token, id, { peerId: 'alice', fullName: 'Alice A', audio: 550 });
    const carol = await addPeer(C, u.inst.token, id, { peerId: 'carol', fullName: 'Carol C', video: 'color=c=blue', audio: 770 });
    peers.push(alice, carol);
    // node b captures the WHIP session's tracks (its thread attaches within 2 s)
    await waitFor(async () => (await getRec(B, u.inst.token, id)).tracks?.length >= 2,
      'node b captures the WHIP tracks', 20000);
    await Promise.all([sendPeer(alice, 7), sendPeer(carol, 7)]);
    // stopped on another node than the one that started it
    const sp = await B.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });
    assert.equal(sp.status, 200, show(sp));
    const done = await waitDone(C, u.inst.token, id, 'the recording done');
    // whole: every track of every node, from the bucket
    const trackIds = done.tracks.map((t) => t.trackId);
    assert.equal(trackIds.length, 5, `tracks of the three nodes merged: ${JSON.stringify(done.tracks)}`);
    for (const t of [...Object.values(alice.tracks), ...Object.values(carol.tracks)]) {
      assert.ok(trackIds.includes(t.trackId), `track ${t.trackId} in the recording`);
    }
    assert.equal(done.metadata.compose.tracks, 5, JSON.stringify(done.metadata.compose));
    assert.equal(done.metadata.compose.peers, 3, JSON.stringify(done.metadata.compose));
    const bad = (done.warnings || []).filter((w) => /incomplete|no_audio|no_video|delayed/.test(w.code));
    assert.deepEqual(bad, [], `warnings: ${JSON.stringify(done.warnings)}`);
    assert.ok(done.durationSeconds >= 6, `duration ${done.durationSeconds}`);
    // composed by the worker, not by a serve node (they run no workers)
    await waitFor(async () => worker.stderr().includes(id) && /done/.test(worker.stderr()), 'the worker logged the recording done', 10000);
    for (const s of sockets) {
      for (const ev of ['recording-started', 'recording-stopped']) {
        await waitFor(async () => s.events.some((e) => e.event === ev && e.data?.recordingId === id),
          `${ev} heard on every node`, 10000);
      }
    }
    // every segment of every track is in the bucket, and only the spool put them there
    const folder = `${roomId}/${id}/tracks/`;
    const keys = await bucketKeys(s3, folder);
    for (const t of trackIds) assert.ok(keys.some((k) => k.endsWith(`${t}.vtpcap`)), `${t} in the bucket: ${keys.join(' ')}`);
    assert.ok(keys.some((k) => /\.vtpcap\.000002$/.test(k)), `more than one segment per track: ${keys.join(' ')}`);
    gst.child.kill('SIGTERM');
    await gst.exited;
    gst = null;
    closePeer(alice);
    closePeer(carol);

    // ---- 2. kill -9 of a capturing node mid-recording ---------------------------------------
    const room2 = `room-${rand(5)}`;
    const st2 = await A.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: room2, title: 'A node dies' } });
    assert.equal(st2.status, 201, show(st2));
    const id2 = st2.json.recordingId;
    const dave = await addPeer(A, u.inst.token, id2, { peerId: 'dave', fullName: 'Dave A', video: 'color=c=red', audio: 440 });
    const erin = await addPeer(C, u.inst.token, id2, { peerId: 'erin', fullName: 'Erin C', video: 'color=c=yellow', audio: 660 });
    peers.push(dave, erin);
    const daveSend = sendPeer(dave, 16);
    const erinSend = sendPeer(erin, 16);
    // node c has committed some of erin's segments to the bucket: then it dies
    const erinAudio = erin.tracks.audio.trackId;
    await waitFor(async () => (await bucketKeys(s3, `${room2}/${id2}/tracks/${erinAudio}.vtpcap.000002`)).length > 0,
      'node c committed two segments of erin\'s audio', 30000);
    await sleep(1000);
    await C.kill9();
    const before = (await bucketKeys(s3, `${room2}/${id2}/tracks/${erinAudio}`)).length;
    await Promise.all([daveSend, erinSend]);
    const sp2 = await A.api('POST', `/api/v1/recordings/${id2}/stop`, { token: u.inst.token });
    assert.equal(sp2.status, 200, show(sp2));
    const done2 = await waitDone(B, u.inst.token, id2, 'the recording with a dead node done');
    const inc = (done2.warnings || []).filter((w) => w.code === 'track_incomplete');
    assert.equal(inc.length, 2, `a warning per track of the dead node: ${JSON.stringify(done2.warnings)}`);
    for (const w of inc) {
      assert.equal(w.nodeId, C.nodeId, JSON.stringify(w));
      assert.ok(Object.values(erin.tracks).some((t) => t.trackId === w.trackId), JSON.stringify(w));
      assert.match(w.message, /Erin C/, w.message);
      assert.ok(w.committedSegments >= 1, JSON.stringify(w));
    }
    assert.equal(done2.metadata.compose.peers, 2, 'the dead node\'s peer is in the file up to its last segment');
    // dave (node a, alive) whole; his audio and video decoded
    const bad2 = (done2.warnings || []).filter((w) => w.code !== 'track_incomplete');
    assert.deepEqual(bad2, [], JSON.stringify(done2.warnings));

    // node c comes back: its spool commits the segment it had open
    await C.restart();
    await waitFor(async () => (await bucketKeys(s3, `${room2}/${id2}/tracks/${erinAudio}`)).length > before,
      `node c's spool uploaded what it had left (had ${before} segments)`, 30000);
    const after2 = (await bucketKeys(s3, `${room2}/${id2}/tracks/${erinAudio}`)).length;
    // at most the open segment (and the one closing at the kill) was missing
    assert.ok(after2 - before <= 2, `${after2 - before} segments were missing`);
    await waitFor(async () => {
      const m = await (await fetch(`${C.url}/metrics`)).text();
      return /^vtp_spool_pending 0$/m.test(m);
    }, 'node c\'s spool empty', 30000);
    for (const p of [dave, erin]) closePeer(p);

    // ---- 3. the node that started it dies and comes back: the class goes on ---------------
    const room3 = `room-${rand(5)}`;
    const st3 = await A.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: room3, title: 'The starter dies' } });
    assert.equal(st3.status, 201, show(st3));
    const id3 = st3.json.recordingId;
    const gina = await addPeer(A, u.inst.token, id3, { peerId: 'gina', fullName: 'Gina A', audio: 350 });
    const hank = await addPeer(C, u.inst.token, id3, { peerId: 'hank', fullName: 'Hank C', audio: 880 });
    peers.push(gina, hank);
    const sends3 = [sendPeer(gina, 10), sendPeer(hank, 10)];
    await waitFor(async () => (await bucketKeys(s3, `${room3}/${id3}/tracks/${gina.tracks.audio.trackId}.vtpcap.000002`)).length > 0,
      'node a committed two segments of gina\'s audio', 30000);
    await A.kill9();
    await A.restart();
    // its restart ended only its own tracks: node c still captures
    assert.equal((await getRec(B, u.inst.token, id3)).status, 'recording', 'the class goes on on the other nodes');
    assert.match(A.stderr(), /go on on other nodes: it stays recording/);
    await Promise.all(sends3);
    const sp3 = await B.api('POST', `/api/v1/recordings/${id3}/stop`, { token: u.inst.token });
    assert.equal(sp3.status, 200, show(sp3));
    const done3 = await waitDone(C, u.inst.token, id3, 'the recording whose starter restarted done');
    // gina's track ended with node a's crash, and its restart committed all it had
    assert.deepEqual((done3.warnings || []).filter((w) => /incomplete|missing/.test(w.code)), [], JSON.stringify(done3.warnings));
    assert.equal(done3.metadata.compose.peers, 2, JSON.stringify(done3.metadata.compose));
    const ginaTrack = done3.tracks.find((t) => t.trackId === gina.tracks.audio.trackId);
    assert.equal(ginaTrack?.state, 'interrupted', JSON.stringify(done3.tracks));
    for (const p of [gina, hank]) closePeer(p);
  } finally {
    for (const s of sockets) s.disconnect();
    if (gst) gst.child.kill('SIGKILL');
    for (const p of peers) closePeer(p);
    if (worker) await worker.stop('SIGKILL');
    await cleanupAll();
    await s3.stop();
  }
});

test('file:// storage not shared between nodes: the worker says which committed tracks it cannot find (track_missing), never an empty recording in silence', { skip: !PG && 'several nodes share a PostgreSQL database (run with VTP_TEST_BACKEND=postgres)' }, async () => {
  const base = new Context();
  const env = { VTP_JWT_SECRET: `cluster-secret-${rand(8)}`, VTP_WORKERS: 0, VTP_SEGMENT_SECONDS: 1 };
  let worker;
  let peer;
  try {
    // each node's default storage is a folder of its own data dir: not shared
    const A = await startNode(base, 'a', env);
    const u = await makeUsers(A, { inst: 'instructor' });
    const st = await A.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: `room-${rand(5)}`, title: 'Not shared' } });
    assert.equal(st.status, 201, show(st));
    const id = st.json.recordingId;
    peer = await addPeer(A, u.inst.token, id, { peerId: 'fay', fullName: 'Fay A', audio: 500 });
    const sent = await sendPeer(peer, 3);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal((await A.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token })).status, 200);
    worker = startProcess(['worker'], { ctx: nodeContext(base, 'w'), extraEnv: { ...env, VTP_WORKERS: 1 } });
    const end = await waitFor(async () => {
      const r = await getRec(A, u.inst.token, id);
      return ['done', 'failed'].includes(r.status) ? r : null;
    }, 'the worker settled the recording', 120000);
    const missing = (end.warnings || []).filter((w) => w.code === 'track_missing');
    assert.equal(missing.length, 1, JSON.stringify(end));
    assert.equal(missing[0].trackId, peer.tracks.audio.trackId);
    assert.equal(missing[0].nodeId, A.nodeId);
    assert.match(missing[0].message, /share the folder/);
  } finally {
    if (peer) closePeer(peer);
    if (worker) await worker.stop('SIGKILL');
    await cleanupAll();
  }
});

// A node may hold tracks of many classes at once. Each pass of its WHIP
// thread once looked at only the first 64 recordings of its track list
// (newest first): a recording further down, stopped on another node, kept
// its tracks open on this one and its job waiting VTP_JOB_SEGMENT_WAIT.
test('a node holding tracks of 66 recordings ends its track of the oldest one when another node stops it', { skip: !PG && 'several nodes share a PostgreSQL database (run with VTP_TEST_BACKEND=postgres)' }, async () => {
  const s3 = await startS3rver();
  const base = new Context();
  const env = {
    VTP_STORAGE_URL: s3.url, VTP_S3_ACCESS_KEY: s3.accessKey, VTP_S3_SECRET_KEY: s3.secretKey,
    VTP_JWT_SECRET: `cluster-secret-${rand(8)}`, VTP_WORKERS: 0,
  };
  try {
    const A = await startNode(base, 'a', env);
    const B = await startNode(base, 'b', env);
    const u = await makeUsers(A, { inst: 'instructor' });
    const ids = [];
    for (let i = 0; i < 66; i++) {
      const st = await A.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId: `many-${i}-${rand(4)}`, title: `Class ${i}` } });
      assert.equal(st.status, 201, show(st));
      const tr = await B.api('POST', `/api/v1/recordings/${st.json.recordingId}/tracks`, {
        token: u.inst.token, body: { peerId: 'p', fullName: 'P', kind: 'audio', codec: 'opus', payloadType: 111 },
      });
      assert.equal(tr.status, 201, show(tr));
      ids.push(st.json.recordingId);
    }
    const oldest = ids[0];
    const sp = await A.api('POST', `/api/v1/recordings/${oldest}/stop`, { token: u.inst.token });
    assert.equal(sp.status, 200, show(sp));
    await waitFor(async () => B.stderr().includes(`recording ${oldest} ended on another node`),
      'node b ended its track of the oldest recording', 30000);
    // the others, still recording, keep their tracks on node b
    assert.ok(!ids.slice(1).some((id) => B.stderr().includes(`recording ${id} ended`)), 'only the stopped one ended');
  } finally {
    await cleanupAll();
    await s3.stop();
  }
});
