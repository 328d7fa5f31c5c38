// The segment spool when the bucket cannot be reached (README "Segments reach
// storage as they close"): closed segments wait on the node's disk and are
// retried; the node's /healthz says so (503, "spool"), the recording carries a
// segments_delayed warning, its job waits rather than composing without them,
// and once the bucket answers again every segment arrives and the recording
// is done with nothing missing. Never a silent loss.
// sanitizer pass: sqlite only: the jobs, spool, CLI and events code is the same C on both backends, and the store's PostgreSQL side runs under the sanitizers in unit_store; make test's time keeps the PostgreSQL variant to the release pass.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startServer, cleanupAll, sleep } from './lib/server.mjs';
import { MediaRelay, lavfiSenderArgs, run } from './lib/media.mjs';
import { startS3rver } from './lib/s3.mjs';
import { show, waitFor, makeUsers } from './lib/util.mjs';

after(async () => { await cleanupAll(); });

/** A TCP gate in front of port: up() forwards, down() cuts every connection and refuses new ones. */
async function tcpGate(port) {
  let open = true;
  const conns = new Set();
  const server = net.createServer((c) => {
    if (!open) { c.destroy(); return; }
    const up = net.connect(port, '127.0.0.1');
    conns.add(c);
    conns.add(up);
    const drop = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
    c.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    c.pipe(up);
    up.pipe(c);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    down() { open = false; for (const c of conns) c.destroy(); conns.clear(); },
    up() { open = true; },
    close() { open = false; for (const c of conns) c.destroy(); server.close(); },
  };
}

async function bucketKeys(s3, prefix) {
  const res = await fetch(`${s3.endpoint}/${s3.bucket}?list-type=2&max-keys=1000&prefix=${encodeURIComponent(prefix)}`);
  const xml = await res.text();
  assert.equal(res.status, 200, xml);
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

test('an unreachable bucket: /healthz 503 naming the spool, a segments_delayed warning, the job waits, and every segment arrives once it is back', async () => {
  const s3 = await startS3rver();
  const gate = await tcpGate(new URL(s3.endpoint).port);
  let relay;
  try {
    const srv = await startServer({
      env: {
        VTP_STORAGE_URL: `s3://${s3.bucket}?endpoint=http://127.0.0.1:${gate.port}&region=${s3.region}`,
        VTP_S3_ACCESS_KEY: s3.accessKey, VTP_S3_SECRET_KEY: s3.secretKey,
        VTP_SEGMENT_SECONDS: 1, VTP_SPOOL_ALERT_SECONDS: 2,
      },
    });
    const u = await makeUsers(srv, { inst: 'instructor' });
    const roomId = `room-${Math.random().toString(36).slice(2, 8)}`;
    const st = await srv.api('POST', '/api/v1/recordings/start', { token: u.inst.token, body: { roomId, title: 'Bucket away' } });
    assert.equal(st.status, 201, show(st));
    const id = st.json.recordingId;
    const reg = await srv.api('POST', `/api/v1/recordings/${id}/tracks`, {
      token: u.inst.token, body: { peerId: 'pat', fullName: 'Pat Jones', kind: 'audio', codec: 'opus', payloadType: 111 },
    });
    assert.equal(reg.status, 201, show(reg));
    const trackId = reg.json.trackId;
    relay = await new MediaRelay(reg.json.port).start();
    const sender = run('ffmpeg', lavfiSenderArgs({ seconds: 7, audio: { source: 'sine=f=523:r=48000', port: relay.port } }), { timeoutMs: 90000 });
    const prefix = `${roomId}/${id}/tracks/${trackId}`;
    await waitFor(async () => (await bucketKeys(s3, `${prefix}.vtpcap.000002`)).length > 0, 'segments reaching the bucket as they close', 30000);

    gate.down();
    const h = await waitFor(async () => {
      const r = await srv.api('GET', '/healthz');
      return r.status === 503 && /wait for storage/.test(r.json.spool) ? r : null;
    }, '/healthz naming the waiting segments', 30000);
    assert.match(h.json.spool, /track segment\(s\) wait for storage/, JSON.stringify(h.json));
    const warned = await waitFor(async () => {
      const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.inst.token });
      return (r.json.warnings || []).find((w) => w.code === 'segments_delayed');
    }, 'a segments_delayed warning on the recording', 30000);
    assert.match(warned.message, /kept on its disk and retried/, warned.message);
    const sent = await sender;
    assert.equal(sent.code, 0, sent.stderr);
    const sp = await srv.api('POST', `/api/v1/recordings/${id}/stop`, { token: u.inst.token });
    assert.equal(sp.status, 200, show(sp));
    // the job waits for the segments (the node is alive): still stopped a while later
    const m = await waitFor(async () => {
      const t = await (await fetch(`${srv.url}/metrics`)).text();
      return /^vtp_spool_failures_total [1-9]/m.test(t) ? t : null;
    }, 'failed attempts counted', 10000);
    assert.match(m, /^vtp_spool_pending [1-9]/m);
    await sleep(3000);
    const waiting = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.inst.token });
    assert.equal(waiting.json.status, 'stopped', `composed without its segments: ${show(waiting)}`);

    gate.up();
    const done = await waitFor(async () => {
      const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.inst.token });
      if (r.json.status === 'failed') assert.fail(show(r));
      return r.json.status === 'done' ? r.json : null;
    }, 'done once the bucket is back', 120000);
    assert.ok(done.warnings.some((w) => w.code === 'segments_delayed'), JSON.stringify(done.warnings));
    assert.ok(!done.warnings.some((w) => w.code === 'track_incomplete'), JSON.stringify(done.warnings));
    assert.ok(done.durationSeconds >= 6, `duration ${done.durationSeconds}`);
    const keys = await bucketKeys(s3, prefix);
    assert.ok(keys.length >= 6, `every segment in the bucket: ${keys.join(' ')}`);
    await waitFor(async () => (await srv.api('GET', '/healthz')).status === 200, '/healthz 200 again', 30000);
  } finally {
    if (relay) relay.close();
    gate.close();
    await cleanupAll();
    await s3.stop();
  }
});
