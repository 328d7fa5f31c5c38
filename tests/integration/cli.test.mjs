// CLI contract: --help, --version, unknown flags, bad configuration, migrate,
// user add / token, and the first-start admin account + JWT secret file.

// sanitizer pass: sqlite only: the jobs, spool, CLI and events code is the same C on both backends, and the store's PostgreSQL side runs under the sanitizers in unit_store; make test's time keeps the PostgreSQL variant to the release pass.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync, existsSync, unlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BIN, BACKEND, Context, runCli, startServer, cleanupAll, rand, freePort } from './lib/server.mjs';
import { UUID_RE, PASSWORD, show } from './lib/util.mjs';

after(cleanupAll);

const nonEmptyLines = (s) => s.split('\n').filter((l) => l.trim() !== '');

test('binary exists', () => {
  assert.ok(existsSync(BIN), `VTP_BIN ${BIN} does not exist`);
});

test('--help exits 0 and lists the subcommands', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, `--help exit code ${r.code}; stderr: ${r.stderr}`);
  for (const sub of ['serve', 'migrate', 'user', 'token']) {
    assert.match(r.stdout, new RegExp(`\\b${sub}\\b`), `--help output lacks "${sub}":\n${r.stdout}`);
  }
  // printed as is: no printf escape shows
  assert.ok(!r.stdout.includes('%%'), `--help shows "%%": ${r.stdout.split('\n').filter((l) => l.includes('%%')).join('\n')}`);
  assert.match(r.stdout, /VTP_METRICS_TOKEN/, 'the metrics token is documented in --help');
});

test('--version exits 0 and prints a version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, `--version exit code ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stdout, /\d+\.\d+/, `--version printed no version: ${JSON.stringify(r.stdout)}`);
});

test('an unknown flag exits 2 with one line on stderr', async () => {
  for (const args of [['--no-such-flag'], ['serve', '--no-such-flag']]) {
    const ctx = new Context();
    const r = await runCli(args, { ctx, timeoutMs: 10000 });
    assert.equal(r.timedOut, false, `${args.join(' ')} did not exit (server started?)`);
    assert.equal(r.code, 2, `${args.join(' ')}: exit code ${r.code}; stderr: ${r.stderr}`);
    const lines = nonEmptyLines(r.stderr);
    assert.equal(lines.length, 1, `${args.join(' ')}: expected one stderr line, got:\n${r.stderr}`);
    ctx.destroy();
  }
});

test('an unknown subcommand exits 2', async () => {
  const r = await runCli(['no-such-subcommand']);
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
  assert.ok(r.stderr.trim().length > 0, 'no error message on stderr');
});

const badConfigs = [
  { env: { VTP_LISTEN: 'nonsense' }, names: ['VTP_LISTEN'] },
  { env: { VTP_LISTEN: '127.0.0.1:99999' }, names: ['VTP_LISTEN'] },
  { env: { VTP_WORKERS: '-1' }, names: ['VTP_WORKERS'] },
  { env: { VTP_WORKERS: 'many' }, names: ['VTP_WORKERS'] },
  { env: { VTP_LOG_FORMAT: 'xml' }, names: ['VTP_LOG_FORMAT'] },
  { env: { VTP_RTP_PORT_MIN: '50000', VTP_RTP_PORT_MAX: '40000' }, names: ['VTP_RTP_PORT_MIN', 'VTP_RTP_PORT_MAX'] },
  { env: { VTP_RETENTION_DAYS: 'soon' }, names: ['VTP_RETENTION_DAYS'] },
  { env: { VTP_SEGMENT_SECONDS: '0' }, names: ['VTP_SEGMENT_SECONDS'] },
  { env: { VTP_SEGMENT_SECONDS: '5s' }, names: ['VTP_SEGMENT_SECONDS'] },
  { env: { VTP_WORKER_CAPACITY: '0' }, names: ['VTP_WORKER_CAPACITY'] },
  { env: { VTP_WORKER_CAPACITY: '-2' }, names: ['VTP_WORKER_CAPACITY'] },
  { env: { VTP_WORKER_CAPACITY: 'lots' }, names: ['VTP_WORKER_CAPACITY'] },
  { env: { VTP_WORKER_CAPACITY: '1.2345' }, names: ['VTP_WORKER_CAPACITY'] },
  { env: { VTP_WORKER_CAPACITY: '1e3' }, names: ['VTP_WORKER_CAPACITY'] },
  { env: { VTP_DRAIN_SECONDS: 'soon' }, names: ['VTP_DRAIN_SECONDS'] },
];

