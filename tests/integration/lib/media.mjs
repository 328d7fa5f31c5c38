// Real media for the ingest tests: ffmpeg and GStreamer senders, a counting
// UDP relay between a sender and the recorder, a reader for the packet-log
// format (docs/ARCHITECTURE.md), and a decoder check that replays a capture into
// ffmpeg's own RTP demuxer (libavformat/libavcodec) and counts the frames it
// decodes. Plus a node VP8 RTP sender (one packet per frame, keyframes when
// told) and a socket that counts the RTCP feedback it receives.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './server.mjs';

/** Runs a command to completion; resolves {code, stdout, stderr}. */
export function run(cmd, args, { timeoutMs = 60000, env } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/**
 * A UDP relay: the sender sends to relay.port, the relay forwards each
 * datagram from one socket to the recorder (so RTP and RTCP arrive muxed,
 * from one address) and counts what passed in each direction. Feedback from
 * the recorder (RR, PLI, FIR) is counted by RTCP type and forwarded back to
 * the last sender address.
 */
export class Relay {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.rtp = 0;
    this.rtcp = 0;
    this.rtpBytes = 0;
    this.feedback = { rr: 0, pli: 0, fir: 0, other: 0 };
    this.seqs = new Set();
  }

  async start() {
    this.inSock = dgram.createSocket('udp4');
    this.outSock = dgram.createSocket('udp4');
    await new Promise((r) => this.inSock.bind(0, '127.0.0.1', r));
    await new Promise((r) => this.outSock.bind(0, '127.0.0.1', r));
    this.port = this.inSock.address().port;
    this.inSock.on('message', (msg, rinfo) => {
      this.sender = rinfo;
      const pt = msg.length > 1 ? msg[1] : 0;
      if (pt >= 192 && pt <= 223) this.rtcp++;
      else if (msg.length >= 12) {
        this.rtp++;
        this.rtpBytes += msg.length;
        this.seqs.add(msg.readUInt16BE(2));
      }
      this.outSock.send(msg, this.targetPort, '127.0.0.1');
    });
    this.outSock.on('message', (msg) => {
      // walk the compound packet
      for (let off = 0; off + 4 <= msg.length;) {
        const pt = msg[off + 1];
        const fmt = msg[off] & 0x1f;
        if (pt === 201) this.feedback.rr++;
        else if (pt === 206 && fmt === 1) this.feedback.pli++;
        else if (pt === 206 && fmt === 4) this.feedback.fir++;
        else this.feedback.other++;
        off += (msg.readUInt16BE(off + 2) + 1) * 4;
      }
    });
    return this;
  }

  /** Sends raw bytes to the recorder from the relay's own socket. */
  inject(buf) { return new Promise((r) => this.outSock.send(buf, this.targetPort, '127.0.0.1', r)); }

  close() {
    try { this.inSock.close(); } catch { /* already closed */ }
    try { this.outSock.close(); } catch { /* already closed */ }
  }
}

