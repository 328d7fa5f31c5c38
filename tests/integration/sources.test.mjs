// Sources and layouts (issue 17), the API and ingest side, through the real
// binary: every track has a source (camera, microphone, screen,
// screen_audio) given at the plain-RTP registration, written into its
// packet log's metadata (what the composer reads), shown in the Recording's
// tracks and, per person, in GET …/participants with when each source was
// sent; a recording's layout is chosen at the start (REST and Socket.IO),
// stored and shown; talkSeconds is null until a composer has counted it.
// Bad values are 400s naming the field. (WHIP screen shares: whip.test.mjs.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, expectError, makeUsers, startRec, stopRec, assertTime, waitFor } from './lib/util.mjs';
import { readCapture } from './lib/media.mjs';

let srv;
let u;

before(async () => {
  srv = await startServer({ env: { VTP_WORKERS: 0 } });
  u = await makeUsers(srv, { owner: 'instructor', stu: 'student' });
});
after(cleanupAll);

const addTrack = (id, body) => srv.api('POST', `/api/v1/recordings/${id}/tracks`, { token: u.owner.token, body });
const getRec = async (id) => {
  const r = await srv.api('GET', `/api/v1/recordings/${id}`, { token: u.owner.token });
  assert.equal(r.status, 200, show(r));
  return r.json;
};
const participants = async (id) => {
  const r = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: u.owner.token });
  assert.equal(r.status, 200, show(r));
  return r.json.participants;
};
const track = (peerId, kind, extra = {}) => ({
  peerId, fullName: peerId === 'ada' ? 'Ada Lovelace' : 'Bob Babbage', kind,
  codec: kind === 'video' ? 'vp8' : 'opus', payloadType: kind === 'video' ? 96 : 111, ...extra,
});


/** A few RTP packets (payload bytes only: nothing here is decoded) to a track's port. */
async function sendRtp(sock, port, pt, ssrc, n = 5) {
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(12 + 40, 0x10);
    b[0] = 0x80; b[1] = pt; b.writeUInt16BE(100 + i, 2); b.writeUInt32BE(3000 * i, 4); b.writeUInt32BE(ssrc, 8);
    await new Promise((resolve, reject) => sock.send(b, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    await sleep(10);
  }
}

function captureMeta(recId) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(recId) && p.endsWith('.vtpcap')) {
        const { meta } = readCapture(p);
        out[meta.trackId] = meta;
      }
    }
  };
  walk(path.join(srv.dataDir, 'recordings'));
  return out;
}

test('track registration: an unknown source, or one of the other kind, is a 400 naming source', async () => {
  const r = await startRec(srv, u.owner.token);
  const bad = [
    track('ada', 'video', { source: 'slides' }),
    track('ada', 'video', { source: 'Screen' }),
    track('ada', 'video', { source: 7 }),
    track('ada', 'video', { source: '' }),
    track('ada', 'video', { source: 'microphone' }),
    track('ada', 'video', { source: 'screen_audio' }),
    track('ada', 'audio', { source: 'screen' }),
    track('ada', 'audio', { source: 'camera' }),
  ];
  for (const body of bad) expectError(await addTrack(r.id, body), 400, 'invalid_input', 'source', JSON.stringify(body));
  // null is no source: the kind's default
  const ok = await addTrack(r.id, track('ada', 'video', { source: null }));
  assert.equal(ok.status, 201, show(ok));
  assert.equal((await getRec(r.id)).tracks[0].source, 'camera');
  await stopRec(srv, u.owner.token, r.id);
});

