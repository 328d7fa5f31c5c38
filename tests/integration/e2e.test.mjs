// End to end through the pages (issue 7), as a class would use them: an
// instructor and two students, each in a browser of their own (Debian's
// Chromium) with a fake camera showing a solid colour and a fake microphone
// playing a sine of its own, sign in on the login page, join one room on the
// room page and publish with WHIP. The instructor starts a recording from
// the page; every page shows the indicator (and a page opened late shows it
// with the time already elapsed); ten seconds later the instructor stops it.
// The library shows it waiting or processing with a progress bar, then
// ready; its player plays it; its Download link gives a file in which every
// participant's colour has a tile of its own and every tone is heard. Then
// the recording page (who was there, access log), sharing from the library
// (the students now see it, but not its access log), delete with Undo, and
// signing out. Screenshots of every page go to VTP_TEST_ARTIFACTS/e2e.
// backend-independent: the pages over the API; the API, WHIP and the Socket.IO journal have their own suites on both backends

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanupAll, rand } from './lib/server.mjs';
import { makeUsers } from './lib/util.mjs';
import { videoFrames, audioPcm, presenceCheck, toneTrack, probe, streamOf } from './lib/analyze.mjs';
import { metric } from './lib/whip.mjs';
import { personMedia, launchBrowser, openPage, shot, phoneShot, waitPage, ARTIFACTS } from './lib/e2e.mjs';

// Colours far apart and from the letterbox's black; tones that are no
// harmonics of each other.
const PEOPLE = {
  teacher: { role: 'instructor', rgb: [200, 40, 160], freq: 660 },
  ana: { role: 'student', rgb: [32, 192, 32], freq: 440 },
  ben: { role: 'student', rgb: [40, 90, 230], freq: 1030 },
};
const QUIET_HZ = 1500; // nobody sends it: the mix must not be noise
const RECORD_MS = 10000;
// Hostile input, shown as text everywhere (the pages never parse server data as markup).
const TITLE = `Física <img src=x onerror="window.__pwned=1"> & “quotes” ${rand(2)}`;

let srv;
let users;
let dir;
const people = {}; // name -> {browser, context, page, problems}

before(async () => {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true }); // this run's screenshots only
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-e2e-'));
  srv = await startServer({ env: { VTP_WORKERS: 1 } });
  users = await makeUsers(srv, Object.fromEntries(Object.entries(PEOPLE).map(([n, p]) => [n, p.role])));
  await Promise.all(Object.entries(PEOPLE).map(async ([name, p]) => {
    const mdir = path.join(dir, name);
    fs.mkdirSync(mdir);
    const media = await personMedia(mdir, p);
    const browser = await launchBrowser(media);
    people[name] = { browser, ...(await openPage(browser, name)) };
  }));
});

