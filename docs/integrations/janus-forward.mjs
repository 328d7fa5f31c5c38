#!/usr/bin/env node
// Record one Janus VideoRoom publisher with vtp-recorder: a starting point
// for a platform's backend (docs/integrations/janus.md explains each step).
// Node 18 or later, no dependencies.
//
//   node janus-forward.mjs --recorder http://127.0.0.1:8080 --token "$TOKEN" \
//     --janus http://127.0.0.1:8088/janus --room 1234 --publisher 4385517075129947
//   node janus-forward.mjs --stop --state janus-forward-1234-4385517075129947.json ...
//
// What it does:
//  1. Uses --recording, or starts a recording of room `janus-<room>` (or
//     --room-id) and takes the active one when that room is already recording.
//  2. Reads the publisher's streams from Janus: it joins the room as a
//     passive participant (a publisher that never publishes), whose `joined`
//     event lists every active publisher with its streams (mid, type, codec),
//     then leaves. (`listparticipants` has no streams.)
//  3. Registers one track per stream (the first audio and the first video,
//     or --mids) with a payload type and SSRC of its own choosing, and asks
//     Janus to forward each stream with exactly those (`pt` and `ssrc` in
//     rtp_forward), so nothing depends on what the browser negotiated.
//  4. Calls rtp_forward with `port` and `rtcp_port` both set to the track's
//     port, so the recorder's keyframe requests reach the publisher.
//  5. Writes what it made to a state file (--state), and prints the tracks'
//     state after a few seconds (`receiving`, or `misconfigured` and why).
// --stop reads the state file, stops the forwarders (stop_rtp_forward; they
// are already gone when the publisher left) and ends the tracks
// (DELETE .../tracks/{trackId}).
//
// The token: a recorder token of role `service` can register tracks on any
// recording; starting a recording needs an instructor or admin.

import fs from 'node:fs';
import crypto from 'node:crypto';

const HELP = `usage: node janus-forward.mjs [options]
  --recorder URL      vtp-recorder base URL (default http://127.0.0.1:8080)
  --token T           recorder Bearer token (or VTP_TOKEN)
  --janus URL         Janus HTTP API, e.g. http://127.0.0.1:8088/janus
  --room N            VideoRoom room id
  --publisher N       publisher id in that room
  --recording ID      record into this recording (default: start one)
  --room-id S         recorder roomId when starting (default janus-<room>)
  --title S           title when starting (default "Janus room <room>")
  --name S            participant's name in the recording (default: Janus display)
  --user-id UUID      participant's user id (optional)
  --mids A,B          which streams (default: the first audio and the first video)
  --host IP           address Janus sends to (default: the registration's ip)
  --srtp              SRTP between Janus and the recorder (srtp_suite 80)
  --secret S          room secret, if the room has one
  --admin-key K       VideoRoom admin_key, if lock_rtp_forward is set
  --pin P             room pin, if the room has one (for the passive join)
  --apisecret S       Janus api_secret, if set (or JANUS_API_SECRET)
  --state FILE        state file (default janus-forward-<room>-<publisher>.json)
  --stop              undo what the state file says
  --wait S            seconds to watch the tracks after forwarding (default 5; 0: don't)`;

// Payload types the forwards are rewritten to (Janus rtp_forward `pt`); any
// value outside 64..95 (RTCP's on a muxed port) works.
const PT = { opus: 111, vp8: 96, h264: 102 };

function parseArgs(argv) {
  const o = { recorder: 'http://127.0.0.1:8080', token: process.env.VTP_TOKEN, apisecret: process.env.JANUS_API_SECRET, wait: 5 };
  const flags = new Set(['stop', 'srtp', 'help']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const k = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (flags.has(k)) o[k] = true;
    else if (i + 1 < argv.length) o[k] = argv[++i];
    else throw new Error(`${a} needs a value`);
  }
  return o;
}

// ---- the recorder's API -----------------------------------------------------