/** ffmpeg sending a test pattern and a tone as RTP: video and/or audio. */
export function ffmpegArgs({ videoPort, audioPort, seconds = 3, video = 'vp8', videoPt = 96, audioPt = 111 }) {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  if (videoPort) args.push('-re', '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=30:duration=${seconds}`);
  if (audioPort) args.push('-re', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`);
  let input = 0;
  if (videoPort) {
    args.push('-map', `${input++}:v`);
    if (video === 'vp8') args.push('-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k', '-g', '30');
    else args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-g', '30', '-b:v', '400k');
    args.push('-payload_type', String(videoPt), '-ssrc', '11111111', '-f', 'rtp', `rtp://127.0.0.1:${videoPort}?pkt_size=1200&rtcpport=${videoPort}`);
  }
  if (audioPort) {
    args.push('-map', `${input++}:a`, '-c:a', 'libopus', '-b:a', '48k', '-payload_type', String(audioPt),
      '-ssrc', '22222222', '-f', 'rtp', `rtp://127.0.0.1:${audioPort}?rtcpport=${audioPort}`);
  }
  return args;
}

// ---- packet log reader (the format of docs/ARCHITECTURE.md / src/capture/capture.h) ----

/** Parses a track's capture (its first file and segments): {meta, records:[{kind, arrivalNs, data}], end, size, segments}. */
export function readCapture(file) {
  // A track is its first file and the segments after it, FILE.000002, ...
  // (capture.h "Segments"): read in order as one, like the server's reader.
  const dir = path.dirname(file);
  const base = path.basename(file);
  const more = fs.readdirSync(dir)
    .filter((n) => n.startsWith(`${base}.`) && /^\d{1,9}$/.test(n.slice(base.length + 1)))
    .map((n) => ({ n, i: Number(n.slice(base.length + 1)) }))
    .filter((x) => x.i >= 2)
    .sort((a, b) => a.i - b.i);
  const files = [file, ...more.map((x) => path.join(dir, x.n))];
  let meta = null;
  const records = [];
  let end = 'clean';
  let size = 0;
  for (const f of files) {
    const buf = fs.readFileSync(f);
    size += buf.length;
    if (buf.length < 20 || buf.subarray(0, 8).toString('latin1') !== 'VTPCAP\r\n') {
      if (f === file) throw new Error(`${file}: not a capture`);
      end = 'torn'; // a segment made just before a crash
      continue;
    }
    const metaLen = buf.readUInt32LE(12);
    if (!meta) meta = JSON.parse(buf.subarray(16, 16 + metaLen).toString('utf8'));
    let off = 16 + metaLen + 4;
    end = 'clean';
    while (off < buf.length) {
      if (off + 13 > buf.length) { end = 'torn'; break; }
      const len = buf.readUInt32LE(off);
      if (off + 13 + len + 4 > buf.length) { end = 'torn'; break; }
      records.push({
        arrivalNs: buf.readBigUInt64LE(off + 4),
        kind: buf[off + 12],
        data: buf.subarray(off + 13, off + 13 + len),
      });
      off += 13 + len + 4;
    }
  }
  return { meta, records, end, size, segments: files.length };
}

function sdpFor(meta, port) {
  const media = meta.kind === 'video' ? 'video' : 'audio';
  const enc = { vp8: 'VP8/90000', h264: 'H264/90000', opus: 'opus/48000/2' }[meta.codec];
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=capture', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=${media} ${port} RTP/AVP ${meta.payloadType}`, `a=rtpmap:${meta.payloadType} ${enc}`];
  if (meta.codec === 'h264') lines.push(`a=fmtp:${meta.payloadType} packetization-mode=1`);
  return `${lines.join('\n')}\n`;
}

/** An even UDP port whose successor is free too (RTP + RTCP). */
async function udpPortPair() {
  for (let i = 0; i < 50; i++) {
    const port = 30000 + 2 * Math.floor(Math.random() * 10000);
    if (!(await portBound(port)) && !(await portBound(port + 1))) return port;
  }
  throw new Error('no free UDP port pair');
}

async function portBound(port) {
  const s = dgram.createSocket('udp4');
  try {
    await new Promise((resolve, reject) => { s.once('error', reject); s.bind(port, '127.0.0.1', resolve); });
    return false;
  } catch {
    return true;
  } finally {
    try { s.close(); } catch { /* not bound */ }
  }
}

/**
 * Replays the RTP packets of a capture into ffmpeg's RTP demuxer (an SDP
 * input) and decodes them. Resolves {frames, errors, stderr}: frames is the
 * number of frames ffmpeg decoded (one framecrc line each).
 */
export async function decodeCapture(file) {
  const cap = readCapture(file);
  const port = await udpPortPair();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-decode-'));
  const sdp = path.join(dir, 'in.sdp');
  fs.writeFileSync(sdp, sdpFor(cap.meta, port));
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', 'file,udp,rtp',
    '-reorder_queue_size', '0', '-buffer_size', '8388608', '-listen_timeout', '1', '-i', sdp, '-map', '0', '-f', 'framecrc', '-'];
  const done = run('ffmpeg', args, { timeoutMs: 60000 });
  for (let i = 0; i < 100 && !(await portBound(port)); i++) await sleep(50);
  const sock = dgram.createSocket('udp4');
  let sent = 0;
  for (const r of cap.records) {
    if (r.kind !== 1) continue;
    sock.send(r.data, port, '127.0.0.1');
    if (++sent % 20 === 0) await sleep(2);
  }
  await sleep(300);
  // RTCP BYE: the demuxer's end of stream (one per stream)
  const bye = Buffer.from([0x81, 203, 0, 1, 0, 0, 0, 0]);
  const ssrc = cap.records.find((r) => r.kind === 1)?.data.readUInt32BE(8) ?? 0;
  bye.writeUInt32BE(ssrc, 4);
  sock.send(bye, port + 1, '127.0.0.1');
  sock.send(bye, port, '127.0.0.1');
  const res = await done;
  sock.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const frames = res.stdout.split('\n').filter((l) => /^\d+,/.test(l)).length;
  // the end of input is a read timeout (no more packets): not a decode error
  const stderr = res.stderr.split('\n').filter((l) => l && !/timed out|Last message repeated/i.test(l)).join('\n');
  return { frames, sent, code: res.code, stderr };
}