test('sources: in the packet log meta, the Recording\'s tracks and each participant\'s sources with when', async () => {
  const r = await startRec(srv, u.owner.token);
  const specs = [
    ['ada', 'video', undefined, 'camera'],
    ['ada', 'audio', undefined, 'microphone'],
    ['ada', 'video', 'screen', 'screen'],
    ['ada', 'audio', 'screen_audio', 'screen_audio'],
    ['bob', 'video', 'camera', 'camera'],
    ['bob', 'audio', 'microphone', 'microphone'],
  ];
  const sock = dgram.createSocket('udp4');
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  try {
    const regs = [];
    for (const [peer, kind, source, want] of specs) {
      const res = await addTrack(r.id, track(peer, kind, source ? { source } : {}));
      assert.equal(res.status, 201, show(res));
      regs.push({ peer, kind, want, ...res.json });
    }
    for (const [i, t] of regs.entries()) await sendRtp(sock, t.port, t.kind === 'video' ? 96 : 111, 0x1000 + i);
    const live = await waitFor(async () => {
      const rec = await getRec(r.id);
      return rec.tracks.length === 6 && rec.tracks.every((t) => t.packets >= 5) ? rec : null;
    }, 'packets on every track');
    for (const t of regs) {
      const shown = live.tracks.find((x) => x.trackId === t.trackId);
      assert.equal(shown.source, t.want, `Recording track ${JSON.stringify(shown)}`);
    }
    // the composer's contract: "source" in every packet log's header metadata
    const metas = captureMeta(r.id);
    for (const t of regs) {
      assert.ok(metas[t.trackId], `a packet log for ${t.trackId}`);
      assert.equal(metas[t.trackId].source, t.want, JSON.stringify(metas[t.trackId]));
      assert.equal(metas[t.trackId].peerId, t.peer);
    }

    // while live: who sent what since when; nothing has ended; no talk time yet
    let parts = await waitFor(async () => {
      const p = await participants(r.id);
      return p.length === 2 && p.every((x) => x.sources.every((s) => s.startedAt)) ? p : null;
    }, 'both participants with started sources');
    const ada = parts.find((p) => p.peerId === 'ada');
    const bob = parts.find((p) => p.peerId === 'bob');
    assert.deepEqual(ada.sources.map((s) => s.source).sort(), ['camera', 'microphone', 'screen', 'screen_audio']);
    assert.deepEqual(bob.sources.map((s) => s.source).sort(), ['camera', 'microphone']);
    for (const s of [...ada.sources, ...bob.sources]) {
      assert.deepEqual(Object.keys(s).sort(), ['endedAt', 'kind', 'source', 'startedAt', 'trackId']);
      assertTime(s.startedAt, 'sources[].startedAt');
      assert.equal(s.endedAt, null, `live: ${JSON.stringify(s)}`);
      assert.equal(s.kind, ['camera', 'screen'].includes(s.source) ? 'video' : 'audio');
      assert.ok(regs.some((t) => t.trackId === s.trackId && t.want === s.source), JSON.stringify(s));
    }
    for (const p of parts) assert.equal(p.talkSeconds, null, `talkSeconds before done: ${JSON.stringify(p)}`);

    // Ada stops sharing: her screen ended, her camera goes on
    const screen = regs.find((t) => t.want === 'screen');
    const ended = await srv.api('DELETE', `/api/v1/recordings/${r.id}/tracks/${screen.trackId}`, { token: u.owner.token });
    assert.equal(ended.status, 200, show(ended));
    parts = await participants(r.id);
    const adaNow = parts.find((p) => p.peerId === 'ada');
    const scr = adaNow.sources.find((s) => s.source === 'screen');
    assertTime(scr.endedAt, 'the ended share\'s endedAt');
    assert.ok(Date.parse(scr.endedAt) >= Date.parse(scr.startedAt), JSON.stringify(scr));
    assert.equal(adaNow.sources.find((s) => s.source === 'camera').endedAt, null);

    // the audit entry names the source
    const log = await srv.api('GET', `/api/v1/recordings/${r.id}/access-log?limit=100`, { token: u.owner.token });
    const adds = log.json.entries.filter((e) => e.accessType === 'track_add').map((e) => e.detail.source).sort();
    assert.deepEqual(adds, ['camera', 'camera', 'microphone', 'microphone', 'screen', 'screen_audio']);

    // stopped: the saved statistics keep the sources; everything has ended
    const stopped = await stopRec(srv, u.owner.token, r.id);
    for (const t of regs) assert.equal(stopped.tracks.find((x) => x.trackId === t.trackId).source, t.want);
    parts = await participants(r.id);
    for (const p of parts) {
      assert.equal(p.sources.length, p.peerId === 'ada' ? 4 : 2);
      for (const s of p.sources) assertTime(s.endedAt, `stopped: ${JSON.stringify(s)}`);
      assert.equal(p.talkSeconds, null, 'talkSeconds stays null until the recording is done');
    }
  } finally {
    sock.close();
  }
});

test('layout: default auto, each layout stored and shown, an unknown one a 400 naming layout', async () => {
  const plain = await startRec(srv, u.owner.token);
  assert.equal((await getRec(plain.id)).layout, 'auto');
  assert.equal(plain.res.json.layout ?? (await getRec(plain.id)).layout, 'auto');
  await stopRec(srv, u.owner.token, plain.id);
  for (const layout of ['auto', 'grid', 'speaker', 'presentation', 'screen']) {
    const r = await startRec(srv, u.owner.token, { layout });
    const rec = await getRec(r.id);
    assert.equal(rec.layout, layout);
    const list = await srv.api('GET', `/api/v1/recordings?room_id=${encodeURIComponent(r.room)}`, { token: u.owner.token });
    assert.equal(list.json.recordings[0].layout, layout, show(list));
    const stopped = await stopRec(srv, u.owner.token, r.id);
    assert.equal(stopped.layout, layout, 'kept after the stop');
  }
  for (const layout of ['mosaic', 'Grid', '', 3, true, ['grid']]) {
    const res = await srv.api('POST', '/api/v1/recordings/start', {
      token: u.owner.token, body: { roomId: `room-${rand(5)}`, title: 'Bad layout', layout },
    });
    expectError(res, 400, 'invalid_input', 'layout', JSON.stringify(layout));
  }
});

test('layout over Socket.IO recording-start: stored and shown; an unknown one is an error naming layout', async () => {
  const s = io(srv.url, { path: '/socket.io/', transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: u.owner.token } });
  try {
    await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
    const ack = (event, arg) => new Promise((resolve) => s.emit(event, arg, resolve));
    const roomId = `sock-${rand(5)}`;
    const bad = await ack('recording-start', { roomId, title: 'Socket layout', layout: 'carousel' });
    assert.ok(bad && bad.error, JSON.stringify(bad));
    assert.equal(bad.error.code, 'invalid_input', JSON.stringify(bad));
    assert.equal(bad.error.field, 'layout', JSON.stringify(bad));
    const a = await ack('recording-start', { roomId, title: 'Socket layout', layout: 'presentation' });
    assert.ok(a && !a.error, JSON.stringify(a));
    assert.equal(a.recording.layout, 'presentation', JSON.stringify(a));
    assert.equal((await getRec(a.recordingId)).layout, 'presentation');
    await stopRec(srv, u.owner.token, a.recordingId);
  } finally {
    s.disconnect();
  }
});