for (const bc of badConfigs) {
  const desc = Object.entries(bc.env).map(([k, v]) => `${k}=${v}`).join(' ');
  test(`bad config ${desc} → exit 2 naming the variable`, async () => {
    const ctx = new Context();
    // The listen address is valid unless under test, so a wrongly started server cannot clash.
    const extraEnv = { VTP_LISTEN: `127.0.0.1:${await freePort()}`, ...bc.env };
    const r = await runCli(['serve'], { ctx, extraEnv, timeoutMs: 10000 });
    assert.equal(r.timedOut, false, `serve with ${desc} kept running instead of failing`);
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.ok(bc.names.some((n) => r.stderr.includes(n)), `stderr does not name ${bc.names.join('/')}:\n${r.stderr}`);
    ctx.destroy();
  });
}

test('migrate exits 0 on a fresh database and again when up to date', async () => {
  const ctx = new Context({ sqliteUrl: true });
  const r1 = await runCli(['migrate'], { ctx });
  assert.equal(r1.code, 0, `migrate: exit ${r1.code}; stderr: ${r1.stderr}`);
  const r2 = await runCli(['migrate'], { ctx });
  assert.equal(r2.code, 0, `second migrate: exit ${r2.code}; stderr: ${r2.stderr}`);
  if (BACKEND === 'sqlite') {
    assert.ok(existsSync(path.join(ctx.dataDir, 'vtp.db')), 'explicit sqlite:// URL: vtp.db not created at the given path');
  }
  ctx.destroy();
});

