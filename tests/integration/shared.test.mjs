// Several serve nodes on one PostgreSQL (docs/ARCHITECTURE.md "Metadata store"):
// PostgreSQL is the shared truth for the kept answers, for who is in a room
// and for the clock of the room event journal.
// - Node A keeps its rendered GET-by-id and list answers (proved by a write
//   made behind its back with the triggers off, which it does not see), and
//   a delete, restore, share or status change made through node B or by
//   another process is then seen through A's kept answers: every such write
//   notifies vtp_changes from its own transaction and A's listener drops
//   what it kept.
// - While the change feed is down (its connection terminated, reconnects
//   refused) node A serves nothing it kept; when the feed is back what it
//   kept before is gone, and it follows writes again.
// - A Socket.IO client on A and one on B in the same room both hear
//   room-members with count 2, and 1 again when one leaves.
// - A node whose clock is two hours behind stamps the journal with the
//   database's clock, and its clients still hear the room's events.
// PostgreSQL only (SQLite is one node); the notification is asynchronous, so
// every "seen through A" waits for the condition with a deadline.

// sanitizer pass: skipped: the change feed, presence and the journal clock are sanitized in unit_store (test_watch, test_presence, test_db_clock) and the events suite; this suite adds a second process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { io } from 'socket.io-client';
import { startServer, cleanupAll, rand, BACKEND, Context } from './lib/server.mjs';
import { show, makeUsers, startRec, stopRec, waitFor } from './lib/util.mjs';

const skip = BACKEND !== 'postgres' && 'PostgreSQL only (VTP_TEST_BACKEND=postgres)';
const JWT = `shared-secret-${rand(8)}-${rand(8)}`;
let A, B;
let u;
const sockets = new Set();

