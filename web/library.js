// The library (library.html): the recordings the user may see, newest first
// (GET /api/v1/recordings, a page at a time, by room if asked), each with
// its thumbnail, facts, status and, until it is done, a live progress bar
// (recordings.js follows it); play in the page (player.js), download, share,
// delete with Undo, and the recently deleted ones (?deleted=true) to restore.
// window.vtpLibrary mirrors what is shown, for tests.
'use strict';

(function () {
  const { el, fill, say } = window.vtp;
  const R = window.vtpRecordings;
  const session = window.vtp.requireSession();
  if (!session) return;
  window.vtp.header(session, 'library');

  const $ = (id) => document.getElementById(id);
  const PAGE = 12;
  const params = new URLSearchParams(location.search);
  const view = {
    room: (params.get('room') || '').slice(0, 255),
    deleted: params.get('view') === 'deleted',
    offset: Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0),
  };
  const state = { recordings: [], total: 0, loaded: false, error: null, socket: false };
  window.vtpLibrary = state;

  $('filter-room').value = view.room;
  $('filter-view').value = view.deleted ? 'deleted' : '';

  const cards = new Map(); // id -> {li, rec, fetchedAt}
  let player = null;

  function announce(text) {
    $('announce').textContent = '';
    setTimeout(() => { $('announce').textContent = text; }, 50);
  }

  // ---- the toast (Undo) -------------------------------------------------------------

  const toast = R.toast;

  // ---- the list -----------------------------------------------------------------------

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(view.offset) });
    if (view.room) q.set('room_id', view.room);
    if (view.deleted) q.set('deleted', 'true');
    return q;
  }

  function keepInUrl() {
    const q = new URLSearchParams();
    if (view.room) q.set('room', view.room);
    if (view.deleted) q.set('view', 'deleted');
    if (view.offset) q.set('offset', String(view.offset));
    const s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  }

  let loading = null;
  async function load() {
    if (loading) loading.abort();
    const ctl = new AbortController();
    loading = ctl;
    say($('list-status'), 'Loading…');
    keepInUrl();
    let res;
    try {
      res = await window.vtp.api('GET', `/api/v1/recordings?${query()}`, { signal: ctl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      state.error = e.message;
      say($('list-status'), `The recordings could not be loaded: ${e.message}`, 'error');
      return;
    } finally {
      if (loading === ctl) loading = null;
    }
    if (res.recordings.length === 0 && view.offset > 0 && res.total > 0) {
      view.offset = Math.max(0, Math.floor((res.total - 1) / PAGE) * PAGE);
      load();
      return;
    }
    state.recordings = res.recordings;
    state.total = res.total;
    state.loaded = true;
    state.error = null;
    render(res);
  }

  function render(res) {
    cards.clear();
    const list = $('cards');
    fill(list, res.recordings.map((rec) => {
      const li = el('li', null, card(rec));
      cards.set(rec.id, { li, rec, fetchedAt: Date.now() });
      return li;
    }));
    const what = view.deleted ? 'deleted recording' : 'recording';
    const where = view.room ? ` in room “${view.room}”` : '';
    if (res.total === 0) {
      say($('list-status'), view.deleted ? 'Nothing was deleted recently.'
        : `No recordings${where} yet. Recordings you start, and recordings shared with you, appear here.`);
    } else {
      say($('list-status'), `${res.total} ${what}${res.total === 1 ? '' : 's'}${where}.`);
    }
    const first = res.total ? view.offset + 1 : 0;
    const last = view.offset + res.recordings.length;
    $('page-info').textContent = res.total > PAGE ? `${first}–${last} of ${res.total}` : '';
    $('prev').hidden = $('next').hidden = res.total <= PAGE;
    $('prev').disabled = view.offset === 0;
    $('next').disabled = last >= res.total;
    watcher.follow(view.deleted ? [] : res.recordings);
  }

  function facts(rec) {
    const parts = [];
    if (rec.durationSeconds !== null && rec.durationSeconds !== undefined) parts.push(window.vtp.duration(rec.durationSeconds));
    if (rec.fileSize !== null && rec.fileSize !== undefined && rec.fileSize > 0) parts.push(window.vtp.bytes(rec.fileSize));
    return parts.join(' · ');
  }

  function card(rec) {
    const mine = R.canManage(rec, session);
    const titleId = `title-${rec.id}`;
    const deleted = Boolean(rec.deletedAt);
    const thumb = rec.status === 'done' && rec.thumbnailUrl && !deleted
      ? el('img', { src: rec.thumbnailUrl, alt: '', loading: 'lazy', width: '320', height: '180' })
      : el('span', null, deleted ? 'Deleted' : window.vtp.statusText(rec.status));
    const actions = el('div', { class: 'actions' });
    if (!deleted) {
      if (rec.status === 'done' && rec.hlsUrl) {
        actions.append(el('button', { type: 'button', class: 'small', dataset: { action: 'play' }, 'aria-describedby': titleId,
          onclick: () => play(rec.id) }, 'Play'));
      }
      if (rec.status === 'done' && rec.downloadUrl) {
        actions.append(el('a', { class: 'button secondary small', href: rec.downloadUrl, download: '', dataset: { action: 'download' },
          'aria-describedby': titleId, onclick: (ev) => freshDownload(ev, rec.id) }, 'Download'));
      }
      if (mine) {
        const shareBtn = el('button', { type: 'button', class: 'secondary small', 'aria-expanded': 'false', dataset: { action: 'share' },
          'aria-describedby': titleId }, 'Share');
        shareBtn.addEventListener('click', () => toggleShare(rec, shareBtn));
        actions.append(shareBtn);
        actions.append(el('button', { type: 'button', class: 'secondary small', dataset: { action: 'delete' }, 'aria-describedby': titleId,
          onclick: () => remove(rec) }, 'Delete'));
      }
    } else if (mine) {
      actions.append(el('button', { type: 'button', class: 'small', dataset: { action: 'restore' }, 'aria-describedby': titleId,
        onclick: () => restore(rec) }, 'Restore'));
    }
    const busy = !deleted && (rec.status === 'stopped' || rec.status === 'processing');
    return el('article', { class: 'card', 'aria-labelledby': titleId, dataset: { id: rec.id, status: rec.status } },
      el('div', { class: 'thumb' }, thumb),
      el('div', { class: 'body' },
        el('h2', { id: titleId }, el('a', { href: `/web/recording.html?id=${encodeURIComponent(rec.id)}` }, rec.title || 'Untitled')),
        el('p', { class: 'meta' }, 'Room ', el('strong', null, rec.roomId), ' · ', window.vtp.timeEl(rec.createdAt)),
        el('p', { class: 'meta' }, window.vtp.statusBadge(rec.status, deleted), facts(rec) ? ` ${facts(rec)}` : '',
          deleted ? [' · deleted ', window.vtp.timeEl(rec.deletedAt)] : null),
        busy ? R.progressLine(rec) : null,
        rec.status === 'failed' ? el('p', { class: 'meta error' }, window.vtp.failureText(rec.error)) : null,
        R.warningsBox(rec, { compact: true }),
        actions));
  }

  /** Replaces a recording's card, keeping the keyboard focus on the same action. */
  function replaceCard(rec) {
    const c = cards.get(rec.id);
    if (!c) return;
    const old = c.li.firstChild;
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    const action = focused && focused.dataset ? focused.dataset.action : null;
    const shareOpen = old.querySelector('.share-form');
    const next = card(rec);
    if (shareOpen) {
      // an open share form stays as it is
      next.querySelector('.body').append(shareOpen);
      const btn = next.querySelector('[data-action="share"]');
      if (btn) btn.setAttribute('aria-expanded', 'true');
    }
    c.li.replaceChild(next, old);
    c.rec = rec;
    c.fetchedAt = Date.now();
    const i = state.recordings.findIndex((r) => r.id === rec.id);
    if (i >= 0) state.recordings[i] = rec;
    if (focused && !shareOpen?.contains(focused)) {
      const same = action && next.querySelector(`[data-action="${action}"]`);
      (same || next.querySelector('h2 a')).focus();
    }
  }

  function toggleShare(rec, btn) {
    const body = btn.closest('.body');
    const open = body.querySelector('.share-form');
    if (open) {
      open.remove();
      btn.setAttribute('aria-expanded', 'false');
      btn.focus();
      return;
    }
    const form = R.shareForm(rec);
    body.append(form);
    btn.setAttribute('aria-expanded', 'true');
    form.querySelector('select').focus();
  }

  // ---- live updates ------------------------------------------------------------------

  const watcher = R.follow({
    onUpdate(rec) {
      const c = cards.get(rec.id);
      if (!c) return;
      const changed = c.rec.status !== rec.status || Boolean(c.rec.hlsUrl) !== Boolean(rec.hlsUrl);
      if (changed) {
        replaceCard(rec);
        if (rec.status === 'done') announce(`“${rec.title}” is ready to watch.`);
        if (rec.status === 'failed') announce(`“${rec.title}” could not be processed.`);
      } else if (rec.status === 'processing') {
        c.rec = rec;
        const line = c.li.querySelector('[data-role="progress"]');
        if (line) R.setProgress(line, Number(rec.progress) || 0);
      }
    },
    onProgress(id, progress) {
      const c = cards.get(id);
      if (!c) return;
      if (c.rec.status !== 'processing') {
        replaceCard({ ...c.rec, status: 'processing', progress });
      } else {
        c.rec.progress = progress;
        const line = c.li.querySelector('[data-role="progress"]');
        if (line) R.setProgress(line, progress);
      }
    },
    onStopped(id) {
      const c = cards.get(id);
      if (c && c.rec.status !== 'stopped' && !window.vtp.isFinal(c.rec.status)) replaceCard({ ...c.rec, status: 'stopped' });
    },
    onSocket(text, connected) {
      state.socket = connected;
      $('live-status').textContent = text;
    },
  });

  // ---- actions -----------------------------------------------------------------------

  async function fresh(id) {
    const rec = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
    if (cards.has(id)) {
      cards.get(id).rec = rec;
      cards.get(id).fetchedAt = Date.now();
    }
    return rec;
  }

  // Media links carry a token that expires (an hour by default): an old
  // page asks for a new one first.
  async function freshDownload(ev, id) {
    const c = cards.get(id);
    if (c && Date.now() - c.fetchedAt < 20 * 60 * 1000) return;
    ev.preventDefault();
    try {
      const rec = await fresh(id);
      if (rec.downloadUrl) location.assign(rec.downloadUrl);
    } catch (e) {
      toast(`The download could not start: ${e.message}`);
    }
  }

  async function play(id) {
    const panel = $('player-panel');
    const status = $('player-status');
    if (player) player.destroy();
    player = null;
    panel.hidden = false;
    say(status, 'Loading…');
    let rec;
    try {
      rec = await fresh(id);
    } catch (e) {
      say(status, `This recording cannot be played: ${e.message}`, 'error');
      return;
    }
    $('player-heading').textContent = rec.title || 'Recording';
    panel.dataset.id = rec.id;
    panel.scrollIntoView({ block: 'start', behavior: 'smooth' });
    $('player-heading').focus({ preventScroll: true });
    const video = $('video');
    video.poster = rec.thumbnailUrl || '';
    player = window.vtpAttachPlayer(video, rec.hlsUrl, (text, isError) => say(status, text, isError ? 'error' : ''));
    video.play().catch(() => { /* the user presses play */ });
  }

  $('player-close').addEventListener('click', () => {
    const id = $('player-panel').dataset.id;
    if (player) player.destroy();
    player = null;
    $('player-panel').hidden = true;
    const back = id && cards.has(id) && cards.get(id).li.querySelector('[data-action="play"]');
    if (back) back.focus();
  });

  async function remove(rec) {
    const active = rec.status === 'recording' || rec.status === 'pending';
    try {
      await window.vtp.api('DELETE', `/api/v1/recordings/${encodeURIComponent(rec.id)}`);
    } catch (e) {
      toast(`“${rec.title}” could not be deleted: ${e.message}`);
      return;
    }
    if ($('player-panel').dataset.id === rec.id && player) {
      player.destroy();
      player = null;
      $('player-panel').hidden = true;
    }
    watcher.forget(rec.id);
    await load();
    $('library-heading').setAttribute('tabindex', '-1');
    $('library-heading').focus();
    toast(`Deleted “${rec.title}”${active ? ' (its recording was stopped)' : ''}.`, 'Undo', () => restore(rec, true));
  }

  async function restore(rec, undo) {
    try {
      await window.vtp.api('POST', `/api/v1/recordings/${encodeURIComponent(rec.id)}/restore`);
    } catch (e) {
      toast(`“${rec.title}” could not be restored: ${e.message}`);
      return;
    }
    await load();
    toast(undo ? `“${rec.title}” is back.` : `Restored “${rec.title}”.`);
  }

  // ---- filter and pages -------------------------------------------------------------------

  $('filter').addEventListener('submit', (ev) => {
    ev.preventDefault();
    view.room = $('filter-room').value.trim();
    view.deleted = $('filter-view').value === 'deleted';
    view.offset = 0;
    load();
  });
  $('prev').addEventListener('click', () => {
    view.offset = Math.max(0, view.offset - PAGE);
    load();
  });
  $('next').addEventListener('click', () => {
    view.offset += PAGE;
    load();
  });

  load();
})();
