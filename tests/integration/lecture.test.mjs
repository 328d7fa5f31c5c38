// A lecture with slides through the real path (issue 17): the instructor
// picks the layout (presentation) on the room page and starts the
// recording there, publishes the camera (a magenta Y4M) and the microphone
// (a WAV of tones) and clicks Share screen: a real getDisplayMedia(), whose
// fake "screen" in Chromium is a green picture (a light-green pie and
// corner squares, 1280x720) and whose sound is the fake audio file again.
// A student publishes a blue camera and short bursts of another tone. The
// teacher stops sharing, then stops the recording on the page; the worker
// composes it, and the file downloaded over the API is measured
// (lib/analyze.mjs): while the share is live it fills the main area
// (>= 60 % of the frame) with both cameras in the column beside it, the
// sharer on top; before and after it the teacher's camera has the main
// area (speaker); the teacher's microphone is heard throughout, the
// share's sound while it is live (the page asks for it unprocessed: noise
// suppression wore the steady tone down to a fifth of the windows), and
// the student's bursts while the student is there.
// backend-independent: the media path (WebRTC ingest and composition); runs on SQLite only.
// sanitizer pass: skipped: Chromium publishes over WHIP and the layouts compose, which the whip and layouts suites take under the sanitizers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanupAll, sleep, rand } from './lib/server.mjs';
import { show, makeUsers, waitFor, downloadWhenDone } from './lib/util.mjs';
import { launchChromium } from './lib/whip.mjs';
import { personMedia, signedInContext } from './lib/e2e.mjs';
import { videoFrames, audioPcm, toneTrack, colourRegions, pixelRegion, bboxesOverlap } from './lib/analyze.mjs';

// The layout the teacher picks on the page (VTP_TEST_LECTURE_LAYOUT=grid shows the test failing).
const LAYOUT = process.env.VTP_TEST_LECTURE_LAYOUT || 'presentation';
const CAMERAS = { teacher: [200, 40, 160], student: [40, 60, 220] };
// The teacher's fake audio file: SCREEN_HZ for its first SIGNATURE_S seconds, then MIC_HZ.
// Chromium plays the file from its start for every capture: the microphone
// is past the signature when the share starts (the test waits for it), and
// the share's audio (getDisplayMedia() reads the same file) never gets past
// it, so while the share is live MIC_HZ is the microphone and SCREEN_HZ the
// screen's audio, and the two never cancel out.
const SCREEN_HZ = 880;
const MIC_HZ = 660;
const SIGNATURE_S = 20;
const STUDENT_HZ = 440;
const QUIET_HZ = 1500; // nobody sends it
const SHARE_MS = 7000;
const AFTER_MS = 7000;
// Chromium's fake screen: greens only (0,136,0 with 70,255,20 and the squares' shades).
const screenPixel = (r, g, b) => g >= 90 && g - Math.max(r, b) >= 50;

let srv;
let users;
let dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtp-lecture-'));
  srv = await startServer({ env: { VTP_WORKERS: 1 } });
  users = await makeUsers(srv, { teacher: 'instructor', student: 'student' });
});