function sql(statement) {
  const r = spawnSync('psql', [A.ctx.dbUrl, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', statement],
    { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${statement}: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** Another node on A's database: its own data folder (node id), the same JWT key. */
async function startNode(env = {}) {
  const ctx = new Context();
  const own = ctx.dbName;
  ctx.dbName = null; // A's context drops the shared database
  ctx.dbUrl = A.ctx.dbUrl;
  spawnSync('psql', [ctx.adminUrl, '-qAt', '-c', `DROP DATABASE IF EXISTS ${own}`], { timeout: 30000 });
  return startServer({ ctx, env: { VTP_WORKERS: 0, VTP_JWT_SECRET: JWT, ...env } });
}

before(async () => {
  if (skip) return;
  A = await startServer({ env: { VTP_WORKERS: 0, VTP_JWT_SECRET: JWT } });
  B = await startNode();
  u = await makeUsers(A, { owner: 'instructor', stu: 'student', inst: 'instructor' });
});

after(async () => {
  for (const s of sockets) s.disconnect();
  await cleanupAll();
});

const getOn = (srv, token, id) => srv.api('GET', `/api/v1/recordings/${id}`, { token });
async function listOn(srv, token, qs) {
  const res = await srv.api('GET', `/api/v1/recordings?${qs}`, { token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

/**
 * Shows that A keeps its answers for recording r: primes its GET and list,
 * changes the title with the triggers off (as a restore from a dump would:
 * nobody is told), and expects A to go on answering the old title. A
 * notification still in flight from an earlier step may make A render
 * again once; then it tries again (a few times at most). Before this work
 * every request read the database, and every try failed. Returns the
 * title now in the database.
 */
async function proveKept(r, qs) {
  const seen = [];
  for (let i = 0; i < 5; i++) {
    let title;
    for (let k = 0; k < 2; k++) {
      const g = await getOn(A, u.owner.token, r.id);
      assert.equal(g.status, 200, show(g));
      title = g.json.title;
      assert.equal((await listOn(A, u.owner.token, qs)).recordings[0].title, title);
    }
    const silent = `behind its back ${i}`;
    sql(`SET session_replication_role = replica; UPDATE recordings SET title = '${silent}' WHERE id = '${r.id}'`);
    const g = (await getOn(A, u.owner.token, r.id)).json.title;
    const l = (await listOn(A, u.owner.token, qs)).recordings[0].title;
    seen.push(`${title} -> GET ${g}, list ${l}`);
    if (g === title && l === title) return silent;
  }
  assert.fail(`A never answered what it kept: ${seen.join('; ')}`);
}

test('node A keeps its answers and sees every write made through node B or by another process', { skip }, async () => {
  const r = await startRec(A, u.owner.token);
  await stopRec(A, u.owner.token, r.id);
  const qs = `room_id=${encodeURIComponent(r.room)}`;
  const title = r.body.title;

  // A keeps its answers on PostgreSQL (the student's empty list too)
  assert.equal((await getOn(A, u.owner.token, r.id)).json.title, title);
  for (let i = 0; i < 2; i++) assert.equal((await listOn(A, u.stu.token, qs)).total, 0);
  const silent = await proveKept(r, qs);

  // delete through B: A's kept GET answers 404, its list is empty
  const del = await B.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.owner.token });
  assert.equal(del.status, 200, show(del));
  await waitFor(async () => (await getOn(A, u.owner.token, r.id)).status === 404, 'A: GET 404 after the delete on B', 10000);
  await waitFor(async () => (await listOn(A, u.owner.token, qs)).total === 0, 'A: list empty after the delete on B', 10000);

  // restore through B: back on A, rendered afresh (so with the silent title too)
  const res = await B.api('POST', `/api/v1/recordings/${r.id}/restore`, { token: u.owner.token });
  assert.equal(res.status, 200, show(res));
  await waitFor(async () => (await getOn(A, u.owner.token, r.id)).json?.title === silent, 'A: GET after the restore on B', 10000);
  await waitFor(async () => (await listOn(A, u.owner.token, qs)).total === 1, 'A: list after the restore on B', 10000);

  // a share through B: the student's kept (empty) list on A shows it
  const sh = await B.api('POST', `/api/v1/recordings/${r.id}/shares`, { token: u.owner.token, body: { userId: u.stu.id, permission: 'view' } });
  assert.equal(sh.status, 201, show(sh));
  await waitFor(async () => (await listOn(A, u.stu.token, qs)).total === 1, "A: the student's list after the share on B", 10000);
  assert.equal((await getOn(A, u.stu.token, r.id)).status, 200);

  // a status and progress step by another process (as a worker on a third
  // node writes it): A's kept GET and list follow
  sql(`UPDATE recordings SET status = 'processing', progress = 40 WHERE id = '${r.id}'`);
  await waitFor(async () => {
    const g = (await getOn(A, u.owner.token, r.id)).json;
    return g.status === 'processing' && g.progress === 40;
  }, 'A: GET shows the status change', 10000);
  await waitFor(async () => (await listOn(A, u.owner.token, qs)).recordings[0]?.status === 'processing', 'A: list shows the status change', 10000);

  // B's own answers follow its own writes at once (the writer moves its number at commit)
  const d2 = await B.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.owner.token });
  assert.equal(d2.status, 200, show(d2));
  assert.equal((await getOn(B, u.owner.token, r.id)).status, 404);
  await waitFor(async () => (await getOn(A, u.owner.token, r.id)).status === 404, 'A: GET 404 after the second delete on B', 10000);
});

test('while the change feed is down nothing kept is served; when it is back everything kept before is dropped', { skip }, async () => {
  const r = await startRec(A, u.owner.token);
  await stopRec(A, u.owner.token, r.id);
  const listening = (A.stderr().match(/listening for changes by other nodes/g) || []).length;
  assert.ok(listening >= 1, `A never said it listens: ${A.stderr().slice(-2000)}`);

  // a write no notification tells of: A serves what it kept
  const missed = await proveKept(r, `room_id=${encodeURIComponent(r.room)}`);

  // the feed's connections end and cannot come back (the database takes no
  // new connections; the nodes' pools keep theirs): A reads the database
  const db = A.ctx.dbName;
  const admin = (statement) => {
    const x = spawnSync('psql', [A.ctx.adminUrl, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', statement], { encoding: 'utf8', timeout: 30000 });
    assert.equal(x.status, 0, `${statement}: ${x.stderr || x.error}`);
    return x.stdout.trim();
  };
  admin(`ALTER DATABASE ${db} ALLOW_CONNECTIONS false`);
  try {
    const killed = admin(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = 'vtp-recorder-listen' AND datname = '${db}') t`);
    assert.ok(Number(killed) >= 2, `listener connections terminated: ${killed}`);
    await waitFor(() => /change feed lost/.test(A.stderr()), 'A logs the lost feed', 15000);
    // (a request may find a pool slot that was never connected: 503, try again)
    await waitFor(async () => (await getOn(A, u.owner.token, r.id)).json?.title === missed, 'A: GET read from the database while the feed is down', 15000);
    await waitFor(() => /change feed not connected/.test(A.stderr()), 'A fails to reconnect and says so', 15000);
    assert.equal((await getOn(A, u.owner.token, r.id)).json?.title, missed, 'still read from the database');
  } finally {
    admin(`ALTER DATABASE ${db} ALLOW_CONNECTIONS true`);
  }
  await waitFor(() => (A.stderr().match(/listening for changes by other nodes/g) || []).length > listening, 'A listens again', 20000);
  assert.equal((await getOn(A, u.owner.token, r.id)).json.title, missed);
  // and follows writes again
  const del = await B.api('DELETE', `/api/v1/recordings/${r.id}`, { token: u.owner.token });
  assert.equal(del.status, 200, show(del));
  await waitFor(async () => (await getOn(A, u.owner.token, r.id)).status === 404, 'A: GET 404 after the delete on B', 10000);
});

// ---- Socket.IO ------------------------------------------------------------------------------

function connect(srv, user) {
  const s = io(srv.url, { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, auth: { token: user.token } });
  s.log = [];
  s.onAny((event, data) => s.log.push({ event, data }));
  sockets.add(s);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${user.name}: not connected`)), 10000);
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(timer); reject(new Error(`${user.name}: connect_error ${e.message}`)); });
  });
}

