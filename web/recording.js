// One recording (recording.html?id=): its facts, the player, a progress bar
// until it is done (recordings.js follows it), a timeline of who was
// present when, who shared the screen when and, once done, each person's
// talk time (participants' joinedAt/leftAt, sources and talkSeconds drawn against the recording's
// start..stop), the tracks received, and for its starter and admins the
// shares and the access log (anyone else is told these are not theirs to see).
'use strict';

(function () {
  const { el, fill, say } = window.vtp;
  const R = window.vtpRecordings;
  const session = window.vtp.requireSession();
  if (!session) return;
  window.vtp.header(session, null);

  const $ = (id) => document.getElementById(id);
  const id = new URLSearchParams(location.search).get('id') || '';
  const state = { recording: null, participants: null, shares: null, accessLog: null, errors: {} };
  window.vtpRecordingPage = state;
  const names = new Map([[session.user.id, `${session.user.fullName || session.user.email} (you)`]]);
  let player = null;

  function nameOf(userId) {
    if (!userId) return '—';
    return names.get(userId) || `user ${window.vtp.shortId(userId)}`;
  }

  function person(userId) {
    return el('span', { title: userId || null }, nameOf(userId));
  }

  const toast = R.toast;

  if (!/^[0-9a-f-]{36}$/i.test(id)) {
    say($('page-status'), 'No recording chosen. Open one from the library.', 'error');
    return;
  }

  // ---- details ----------------------------------------------------------------------

  function renderDetails(rec) {
    document.title = `${rec.title || 'Recording'} — VTP Recorder`;
    fill($('title'), rec.title || 'Untitled', ' ', window.vtp.statusBadge(rec.status, Boolean(rec.deletedAt)));
    const rows = [
      ['Room', rec.roomId],
      ['Description', rec.description || null],
      ['Started by', person(rec.startedBy)],
      ['Started', window.vtp.timeEl(rec.createdAt)],
      ['Stopped', rec.stoppedAt ? window.vtp.timeEl(rec.stoppedAt) : null],
      ['Ready', rec.completedAt && rec.status === 'done' ? window.vtp.timeEl(rec.completedAt) : null],
      ['Status', window.vtp.statusText(rec.status) + (rec.status === 'processing' ? ` (${rec.progress || 0}%)` : '')],
      ['Error', rec.status === 'failed' ? window.vtp.failureText(rec.error) : null],
      ['Length', rec.durationSeconds !== null && rec.durationSeconds !== undefined ? window.vtp.duration(rec.durationSeconds) : null],
      ['Size', rec.fileSize > 0 ? window.vtp.bytes(rec.fileSize) : null],
      ['Format', `${(rec.format || '').toUpperCase()} (${rec.videoCodec || '?'} / ${rec.audioCodec || '?'})`],
      ['Picture', rec.resolutionWidth ? `${rec.resolutionWidth}×${rec.resolutionHeight}${rec.fps ? `, ${rec.fps} fps` : ''}` : null],
      ['Bitrate', rec.bitrate ? `${rec.bitrate} kbit/s` : null],
      ['Layout', rec.layout ? ({ auto: 'Automatic', grid: 'Grid', speaker: 'Active speaker', presentation: 'Presentation (screen share with the speaker)', screen: 'Screen share only' }[rec.layout] || rec.layout) : null],
      ['Participants', String(rec.participantCount ?? '—')],
      ['Id', el('code', null, rec.id)],
    ];
    fill($('details'), rows.filter(([, v]) => v !== null && v !== '').map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
  }

  function renderMedia(rec) {
    const video = $('video');
    const actions = $('media-actions');
    const status = $('player-status');
    fill(actions);
    fill($('progress-box'));
    if (rec.status === 'done' && rec.hlsUrl) {
      video.hidden = false;
      video.poster = rec.thumbnailUrl || '';
      if (!player) player = window.vtpAttachPlayer(video, rec.hlsUrl, (text, isError) => say(status, text, isError ? 'error' : ''));
      if (rec.downloadUrl) {
        actions.append(el('a', { class: 'button secondary', href: rec.downloadUrl, download: '', id: 'download' }, 'Download ', el('span', { class: 'visually-hidden' }, rec.title), ` (${window.vtp.bytes(rec.fileSize)})`));
      }
    } else {
      video.hidden = true;
      if (rec.status === 'failed') say(status, `This recording could not be processed: ${window.vtp.failureText(rec.error)}`, 'error');
      else if (rec.status === 'recording' || rec.status === 'pending') say(status, 'This class is being recorded now. It can be watched once it has stopped and been processed.');
      else {
        say(status, rec.status === 'processing' ? 'Being processed…' : 'Waiting to be processed…');
        $('progress-box').append(R.progressLine(rec));
      }
    }
    if (R.canManage(rec, session)) {
      // a failed recording whose tracks are intact can be processed again
      if (rec.status === 'failed' && !rec.deletedAt) {
        actions.append(el('button', { type: 'button', id: 'retry', onclick: retry }, 'Process again'));
      }
      actions.append(el('button', { type: 'button', class: 'secondary', id: 'delete', onclick: remove }, 'Delete'));
    }
  }

  // ---- warnings: what was lost (a full disk), shown whatever the status ----------------------

  function renderWarnings(rec) {
    const box = R.warningsBox(rec);
    $('warnings').hidden = !box;
    fill($('warnings'), box);
  }

  // ---- retry ----------------------------------------------------------------------------------

  async function retry(ev) {
    const rec = state.recording;
    const button = ev && ev.currentTarget;
    if (button) button.disabled = true;
    let res;
    try {
      res = await window.vtp.api('POST', `/api/v1/recordings/${encodeURIComponent(rec.id)}/retry`);
    } catch (e) {
      if (button) button.disabled = false;
      toast(`It could not be queued again: ${e.message}`);
      return;
    }
    say($('page-status'), 'Queued for processing again.');
    await showAll(res);
    watcher.follow([res]);
  }

  // ---- the timeline ----------------------------------------------------------------------

  function renderTimeline(rec, list) {
    const box = $('timeline');
    if (!list) return;
    if (list.length === 0) {
      fill(box, el('p', { class: 'muted' }, 'Nobody’s media was recorded.'));
      return;
    }
    const start = Date.parse(rec.createdAt);
    let end = Date.parse(rec.stoppedAt || '') || window.vtp.serverNow();
    for (const p of list) end = Math.max(end, Date.parse(p.leftAt || '') || 0);
    const span = Math.max(1000, end - start);
    // one row per person (or peer), with a bar for each time they were there
    const rows = new Map();
    const clip = (a, b) => [Math.max(a, start), Math.min(Math.max(b, a), end)];
    for (const p of list) {
      const key = p.userId || p.peerId || p.id;
      if (!rows.has(key)) rows.set(key, { name: p.fullName || nameOf(p.userId), role: p.role, spans: [], shares: [], talk: null });
      const row = rows.get(key);
      const from = Date.parse(p.joinedAt || '') || start;
      const to = Date.parse(p.leftAt || '') || end;
      row.spans.push(clip(from, to));
      // screen shares drawn over the presence bar (sources: README "Sources")
      for (const s of p.sources || []) {
        if (s.source !== 'screen' || !s.startedAt) continue;
        row.shares.push(clip(Date.parse(s.startedAt), Date.parse(s.endedAt || '') || end));
      }
      // talk time: counted by the composer, so known once the recording is done
      if (typeof p.talkSeconds === 'number') row.talk = (row.talk || 0) + p.talkSeconds;
    }
    const at = (t) => window.vtp.duration((t - start) / 1000);
    const seg = (cls, [a, b], title) => {
      const s = el('div', { class: cls, title });
      s.style.left = `${((a - start) / span) * 100}%`;
      s.style.width = `${((b - a) / span) * 100}%`;
      return s;
    };
    fill(box,
      el('ul', { class: 'timeline', 'aria-label': `Presence from the start (0:00) to the end (${at(end)}) of the recording` },
        [...rows.values()].map((row) => {
          const spans = row.spans.sort((a, b) => a[0] - b[0]);
          const words = spans.map(([a, b]) => `from ${at(a)} to ${at(b)}`).join(', ');
          const shares = row.shares.sort((a, b) => a[0] - b[0]);
          const shareWords = shares.map(([a, b]) => `from ${at(a)} to ${at(b)}`).join(', ');
          return el('li', null,
            el('span', { class: 'name' }, row.name, row.role ? el('span', { class: 'muted' }, ` · ${window.vtp.roleName(row.role)}`)
              : null,
            row.talk !== null ? el('span', { class: 'muted talk', 'data-talk-seconds': String(row.talk) }, ` · talked ${window.vtp.duration(row.talk)}`) : null,
            el('span', { class: 'visually-hidden' }, `: present ${words}${shares.length ? `; shared the screen ${shareWords}` : ''}`)),
            el('div', { class: 'track', 'aria-hidden': 'true' },
              spans.map((x) => seg('seg', x, `${at(x[0])} – ${at(x[1])}`)),
              shares.map((x) => seg('seg screen', x, `Screen share ${at(x[0])} – ${at(x[1])}`))));
        })),
      el('div', { class: 'timeline-scale', 'aria-hidden': 'true' },
        el('span', null, '0:00'), el('span', null, at(start + span / 2)), el('span', null, at(end))));
  }

  // ---- tracks -------------------------------------------------------------------------------

  function renderTracks(rec) {
    const tracks = Array.isArray(rec.tracks) ? rec.tracks : [];
    if (!tracks.length) {
      fill($('tracks'), el('p', { class: 'muted' }, 'No media tracks were received.'));
      return;
    }
    const num = (v, f) => el('td', { class: 'num' }, v === null || v === undefined ? '—' : f ? f(v) : String(v));
    fill($('tracks'), el('table', null,
      el('caption', { class: 'visually-hidden' }, 'Media tracks received and their statistics'),
      el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Who'), el('th', { scope: 'col' }, 'Kind'), el('th', { scope: 'col' }, 'Source'), el('th', { scope: 'col' }, 'Codec'),
        el('th', { scope: 'col', class: 'num' }, 'Packets'), el('th', { scope: 'col', class: 'num' }, 'Lost'),
        el('th', { scope: 'col', class: 'num' }, 'Received'), el('th', { scope: 'col', class: 'num' }, 'Bitrate'))),
      el('tbody', null, tracks.map((t) => el('tr', null,
        // a track that drops everything (wrong payload type, SSRC, address, key) or cannot be
        // written says why under its name: that is where an integrator looks first
        el('td', null, t.fullName || nameOf(t.userId) || t.peerId || '—',
          t.error ? el('div', { class: 'error track-error' }, `${t.state === 'misconfigured' ? 'Misconfigured: ' : ''}${t.error}`) : null),
        el('td', null, t.kind || '—'),
        el('td', null, { camera: 'Camera', microphone: 'Microphone', screen: 'Screen share', screen_audio: 'Screen audio' }[t.source] || '—'),
        el('td', null, t.codec || '—'),
        num(t.packets), num(t.lost),
        num(t.bytes, window.vtp.bytes),
        num(t.bitrate, (v) => `${Math.round(v / 1000)} kbit/s`))))));
  }

  // ---- shares and the access log -----------------------------------------------------------

  function notYours(box, what) {
    fill(box, el('p', { class: 'muted' }, `Only the person who started this recording, and admins, can see ${what}.`));
  }

  async function loadShares(rec) {
    const box = $('shares');
    if (!R.canManage(rec, session)) {
      notYours(box, 'who it is shared with');
      return;
    }
    let res;
    try {
      res = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(rec.id)}/shares`);
    } catch (e) {
      state.errors.shares = e.message;
      if (e.status === 403 || e.status === 404) notYours(box, 'who it is shared with');
      else fill(box, el('p', { class: 'error' }, `The shares could not be loaded: ${e.message}`));
      return;
    }
    state.shares = res.shares;
    const perms = { view: 'Can watch', download: 'Can watch and download', share: 'Can watch, download and share' };
    const list = res.shares.length === 0 ? el('p', { class: 'muted' }, 'Not shared with anyone yet.')
      : el('div', { class: 'table-wrap' }, el('table', null,
        el('caption', { class: 'visually-hidden' }, 'Shares of this recording'),
        el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'With'), el('th', { scope: 'col' }, 'Permission'),
          el('th', { scope: 'col' }, 'Since'), el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Actions')))),
        el('tbody', null, res.shares.map((s) => {
          const who = s.role ? `All ${s.role}s` : nameOf(s.userId);
          return el('tr', null,
            el('td', { title: s.userId || null }, who),
            el('td', null, perms[s.permission] || s.permission),
            el('td', null, window.vtp.timeEl(s.sharedAt)),
            el('td', null, el('button', { type: 'button', class: 'secondary small', onclick: () => unshare(rec, s, who) },
              'Remove', el('span', { class: 'visually-hidden' }, ` share with ${who}`))));
        }))));
    fill(box, list, R.shareForm(rec, () => loadShares(rec)));
  }

  async function unshare(rec, share, who) {
    try {
      await window.vtp.api('DELETE', `/api/v1/recordings/${encodeURIComponent(rec.id)}/shares/${encodeURIComponent(share.id)}`);
      toast(`No longer shared with ${who}.`);
    } catch (e) {
      toast(`The share could not be removed: ${e.message}`);
    }
    await loadShares(rec);
    $('shares-heading').setAttribute('tabindex', '-1');
    $('shares-heading').focus();
  }

  const ACCESS = {
    start: 'Started the recording', stop: 'Stopped the recording', view: 'Viewed', download: 'Downloaded',
    share: 'Shared', unshare: 'Removed a share', delete: 'Deleted', restore: 'Restored',
    processing: 'Processing began', done: 'Processing finished', failed: 'Processing failed', retry: 'Processing retried',
    track_add: 'Media connected', track_end: 'Media disconnected',
  };
  const exact = (iso) => el('time', { datetime: iso || null },
    iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }) : '—');

  async function loadAccessLog(rec) {
    const box = $('access-log');
    let res;
    try {
      res = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(rec.id)}/access-log?limit=200`);
    } catch (e) {
      state.errors.accessLog = e.message;
      if (e.status === 403 || e.status === 404) notYours(box, 'its access log');
      else fill(box, el('p', { class: 'error' }, `The access log could not be loaded: ${e.message}`));
      return;
    }
    state.accessLog = res.entries;
    if (!res.entries.length) {
      fill(box, el('p', { class: 'muted' }, 'Nothing yet.'));
      return;
    }
    fill(box, el('table', null,
      el('caption', { class: 'visually-hidden' }, 'Who did what with this recording, and when'),
      el('thead', null, el('tr', null, ['When', 'Who', 'What', 'From', 'Browser'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, res.entries.map((e) => el('tr', null,
        el('td', null, exact(e.accessedAt)),
        el('td', null, e.accessedBy ? person(e.accessedBy) : 'the recorder'),
        el('td', null, ACCESS[e.accessType] || e.accessType),
        el('td', null, e.ipAddress || '—'),
        el('td', { class: 'muted' }, e.userAgent ? e.userAgent.slice(0, 80) : '—'))))),
    res.total > res.count ? el('p', { class: 'muted' }, `The latest ${res.count} of ${res.total} entries.`) : null);
  }

  // ---- delete ---------------------------------------------------------------------------------

  async function remove() {
    const rec = state.recording;
    try {
      await window.vtp.api('DELETE', `/api/v1/recordings/${encodeURIComponent(rec.id)}`);
    } catch (e) {
      toast(`It could not be deleted: ${e.message}`);
      return;
    }
    if (player) player.destroy();
    player = null;
    watcher.stop();
    fill($('title'), rec.title || 'Recording', ' ', window.vtp.statusBadge(rec.status, true));
    $('content').hidden = true;
    say($('page-status'), 'Deleted. ');
    $('page-status').append(el('button', { type: 'button', class: 'small', onclick: undo }, 'Undo'), ' ',
      el('a', { href: '/web/library.html' }, 'Back to the library'));
    $('page-status').querySelector('button').focus();

    async function undo() {
      try {
        await window.vtp.api('POST', `/api/v1/recordings/${encodeURIComponent(rec.id)}/restore`);
        location.reload();
      } catch (e) {
        toast(`It could not be restored: ${e.message}`);
      }
    }
  }

  // ---- loading and following ------------------------------------------------------------------

  async function loadParticipants(rec) {
    try {
      const res = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(rec.id)}/participants`);
      state.participants = res.participants;
      for (const p of res.participants) if (p.userId && p.fullName && !names.has(p.userId)) names.set(p.userId, p.fullName);
    } catch (e) {
      state.errors.participants = e.message;
      fill($('timeline'), el('p', { class: 'error' }, `Who was there could not be loaded: ${e.message}`));
    }
  }

  async function showAll(rec) {
    state.recording = rec;
    await loadParticipants(rec);
    renderDetails(rec);
    renderWarnings(rec);
    renderMedia(rec);
    renderTimeline(rec, state.participants);
    renderTracks(rec);
    await Promise.all([loadShares(rec), loadAccessLog(rec)]);
  }

  const watcher = R.follow({
    onUpdate(rec) {
      const before = state.recording;
      if (before && before.status === rec.status && rec.status !== 'processing' && rec.status !== 'recording' &&
        JSON.stringify(before.warnings || []) === JSON.stringify(rec.warnings || [])) return;
      if (before && before.status !== rec.status) say($('page-status'), `Now: ${window.vtp.statusText(rec.status)}.`);
      showAll(rec);
    },
    onProgress(rid, progress) {
      const rec = state.recording;
      if (!rec || rec.id !== rid) return;
      const was = rec.status;
      rec.status = 'processing';
      rec.progress = progress;
      if (was !== 'processing') {
        renderDetails(rec);
        renderMedia(rec);
      }
      const line = $('progress-box').querySelector('[data-role="progress"]');
      if (line) R.setProgress(line, progress);
    },
    onStopped() {
      window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`).then(showAll).catch(() => {});
    },
  });

  (async () => {
    let rec;
    try {
      rec = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
    } catch (e) {
      say($('page-status'), e.status === 404
        ? 'This recording does not exist, was deleted, or is not shared with you. Recordings you deleted are under “Recently deleted” in the library.'
        : `The recording could not be loaded: ${e.message}`, 'error');
      return;
    }
    say($('page-status'), '');
    $('content').hidden = false;
    await showAll(rec);
    watcher.follow([rec]);
  })();
})();
