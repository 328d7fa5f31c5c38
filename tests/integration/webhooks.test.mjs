// Webhooks (issue 7, README "Webhooks") through the real binary: every status
// change of a recording is POSTed to VTP_WEBHOOK_URL from the persistent
// outbox, signed with HMAC-SHA256 of the body, and retried with back-off
// when the receiver fails. The receiver here fails its first two requests.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startServer, cleanupAll, sleep } from './lib/server.mjs';
import { show, makeUsers, startRec } from './lib/util.mjs';

const SECRET = 'webhook-test-secret-0123456789';
let srv;
let users;
let receiver;
const got = []; // {status, headers, body}
let failFirst = 2;

before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = failFirst-- > 0 ? 500 : 200;
      got.push({ status, headers: req.headers, body });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  srv = await startServer({ env: { VTP_WORKERS: 1, VTP_WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/hook`, VTP_WEBHOOK_SECRET: SECRET } });
  users = await makeUsers(srv, { teacher: 'instructor' });
});

after(async () => {
  await cleanupAll();
  await new Promise((r) => receiver.close(r));
});

test('status changes reach the webhook, signed, retried after failures', async () => {
  const { id } = await startRec(srv, users.teacher.token);
  const stop = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: users.teacher.token });
  assert.equal(stop.status, 200, show(stop));
  // no media: processing fails (no_media), then the owner deletes it
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: users.teacher.token });
    if (r.json.status === 'failed') break;
    assert.ok(Date.now() < deadline, `still ${r.json.status}`);
    await sleep(200);
  }
  const del = await srv.api('DELETE', `/api/v1/recordings/${id}`, { token: users.teacher.token });
  assert.equal(del.status, 200, show(del));

  const want = ['recording.started', 'recording.stopped', 'recording.failed', 'recording.deleted'];
  const delivered = () => got.filter((g) => g.status === 200);
  while (!want.every((e) => delivered().some((g) => JSON.parse(g.body).event === e))) {
    assert.ok(Date.now() < deadline + 30000, `delivered: ${delivered().map((g) => JSON.parse(g.body).event)}`);
    await sleep(200);
  }
  assert.ok(got.filter((g) => g.status === 500).length === 2, 'the first two attempts failed');
  for (const g of got) {
    const mac = crypto.createHmac('sha256', SECRET).update(g.body).digest('hex');
    assert.equal(g.headers['x-vtp-signature'], `sha256=${mac}`, 'signature over the exact body');
    assert.equal(g.headers['content-type'], 'application/json');
    const j = JSON.parse(g.body);
    assert.equal(g.headers['x-vtp-event'], j.event);
    assert.equal(j.recording.id, id);
    assert.match(j.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  }
  const status = (e) => JSON.parse(delivered().find((g) => JSON.parse(g.body).event === e).body).recording.status;
  assert.equal(status('recording.started'), 'recording');
  assert.equal(status('recording.stopped'), 'stopped');
  assert.equal(status('recording.failed'), 'failed');
  // the failed attempts were retried: each event delivered exactly once here
  for (const e of want) assert.equal(delivered().filter((g) => JSON.parse(g.body).event === e).length, 1, e);
  const m = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(m, /^vtp_webhooks_delivered_total 4$/m);
  assert.match(m, /^vtp_webhooks_failed_attempts_total 2$/m);
  assert.match(m, /^vtp_webhooks_pending 0$/m);
});
