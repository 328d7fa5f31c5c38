// A throwaway Janus (Debian's `janus` package, 1.1.x) for the SFU tests: its
// own config folder in a temp dir (VideoRoom and the plain HTTP transport
// only, on a free 127.0.0.1 port, no admin API), started under `timeout` so
// that it never outlives the test, and stopped by PID. Plus a client for the
// Janus HTTP API (sessions, handles, long-polled events), VideoRoom
// publishers from headless Chromium (lib/whip.mjs's launcher and fake
// devices), and rtp_forward.
//
// Janus's ICE (libnice) never gathers loopback candidates, so the media path
// between Chromium and Janus uses the machine's own non-loopback address
// (ownAddress()); everything else, the HTTP API and the forwarded RTP, stays
// on 127.0.0.1.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, rand } from './server.mjs';
import { launchChromium } from './whip.mjs';

export const JANUS_BIN = process.env.VTP_JANUS || '/usr/bin/janus';
const LIBDIR = process.env.VTP_JANUS_LIBDIR || '/usr/lib/x86_64-linux-gnu/janus';
// Longer than any test here runs; `timeout` kills Janus after it even if the test runner dies.
const LIFETIME_SECONDS = 600;

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** Whether the Janus binary and its VideoRoom and HTTP modules are installed. */
export function janusInstalled() {
  return fs.existsSync(JANUS_BIN) && fs.existsSync(path.join(LIBDIR, 'plugins', 'libjanus_videoroom.so')) &&
    fs.existsSync(path.join(LIBDIR, 'transports', 'libjanus_http.so'));
}

/** The machine's first non-internal IPv4 address (Janus's ICE skips loopback), or null. */
export function ownAddress() {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list || []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return null;
}

/**
 * The config folder: janus.jcfg, the HTTP transport's and the VideoRoom's
 * files. The plugin and transport folders hold links to only the modules the
 * tests use, so no other plugin, transport, event handler or logger loads.
 */
function writeConfig(dir, { httpPort, ip, rtpMin }) {
  const conf = path.join(dir, 'conf');
  const plugins = path.join(dir, 'plugins');
  const transports = path.join(dir, 'transports');
  const empty = path.join(dir, 'empty');
  for (const d of [conf, plugins, transports, empty]) fs.mkdirSync(d, { recursive: true });
  fs.symlinkSync(path.join(LIBDIR, 'plugins', 'libjanus_videoroom.so'), path.join(plugins, 'libjanus_videoroom.so'));
  fs.symlinkSync(path.join(LIBDIR, 'transports', 'libjanus_http.so'), path.join(transports, 'libjanus_http.so'));
  fs.writeFileSync(path.join(conf, 'janus.jcfg'), `general: {
	configs_folder = "${conf}"
	plugins_folder = "${plugins}"
	transports_folder = "${transports}"
	events_folder = "${empty}"
	loggers_folder = "${empty}"
	debug_level = 4
	debug_timestamps = true
	debug_colors = false
	server_name = "vtp-test-${rand(3)}"
	session_timeout = 60
	protected_folders = [ "/" ]
}
certificates: {
}
media: {
	rtp_port_range = "${rtpMin}-${rtpMin + 99}"
	no_media_timer = 1
}
nat: {
	# libnice skips loopback: ICE runs on this machine's own address only
	ice_enforce_list = "${ip}"
	ice_lite = false
	full_trickle = false
}
plugins: {
}
transports: {
}
events: {
	broadcast = false
}
`);
  fs.writeFileSync(path.join(conf, 'janus.transport.http.jcfg'), `general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = ${httpPort}
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
`);
  // no static rooms: each test creates its own with the options it needs
  fs.writeFileSync(path.join(conf, 'janus.plugin.videoroom.jcfg'), `general: {
	string_ids = false
}
`);
  return conf;
}

/** A running Janus: url, pid, log(), api helpers, stop(). */
export class Janus {
  constructor(dir) {
    this.dir = dir;
    this.proc = null;
    this._log = '';
    this.sessions = new Set();
  }

  get url() { return `http://127.0.0.1:${this.port}/janus`; }
  log() { return this._log; }