test('user add prints an id; duplicates and bad roles fail; token needs a known user', async () => {
  const ctx = new Context();
  const email = `cli-${rand(4)}@example.test`;
  const r = await runCli(['user', 'add', '--email', email, '--name', 'Cli User', '--role', 'instructor', '--password-stdin'],
    { ctx, input: `${PASSWORD}\n` });
  assert.equal(r.code, 0, `user add: exit ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stdout.trim(), UUID_RE, `user add should print the id: ${JSON.stringify(r.stdout)}`);

  const dup = await runCli(['user', 'add', '--email', email, '--name', 'Again', '--role', 'instructor', '--password-stdin'],
    { ctx, input: `${PASSWORD}\n` });
  assert.notEqual(dup.code, 0, 'adding the same email twice should fail');

  const badRole = await runCli(['user', 'add', '--email', `r-${email}`, '--name', 'R', '--role', 'emperor', '--password-stdin'],
    { ctx, input: `${PASSWORD}\n` });
  assert.notEqual(badRole.code, 0, 'an unknown role should be rejected');

  const tok = await runCli(['token', '--email', email], { ctx });
  assert.equal(tok.code, 0, `token: exit ${tok.code}; stderr: ${tok.stderr}`);
  assert.match(tok.stdout.trim(), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, `token output: ${tok.stdout}`);

  const unknown = await runCli(['token', '--email', `nobody-${rand(4)}@example.test`], { ctx });
  assert.notEqual(unknown.code, 0, 'token for an unknown email should fail');
  ctx.destroy();
});

test('first start without a terminal: the admin password goes to a 0600 file, never to stdout or the JSON logs; second start makes none', async () => {
  const srv = await startServer();
  const note = await srv.waitStdout(/administrator account admin@localhost; its password is in (\S+)/, 5000);
  assert.ok(note, `no note on where the password is:\n${srv.stdout()}`);
  const file = path.join(srv.dataDir, 'admin-password');
  assert.equal(note[1], file);
  assert.equal((statSync(file).mode & 0o777).toString(8), '600', 'admin-password mode');
  const text = readFileSync(file, 'utf8');
  const pw = text.match(/password:\s*(\S+)/);
  const em = text.match(/email:\s*(\S+)/);
  assert.ok(pw && em, `admin-password content: ${text}`);
  assert.ok(!srv.stdout().includes(pw[1]), 'the admin password appears on stdout (not a terminal: a log stream)');
  assert.ok(!srv.stderr().includes(pw[1]), 'the admin password appears on stderr (logs)');
  assert.doesNotMatch(srv.stdout(), /password:\s*\S+/);

  const login = await srv.login(em[1], pw[1]);
  assert.equal(login.status, 200, `login with the generated admin credentials: ${show(login)}`);
  assert.equal(login.json.user.role, 'admin', 'the generated account should be an admin');

  const secret = path.join(srv.dataDir, 'jwt.secret');
  assert.ok(existsSync(secret), '$DATA/jwt.secret not created');
  const mode = statSync(secret).mode & 0o777;
  assert.equal(mode.toString(8), '600', `jwt.secret mode is ${mode.toString(8)}`);
  assert.ok(readFileSync(secret).length >= 32, 'jwt.secret is shorter than 32 bytes');
  const secretBefore = readFileSync(secret);

  const stopped = await srv.stop();
  assert.equal(stopped.escalated, false, 'server did not exit on SIGTERM within 10 s');
  unlinkSync(file); // read, then deleted as the note says
  await srv.restart();
  await srv.waitStdout(/administrator account/, 1000);
  assert.doesNotMatch(srv.stdout(), /administrator account/, `second start created an admin again:\n${srv.stdout()}`);
  assert.ok(!existsSync(file), 'second start wrote a password file');
  assert.ok(readFileSync(secret).equals(secretBefore), 'jwt.secret changed across restarts');
  const again = await srv.login(em[1], pw[1]);
  assert.equal(again.status, 200, `admin login after restart: ${show(again)}`);
});

test('first start on a terminal (`make run`): the admin password is shown there, outside the JSON log lines', async (t) => {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    t.skip('no `script` to give the server a terminal');
    return;
  }
  const ctx = new Context();
  const port = await freePort();
  // script(1) runs the server on a pseudo-terminal; timeout stops it with SIGTERM
  const r = spawnSync('script', ['-qfec', `timeout -s TERM 6 ${BIN} serve`, '/dev/null'], {
    encoding: 'utf8', timeout: 60000, cwd: ctx.root, env: ctx.env({ VTP_LISTEN: `127.0.0.1:${port}`, VTP_WORKERS: 0 }),
  });
  const out = r.stdout || '';
  const pw = out.match(/password:\s*([0-9a-f]{20})/);
  assert.ok(pw, `no password on the terminal:\n${out}`);
  assert.match(out, /email:\s*admin@localhost/);
  const jsonLines = out.split(/\r?\n/).filter((l) => l.startsWith('{'));
  assert.ok(jsonLines.length > 0, `no JSON log lines on the terminal:\n${out}`);
  for (const l of jsonLines) assert.ok(!l.includes(pw[1]), `the password in a log line: ${l}`);
  assert.ok(!existsSync(path.join(ctx.dataDir, 'admin-password')), 'a password file although a terminal showed it');
  const srv = await startServer({ ctx });
  const login = await srv.login('admin@localhost', pw[1]);
  assert.equal(login.status, 200, `login with the password shown on the terminal: ${show(login)}`);
});

test('VTP_JWT_SECRET set: no secret file needed, tokens still work', async () => {
  const srv = await startServer({ env: { VTP_JWT_SECRET: `it-secret-${rand(16)}` } });
  const email = `s-${rand(4)}@example.test`;
  await srv.createUser({ email, name: 'S', role: 'student', password: PASSWORD });
  const tok = await srv.tokenFor(email);
  const me = await srv.api('GET', '/api/v1/users/me', { token: tok });
  assert.equal(me.status, 200, `token from the CLI with VTP_JWT_SECRET: ${show(me)}`);
});
