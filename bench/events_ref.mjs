// The reference for bench/events.sh: the Node.js socket.io server (the npm
// package an integrator would otherwise run beside a recorder) with the same
// room semantics as ours: a client joins rooms with join-room (acked with
// the members), and POST /emit?room=R sends that room recording-started and
// recording-stopped, as one REST start and stop do on our server. No
// database and no token check: a lower bound for a Node events service.
//   node bench/events_ref.mjs PORT
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/package.json', import.meta.url));
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/emit') {
    const room = url.searchParams.get('room') || '';
    const id = `${Date.now()}-${Math.random()}`;
    const now = new Date().toISOString();
    io.to(room).emit('recording-started', { recordingId: id, title: 'bench', startedBy: 'x', timestamp: now });
    io.to(room).emit('recording-stopped', { recordingId: id, timestamp: now });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"ok":true}');
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(server, { transports: ['websocket'], pingInterval: 5000, pingTimeout: 5000 });
io.on('connection', (socket) => {
  socket.on('join-room', (arg, ack) => {
    const room = arg && typeof arg.roomId === 'string' ? arg.roomId : '';
    socket.join(room);
    if (typeof ack === 'function') ack({ roomId: room, recording: null, members: [] });
  });
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