  async start() {
    this.ip = ownAddress();
    if (!this.ip) throw new Error('no non-loopback IPv4 address: Janus\'s ICE cannot run on loopback only');
    this.port = await freePort();
    // outside Linux's ephemeral range (32768-60999) and the recorder's (20000-50000)
    const rtpMin = 61000 + 100 * Math.floor(Math.random() * 40);
    const conf = writeConfig(this.dir, { httpPort: this.port, ip: this.ip, rtpMin });
    // `timeout` bounds Janus's life; SIGTERM to it is passed on to Janus, and -k
    // follows with SIGKILL if Janus has not exited 5 s later.
    const p = spawn('timeout', ['-k', '5', String(LIFETIME_SECONDS), JANUS_BIN, '-F', conf, '-o', '-D'],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    this.proc = p;
    live.add(p);
    p.on('exit', () => live.delete(p));
    const keep = (d) => {
      this._log += d;
      if (this._log.length > 4e6) this._log = this._log.slice(-2e6);
    };
    p.stdout.setEncoding('utf8').on('data', keep);
    p.stderr.setEncoding('utf8').on('data', keep);
    const deadline = Date.now() + 30000;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`janus exited (${p.exitCode ?? p.signalCode}):\n${this._log}`);
      try {
        const res = await fetch(`${this.url}/info`, { signal: AbortSignal.timeout(1000) });
        const j = await res.json();
        if (j.janus === 'server_info') {
          this.info = j;
          if (!j.plugins?.['janus.plugin.videoroom']) throw new Error(`janus without the VideoRoom plugin: ${JSON.stringify(j.plugins)}`);
          return this;
        }
      } catch (e) {
        if (/VideoRoom/.test(e.message)) throw e;
      }
      if (Date.now() > deadline) throw new Error(`janus not answering on ${this.url} within 30 s:\n${this._log}`);
      await sleep(100);
    }
  }

  /** POSTs a Janus API request; resolves the JSON reply. */
  async post(pathPart, body) {
    const res = await fetch(`${this.url}${pathPart}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ transaction: rand(6), ...body }), signal: AbortSignal.timeout(15000),
    });
    return res.json();
  }

  /** A session with a handle attached to the VideoRoom plugin, its events long-polled. */
  async session() {
    const s = new JanusSession(this);
    await s.open();
    this.sessions.add(s);
    return s;
  }

  /** Creates a VideoRoom room; resolves its numeric id. */
  async createRoom(opts = {}) {
    const s = await this.session();
    const room = opts.room || 1000 + Math.floor(Math.random() * 1e6);
    const r = await s.request({
      request: 'create', room, description: `vtp test ${room}`, publishers: 6, bitrate: 512000,
      audiocodec: 'opus', videocodec: 'vp8', permanent: false, ...opts,
    });
    if (r.videoroom !== 'created') throw new Error(`room create: ${JSON.stringify(r)}`);
    this.admin = s;
    return room;
  }

  /**
   * rtp_forward a publisher's streams (Janus 1.1's `streams` syntax:
   * [{mid, port, rtcp_port?, pt?, ssrc?}]) to 127.0.0.1; resolves the
   * reply's forwarders [{stream_id, type, port, local_rtcp_port, ...}].
   */
  async rtpForward(room, publisherId, streams) {
    const r = await this.admin.request({ request: 'rtp_forward', room, publisher_id: publisherId, host: '127.0.0.1', host_family: 'ipv4', streams });
    if (r.videoroom !== 'rtp_forward') throw new Error(`rtp_forward: ${JSON.stringify(r)}`);
    return r.forwarders;
  }

  async stopRtpForward(room, publisherId, streamId) {
    const r = await this.admin.request({ request: 'stop_rtp_forward', room, publisher_id: publisherId, stream_id: streamId });
    if (r.videoroom !== 'stop_rtp_forward') throw new Error(`stop_rtp_forward: ${JSON.stringify(r)}`);
    return r;
  }

  /** Kills Janus by PID (through `timeout`, which passes SIGTERM on; SIGKILL after 5 s). */
  async stop() {
    for (const s of this.sessions) s.closed = true;
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }, 8000);
    await gone;
    clearTimeout(t);
  }
}

/** One Janus session and one VideoRoom handle in it; events kept in order from a long poll. */
class JanusSession {
  constructor(janus) {
    this.janus = janus;
    this.events = [];
    this.closed = false;
  }

  async open() {
    const c = await this.janus.post('', { janus: 'create' });
    if (c.janus !== 'success') throw new Error(`janus create: ${JSON.stringify(c)}`);
    this.id = c.data.id;
    const a = await this.janus.post(`/${this.id}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    if (a.janus !== 'success') throw new Error(`janus attach: ${JSON.stringify(a)}`);
    this.handle = a.data.id;
    this._poll();
  }

  // The long poll also keeps the session alive (session_timeout).
  async _poll() {
    while (!this.closed) {
      try {
        const res = await fetch(`${this.janus.url}/${this.id}?maxev=10&rid=${Date.now()}`, { signal: AbortSignal.timeout(40000) });
        const j = await res.json();
        for (const e of Array.isArray(j) ? j : [j]) if (e.janus !== 'keepalive') this.events.push(e);
      } catch {
        if (!this.closed) await sleep(200);
      }
    }
  }

  /** A synchronous plugin request (create, rtp_forward, listparticipants, ...): resolves plugindata.data. */
  async request(body) {
    const r = await this.janus.post(`/${this.id}/${this.handle}`, { janus: 'message', body });
    if (r.janus !== 'success') throw new Error(`janus ${body.request}: ${JSON.stringify(r)}`);
    return r.plugindata.data;
  }

  /** An asynchronous plugin request (join, publish, leave): acked, then answered by an event. */
  async send(body, jsep) {
    const from = this.events.length;
    const r = await this.janus.post(`/${this.id}/${this.handle}`, { janus: 'message', body, ...(jsep ? { jsep } : {}) });
    if (r.janus !== 'ack' && r.janus !== 'success') throw new Error(`janus ${body.request}: ${JSON.stringify(r)}`);
    return from;
  }

  /** The first event from index `from` on that satisfies pred. */
  async waitEvent(what, pred, { from = 0, timeoutMs = 30000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.events.length; i++) {
        const e = this.events[i];
        const err = e.plugindata?.data?.error;
        if (err && i >= from) throw new Error(`janus error waiting for ${what}: ${JSON.stringify(e)}`);
        if (pred(e)) return e;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events).slice(-3000)}`);
      await sleep(50);
    }
  }

  async destroy() {
    this.closed = true;
    try { await this.janus.post(`/${this.id}`, { janus: 'destroy' }); } catch { /* janus gone */ }
  }
}

// The publisher page: getUserMedia, a sendonly PeerConnection whose offer
// carries its candidates (no trickle), and the answer set when given.
const PAGE = `<!doctype html><meta charset="utf-8"><title>Janus publisher</title>
<script>
let pc;
async function makeOffer() {
  // a steady sine is what noise suppression removes first: raw microphone
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false }, video: { width: 320, height: 240 } });
  pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 10000);
    });
  }
  return pc.localDescription.sdp;
}
async function setAnswer(sdp) { await pc.setRemoteDescription({ type: 'answer', sdp }); }
async function state() {
  const stats = await pc.getStats();
  let bytes = 0, pairs = 0, local = null, remote = null;
  stats.forEach((s) => {
    if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0;
    if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) {
      pairs++;
      local = stats.get(s.localCandidateId)?.address; remote = stats.get(s.remoteCandidateId)?.address;
    }
  });
  return { ice: pc.iceConnectionState, conn: pc.connectionState, bytes, pairs, local, remote };
}
function close() { if (pc) pc.close(); }
</script>`;

/** Serves the publisher page on 127.0.0.1; resolves {url, close}. */
export function servePublisherPage() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    });
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

/** rtpmap payload type of `codec` (e.g. 'VP8', 'opus') in the m-section of `kind` of an SDP. */
export function payloadTypeOf(sdp, kind, codec) {
  const sections = sdp.split(/\r?\n(?=m=)/);
  const sec = sections.find((s) => s.startsWith(`m=${kind} `));
  if (!sec) return null;
  const m = sec.match(new RegExp(`^a=rtpmap:(\\d+) ${codec}/`, 'mi'));
  return m ? Number(m[1]) : null;
}

/**
 * A VideoRoom publisher: its own Chromium (fake camera and microphone from
 * `media`), its own Janus session. publish() joins the room and publishes;
 * resolves {id, streams: [{type, mid, codec}], offer, answer}.
 */
export class Publisher {
  constructor(janus, media, display) {
    this.janus = janus;
    this.media = media;
    this.display = display;
  }

  async publish(room, pageUrl) {
    this.browser = await launchChromium(this.media);
    this.tab = await this.browser.newPage();
    await this.tab.goto(pageUrl);
    this.session = await this.janus.session();
    let from = await this.session.send({ request: 'join', ptype: 'publisher', room, display: this.display });
    const joined = await this.session.waitEvent('joined', (e) => e.plugindata?.data?.videoroom === 'joined', { from });
    this.id = joined.plugindata.data.id;
    this.room = room;
    this.offer = await this.tab.evaluate(() => makeOffer());
    from = await this.session.send({ request: 'publish', display: this.display }, { type: 'offer', sdp: this.offer });
    const ev = await this.session.waitEvent('the answer', (e) => e.jsep?.type === 'answer', { from });
    this.answer = ev.jsep.sdp;
    this.streams = ev.plugindata.data.streams || [];
    await this.tab.evaluate((sdp) => setAnswer(sdp), this.answer);
    await this.session.waitEvent('webrtcup', (e) => e.janus === 'webrtcup', { from });
    return { id: this.id, streams: this.streams, offer: this.offer, answer: this.answer };
  }

  state() { return this.tab.evaluate(() => state()); }

  mid(kind) { return this.streams.find((s) => s.type === kind)?.mid; }

  /** Leaves the room (unpublishes), closes the PeerConnection. */
  async leave() {
    const from = await this.session.send({ request: 'leave' });
    await this.session.waitEvent('left', (e) => e.plugindata?.data?.leaving === 'ok', { from });
    await this.tab.evaluate(() => close());
  }

  async close() {
    if (this.session) await this.session.destroy();
    if (this.browser) await this.browser.close();
  }
}

/** Starts a Janus in `dir`; resolves the Janus. */
export async function startJanus(dir) {
  const j = new Janus(dir);
  await j.start();
  return j;
}
