// Browser helpers for the end-to-end test of the pages (e2e.test.mjs): one
// Debian Chromium per participant with its own fake camera and microphone
// (lib/whip.mjs fakeMedia), a watch on every page for script errors and
// Content-Security-Policy violations, a trace of the library cards' states
// (kept from the first paint, so a short-lived "processing" is not missed),
// and screenshots into the artifacts folder.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fakeMedia } from './whip.mjs';
import { run } from './media.mjs';

export const ARTIFACTS = process.env.VTP_TEST_ARTIFACTS
  ? path.join(process.env.VTP_TEST_ARTIFACTS, 'e2e')
  : path.join(os.tmpdir(), 'vtp-e2e-artifacts');

/**
 * Fake camera and microphone files for one person: a solid colour (Chromium
 * loops the 4 s picture, which nobody can tell) and a sine long enough not
 * to loop during the test (a loop leaves a short hole in the sound).
 */
export async function personMedia(dir, { rgb, freq, audioSeconds = 90, audio }) {
  const media = await fakeMedia(dir, { rgb, freq, seconds: 4 });
  // audio: another lavfi source (an expression of t) instead of the sine, e.g. two tones or bursts
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    audio ? `${audio}:s=48000:d=${audioSeconds}` : `sine=frequency=${freq}:sample_rate=48000:duration=${audioSeconds}`,
    '-ac', '1', '-c:a', 'pcm_s16le', media.wav]);
  if (r.code !== 0) throw new Error(`ffmpeg: ${r.stderr}`);
  return media;
}

/** Chromium with fake devices from the given files: the WHIP suite's launcher. */
export { launchChromium as launchBrowser } from './whip.mjs';

// Runs in every page before its scripts: records each library card's
// status as it changes, and whether it showed a progress bar then.
function traceCards() {
  window.__vtpCardTrace = [];
  const seen = new Set();
  const scan = () => {
    for (const card of document.querySelectorAll('article.card[data-id]')) {
      const key = `${card.dataset.id}|${card.dataset.status}|${Boolean(card.querySelector('progress'))}`;
      if (seen.has(key)) continue;
      seen.add(key);
      window.__vtpCardTrace.push({ id: card.dataset.id, status: card.dataset.status, progressBar: Boolean(card.querySelector('progress')), t: Date.now() });
    }
  };
  new MutationObserver(scan).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
}

/**
 * A browser context and page for one person, watched for problems:
 * returns {context, page, problems} where problems collects uncaught
 * errors, console errors other than expected HTTP answers, and CSP
 * violations.
 */
export async function openPage(browser, name, { width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  await context.addInitScript(traceCards);
  const page = await context.newPage();
  const problems = [];
  const watch = (p) => {
    p.on('pageerror', (e) => problems.push(`${name}: uncaught ${e.message}`));
    p.on('console', (m) => {
      const text = m.text();
      // a failed request is the page's business (it says so to the user); the test checks what it shows
      if (m.type() !== 'error' || /^Failed to load resource: the server responded with a status of (401|403|404|409)/.test(text)) return;
      problems.push(`${name}: console ${text}`);
    });
  };
  watch(page);
  context.on('page', watch);
  return { context, page, problems };
}

/**
 * A browser context already signed in as user (the session the sign-in
 * page would store, from POST /auth/login), for tests whose subject is
 * not the sign-in.
 */
export async function signedInContext(browser, srv, user, options = {}) {
  const login = await srv.api('POST', '/api/v1/auth/login', { body: { email: user.email, password: user.password } });
  if (login.status !== 200) throw new Error(`login of ${user.email}: HTTP ${login.status} ${login.text}`);
  const context = await browser.newContext(options);
  await context.addInitScript((s) => localStorage.setItem('vtp.session', s),
    JSON.stringify({ token: login.json.token, expiresAt: login.json.expiresAt, user: login.json.user }));
  return context;
}

let shotSeq = 0;

/** Saves a full-page screenshot as ARTIFACTS/NN-name.png. */
export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${String(++shotSeq).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The same page at phone width (375 px), then back. */
export async function phoneShot(page, name) {
  const vp = page.viewportSize();
  await page.setViewportSize({ width: 375, height: 812 });
  const file = await shot(page, `${name}-375px`);
  await page.setViewportSize(vp);
  return file;
}

/** waitForFunction with a message that says what was awaited and what the page showed. */
export async function waitPage(page, what, fn, arg, timeout = 20000, show = () => document.body.innerText.slice(0, 1500)) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    let seen = '';
    try {
      seen = await page.evaluate(show);
    } catch { /* the page is gone */ }
    throw new Error(`timed out after ${timeout} ms waiting for ${what} (${page.url()}):\n${typeof seen === 'string' ? seen : JSON.stringify(seen)}`);
  }
}
