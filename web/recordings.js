// What the library and the recording page share (window.vtpRecordings):
// following recordings that are not finished yet (Socket.IO events of their
// rooms: recording-stopped, -progress, -done, -failed; and GET
// /api/v1/recordings/{id} every few seconds in case events are missed or
// the socket is down), the share form, who may manage a recording, and how
// its warnings (what was lost: a full disk, a lost node) are shown.
'use strict';

(function () {
  const { el, say } = window.vtp;

  /** The starter and admins may delete, restore and share (others may hold a share permission we cannot see). */
  function canManage(rec, session) {
    return Boolean(session && rec && (rec.startedBy === session.user.id || session.user.role === 'admin'));
  }

  /**
   * Follows recordings until they are done or failed.
   *   onUpdate(rec): a fresh Recording from the API (status or URLs changed)
   *   onProgress(id, progress): a progress event (0..100)
   *   onStopped(id): the recording stopped
   *   onSocket(text, connected): the live connection's state
   * Returns {follow(recs), forget(id), stop()}.
   */
  function follow({ onUpdate, onProgress, onStopped, onSocket }) {
    const tracked = new Map(); // id -> {roomId, status}
    const rooms = new Set(); // rooms joined on the socket
    let timer = null;
    let stopped = false;
    const sock = window.vtp.socket((text, connected) => {
      if (!connected) rooms.clear(); // a new connection joins nothing until asked
      if (onSocket) onSocket(text, connected);
      schedule();
    });

    async function refresh(id) {
      try {
        const rec = await window.vtp.api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
        if (!tracked.has(id)) return;
        tracked.get(id).status = rec.status;
        if (window.vtp.isFinal(rec.status)) forget(id);
        onUpdate(rec);
      } catch (e) {
        if (e.status === 404) forget(id); // deleted, or no longer shared
      }
    }

    function wantedRooms() {
      return new Set([...tracked.values()].map((t) => t.roomId));
    }

    function syncRooms() {
      if (!sock || !sock.connected) return;
      const want = wantedRooms();
      for (const room of want) {
        if (rooms.has(room)) continue;
        rooms.add(room);
        // watch: only for the events (a server that knows it leaves the
        // watcher out of the room's members; others ignore it)
        window.vtp.emitAck(sock, 'join-room', { roomId: room, watch: true }).catch(() => rooms.delete(room));
      }
      for (const room of [...rooms]) {
        if (want.has(room)) continue;
        rooms.delete(room);
        window.vtp.emitAck(sock, 'leave-room', { roomId: room }).catch(() => {});
      }
    }

    // Polling is the fallback: slow while events arrive, quick without them.
    function schedule() {
      if (timer) clearTimeout(timer);
      timer = null;
      if (stopped || tracked.size === 0) return;
      timer = setTimeout(async () => {
        timer = null;
        await Promise.all([...tracked.keys()].map(refresh));
        schedule();
      }, sock && sock.connected ? 8000 : 3000);
    }

    function forget(id) {
      tracked.delete(id);
      syncRooms();
    }

    if (sock) {
      sock.on('connect', syncRooms);
      sock.on('recording-progress', (ev) => {
        const t = ev && tracked.get(ev.recordingId);
        if (!t) return;
        t.status = 'processing';
        onProgress(ev.recordingId, Number(ev.progress) || 0);
      });
      sock.on('recording-stopped', (ev) => {
        const t = ev && tracked.get(ev.recordingId);
        if (!t) return;
        t.status = 'stopped';
        if (onStopped) onStopped(ev.recordingId);
      });
      const finished = (ev) => {
        if (ev && tracked.has(ev.recordingId)) refresh(ev.recordingId);
      };
      sock.on('recording-done', finished);
      sock.on('recording-failed', finished);
    }

    return {
      /** Follows every recording of recs that is not finished (and no other). */
      follow(recs) {
        tracked.clear();
        for (const r of recs) {
          if (!window.vtp.isFinal(r.status) && !r.deletedAt) tracked.set(r.id, { roomId: r.roomId, status: r.status });
        }
        syncRooms();
        schedule();
      },
      forget,
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (sock) sock.disconnect();
      },
      get socket() { return sock; },
    };
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  let formSeq = 0;

  /**
   * A form that shares rec with a person (by user id) or a role.
   * onShared(share) after a share is made.
   */
  function shareForm(rec, onShared) {
    const n = ++formSeq;
    const id = (what) => `share-${what}-${n}`;
    const who = el('select', { id: id('who') },
      el('option', { value: 'role:student' }, 'All students'),
      el('option', { value: 'role:instructor' }, 'All instructors'),
      el('option', { value: 'user' }, 'One person (by user id)…'));
    const userId = el('input', { id: id('user'), type: 'text', spellcheck: 'false', autocomplete: 'off', maxlength: '36',
      placeholder: '00000000-0000-0000-0000-000000000000', 'aria-describedby': id('msg') });
    const userField = el('div', { class: 'field', hidden: true },
      el('label', { for: id('user') }, 'User id'), userId);
    const perm = el('select', { id: id('perm') },
      el('option', { value: 'view' }, 'Can watch'),
      el('option', { value: 'download' }, 'Can watch and download'),
      el('option', { value: 'share' }, 'Can watch, download and share'));
    const msg = el('p', { id: id('msg'), class: 'message', role: 'status', 'aria-live': 'polite' });
    const button = el('button', { type: 'submit', class: 'small' }, 'Share');
    who.addEventListener('change', () => {
      userField.hidden = who.value !== 'user';
      if (!userField.hidden) userId.focus();
    });
    const form = el('form', { class: 'share-form', novalidate: true },
      el('fieldset', null,
        el('legend', null, 'Share “', rec.title, '”'),
        el('div', { class: 'field' }, el('label', { for: id('who') }, 'With'), who),
        userField,
        el('div', { class: 'field' }, el('label', { for: id('perm') }, 'Permission'), perm),
        button, msg));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { permission: perm.value };
      userId.removeAttribute('aria-invalid');
      if (who.value === 'user') {
        const v = userId.value.trim();
        if (!UUID.test(v)) {
          userId.setAttribute('aria-invalid', 'true');
          say(msg, 'Enter the person’s user id (a UUID, as on their account).', 'error');
          userId.focus();
          return;
        }
        body.userId = v.toLowerCase();
      } else {
        body.role = who.value.slice(5);
      }
      button.disabled = true;
      try {
        const share = await window.vtp.api('POST', `/api/v1/recordings/${encodeURIComponent(rec.id)}/shares`, { body });
        const target = body.role ? `all ${body.role}s` : 'that person';
        say(msg, `Shared with ${target} (${perm.options[perm.selectedIndex].text.toLowerCase()}).`, 'ok');
        if (onShared) onShared(share);
      } catch (e) {
        say(msg, e.status === 404 && body.userId ? 'No such user, or you may not share this recording.'
          : e.status === 403 ? 'You may not share this recording.' : e.message, 'error');
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  /**
   * The recording's warnings (what was lost or never decoded: a full disk, a
   * lost node), one line each, or null when there are none. compact: one
   * short line for a library card, the full messages in its title.
   */
  function warningsBox(rec, { compact = false } = {}) {
    const list = Array.isArray(rec.warnings) ? rec.warnings.filter((w) => w && w.message) : [];
    if (!list.length) return null;
    if (compact) {
      const first = list[0].message;
      const more = list.length > 1 ? ` (and ${list.length - 1} more)` : '';
      return el('p', { class: 'meta warning', dataset: { role: 'warnings' }, title: list.map((w) => w.message).join('\n') },
        el('span', { 'aria-hidden': 'true' }, '⚠ '), `${first}${more}`);
    }
    return el('div', { class: 'warnings', role: 'note', 'aria-label': 'Warnings', dataset: { role: 'warnings' } },
      el('ul', null, list.map((w) => el('li', { dataset: { code: w.code || '' } },
        el('span', { 'aria-hidden': 'true' }, '⚠ '), w.message))));
  }

  /** A progress bar with its text: indeterminate while waiting to be processed. */
  function progressLine(rec) {
    const processing = rec.status === 'processing';
    const bar = el('progress', { max: '100', 'aria-label': `Processing “${rec.title}”` });
    if (processing) bar.value = Number(rec.progress) || 0;
    const text = el('span', { class: 'progress-text' }, processing ? `${Number(rec.progress) || 0}%` : 'Queued');
    return el('div', { class: 'progress-line', dataset: { role: 'progress' } }, bar, text);
  }

  /** Updates a progressLine in place. */
  function setProgress(line, progress) {
    const bar = line.querySelector('progress');
    const text = line.querySelector('.progress-text');
    bar.value = progress;
    text.textContent = `${progress}%`;
  }

  /** The page's toast (#toast, #toast-text, #toast-action): text, and an action button (Undo) when given. */
  let toastTimer = null;
  function toast(text, actionText, action) {
    const box = document.getElementById('toast');
    const btn = document.getElementById('toast-action');
    document.getElementById('toast-text').textContent = text;
    btn.hidden = !action;
    btn.textContent = actionText || '';
    btn.onclick = action ? async () => {
      box.hidden = true;
      await action();
    } : null;
    box.hidden = false;
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, action ? 15000 : 5000);
  }

  window.vtpRecordings = { canManage, follow, shareForm, progressLine, setProgress, toast, warningsBox };
})();
