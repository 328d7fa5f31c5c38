// The client side of bench/events.sh: many stock socket.io-client
// connections (WebSocket transport) in one Node process.
//   1. connect CLIENTS clients, each joins its classroom (ROOM_SIZE per room);
//      prints "ready" on stderr and waits IDLE seconds (the caller measures
//      the server's memory and idle CPU meanwhile);
//   2. the first HALL clients also join one lecture hall; then CYCLES times
//      a recording is started and stopped in the hall (our server: REST start
//      then stop with an instructor token; the reference: POST /emit, which
//      sends the same two events) and the time from the trigger to the moment
//      the last hall client has recording-stopped is the cycle's latency.
// Prints one JSON summary on stdout. Bounded: every wait has a deadline.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/package.json', import.meta.url));
const { io } = require('socket.io-client');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const url = arg('url');
const token = arg('token', '');
const mode = arg('mode', 'vtp'); // vtp | ref
const CLIENTS = Number(arg('clients', 1000));
const ROOM_SIZE = Number(arg('room-size', 5));
const HALL = Math.min(CLIENTS, Number(arg('hall', 500)));
const CYCLES = Number(arg('cycles', 20));
const IDLE = Number(arg('idle', 10));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withDeadline(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

async function connectOne(i) {
  const s = io(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  await withDeadline(new Promise((res, rej) => { s.once('connect', res); s.once('connect_error', rej); }), 30000, 'connect');
  await withDeadline(s.emitWithAck('join-room', { roomId: `class-${Math.floor(i / ROOM_SIZE)}` }), 30000, 'join');
  return s;
}

async function post(path, body) {
  const res = await fetch(new URL(path, url), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

const sockets = [];
const t0 = performance.now();
for (let i = 0; i < CLIENTS; i += 100) {
  const batch = [];
  for (let j = i; j < Math.min(CLIENTS, i + 100); j++) batch.push(connectOne(j));
  sockets.push(...await Promise.all(batch));
}
const connectSeconds = (performance.now() - t0) / 1000;
process.stderr.write('ready\n');
await sleep(IDLE * 1000);

const hall = sockets.slice(0, HALL);
await Promise.all(hall.map((s) => withDeadline(s.emitWithAck('join-room', { roomId: 'hall' }), 30000, 'join hall')));
process.stderr.write('hall\n');
await sleep(1500); // room-members of the joins go out before the first cycle

const latencies = [];
let delivered = 0;
for (let c = 0; c < CYCLES; c++) {
  let left = hall.length;
  let done;
  const all = new Promise((r) => { done = r; });
  const handlers = hall.map((s) => {
    const h = () => { delivered++; if (--left === 0) done(); };
    s.once('recording-stopped', h);
    return [s, h];
  });
  hall.forEach((s) => s.once('recording-started', () => { delivered++; }));
  const start = performance.now();
  if (mode === 'vtp') {
    const r = await post('/api/v1/recordings/start', { roomId: 'hall', title: `cycle ${c}` });
    await post(`/api/v1/recordings/${r.recordingId}/stop`);
  } else {
    await post('/emit?room=hall');
  }
  await withDeadline(all, 30000, `cycle ${c}`);
  latencies.push(performance.now() - start);
  handlers.forEach(([s, h]) => s.off('recording-stopped', h));
}
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({
  mode, clients: CLIENTS, roomSize: ROOM_SIZE, hall: HALL, cycles: CYCLES,
  connectSeconds: +connectSeconds.toFixed(2),
  connectsPerSecond: Math.round(CLIENTS / connectSeconds),
  latencyMs: { p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), max: +latencies[latencies.length - 1].toFixed(1) },
  delivered,
}));
for (const s of sockets) s.close();
process.exit(0);