async function recorder(o, method, path, body) {
  const res = await fetch(new URL(path, o.recorder), {
    method,
    headers: { Authorization: `Bearer ${o.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function recordingId(o) {
  if (o.recording) return o.recording;
  const roomId = o.roomId || `janus-${o.room}`;
  const r = await recorder(o, 'POST', '/api/v1/recordings/start', { roomId, title: o.title || `Janus room ${o.room}` });
  if (r.status === 201) return r.json.recordingId;
  if (r.status === 409 && r.json?.error?.activeRecordingId) return r.json.error.activeRecordingId;
  throw new Error(`start recording: ${r.status} ${r.text}`);
}

// ---- Janus's HTTP API -------------------------------------------------------

class Janus {
  constructor(url, apisecret) {
    this.url = url.replace(/\/$/, '');
    this.apisecret = apisecret;
  }

  async post(path, body) {
    const res = await fetch(this.url + path, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ transaction: crypto.randomUUID(), ...(this.apisecret ? { apisecret: this.apisecret } : {}), ...body }),
      signal: AbortSignal.timeout(15000),
    });
    return res.json();
  }

  async open() {
    const c = await this.post('', { janus: 'create' });
    if (c.janus !== 'success') throw new Error(`janus create: ${JSON.stringify(c)}`);
    this.session = c.data.id;
    const a = await this.post(`/${this.session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    if (a.janus !== 'success') throw new Error(`janus attach: ${JSON.stringify(a)}`);
    this.handle = a.data.id;
  }

  async close() {
    if (this.session) await this.post(`/${this.session}`, { janus: 'destroy' }).catch(() => {});
  }

  /** A synchronous VideoRoom request (rtp_forward, stop_rtp_forward, listforwarders): its plugin data. */
  async request(body) {
    const r = await this.post(`/${this.session}/${this.handle}`, { janus: 'message', body });
    const data = r.plugindata?.data;
    if (r.janus !== 'success' || !data || data.error) {
      const e = new Error(`janus ${body.request}: ${data?.error ? `${data.error} (error ${data.error_code})` : JSON.stringify(r)}`);
      e.code = data?.error_code;
      throw e;
    }
    return data;
  }

  /** An asynchronous request (join, leave): acked, answered by an event read with a long poll. */
  async send(body, pred, timeoutMs = 15000) {
    const r = await this.post(`/${this.session}/${this.handle}`, { janus: 'message', body });
    if (r.janus !== 'ack' && r.janus !== 'success') throw new Error(`janus ${body.request}: ${JSON.stringify(r)}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const q = this.apisecret ? `&apisecret=${encodeURIComponent(this.apisecret)}` : '';
      const res = await fetch(`${this.url}/${this.session}?maxev=10&rid=${Date.now()}${q}`, { signal: AbortSignal.timeout(35000) });
      const got = await res.json();
      for (const e of Array.isArray(got) ? got : [got]) {
        const data = e.plugindata?.data;
        if (data?.error) throw new Error(`janus ${body.request}: ${JSON.stringify(data)}`);
        if (data && pred(data)) return data;
      }
    }
    throw new Error(`janus ${body.request}: no answer within ${timeoutMs / 1000} s`);
  }
}

/** The publisher's display and streams, from a passive join's `joined` event. */
async function publisherStreams(janus, o) {
  const joined = await janus.send({ request: 'join', ptype: 'publisher', room: Number(o.room), display: 'vtp-recorder',
    ...(o.pin ? { pin: o.pin } : {}) }, (d) => d.videoroom === 'joined');
  await janus.send({ request: 'leave' }, (d) => d.leaving === 'ok').catch(() => {});
  const pub = (joined.publishers || []).find((p) => String(p.id) === String(o.publisher));
  if (!pub) throw new Error(`publisher ${o.publisher} is not publishing in room ${o.room} (active: ${(joined.publishers || []).map((p) => p.id).join(', ') || 'none'})`);
  return { display: pub.display, streams: (pub.streams || []).filter((s) => !s.disabled) };
}

function pick(streams, mids) {
  if (mids) {
    const want = mids.split(',');
    const got = streams.filter((s) => want.includes(String(s.mid)));
    if (got.length !== want.length) throw new Error(`mids ${mids} not all among ${JSON.stringify(streams)}`);
    return got;
  }
  return ['audio', 'video'].map((t) => streams.find((s) => s.type === t)).filter(Boolean);
}

function randomSsrc() {
  return crypto.randomBytes(4).readUInt32BE(0) || 1;
}

// ---- start / stop -----------------------------------------------------------

async function start(o, janus) {
  const id = await recordingId(o);
  const { display, streams } = await publisherStreams(janus, o);
  const chosen = pick(streams, o.mids);
  if (!chosen.length) throw new Error(`publisher ${o.publisher} has no audio or video stream`);
  const state = { recorder: o.recorder, recordingId: id, janus: janus.url, room: Number(o.room), publisher: Number(o.publisher), tracks: [] };
  const forwards = [];
  try {
    for (const s of chosen) {
      const codec = String(s.codec || '').toLowerCase();
      if (!PT[codec] || (codec === 'opus') !== (s.type === 'audio')) throw new Error(`stream ${s.mid}: ${s.type} ${s.codec} is not recordable (opus, vp8, h264)`);
      const ssrc = randomSsrc();
      const r = await recorder(o, 'POST', `/api/v1/recordings/${id}/tracks`, {
        peerId: `janus-${o.publisher}`, fullName: o.name || display || `Publisher ${o.publisher}`,
        ...(o.userId ? { userId: o.userId } : {}),
        kind: s.type, codec, payloadType: PT[codec], ssrc, ...(o.srtp ? { srtp: true } : {}),
      });
      if (r.status !== 201) throw new Error(`register ${s.type} track: ${r.status} ${r.text}`);
      const t = { trackId: r.json.trackId, kind: s.type, mid: String(s.mid), codec, payloadType: PT[codec], ssrc, port: r.json.port, ip: r.json.ip };
      state.tracks.push(t);
      forwards.push({ t, stream: { mid: t.mid, port: t.port, rtcp_port: t.port, pt: t.payloadType, ssrc }, key: r.json.srtp?.keyBase64 });
    }
    const base = { request: 'rtp_forward', room: Number(o.room), publisher_id: Number(o.publisher), host: o.host || state.tracks[0].ip, host_family: 'ipv4',
      ...(o.secret ? { secret: o.secret } : {}), ...(o.adminKey ? { admin_key: o.adminKey } : {}) };
    // srtp_suite/srtp_crypto are per request and each track has its own key: one request per stream with SRTP
    const batches = o.srtp ? forwards.map((f) => [f]) : [forwards];
    for (const b of batches) {
      const r = await janus.request({ ...base, streams: b.map((f) => f.stream), ...(o.srtp ? { srtp_suite: 80, srtp_crypto: b[0].key } : {}) });
      for (const fw of r.forwarders || []) {
        const f = b.find((x) => x.t.port === fw.port);
        if (f) Object.assign(f.t, { streamId: fw.stream_id, localRtcpPort: fw.local_rtcp_port });
      }
    }
  } finally {
    fs.writeFileSync(o.state, JSON.stringify(state, null, 2) + '\n');
  }
  console.log(JSON.stringify(state, null, 2));
  if (Number(o.wait) > 0) await watch(o, state, Number(o.wait));
}

/** Prints each track's state from the recording after `seconds`. */
async function watch(o, state, seconds) {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const r = await recorder(o, 'GET', `/api/v1/recordings/${state.recordingId}`);
  if (r.status !== 200) return console.error(`get recording: ${r.status} ${r.text}`);
  for (const mine of state.tracks) {
    const t = (r.json.tracks || []).find((x) => x.trackId === mine.trackId);
    if (!t) continue;
    const fb = t.feedbackVia ? ` feedback ${t.feedbackVia} ${t.feedbackTo}` : '';
    const kf = t.kind === 'video' ? ` keyframeRequests ${t.keyframeRequests ?? 0}` : '';
    console.error(`${t.kind} ${t.trackId}: ${t.state}, ${t.packets} packets, ${t.dropped} dropped${fb}${kf}${t.error ? ` (${t.error})` : ''}`);
    if (t.feedbackVia === 'rtp') console.error('  feedback goes to the socket Janus never reads: is rtcp_port the track\'s port?');
  }
}

async function stop(o, janus) {
  const state = JSON.parse(fs.readFileSync(o.state, 'utf8'));
  let failed = false;
  for (const t of state.tracks) {
    if (t.streamId) {
      await janus.request({ request: 'stop_rtp_forward', room: state.room, publisher_id: state.publisher, stream_id: t.streamId,
        ...(o.secret ? { secret: o.secret } : {}), ...(o.adminKey ? { admin_key: o.adminKey } : {}) })
        // 428 "No such feed": the publisher left or unpublished, and Janus dropped the forwards then
        .catch((e) => console.error(e.code === 428 ? `stop_rtp_forward ${t.streamId}: already gone (the publisher left)` : `stop_rtp_forward ${t.streamId}: ${e.message}`));
    }
    const r = await recorder(o, 'DELETE', `/api/v1/recordings/${state.recordingId}/tracks/${t.trackId}`);
    // 409 not_active: the recording has stopped, and its tracks with it
    if (r.status !== 200 && r.status !== 409) {
      failed = true;
      console.error(`end track ${t.trackId}: ${r.status} ${r.text}`);
    }
  }
  if (!failed) fs.rmSync(o.state, { force: true });
  console.log(failed ? 'some tracks were not ended; state file kept' : `stopped: ${state.tracks.length} tracks ended`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) return console.log(HELP);
  o.state ||= `janus-forward-${o.room}-${o.publisher}.json`;
  if (o.stop) {
    if (!fs.existsSync(o.state)) throw new Error(`--stop: no state file ${o.state} (give --state, or --room and --publisher)`);
    const s = JSON.parse(fs.readFileSync(o.state, 'utf8'));
    o.janus ||= s.janus;
    o.recorder = s.recorder || o.recorder;
  }
  for (const k of o.stop ? ['token', 'janus'] : ['token', 'janus', 'room', 'publisher']) {
    if (!o[k]) throw new Error(`--${k} is required\n${HELP}`);
  }
  const janus = new Janus(o.janus, o.apisecret);
  await janus.open();
  try {
    await (o.stop ? stop(o, janus) : start(o, janus));
  } finally {
    await janus.close();
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
