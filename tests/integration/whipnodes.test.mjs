// WHIP behind a load balancer (issue 18, point 5; README "WHIP behind a load
// balancer"): two `serve` nodes on one PostgreSQL database with one JWT key.
// vtp-whipgen publishes real DTLS-SRTP media to node A (its POST lands
// there) and leaves the session running; the PATCH and DELETE for it are
// sent to node B, which does not hold it: B forwards them to A (the
// whip_sessions table names A and its VTP_NODE_URL) and relays A's answer,
// so the session ends on A, its tracks end in the recording, and B's answer
// is A's. Also: a bogus session id on B is 404, another user's DELETE is
// refused by the owner (404), a forwarding loop (a directory row naming a
// node that sends the request back) is refused with 508, a client-made
// X-VTP-Forwarded header is a 400, and an unreachable owner a 502.
// Two nodes share one database only on PostgreSQL: skipped on SQLite.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, cleanupAll, rand, Context, BACKEND, freePort } from './lib/server.mjs';
import { show, makeUsers, waitFor } from './lib/util.mjs';
import { whipgen, metric } from './lib/whip.mjs';

const WHIPGEN = process.env.VTP_WHIPGEN || path.resolve(path.dirname(process.env.VTP_BIN || 'build/vtp-recorder'), 'vtp-whipgen');
const PG = BACKEND === 'postgres';

let a; // node A: answers the POSTs
let b; // node B: gets the PATCHes and DELETEs
let users;
let nodeA;

