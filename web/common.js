// What every page shares (window.vtp): the signed-in session (the token from
// POST /api/v1/auth/login, kept in localStorage until it expires or the user
// signs out, and dropped in every tab at once), the API helper, the page
// header, a DOM builder (server data only ever reaches the page as text
// nodes, never as markup), formatting, and the Socket.IO connection.
'use strict';

(function () {
  const KEY = 'vtp.session';

  function readSession() {
    try {
      const s = JSON.parse(localStorage.getItem(KEY) || 'null');
      if (!s || typeof s.token !== 'string' || !s.user) return null;
      if (s.expiresAt && Date.parse(s.expiresAt) <= Date.now()) {
        localStorage.removeItem(KEY);
        return null;
      }
      return s;
    } catch (e) {
      return null;
    }
  }

  function saveSession(login) {
    localStorage.setItem(KEY, JSON.stringify({ token: login.token, expiresAt: login.expiresAt, user: login.user }));
  }

  function clearSession() {
    localStorage.removeItem(KEY);
  }

  /** Where to come back to after signing in: this page (a path under /web/). */
  function here() {
    return location.pathname + location.search;
  }

  /** A `next` parameter is followed only to a page of this site. */
  function safeNext(next) {
    if (!next) return null;
    try {
      const u = new URL(next, location.origin);
      if (u.origin !== location.origin || !u.pathname.startsWith('/web/') || u.pathname === '/web/index.html') return null;
      return u.pathname + u.search + u.hash;
    } catch (e) {
      return null;
    }
  }

  function toLogin(reason) {
    const q = new URLSearchParams({ next: here() });
    if (reason) q.set('reason', reason);
    location.replace('/web/index.html?' + q.toString());
  }

  /** The session, or off to the login page (which brings the user back here). */
  function requireSession() {
    const s = readSession();
    if (!s) {
      toLogin();
      return null;
    }
    return s;
  }

  function signOut() {
    clearSession();
    location.assign('/web/index.html?reason=signed-out');
  }

  // Signing out (or in as someone else) in one tab applies to all of them.
  window.addEventListener('storage', (ev) => {
    if (ev.key !== KEY || location.pathname === '/web/index.html') return;
    const s = readSession();
    if (!s) toLogin('signed-out');
    else if (vtp.session && s.user.id !== vtp.session.user.id) location.reload();
  });

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const err = body && body.error;
      super((err && err.message) || fallback || `The server answered ${status}.`);
      this.status = status;
      this.code = err ? err.code : null;
      this.body = body;
    }
  }

  /**
   * Calls the API with the session's token. Resolves the parsed JSON (or
   * null); rejects with an ApiError carrying the server's message. A 401
   * means the session is over: back to the login page.
   */
  async function api(method, path, { body, signal, auth = true } = {}) {
    const headers = {};
    const s = readSession();
    if (auth) {
      if (!s) {
        toLogin();
        throw new ApiError(401, null, 'Please sign in.');
      }
      headers.Authorization = 'Bearer ' + s.token;
    }
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, null, 'The server could not be reached. Check your connection and try again.');
    }
    noteServerClock(res);
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (e) {
      json = null;
    }
    if (res.status === 401 && auth) {
      clearSession();
      toLogin('expired');
      throw new ApiError(401, json, 'Your session has ended. Please sign in again.');
    }
    if (!res.ok) throw new ApiError(res.status, json);
    return json;
  }

  // The server's clock, from HTTP Date headers (whole seconds): elapsed
  // times are counted from the server's timestamps, so a client clock that
  // is minutes off must not show a recording as minutes long.
  let clockSkewMs = 0;
  function noteServerClock(res) {
    const d = Date.parse(res.headers.get('Date') || '');
    if (!Number.isNaN(d)) {
      const skew = d + 500 - Date.now();
      clockSkewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
  }
  function serverNow() {
    return Date.now() + clockSkewMs;
  }

  /**
   * Builds an element: el('a', {href: x, class: 'y', onclick: f}, 'text', child).
   * Strings become text nodes; attributes are set as attributes (never as
   * markup); null/false children and attributes are skipped.
   */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'hidden' || k === 'disabled' || k === 'required' || k === 'checked' || k === 'muted' ||
               k === 'autoplay' || k === 'controls' || k === 'playsinline' || k === 'multiple') {
        node[k] = Boolean(v);
        if (v) node.setAttribute(k, '');
      } else if (k === 'value') node.value = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** Replaces an element's content with the given children. */
  function fill(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  // ---- formatting -----------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
    const s = Math.max(0, Math.floor(Number(seconds)));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
  }

  /** A duration for screen readers: "1 minute 5 seconds". */
  function durationWords(seconds) {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    const parts = [];
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (h) parts.push(`${h} hour${h === 1 ? '' : 's'}`);
    if (m) parts.push(`${m} minute${m === 1 ? '' : 's'}`);
    if (!h) parts.push(`${s % 60} second${s % 60 === 1 ? '' : 's'}`);
    return parts.join(' ');
  }

  function bytes(n) {
    if (n === null || n === undefined || n < 0) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = Number(n);
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }

  function dateTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '—';
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  /** <time datetime=iso>local text</time> */
  function timeEl(iso) {
    return el('time', { datetime: iso || null }, dateTime(iso));
  }

  const STATUS_TEXT = {
    pending: 'Starting',
    recording: 'Recording',
    stopped: 'Waiting to process',
    processing: 'Processing',
    done: 'Ready',
    failed: 'Failed',
  };

  function statusText(status) {
    return STATUS_TEXT[status] || status || 'Unknown';
  }

  function statusBadge(status, deleted) {
    if (deleted) return el('span', { class: 'badge deleted' }, 'Deleted');
    return el('span', { class: `badge ${STATUS_TEXT[status] ? status : ''}` }, statusText(status));
  }

  /** A failed recording's error, in words where the server gives a code. */
  function failureText(error) {
    const known = { no_media: 'Nothing was received: nobody’s camera or microphone reached the recorder.' };
    return known[error] || error || 'unknown error';
  }

  const FINAL = new Set(['done', 'failed']);

  function isFinal(status) {
    return FINAL.has(status);
  }

  /** A short form of an id for people to read (the full one is in title=). */
  function shortId(id) {
    return id ? String(id).slice(0, 8) : '—';
  }

  function roleName(role) {
    return { admin: 'Admin', instructor: 'Instructor', student: 'Student', service: 'Service' }[role] || role || '';
  }

  // ---- the header -------------------------------------------------------------

  /**
   * Fills <header id="site-header"> with the site name, navigation and the
   * signed-in user with a Sign out button. current: 'room' | 'library' | null.
   */
  function header(session, current) {
    const host = document.getElementById('site-header');
    if (!host) return;
    const link = (href, text, key) => el('li', null,
      el('a', { href, 'aria-current': current === key ? 'page' : null }, text));
    fill(host, el('div', { class: 'bar' },
      el('a', { class: 'brand', href: '/web/library.html' }, 'VTP Recorder'),
      el('nav', { 'aria-label': 'Main' }, el('ul', null,
        link('/web/room.html', 'Join a room', 'room'),
        link('/web/library.html', 'Library', 'library'))),
      session ? el('span', { class: 'who' }, `${session.user.fullName || session.user.email} · ${roleName(session.user.role)}`) : null,
      session ? el('button', { type: 'button', class: 'secondary small', id: 'sign-out', onclick: signOut }, 'Sign out') : null));
  }

  /** Shows text in a status element; kind 'error' | 'ok' | ''. */
  function say(node, text, kind) {
    if (!node) return;
    node.textContent = text || '';
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
  }

  // ---- Socket.IO --------------------------------------------------------------

  /**
   * The Socket.IO connection (the stock client, served by the recorder), or
   * null when the library is missing. Emits with acks time out after 10 s.
   * onState(text, connected) reports the connection for the page to show.
   */
  function socket(onState) {
    const s = readSession();
    if (!s || typeof window.io !== 'function') {
      if (onState) onState('Live updates are not available.', false);
      return null;
    }
    const sock = window.io({
      path: '/socket.io/',
      transports: ['websocket'],
      auth: (cb) => {
        const cur = readSession();
        cb({ token: cur ? cur.token : '' });
      },
      reconnectionDelayMax: 10000,
    });
    sock.on('connect', () => onState && onState('Live updates connected.', true));
    sock.on('disconnect', () => onState && onState('Live updates disconnected; reconnecting…', false));
    sock.on('connect_error', (err) => {
      const msg = String((err && err.message) || '');
      if (/unauthori[sz]ed|invalid token|expired/i.test(msg)) {
        sock.disconnect();
        clearSession();
        toLogin('expired');
        return;
      }
      if (onState) onState('Live updates unavailable; retrying…', false);
    });
    return sock;
  }

  /** emit with an ack; resolves the ack, rejects on timeout or {error}. */
  function emitAck(sock, event, data, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      if (!sock || !sock.connected) {
        reject(new ApiError(0, null, 'Not connected to the server for live updates.'));
        return;
      }
      sock.timeout(timeoutMs).emit(event, data, (err, res) => {
        if (err) reject(new ApiError(0, null, 'The server did not answer in time.'));
        else if (res && res.error) reject(new ApiError(0, res, res.error.message || res.error.code));
        else resolve(res);
      });
    });
  }

  const vtp = {
    get session() { return readSession(); },
    readSession, saveSession, clearSession, requireSession, signOut, safeNext, toLogin,
    api, ApiError, el, fill, append, say, header,
    duration, durationWords, bytes, dateTime, timeEl, statusText, statusBadge, failureText, isFinal, shortId, roleName,
    serverNow, socket, emitAck,
  };
  window.vtp = vtp;
})();