// ---- senders and relays for the composition tests ---------------------------------

/**
 * A Relay that also notes when the first and last RTP packets passed
 * (milliseconds, Date.now() scale with sub-millisecond precision), can
 * drop a fraction of the RTP packets at random (RTCP always passes) and
 * can hold every datagram back by delayMs (a slower network path; order
 * kept). The random choice is a seeded xorshift, so a failure can be
 * replayed with the same seed.
 */
export class MediaRelay extends Relay {
  constructor(targetPort, { loss = 0, seed = 0x9e3779b9, delayMs = 0 } = {}) {
    super(targetPort);
    this.loss = loss;
    this.delayMs = delayMs;
    this.seed = seed >>> 0 || 1;
    this.state = this.seed;
    this.dropped = 0;
    this.forwarded = 0;
    this.firstRtpAt = null;
    this.lastRtpAt = null;
  }

  random() {
    let x = this.state;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.state = x;
    return x / 4294967296;
  }

  async start() {
    await super.start();
    this.inSock.removeAllListeners('message');
    this.inSock.on('message', (msg, rinfo) => {
      this.sender = rinfo;
      const pt = msg.length > 1 ? msg[1] : 0;
      if (pt >= 192 && pt <= 223) {
        this.rtcp++;
      } else if (msg.length >= 12) {
        const now = performance.timeOrigin + performance.now();
        if (this.firstRtpAt === null) this.firstRtpAt = now;
        this.lastRtpAt = now;
        this.rtp++;
        this.rtpBytes += msg.length;
        this.seqs.add(msg.readUInt16BE(2));
        if (this.loss > 0 && this.random() < this.loss) { this.dropped++; return; }
        this.forwarded++;
      }
      if (this.delayMs > 0) setTimeout(() => this.forward(msg), this.delayMs);
      else this.forward(msg);
    });
    return this;
  }

  forward(msg) {
    try { this.outSock.send(msg, this.targetPort, '127.0.0.1'); } catch { /* closed meanwhile */ }
  }
}