const lastMembers = (s, room) => s.log.filter((e) => e.event === 'room-members' && e.data.roomId === room).at(-1)?.data;

test('room-members counts the people of every node: a client on A and one on B see count 2, then 1 when one leaves', { skip }, async () => {
  const room = `shared-${rand(5)}`;
  const sa = await connect(A, u.stu);
  const sb = await connect(B, u.inst);
  const ja = await sa.timeout(8000).emitWithAck('join-room', { roomId: room });
  assert.equal(ja.count, 1, JSON.stringify(ja));
  const jb = await sb.timeout(8000).emitWithAck('join-room', { roomId: room });
  assert.equal(jb.count, 2, `B's join ack counts A's client too: ${JSON.stringify(jb)}`);
  assert.deepEqual(jb.members.map((m) => m.userId).sort(), [u.stu.id, u.inst.id].sort());

  await waitFor(() => lastMembers(sa, room)?.count === 2, `A's client hears count 2 (${JSON.stringify(sa.log)})`, 10000);
  await waitFor(() => lastMembers(sb, room)?.count === 2, `B's client hears count 2 (${JSON.stringify(sb.log)})`, 10000);
  assert.deepEqual(lastMembers(sa, room).members.map((m) => m.userId).sort(), [u.stu.id, u.inst.id].sort());
  assert.equal(Number(sql(`SELECT count(DISTINCT node_id) FROM room_presence WHERE room_id = '${room}'`)), 2);

  // B's client leaves: A's hears count 1
  const lb = await sb.timeout(8000).emitWithAck('leave-room', { roomId: room });
  assert.equal(lb.roomId, room);
  await waitFor(() => lastMembers(sa, room)?.count === 1, `A's client hears count 1 after the leave on B (${JSON.stringify(sa.log)})`, 10000);
  // a client that disconnects leaves too
  await sb.timeout(8000).emitWithAck('join-room', { roomId: room });
  await waitFor(() => lastMembers(sa, room)?.count === 2, 'count 2 again', 10000);
  sb.disconnect();
  await waitFor(() => lastMembers(sa, room)?.count === 1, 'A hears count 1 after the client on B disconnected', 10000);
  sa.disconnect();
  await waitFor(() => Number(sql(`SELECT count(*) FROM room_presence WHERE room_id = '${room}'`)) === 0, 'no presence left', 10000);
});

