// WHIP publishers for the tests: Debian's Chromium (playwright-core) with
// fake capture devices fed from generated files, GStreamer's webrtcbin
// (whip_gst.py), and vtp-whipgen (bench/whipgen.c). All media stays on
// 127.0.0.1.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { run } from './media.mjs';

/** A solid-colour Y4M video and a sine WAV for Chromium's fake devices. */
export async function fakeMedia(dir, { rgb = [200, 40, 160], freq = 660, seconds = 4 } = {}) {
  const hex = rgb.map((v) => v.toString(16).padStart(2, '0')).join('');
  const y4m = path.join(dir, 'fake.y4m');
  const wav = path.join(dir, 'fake.wav');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    `color=c=0x${hex}:s=320x240:r=15:d=${seconds}`, '-pix_fmt', 'yuv420p', y4m]);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    `sine=frequency=${freq}:sample_rate=48000:duration=${seconds}`, '-ac', '1', '-c:a', 'pcm_s16le', wav]);
  return { y4m, wav };
}

// The publisher page: getUserMedia, a sendonly PeerConnection, and WHIP
// (POST the offer, set the answer; DELETE on request). Served by the test
// from its own origin, so the recorder's CORS answers are exercised too.
const PAGE = `<!doctype html><meta charset="utf-8"><title>WHIP publisher</title>
<script>
let pc, location_;
async function publish(url, token, codec) {
  // a steady sine is what noise suppression removes first: raw microphone
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false }, video: { width: 320, height: 240 } });
  pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  for (const t of stream.getTracks()) {
    const tr = pc.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
    if (codec && t.kind === 'video') { // e.g. 'H264': only that codec is offered
      const want = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() === 'video/' + codec.toLowerCase());
      tr.setCodecPreferences(want);
    }
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) return { status: res.status, text };
  location_ = new URL(res.headers.get('Location'), url).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return { status: res.status, location: location_, answer: text };
}
async function state() {
  const stats = await pc.getStats();
  let bytes = 0, pairs = 0;
  stats.forEach((s) => { if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0; if (s.type === 'candidate-pair' && s.state === 'succeeded') pairs++; });
  return { ice: pc.iceConnectionState, conn: pc.connectionState, bytes, pairs };
}
async function unpublish(token) {
  const res = await fetch(location_, { method: 'DELETE', headers: { Authorization: 'Bearer ' + token } });
  pc.close();
  return res.status;
}
</script>`;

/** Serves PAGE on 127.0.0.1; resolves {url, close}. */
export function servePage() {
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

/** Chromium with fake devices from the given files. */
export async function launchChromium({ y4m, wav }) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', `--use-file-for-fake-video-capture=${y4m}`,
      `--use-file-for-fake-audio-capture=${wav}`],
  });
}

/** Starts tests/integration/lib/whip_gst.py; resolves the child once it prints "connected". */
export function startGstPublisher({ url, token, pattern = 'smpte', freq = 440, seconds = 30 }) {
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'whip_gst.py');
  const child = spawn(process.env.VTP_PYTHON || '/usr/bin/python3', [script, '--url', url, '--token', token, '--pattern', pattern,
    '--freq', String(freq), '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code))); // after stdout drained
  return { child, exited, output: () => out, errors: () => err };
}

/** Runs vtp-whipgen; resolves its JSON summary (or throws with its stderr). */
export async function whipgen(bin, args, { timeoutMs = 60000 } = {}) {
  const r = await run(bin, args, { timeoutMs });
  const line = r.stdout.trim().split('\n').pop();
  try {
    return { ...JSON.parse(line), code: r.code, stderr: r.stderr };
  } catch {
    throw new Error(`whipgen printed no summary (exit ${r.code}): ${r.stderr}`);
  }
}

/** Sum of a Prometheus counter/gauge with the given labels in /metrics text. */
export function metric(text, name, labels = '') {
  const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}]/g, '')}\\}` : ''} ([0-9.e+]+)$`, 'm');
  const m = text.match(re);
  return m ? Number(m[1]) : 0;
}

export function exists(p) {
  return fs.existsSync(p);
}