// One encoder thread: libvpx's row threads wait for each other by spinning,
// and on a busy machine (several senders, the composer, a build) a
// multi-threaded sender falls to a tenth of real time.
const VIDEO_ENCODERS = {
  vp8: ['-c:v', 'libvpx', '-threads', '1', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p'],
  h264: ['-c:v', 'libx264', '-threads', '1', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p'],
};

/**
 * ffmpeg arguments for one peer sending generated media as RTP from ONE
 * process and ONE lavfi input (so audio and video share the sender's clock,
 * read at the native rate with -re):
 *   video: {port, source (a lavfi video graph, e.g. "color=red:s=320x240:r=30"),
 *           codec 'vp8'|'h264', pt, ssrc, bitrate ('400k'), gop (frames)}
 *   audio: {port, source (a lavfi audio graph, e.g. "sine=f=440:r=48000"), pt, ssrc}
 * `seconds` bounds both (lavfi sources given here should not end earlier).
 * RTCP goes to the same port as RTP (muxed): send through a relay so that
 * both come from one address.
 */
export function lavfiSenderArgs({ seconds, video, audio }) {
  const graphs = [];
  if (video) graphs.push(`${video.source}[out${graphs.length}]`);
  if (audio) graphs.push(`${audio.source}[out${graphs.length}]`);
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-t', String(seconds), '-i', graphs.join(';')];
  if (video) {
    const enc = VIDEO_ENCODERS[video.codec || 'vp8'];
    args.push('-map', '0:v:0', ...enc, '-b:v', video.bitrate || '400k', '-g', String(video.gop || 30),
      '-payload_type', String(video.pt ?? 96), '-ssrc', String(video.ssrc ?? 11111111),
      '-f', 'rtp', `rtp://127.0.0.1:${video.port}?pkt_size=1200&rtcpport=${video.port}`);
  }
  if (audio) {
    args.push('-map', '0:a:0', '-c:a', 'libopus', '-b:a', '48k', '-ar', '48000',
      '-payload_type', String(audio.pt ?? 111), '-ssrc', String(audio.ssrc ?? 22222222),
      '-f', 'rtp', `rtp://127.0.0.1:${audio.port}?rtcpport=${audio.port}`);
  }
  return args;
}

/**
 * ffmpeg arguments that send the first video stream of an already encoded
 * file (VP8 in WebM, say) as RTP without re-encoding, at its native rate.
 */
export function fileSenderArgs({ file, port, pt = 96, ssrc = 33333333 }) {
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-i', file, '-map', '0:v:0', '-c', 'copy',
    '-payload_type', String(pt), '-ssrc', String(ssrc),
    '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200&rtcpport=${port}`];
}

/** A UDP socket that counts the RTCP it receives (PLI, FIR, RR), with arrival times of PLIs. */
export async function feedbackSocket(host = '127.0.0.1') {
  const s = dgram.createSocket('udp4');
  await new Promise((res, rej) => { s.once('error', rej); s.bind(0, host, res); });
  s.fb = { rr: 0, pli: 0, fir: 0, other: 0, pliAt: [] };
  s.on('message', (msg) => {
    for (let off = 0; off + 4 <= msg.length;) {
      const pt = msg[off + 1];
      const fmt = msg[off] & 0x1f;
      if (pt === 201) s.fb.rr++;
      else if (pt === 206 && fmt === 1) { s.fb.pli++; s.fb.pliAt.push(Date.now()); }
      else if (pt === 206 && fmt === 4) s.fb.fir++;
      else s.fb.other++;
      off += (msg.readUInt16BE(off + 2) + 1) * 4;
    }
  });
  s.port = s.address().port;
  return s;
}

/**
 * A node sender of VP8 RTP packets, one frame per packet: delta frames until
 * key() is called. firstKey: the first frame is a keyframe; keyEveryMs: a
 * keyframe that often on its own (as an encoder with a keyframe interval).
 */
export class Vp8Sender {
  constructor(sock, port, { pt = 96, ssrc = 0x1234abcd, firstKey = false, keyEveryMs = 0 } = {}) {
    Object.assign(this, { sock, port, pt, ssrc, seq: 1000, ts: 0, keyNext: firstKey, sent: 0, keys: 0, keyEveryMs });
  }
  packet(key) {
    const b = Buffer.alloc(12 + 2 + 40, 0x5a);
    b[0] = 0x80; b[1] = 0x80 | this.pt; // marker: one packet per frame
    b.writeUInt16BE(this.seq++ & 0xffff, 2); b.writeUInt32BE(this.ts >>> 0, 4); b.writeUInt32BE(this.ssrc >>> 0, 8);
    b[12] = 0x10; // VP8 payload descriptor: S=1, PID 0
    b[13] = key ? 0x00 : 0x01; // VP8 payload header: P=0 keyframe, P=1 interframe
    this.ts += 3000;
    return b;
  }
  start(fps = 30) {
    this.timer = setInterval(() => {
      const key = this.keyNext;
      this.keyNext = false;
      this.sock.send(this.packet(key), this.port, '127.0.0.1');
      this.sent++;
      if (key) this.keys++;
    }, Math.round(1000 / fps));
    if (this.keyEveryMs) this.keyTimer = setInterval(() => this.key(), this.keyEveryMs);
    return this;
  }
  key() { this.keyNext = true; }
  stop() { clearInterval(this.timer); clearInterval(this.keyTimer); }
}