function sql(statement) {
  const r = spawnSync('psql', [a.ctx.dbUrl, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', statement], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

before(async () => {
  if (!PG) return;
  const secret = `whipnodes-${rand(16)}`;
  const env = { VTP_JWT_SECRET: secret, VTP_WHIP_TIMEOUT: 600, VTP_WORKERS: 0 };
  a = await startServer({ env });
  // B: its own data dir (so its own node id), A's database
  const ctxB = new Context();
  ctxB.dbUrl = a.ctx.dbUrl;
  b = await startServer({ ctx: ctxB, env });
  users = await makeUsers(a, { teacher: 'instructor', student: 'student', other: 'student' });
  nodeA = fs.readFileSync(path.join(a.dataDir, 'node.id'), 'utf8').trim();
});

after(async () => {
  await cleanupAll();
});

async function metrics(node) {
  const res = await fetch(`${node.url}/metrics`);
  return res.text();
}

/** One whipgen session published to node A in roomId, left running (--keep). */
async function publishOnA(roomId, seconds = 2) {
  const r = await whipgen(WHIPGEN, ['--url', `${a.url}/whip/rooms/${roomId}`, '--token', users.student.token, '--seconds', String(seconds), '--keep']);
  assert.equal(r.connected, 1, JSON.stringify(r));
  assert.equal(r.locations.length, 1, JSON.stringify(r));
  assert.match(r.locations[0], /^\/whip\/rooms\/[^/]+\/sessions\/[0-9a-f-]{36}$/);
  return { loc: r.locations[0], sid: r.locations[0].split('/').pop() };
}

function studentSources(parts) {
  return parts.json.participants.filter((p) => p.userId === users.student.id).flatMap((p) => p.sources);
}

test('a session POSTed on node A: PATCH and DELETE sent to node B are forwarded to A, the session ends on A and its tracks end in the recording', { skip: !PG && 'two nodes on one database: PostgreSQL only' }, async () => {
  const roomId = `whipnodes-${rand(4)}`;
  const started = await b.api('POST', '/api/v1/recordings/start', { token: users.teacher.token, body: { roomId, title: 'two nodes' } });
  assert.equal(started.status, 201, show(started));
  const id = started.json.recordingId;
  const before = metric(await metrics(a), 'vtp_whip_sessions_ended_total');
  const { loc, sid } = await publishOnA(roomId);
  assert.ok(metric(await metrics(a), 'vtp_whip_sessions') >= 1);
  assert.equal(metric(await metrics(b), 'vtp_whip_sessions'), 0, 'B holds no session');
  // captured on A while the session is alive: the student's sources are open
  await waitFor(async () => {
    const parts = await a.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
    const srcs = parts.status === 200 ? studentSources(parts) : [];
    return srcs.length === 2 && srcs.every((x) => x.startedAt && !x.endedAt);
  }, 'the WHIP session captured on A');

  // PATCH (trickle ICE / ICE restart) on B: A's answer (405, A's Allow),
  // where B alone would say 404 (it holds no such session)
  const patch = { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', Authorization: `Bearer ${users.student.token}` }, body: 'a=end-of-candidates\r\n' };
  const onA = await fetch(a.url + loc, patch);
  const onB = await fetch(b.url + loc, patch);
  assert.equal(onA.status, 405);
  assert.equal(onB.status, 405, await onB.clone().text());
  assert.equal(onB.headers.get('allow'), onA.headers.get('allow'));
  assert.deepEqual(await onB.json(), await onA.json());

  // someone else's DELETE through B: the owner checks it (404, as on A)
  const foreign = await b.api('DELETE', loc, { token: users.other.token });
  assert.equal(foreign.status, 404, show(foreign));
  assert.equal(foreign.json.error.code, 'not_found');
  assert.equal(sql(`SELECT count(*) FROM whip_sessions WHERE id = '${sid}'`), '1');

  // the publisher's DELETE through B ends the session on A
  const del = await b.api('DELETE', loc, { token: users.student.token });
  assert.equal(del.status, 200, show(del));
  assert.deepEqual(del.json, { success: true, sessionId: sid });
  assert.equal(metric(await metrics(a), 'vtp_whip_sessions_ended_total'), before + 1, 'the session ended on A');
  const parts = await a.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
  const srcs = studentSources(parts);
  assert.equal(srcs.length, 2, show(parts));
  for (const x of srcs) assert.ok(x.startedAt && x.endedAt, `the track ended: ${JSON.stringify(x)}`);
  // the directory forgot it: a second DELETE on either node is 404
  assert.equal(sql(`SELECT count(*) FROM whip_sessions WHERE id = '${sid}'`), '0');
  assert.equal((await b.api('DELETE', loc, { token: users.student.token })).status, 404);
  assert.equal((await a.api('DELETE', loc, { token: users.student.token })).status, 404);
  // stopped on the node that captured them, the ended tracks are in the recording
  const stopped = await a.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
  assert.equal(stopped.status, 200, show(stopped));
  assert.equal(stopped.json.tracks.filter((t) => t.packets > 0).length, 2, JSON.stringify(stopped.json.tracks));
});

test('node B: a bogus session id is 404 (DELETE and PATCH), as on a single node', { skip: !PG && 'PostgreSQL only' }, async () => {
  const bogus = `/whip/rooms/nowhere-${rand(3)}/sessions/${crypto.randomUUID()}`;
  for (const node of [a, b]) {
    for (const p of [bogus, '/whip/rooms/x/sessions/not-a-uuid']) {
      const del = await node.api('DELETE', p, { token: users.student.token });
      assert.equal(del.status, 404, show(del));
      assert.equal(del.json.error.code, 'not_found');
      const patch = await node.api('PATCH', p, { token: users.student.token, body: 'a=end-of-candidates\r\n', headers: { 'content-type': 'application/trickle-ice-sdpfrag' } });
      assert.equal(patch.status, 404, show(patch));
    }
  }
});

test('forwarding: a loop is refused (508), a client-made X-VTP-Forwarded is a 400, an unreachable owner a 502', { skip: !PG && 'PostgreSQL only' }, async () => {
  const roomId = `whipnodes-loop-${rand(4)}`;
  const { loc, sid } = await publishOnA(roomId, 1);
  assert.equal(sql(`SELECT node_id FROM whip_sessions WHERE id = '${sid}'`), nodeA);

  // a client cannot mark its request as forwarded (to skip the forward)
  for (const forged of ['yes', `${nodeA};${Math.floor(Date.now() / 1000)};${'0'.repeat(64)}`, `${nodeA};1;${'0'.repeat(64)}`]) {
    const res = await b.api('DELETE', loc, { token: users.student.token, headers: { 'X-VTP-Forwarded': forged } });
    assert.equal(res.status, 400, show(res));
    assert.equal(res.json.error.field, 'X-VTP-Forwarded');
  }

  // a directory row that sends B's forward back to B: B refuses to forward
  // the forwarded request again (508), and the answer reaches the client
  const stranger = crypto.randomUUID();
  sql(`UPDATE whip_sessions SET node_id = '${stranger}', node_url = '${b.url}' WHERE id = '${sid}'`);
  const loop = await b.api('DELETE', loc, { token: users.student.token });
  assert.equal(loop.status, 508, show(loop));
  assert.equal(loop.json.error.code, 'forwarding_loop');
  const loopPatch = await b.api('PATCH', loc, { token: users.student.token, body: 'a=end-of-candidates\r\n', headers: { 'content-type': 'application/trickle-ice-sdpfrag' } });
  assert.equal(loopPatch.status, 508, show(loopPatch));

  // the owner's address does not answer: 502 with a clear error
  const dead = await freePort();
  sql(`UPDATE whip_sessions SET node_id = '${stranger}', node_url = 'http://127.0.0.1:${dead}' WHERE id = '${sid}'`);
  const gone = await b.api('DELETE', loc, { token: users.student.token });
  assert.equal(gone.status, 502, show(gone));
  assert.equal(gone.json.error.code, 'node_unreachable');

  // put right, the DELETE through B works and the session ends on A
  sql(`UPDATE whip_sessions SET node_id = '${nodeA}', node_url = '${a.url}' WHERE id = '${sid}'`);
  const del = await b.api('DELETE', loc, { token: users.student.token });
  assert.equal(del.status, 200, show(del));
  await waitFor(async () => metric(await metrics(a), 'vtp_whip_sessions') === 0, 'no session left on A');
});

test('a node forgets the sessions of its last run when it starts again', { skip: !PG && 'PostgreSQL only' }, async () => {
  const roomId = `whipnodes-restart-${rand(4)}`;
  const { sid } = await publishOnA(roomId, 1);
  assert.equal(sql(`SELECT count(*) FROM whip_sessions WHERE id = '${sid}'`), '1');
  await a.kill9(); // no clean end: the row stays behind
  assert.equal(sql(`SELECT count(*) FROM whip_sessions WHERE id = '${sid}'`), '1');
  await a.restart();
  assert.equal(sql(`SELECT count(*) FROM whip_sessions WHERE node_id = '${nodeA}'`), '0');
  const res = await b.api('DELETE', `/whip/rooms/${roomId}/sessions/${sid}`, { token: users.student.token });
  assert.equal(res.status, 404, show(res));
});