after(async () => {
  await cleanupAll();
  if (!process.env.VTP_TEST_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

async function getRec(id) {
  const res = await srv.api('GET', `/api/v1/recordings/${id}`, { token: users.teacher.token });
  assert.equal(res.status, 200, show(res));
  return res.json;
}

/** Tracks of the recording with packets, by person and source: {'teacher camera': track, ...}. */
async function liveTracks(id) {
  const rec = await getRec(id);
  const parts = await srv.api('GET', `/api/v1/recordings/${id}/participants`, { token: users.teacher.token });
  assert.equal(parts.status, 200, show(parts));
  const who = Object.fromEntries(parts.json.participants.map((p) => [p.peerId, Object.keys(users).find((n) => users[n].id === p.userId)]));
  return Object.fromEntries((rec.tracks || []).filter((t) => t.packets > 20).map((t) => [`${who[t.peerId]} ${t.source}`, t]));
}

/** A person's browser (own fake devices) on the room page, signed in. */
async function joinRoom(name, roomId, media, errors) {
  const browser = await launchChromium(media);
  const context = await signedInContext(browser, srv, users[name]);
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(`${srv.url}/web/room.html?room=${encodeURIComponent(roomId)}`);
  await waitFor(async () => page.evaluate(() => window.vtpRoom && window.vtpRoom.joined), `${name} to join the room`, 30000);
  return { browser, page, state: (what) => page.evaluate((w) => window.vtpRoom[w], what) };
}

async function publishCamera(who, name) {
  await who.page.getByRole('button', { name: 'Start camera and microphone' }).click();
  await waitFor(async () => {
    const p = await who.state('publish');
    if (p === 'failed') assert.fail(`${name} could not publish: ${await who.state('publishError')}`);
    return p === 'live';
  }, `${name}'s camera to be live`, 30000);
}

test(`a lecture from the room page: camera and a real getDisplayMedia() share, composed in ${LAYOUT}: the share in the main area with the cameras beside it, the teacher large after it, everyone heard`, async (t) => {
  const teacherMedia = await personMedia(fs.mkdtempSync(path.join(dir, 'teacher-')), {
    rgb: CAMERAS.teacher, audio: `aevalsrc='0.2*sin(2*PI*if(lt(t,${SIGNATURE_S}),${SCREEN_HZ},${MIC_HZ})*t)'`,
  });
  // 0.4 s in every 2 s: heard, but never long enough to take the main area
  const studentMedia = await personMedia(fs.mkdtempSync(path.join(dir, 'student-')), {
    rgb: CAMERAS.student, audio: `aevalsrc='0.3*sin(2*PI*${STUDENT_HZ}*t)*lt(mod(t,2),0.4)'`,
  });
  const roomId = `lecture-${rand(4)}`;
  const errors = [];
  const people = [];
  try {
    const teacher = await joinRoom('teacher', roomId, teacherMedia, errors);
    people.push(teacher);
    const student = await joinRoom('student', roomId, studentMedia, errors);
    people.push(student);

    // ---- the teacher picks the layout and starts the recording on the page ---------------------
    assert.equal(await teacher.page.getByLabel('Layout').inputValue(), 'auto', 'the default layout');
    await teacher.page.getByLabel('Layout').selectOption(LAYOUT);
    await teacher.page.getByRole('button', { name: 'Start recording' }).click();
    const started = await waitFor(async () => {
      const err = await teacher.page.locator('#rec-error').textContent();
      if (err) assert.fail(`start: ${err}`);
      return teacher.state('recording');
    }, 'the recording to start');
    const id = started.recordingId;
    assert.equal((await getRec(id)).layout, LAYOUT, 'the recording keeps the layout chosen on the page');
    assert.equal(await teacher.page.getByLabel('Layout').isDisabled(), true, 'no layout change while recording');

    // ---- cameras: the teacher first (the file starts with her), then the student ---------------
    const micOpened = Date.now();
    await publishCamera(teacher, 'teacher');
    await waitFor(async () => {
      const tr = await liveTracks(id);
      return tr['teacher camera'] && tr['teacher microphone'];
    }, "the teacher's camera and microphone captured", 30000);
    await publishCamera(student, 'student');
    await waitFor(async () => {
      const tr = await liveTracks(id);
      return tr['student camera'] && tr['student microphone'];
    }, "the student's camera and microphone captured", 30000);
    // the microphone past its file's signature (2 s to spare), the student there a while
    await sleep(Math.max(3000, micOpened + (SIGNATURE_S + 2) * 1000 - Date.now()));

    // ---- Share screen, some seconds of slides, Stop sharing ---------------------------------------
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await waitFor(async () => {
      const p = await teacher.state('share');
      if (p === 'failed') assert.fail(`sharing failed: ${await teacher.state('shareError')}`);
      return p === 'live';
    }, 'the share to be live', 30000);
    await waitFor(async () => {
      const tr = await liveTracks(id);
      return tr['teacher screen'] && tr['teacher screen_audio'];
    }, "the screen and its audio captured as the teacher's", 30000);
    await sleep(SHARE_MS);
    await teacher.page.getByRole('button', { name: 'Stop sharing' }).click();
    await waitFor(async () => {
      const rec = await getRec(id);
      const scr = rec.tracks.filter((x) => x.source === 'screen' || x.source === 'screen_audio');
      return scr.length === 2 && scr.every((x) => x.state === 'ended');
    }, 'the screen tracks to end');
    await sleep(AFTER_MS);

    // ---- Stop on the page; the worker composes; the file over the API -----------------------------
    await teacher.page.getByRole('button', { name: 'Stop recording' }).click();
    await waitFor(async () => (await teacher.state('recording')) === null, 'the page to show the recording stopped');
    const { rec, file } = await downloadWhenDone(srv, users.teacher.token, id, dir);
    assert.equal(rec.layout, LAYOUT);
    assert.deepEqual(Object.keys(await liveTracks(id)).sort(), ['student camera', 'student microphone', 'teacher camera', 'teacher microphone', 'teacher screen', 'teacher screen_audio']);
    assert.deepEqual(errors, []);

    // ---- pictures ------------------------------------------------------------------------------------
    const frames = await videoFrames(file, { width: 320, height: 180 });
    const seen = frames.map((f) => ({ t: f.t, screen: pixelRegion(f, screenPixel), cam: colourRegions(f, CAMERAS) }));
    const sharing = seen.filter((x) => x.screen.fraction >= 0.3);
    const timeline = [];
    for (let i = 0; i < seen.length; i += 15) {
      const x = seen[i];
      timeline.push(`${x.t.toFixed(1)}:s${x.screen.fraction.toFixed(2)}/t${x.cam.teacher.fraction.toFixed(2)}/p${x.cam.student.fraction.toFixed(2)}`);
    }
    t.diagnostic(`screen/teacher/student part of the frame: ${timeline.join(' ')}`);
    assert.ok(sharing.length > 0, 'the shared screen never appears');
    const from = sharing[0].t;
    const to = sharing[sharing.length - 1].t;
    const end = frames[frames.length - 1].t;
    t.diagnostic(`share shown ${from.toFixed(2)}-${to.toFixed(2)} s of ${end.toFixed(2)} s`);
    assert.ok(to - from >= SHARE_MS / 1000 - 2, `the share is shown ${(to - from).toFixed(2)} s, shared ${SHARE_MS / 1000} s or more`);
    const studentFrom = seen.find((x) => x.cam.student.fraction >= 0.005);
    assert.ok(studentFrom && studentFrom.t < from - 1, 'the student is there before the share');

    for (const x of seen) {
      const at = `${x.t.toFixed(2)} s`;
      if (x.t >= from + 0.5 && x.t <= to - 0.5) {
        // the share in the main area: at least 60 % of the frame, from the left edge
        assert.ok(x.screen.fraction >= 0.6, `${at}: the share covers ${(x.screen.fraction * 100).toFixed(1)} % of the frame`);
        assert.ok(x.screen.bbox.fx0 <= 0.02, `${at}: the share starts at the left edge (${x.screen.bbox.fx0.toFixed(2)})`);
        // both cameras beside it, the sharer on top, none inside the main area
        for (const who of ['teacher', 'student']) {
          const c = x.cam[who];
          assert.ok(c.fraction >= 0.005 && c.bbox, `${at}: the ${who}'s camera shown beside the share (${c.fraction.toFixed(3)})`);
          assert.ok(c.bbox.fx0 >= x.screen.bbox.fx1 - 0.01 && !bboxesOverlap(c.bbox, x.screen.bbox), `${at}: the ${who}'s camera is beside the share, not in it (camera x ${c.bbox.fx0.toFixed(2)}-${c.bbox.fx1.toFixed(2)}, share to ${x.screen.bbox.fx1.toFixed(2)})`);
        }
        assert.ok(x.cam.teacher.bbox.fy0 < x.cam.student.bbox.fy0, `${at}: the sharer at the top of the column`);
      } else if ((x.t >= 1.5 && x.t <= from - 0.5) || (x.t >= to + 1.5 && x.t <= end - 0.5)) {
        // no share: the teacher (instructor, the only steady voice) has the main area
        assert.ok(x.screen.fraction < 0.02, `${at}: no share shown (${(x.screen.fraction * 100).toFixed(1)} %)`);
        assert.ok(x.cam.teacher.fraction >= 0.3, `${at}: the teacher's camera in the main area (${(x.cam.teacher.fraction * 100).toFixed(1)} % of the frame)`);
        assert.ok(x.cam.student.fraction < 0.15, `${at}: the student small (${(x.cam.student.fraction * 100).toFixed(1)} %)`);
      }
    }

    // ---- sound: everyone in the mix ------------------------------------------------------------------
    const pcm = await audioPcm(file);
    const wins = toneTrack(pcm, [SCREEN_HZ, MIC_HZ, STUDENT_HZ, QUIET_HZ]).filter((w) => w.t >= 1.5 && w.t <= end - 0.5);
    const during = (a, b) => wins.filter((w) => w.t >= a && w.t <= b);
    const heard = (ws, f) => ws.filter((w) => w.amps[f] >= 0.02).length;
    const mean = (ws, f) => ws.reduce((s, w) => s + w.amps[f], 0) / Math.max(1, ws.length);
    const live = during(from + 0.5, Math.min(to, from + SIGNATURE_S - 6) - 0.5);
    t.diagnostic(`mean amplitudes: before the share ${SCREEN_HZ} Hz ${mean(during(0, from - 0.5), SCREEN_HZ).toFixed(3)} / ${MIC_HZ} Hz ${mean(during(0, from - 0.5), MIC_HZ).toFixed(3)}; while it is live ${mean(live, SCREEN_HZ).toFixed(3)} / ${mean(live, MIC_HZ).toFixed(3)}; after it ${mean(during(to + 1, end), SCREEN_HZ).toFixed(3)} / ${mean(during(to + 1, end), MIC_HZ).toFixed(3)}`);
    // the microphone throughout (its signature first, then its own tone)
    const micHeard = wins.filter((w) => Math.max(w.amps[SCREEN_HZ], w.amps[MIC_HZ]) >= 0.02).length;
    assert.ok(micHeard >= 0.9 * wins.length, `the teacher's microphone in ${micHeard} of ${wins.length} windows`);
    assert.ok(heard(live, MIC_HZ) >= 0.9 * live.length, `the teacher's microphone while sharing: ${heard(live, MIC_HZ)} of ${live.length} windows`);
    // the share's own sound while it is live, and only then (the microphone is past the signature)
    assert.ok(live.length >= 8, `${live.length} windows of the live share`);
    assert.ok(heard(live, SCREEN_HZ) >= 0.8 * live.length, `the screen's audio while sharing: ${heard(live, SCREEN_HZ)} of ${live.length} windows`);
    const afterShare = during(to + 1.5, end);
    assert.equal(heard(afterShare, SCREEN_HZ), 0, "the screen's audio after the share");
    // the student's bursts: one at least in every 2.5 s while the student is there, during the share and after it
    for (let a = studentFrom.t + 0.5; a + 2.5 <= end - 0.5; a += 2.5) {
      const loud = during(a, a + 2.5).filter((w) => w.amps[STUDENT_HZ] >= 0.02).length;
      assert.ok(loud >= 1, `the student's ${STUDENT_HZ} Hz between ${a.toFixed(2)} and ${(a + 2.5).toFixed(2)} s`);
    }
    const noisy = wins.filter((w) => w.amps[QUIET_HZ] >= 0.01).length;
    assert.ok(noisy <= 0.05 * wins.length, `${QUIET_HZ} Hz (nobody's) in ${noisy} of ${wins.length} windows: the mix is not clean`);
  } finally {
    await Promise.all(people.map((p) => p.browser.close().catch(() => {})));
  }
});