after(async () => {
  await Promise.all(Object.values(people).map((p) => p.browser.close().catch(() => {})));
  await cleanupAll();
  if (!process.env.VTP_TEST_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function problems() {
  return Object.values(people).flatMap((p) => p.problems);
}

async function signIn(name) {
  const { page } = people[name];
  await page.goto(`${srv.url}/`);
  await page.waitForURL(/\/web\/index\.html/);
  await page.getByRole('textbox', { name: 'Email', exact: true }).fill(users[name].email);
  await page.getByLabel('Password', { exact: true }).fill(users[name].password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/web\/library\.html/);
  await waitPage(page, 'the library to load', () => window.vtpLibrary && window.vtpLibrary.loaded);
}

test('a class through the pages: sign in, join, publish, record, watch, download, share, delete and undo, sign out', async (t) => {
  try {
    await aClass(t);
  } catch (e) {
    // what every page showed when it went wrong
    await Promise.all(Object.entries(people).map(([name, p]) => shot(p.page, `failed-${name}`).catch(() => {})));
    throw e;
  }
});

async function aClass(t) {
  // Spaces and non-ASCII in the room id (encoded in URLs, paths and the WHIP
  // Location). The random part starts with a letter: a room id with a space
  // before digits and a "d" ("Class 3d") cannot be composed yet (the
  // encoded folder, "Class%203d", is taken for a %d in the HLS segment
  // template; reported with the pages, issue 7).
  const roomId = `Física 1 · r${rand(3)}`;
  const { teacher } = people;

  // ---- sign in (a wrong password first, once) -------------------------------------------------
  await teacher.page.goto(`${srv.url}/`);
  await shot(teacher.page, 'login');
  await phoneShot(teacher.page, 'login');
  await teacher.page.getByRole('textbox', { name: 'Email', exact: true }).fill(users.teacher.email);
  await teacher.page.getByLabel('Password', { exact: true }).fill('not the password');
  await teacher.page.getByRole('button', { name: 'Sign in' }).click();
  await waitPage(teacher.page, 'the login error', () => document.getElementById('login-error').textContent.length > 0);
  assert.match(await teacher.page.locator('#login-error').textContent(), /do not match/);
  assert.equal(await teacher.page.evaluate(() => localStorage.getItem('vtp.session')), null);
  await Promise.all(Object.keys(PEOPLE).map(signIn));
  await shot(teacher.page, 'library-empty');

  // ---- everyone joins the room through the room page and publishes ---------------------------
  await Promise.all(Object.keys(PEOPLE).map(async (name) => {
    const { page } = people[name];
    await page.getByRole('link', { name: 'Join a room', exact: true }).click();
    await page.waitForURL(/\/web\/room\.html$/);
    await page.getByRole('textbox', { name: 'Room', exact: true }).fill(roomId);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.waitForURL(/room\.html\?room=/);
    await page.getByRole('button', { name: 'Start camera and microphone' }).click();
    await waitPage(page, `${name} publishing`, () => ['live', 'failed'].includes(window.vtpRoom.publish), null, 30000);
    const st = await page.evaluate(() => ({ ...window.vtpRoom }));
    assert.equal(st.publish, 'live', `${name}: ${st.publishError}`);
    assert.equal(st.roomId, roomId);
    assert.match(st.whipLocation, /\/whip\/rooms\/[^/]+\/sessions\/[0-9a-f-]{36}$/);
  }));
  assert.equal(metric(await (await fetch(`${srv.url}/metrics`)).text(), 'vtp_whip_sessions'), 3);
  for (const name of Object.keys(PEOPLE)) {
    const { page } = people[name];
    await waitPage(page, `${name} to see all three in the room`, () => document.querySelectorAll('#members li').length === 3 && window.vtpRoom.members.length === 3);
    const names = await page.locator('#members li').allTextContents();
    for (const other of Object.keys(PEOPLE)) assert.ok(names.some((t) => t.includes(users[other].name)), `${name} sees ${other}: ${names}`);
    assert.equal(await page.locator('#controls').isVisible(), PEOPLE[name].role === 'instructor', `${name}: recording controls only for instructors`);
    assert.equal(await page.locator('#rec-state').textContent(), 'Not recording');
  }
  await shot(teacher.page, 'room-before');

  // ---- the instructor starts a recording (over Socket.IO); every page shows it ------------------------
  assert.equal(await teacher.page.evaluate(() => window.vtpRoom.socket && window.vtpRoom.joined), true, 'the room page is on Socket.IO');
  await teacher.page.getByRole('textbox', { name: 'Title', exact: true }).fill(TITLE);
  await teacher.page.getByRole('button', { name: 'Start recording' }).click();
  await waitPage(teacher.page, 'the recording to start', () => window.vtpRoom.recording || document.getElementById('rec-error').textContent);
  const rec = await teacher.page.evaluate(() => window.vtpRoom.recording);
  assert.ok(rec && /^[0-9a-f-]{36}$/.test(rec.recordingId), await teacher.page.locator('#rec-error').textContent());
  const startedAt = Date.now();
  for (const name of Object.keys(PEOPLE)) {
    const { page } = people[name];
    await waitPage(page, `${name}'s recording indicator`, (id) => window.vtpRoom.recording && window.vtpRoom.recording.recordingId === id &&
      document.getElementById('rec-indicator').classList.contains('on'), rec.recordingId);
    assert.equal(await page.locator('#rec-state').textContent(), 'Recording');
    assert.equal(await page.locator('#rec-title').textContent(), `“${TITLE}”`, `${name}: the title as text`);
  }
  // the clock runs on every page
  await waitPage(people.ana.page, 'the elapsed time to pass 0:02', () => /^0:0[2-9]$/.test(document.getElementById('rec-elapsed').textContent), null, 8000);

  // a page opened late (the instructor's second tab, not publishing) shows the running recording and its time
  const late = await teacher.context.newPage();
  await late.goto(`${srv.url}/web/room.html?room=${encodeURIComponent(roomId)}`);
  await waitPage(late, 'the late page\'s indicator', (id) => window.vtpRoom && window.vtpRoom.recording && window.vtpRoom.recording.recordingId === id, rec.recordingId);
  const lateElapsed = await late.locator('#rec-elapsed').textContent();
  const [m, s] = lateElapsed.split(':').map(Number);
  assert.ok(m * 60 + s >= 2, `the late page counts from the start: ${lateElapsed}`);
  assert.equal(await late.locator('#rec-title').textContent(), `“${TITLE}”`);
  await late.close();

  for (const name of Object.keys(PEOPLE)) await shot(people[name].page, `room-recording-${name}`);
  await phoneShot(teacher.page, 'room-recording-teacher');
  await phoneShot(people.ben.page, 'room-recording-ben');

  // ---- ten seconds of class, then Stop --------------------------------------------------------------
  await teacher.page.waitForTimeout(Math.max(0, RECORD_MS - (Date.now() - startedAt)));
  await teacher.page.getByRole('button', { name: 'Stop recording' }).click();
  for (const name of Object.keys(PEOPLE)) {
    await waitPage(people[name].page, `${name}'s indicator to go off`, () => !window.vtpRoom.recording &&
      document.getElementById('rec-state').textContent === 'Not recording');
  }
  await waitPage(teacher.page, 'the last recording note', () => !document.getElementById('last-section').hidden);

  // ---- the library: waiting/processing with a progress bar, then ready ------------------------------
  await teacher.page.getByRole('link', { name: 'Library', exact: true }).click();
  await teacher.page.waitForURL(/library\.html/);
  const card = teacher.page.locator(`article.card[data-id="${rec.recordingId}"]`);
  await card.waitFor();
  await shot(teacher.page, 'library-processing');
  await waitPage(teacher.page, 'the recording to be done', (id) => {
    const c = document.querySelector(`article.card[data-id="${id}"]`);
    return c && (c.dataset.status === 'done' || c.dataset.status === 'failed');
  }, rec.recordingId, 120000);
  assert.equal(await card.getAttribute('data-status'), 'done', await card.innerText());
  const trace = await teacher.page.evaluate((id) => window.__vtpCardTrace.filter((x) => x.id === id), rec.recordingId);
  assert.ok(trace.some((x) => (x.status === 'stopped' || x.status === 'processing') && x.progressBar),
    `the card showed a progress bar while waiting or processing: ${JSON.stringify(trace)}`);
  assert.equal(trace[trace.length - 1].status, 'done');
  assert.equal(await teacher.page.evaluate(() => window.vtpLibrary.socket), true, 'the library is on Socket.IO');
  t.diagnostic(`library card states: ${trace.map((x) => `${x.status}${x.progressBar ? '+bar' : ''}`).join(' → ')}`);
  assert.equal(await card.locator('h2').textContent(), TITLE);
  assert.equal(await teacher.page.evaluate(() => window.__pwned), undefined);
  assert.equal(await teacher.page.locator('img[src="x"]').count(), 0);
  await waitPage(teacher.page, 'the thumbnail', (id) => {
    const img = document.querySelector(`article.card[data-id="${id}"] .thumb img`);
    return img && img.complete && img.naturalWidth > 0;
  }, rec.recordingId);
  const meta = await card.innerText();
  assert.match(meta, new RegExp(`Room ${roomId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(meta, /Ready/);
  assert.match(meta, /0:(09|1\d)/, `the duration is shown: ${meta}`);
  assert.match(meta, /\d+(\.\d)? (KB|MB)/, `the size is shown: ${meta}`);
  await shot(teacher.page, 'library-done');

  // ---- play in the page ---------------------------------------------------------------------------
  await card.getByRole('button', { name: 'Play' }).click();
  await waitPage(teacher.page, 'the player to play', () => window.vtpPlayer && (window.vtpPlayer.error || window.vtpPlayer.currentTime > 1.5), null, 30000);
  const played = await teacher.page.evaluate(() => ({ ...window.vtpPlayer, t: document.getElementById('video').currentTime }));
  assert.equal(played.error, null, JSON.stringify(played));
  assert.equal(played.engine, 'hls.js');
  assert.ok(played.t > 1.5 && played.duration >= 9, JSON.stringify(played));
  await shot(teacher.page, 'library-playing');
  await phoneShot(teacher.page, 'library-playing');
  await teacher.page.getByRole('button', { name: 'Close player' }).click();

  // ---- download through the page's link; the file holds everyone ----------------------------------------
  const [download] = await Promise.all([
    teacher.page.waitForEvent('download'),
    card.getByRole('link', { name: 'Download' }).click(),
  ]);
  const file = path.join(dir, download.suggestedFilename() || 'recording.webm');
  await download.saveAs(file);
  const info = await probe(file);
  assert.ok(streamOf(info, 'video') && streamOf(info, 'audio'), `video and audio in ${JSON.stringify(info.streams)}`);
  const duration = Number(info.format.duration);
  assert.ok(duration >= 8 && duration <= 14, `duration ${duration}`);
  const [frames, pcm] = await Promise.all([videoFrames(file), audioPcm(file)]);
  const palette = Object.fromEntries(Object.entries(PEOPLE).map(([n, p]) => [n, p.rgb]));
  const tones = Object.fromEntries(Object.entries(PEOPLE).map(([n, p]) => [n, p.freq]));
  const spans = Object.keys(PEOPLE).map((name) => ({ name, from: 0, to: duration }));
  const check = presenceCheck({ frames, pcm, palette, tones, spans, margin: 1.0 });
  assert.deepEqual(check.problems.slice(0, 20), [], `tiles: ${check.tiles}\nheard: ${check.heard}`);
  t.diagnostic(`${frames.length} frames, ${duration.toFixed(2)} s; tone peaks ${JSON.stringify(check.peaks)}`);
  const windows = toneTrack(pcm, [...Object.values(tones), QUIET_HZ]).filter((w) => w.t > 1 && w.t < duration - 1);
  const minPeak = Math.min(...Object.values(check.peaks));
  assert.ok(minPeak >= 0.01, `every tone is loud enough: ${JSON.stringify(check.peaks)}`);
  assert.ok(windows.every((w) => w.amps[QUIET_HZ] < 0.2 * minPeak), `no noise at ${QUIET_HZ} Hz`);

  // ---- the recording page: who was there, the access log ------------------------------------------------
  await card.getByRole('link', { name: TITLE }).click();
  await teacher.page.waitForURL(/recording\.html\?id=/);
  await waitPage(teacher.page, 'the recording page', () => window.vtpRecordingPage && window.vtpRecordingPage.participants && window.vtpRecordingPage.accessLog);
  assert.equal(await teacher.page.locator('h1').evaluate((h) => h.firstChild.textContent), TITLE);
  const rows = await teacher.page.locator('.timeline li').allInnerTexts();
  assert.equal(rows.length, 3, `one timeline row per person: ${rows}`);
  for (const name of Object.keys(PEOPLE)) assert.ok(rows.some((r) => r.includes(users[name].name)), `${name} on the timeline: ${rows}`);
  const bars = await teacher.page.locator('.timeline .seg').evaluateAll((segs) => segs.map((s) => s.getBoundingClientRect().width / s.parentElement.getBoundingClientRect().width));
  assert.ok(bars.length >= 3 && bars.every((w) => w > 0.5), `everyone was there most of the time: ${bars}`);
  const log = await teacher.page.locator('#access-log').innerText();
  for (const what of ['Started the recording', 'Stopped the recording', 'Downloaded']) assert.ok(log.includes(what), `access log has "${what}": ${log}`);
  await shot(teacher.page, 'recording');
  await phoneShot(teacher.page, 'recording');

  // ---- a student leaves the room (the page ends its WHIP session) and has nothing until it is shared ---------
  const { ana, ben } = people;
  await ana.page.getByRole('button', { name: 'Leave room' }).click();
  await ana.page.waitForURL(/library\.html/);
  await ana.page.goto(`${srv.url}/web/recording.html?id=${rec.recordingId}`);
  await waitPage(ana.page, 'the not-shared message', () => /not shared with you/.test(document.getElementById('page-status').textContent));
  await teacher.page.getByRole('link', { name: 'Library', exact: true }).click();
  await card.waitFor();
  await card.getByRole('button', { name: 'Share' }).click();
  await card.getByLabel('With').selectOption('role:student');
  await card.getByLabel('Permission').selectOption('download');
  await card.locator('form.share-form').getByRole('button', { name: 'Share' }).click();
  await waitPage(teacher.page, 'the share to be made', () => /Shared with all students/.test(document.querySelector('.share-form .message').textContent));
  await shot(teacher.page, 'library-shared');
  await ana.page.goto(`${srv.url}/web/library.html`);
  const anaCard = ana.page.locator(`article.card[data-id="${rec.recordingId}"]`);
  await anaCard.waitFor();
  assert.equal(await anaCard.getByRole('link', { name: 'Download' }).count(), 1, 'shared with download');
  assert.equal(await anaCard.getByRole('button', { name: 'Delete' }).count(), 0, 'a student may not delete it');
  await anaCard.getByRole('link', { name: TITLE }).click();
  await waitPage(ana.page, 'the shared recording page', () => window.vtpRecordingPage && window.vtpRecordingPage.recording &&
    /Only the person who started/.test(document.getElementById('access-log').textContent));
  await shot(ana.page, 'recording-student');

  // ---- delete with Undo ---------------------------------------------------------------------------------
  await card.getByRole('button', { name: 'Delete' }).click();
  await waitPage(teacher.page, 'the card to go', (id) => !document.querySelector(`article.card[data-id="${id}"]`) && !document.getElementById('toast').hidden, rec.recordingId);
  assert.match(await teacher.page.locator('#toast').innerText(), /Deleted/);
  await shot(teacher.page, 'library-deleted');
  await teacher.page.getByRole('button', { name: 'Undo' }).click();
  await card.waitFor();
  const back = await srv.api('GET', `/api/v1/recordings/${rec.recordingId}`, { token: users.teacher.token });
  assert.equal(back.status, 200);
  assert.equal(back.json.deletedAt, null);

  // ---- leaving ends every WHIP session (the Leave button, or closing the page); signing out ends the session ----
  await ben.page.getByRole('button', { name: 'Leave room' }).click();
  await ben.page.waitForURL(/library\.html/);
  await waitFor('every WHIP session to end', async () =>
    metric(await (await fetch(`${srv.url}/metrics`)).text(), 'vtp_whip_sessions') === 0);
  await teacher.page.getByRole('button', { name: 'Sign out' }).click();
  await teacher.page.waitForURL(/index\.html\?reason=signed-out/);
  assert.equal(await teacher.page.evaluate(() => localStorage.getItem('vtp.session')), null);
  await teacher.page.goto(`${srv.url}/web/library.html`);
  await teacher.page.waitForURL(/index\.html\?next=/);

  assert.deepEqual(problems(), [], 'no script errors or CSP violations on any page');
  assert.ok(fs.existsSync(path.join(ARTIFACTS)), 'screenshots saved');
}