test("the journal is stamped by the database's clock: a node two hours behind still stamps now, and its clients hear the room", { skip }, async () => {
  const C = await startNode({ VTP_TEST_NOW_OFFSET_S: -7200 });
  try {
    // tokens by C's clock (its CLI runs with the same offset)
    const owner = { ...u.owner, token: await C.tokenFor(u.owner.email) };
    const stu = { ...u.stu, token: await C.tokenFor(u.stu.email) };
    const room = `clock-${rand(5)}`;
    const sc = await connect(C, stu);
    await sc.timeout(8000).emitWithAck('join-room', { roomId: room });
    const sa = await connect(A, u.stu);
    await sa.timeout(8000).emitWithAck('join-room', { roomId: room });

    const r = await startRec(C, owner.token, { roomId: room });
    const skew = Number(sql(`SELECT extract(epoch FROM now() - created_at) FROM room_events
      WHERE event = 'recording-started' AND payload LIKE '%${r.id}%'`));
    assert.ok(Math.abs(skew) < 600, `C's event is stamped ${skew} s away from the database's now()`);
    const started = (s) => s.log.some((e) => e.event === 'recording-started' && e.data.recordingId === r.id);
    await waitFor(() => started(sc), "C's client hears C's recording-started", 10000);
    await waitFor(() => started(sa), "A's client hears C's recording-started", 10000);

    // an event written by A reaches C's client (C reads by the database's clock)
    const st = await A.api('POST', `/api/v1/recordings/${r.id}/stop`, { token: u.owner.token });
    assert.equal(st.status, 200, show(st));
    await waitFor(() => sc.log.some((e) => e.event === 'recording-stopped' && e.data.recordingId === r.id), "C's client hears A's recording-stopped", 10000);
    // the presence rows are stamped by the database too
    const seen = Number(sql(`SELECT max(abs(extract(epoch FROM now() - seen_at))) FROM room_presence WHERE room_id = '${room}'`));
    assert.ok(seen < 600, `presence stamped ${seen} s away from now()`);
  } finally {
    await C.stop();
  }
});

test('the people of a node that stops leave at once; those of a node killed with -9 expire within a minute', { skip }, async () => {
  const room = `gone-${rand(5)}`;
  const sa = await connect(A, u.stu);
  await sa.timeout(8000).emitWithAck('join-room', { roomId: room });

  // a graceful stop drops the node's rows in one statement and tells the rooms
  const D = await startNode();
  const sd = await connect(D, u.inst);
  assert.equal((await sd.timeout(8000).emitWithAck('join-room', { roomId: room })).count, 2);
  await waitFor(() => lastMembers(sa, room)?.count === 2, 'A hears count 2 with D', 10000);
  await D.stop();
  await waitFor(() => lastMembers(sa, room)?.count === 1, 'A hears count 1 after D stopped', 10000);

  // kill -9: nobody says goodbye; the rows stop being refreshed and any
  // other node's heartbeat expires them (30 s by the database's clock)
  const E = await startNode();
  const se = await connect(E, u.owner);
  assert.equal((await se.timeout(8000).emitWithAck('join-room', { roomId: room })).count, 2);
  await waitFor(() => lastMembers(sa, room)?.count === 2, 'A hears count 2 with E', 10000);
  await E.kill9();
  await waitFor(() => lastMembers(sa, room)?.count === 1, 'A hears count 1 after E was killed', 60000);
  assert.equal(Number(sql(`SELECT count(*) FROM room_presence WHERE room_id = '${room}'`)), 1);
  sa.disconnect();
});
