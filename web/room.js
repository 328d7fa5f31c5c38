// The classroom page (room.html?room=<id>): publishes the camera and the
// microphone to the recorder with WHIP (RFC 9725: one sendonly
// RTCPeerConnection, the offer POSTed once ICE gathering is complete, the
// answer set, the session DELETEd on leaving), shows who is in the room and
// whether the room is being recorded (Socket.IO: the join-room answer, then
// room-members and recording-* events; a late joiner gets the running
// recording in the answer), and gives instructors and admins Start (with
// the layout the recording is composed in) and Stop.
// Share screen publishes getDisplayMedia() as a second WHIP session
// (?source=screen: the recorder captures it as the person's screen share,
// tab audio as screen_audio); Stop sharing, or the browser's own stop
// button, ends it.
// window.vtpRoom mirrors the page's state for tests.
'use strict';

(function () {
  const { el, fill, say } = window.vtp;
  const session = window.vtp.requireSession();
  if (!session) return;
  window.vtp.header(session, 'room');

  const $ = (id) => document.getElementById(id);
  const roomId = new URLSearchParams(location.search).get('room') || '';

  const state = {
    roomId,
    publish: 'idle', // idle | starting | connecting | live | reconnecting | failed | stopped
    publishError: null,
    whipLocation: null,
    share: 'idle', // idle | starting | connecting | live | failed | stopped
    shareError: null,
    shareLocation: null,
    recording: null, // {recordingId, title, startedBy, startedAt, status}
    lastRecording: null, // {recordingId, title, status, progress}
    members: [],
    memberCount: 0,
    socket: false,
    joined: false,
  };
  window.vtpRoom = state;

  if (!roomId || roomId.length > 255) {
    showJoinForm();
    return;
  }

  // ---- joining --------------------------------------------------------------

  function showJoinForm() {
    $('join-section').hidden = false;
    document.title = 'Join a room — VTP Recorder';
    const input = $('join-room');
    input.value = roomId.slice(0, 255);
    $('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (!v) {
        input.setAttribute('aria-invalid', 'true');
        say($('join-error'), 'Enter the name of the room (your instructor gives it to you).', 'error');
        input.focus();
        return;
      }
      location.assign('/web/room.html?room=' + encodeURIComponent(v));
    });
    input.focus();
  }

  $('room-section').hidden = false;
  $('room-name').textContent = roomId;
  document.title = `Room ${roomId} — VTP Recorder`;
  const canRecord = session.user.role === 'instructor' || session.user.role === 'admin';
  $('controls').hidden = !canRecord;
  $('rec-title-input').value = `${roomId} — ${new Date().toLocaleDateString(undefined, { dateStyle: 'medium' })}`;

  // ---- members ------------------------------------------------------------------

  function nameOf(userId) {
    if (userId === session.user.id) return 'you';
    const m = state.members.find((x) => x.userId === userId);
    return m ? m.fullName : 'someone';
  }

  let membersKnown = false;
  /** list: the first people (the server names up to 50); count: how many in all. */
  function setMembers(list, count) {
    // one line per person, even with the page open twice
    const seen = new Map();
    for (const m of Array.isArray(list) ? list : []) {
      if (m && m.userId && !seen.has(m.userId)) seen.set(m.userId, m);
    }
    if (membersKnown) {
      const before = new Map(state.members.map((m) => [m.userId, m]));
      const came = [...seen.values()].filter((m) => !before.has(m.userId)).map((m) => m.fullName);
      const went = [...before.values()].filter((m) => !seen.has(m.userId)).map((m) => m.fullName);
      if (came.length || went.length) {
        announce([came.length ? `${came.join(', ')} joined.` : '', went.length ? `${went.join(', ')} left.` : ''].join(' ').trim());
      }
    }
    membersKnown = Array.isArray(list) && list.length > 0;
    state.members = [...seen.values()].sort((a, b) => {
      const ra = a.role === 'instructor' || a.role === 'admin' ? 0 : 1;
      const rb = b.role === 'instructor' || b.role === 'admin' ? 0 : 1;
      return ra - rb || String(a.fullName).localeCompare(String(b.fullName));
    });
    fill($('members'), state.members.map((m) => el('li', null,
      el('span', null, m.fullName || 'Unnamed', m.userId === session.user.id ? el('span', { class: 'muted' }, ' (you)') : null),
      el('span', { class: 'muted' }, window.vtp.roleName(m.role)))));
    const total = Math.max(Number(count) || 0, state.members.length);
    state.memberCount = total;
    $('member-count').textContent = `(${total})`;
    if (total > state.members.length) $('members').append(el('li', { class: 'muted' }, `and ${total - state.members.length} more`));
    if (!total) $('members').append(el('li', { class: 'muted' }, 'Nobody yet.'));
  }

  // ---- the recording indicator ----------------------------------------------------

  let tick = null;

  function announce(text) {
    // re-set so that the same words are read again
    $('announce').textContent = '';
    setTimeout(() => { $('announce').textContent = text; }, 50);
  }

  function renderElapsed() {
    const r = state.recording;
    if (!r) return;
    const started = Date.parse(r.startedAt || '');
    const secs = Number.isNaN(started) ? 0 : (window.vtp.serverNow() - started) / 1000;
    $('rec-elapsed').textContent = window.vtp.duration(secs);
    $('rec-elapsed').setAttribute('aria-label', `Recording for ${window.vtp.durationWords(secs)}`);
  }

  function setRecording(rec, how) {
    const was = state.recording;
    state.recording = rec;
    const on = Boolean(rec);
    $('rec-indicator').classList.toggle('on', on);
    $('rec-state').textContent = on ? 'Recording' : 'Not recording';
    $('rec-elapsed').hidden = !on;
    $('rec-title').textContent = on && rec.title ? `“${rec.title}”` : '';
    if (tick) clearInterval(tick);
    tick = null;
    if (on) {
      renderElapsed();
      tick = setInterval(renderElapsed, 1000);
    }
    $('start-rec').disabled = on;
    $('rec-layout').disabled = on; // chosen at start: it cannot change while recording
    $('stop-rec').disabled = !on;
    if (on && (!was || was.recordingId !== rec.recordingId) && how) {
      announce(`${how === 'started' ? 'Recording started' : 'This class is being recorded'}${rec.startedBy ? ` by ${nameOf(rec.startedBy)}` : ''}.`);
    }
  }

  function setLast(rec) {
    state.lastRecording = rec;
    if (!rec) return;
    $('last-section').hidden = false;
    const link = el('a', { href: '/web/recording.html?id=' + encodeURIComponent(rec.recordingId) }, rec.title || 'Recording');
    let text;
    if (rec.status === 'done') text = ' is ready to watch.';
    else if (rec.status === 'failed') text = ` could not be processed: ${window.vtp.failureText(rec.error)}`;
    else if (rec.status === 'processing') text = ` is being processed (${rec.progress || 0}%).`;
    else text = ' has stopped and waits to be processed.';
    fill($('last-recording'), link, text);
    const bar = $('last-progress');
    bar.hidden = window.vtp.isFinal(rec.status);
    if (rec.status === 'processing') bar.value = rec.progress || 0;
    else bar.removeAttribute('value');
  }

  function recordingStopped(recordingId) {
    const r = state.recording;
    if (!r || r.recordingId !== recordingId) return;
    setRecording(null);
    // its starter and admins follow it to the library; others may not see it
    if (r.startedBy === session.user.id || session.user.role === 'admin') {
      setLast({ recordingId, title: r.title, status: 'stopped', progress: 0 });
    }
    announce('Recording stopped.');
  }

  // ---- Socket.IO ----------------------------------------------------------------

  const sock = window.vtp.socket((text, connected) => {
    state.socket = connected;
    $('socket-status').textContent = text;
    if (!connected) state.joined = false;
  });

  if (sock) {
    sock.on('connect', async () => {
      try {
        const ack = await window.vtp.emitAck(sock, 'join-room', { roomId });
        state.joined = true;
        setMembers(ack.members || [], ack.count);
        const rec = ack.recording;
        if (rec && (rec.status === 'recording' || rec.status === 'pending' || !rec.status)) setRecording(rec, 'joined');
        else if (state.recording) recordingStopped(state.recording.recordingId); // stopped while we were away
        $('socket-status').textContent = 'Live updates connected.';
      } catch (e) {
        $('socket-status').textContent = `Could not join the room for live updates: ${e.message}`;
      }
    });
    sock.on('room-members', (ev) => {
      if (ev && (!ev.roomId || ev.roomId === roomId)) setMembers(ev.members || [], ev.count);
    });
    sock.on('recording-started', (ev) => {
      setRecording({ recordingId: ev.recordingId, title: ev.title, startedBy: ev.startedBy, startedAt: ev.timestamp, status: 'recording' }, 'started');
    });
    sock.on('recording-stopped', (ev) => recordingStopped(ev.recordingId));
    const lastUpdate = (ev, patch) => {
      const l = state.lastRecording;
      if (l && l.recordingId === ev.recordingId) setLast({ ...l, ...patch });
    };
    sock.on('recording-progress', (ev) => lastUpdate(ev, { status: 'processing', progress: ev.progress }));
    sock.on('recording-done', (ev) => {
      lastUpdate(ev, { status: 'done', progress: 100 });
      if (state.lastRecording && state.lastRecording.recordingId === ev.recordingId) announce('The recording is ready to watch.');
    });
    sock.on('recording-failed', (ev) => {
      lastUpdate(ev, { status: 'failed', error: ev.error });
      if (state.recording && state.recording.recordingId === ev.recordingId) setRecording(null);
    });
  } else {
    $('socket-status').textContent = 'Live updates are not available in this browser.';
  }

  // ---- Start and Stop -----------------------------------------------------------

  const recError = $('rec-error');

  function recFailure(e, verb) {
    const code = e.code || (e.body && e.body.error && e.body.error.code);
    if (code === 'room_busy') return 'This room is already being recorded.';
    if (code === 'not_active') return 'That recording has already stopped.';
    if (e.status === 403 || code === 'forbidden') {
      return verb === 'start' ? 'Only instructors and admins can record.' : 'Only the person who started the recording, or an admin, can stop it.';
    }
    return e.message || `Could not ${verb} the recording.`;
  }

  $('rec-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('rec-title-input');
    const title = input.value.trim();
    const layout = $('rec-layout').value || 'auto';
    say(recError, '');
    input.removeAttribute('aria-invalid');
    if (!title) {
      input.setAttribute('aria-invalid', 'true');
      say(recError, 'Give the recording a title.', 'error');
      input.focus();
      return;
    }
    $('start-rec').disabled = true;
    try {
      let res;
      if (sock && sock.connected) {
        res = await window.vtp.emitAck(sock, 'recording-start', { roomId, title, layout });
      } else {
        res = await window.vtp.api('POST', '/api/v1/recordings/start', { body: { roomId, title, layout } });
      }
      setRecording({ recordingId: res.recordingId, title: res.title || title, startedBy: session.user.id, startedAt: res.startedAt, status: res.status }, 'started');
    } catch (e) {
      say(recError, recFailure(e, 'start'), 'error');
      $('start-rec').disabled = Boolean(state.recording);
    }
  });

  $('stop-rec').addEventListener('click', async () => {
    const r = state.recording;
    if (!r) return;
    say(recError, '');
    $('stop-rec').disabled = true;
    try {
      if (sock && sock.connected) await window.vtp.emitAck(sock, 'recording-stop', { recordingId: r.recordingId });
      else await window.vtp.api('POST', `/api/v1/recordings/${encodeURIComponent(r.recordingId)}/stop`);
      recordingStopped(r.recordingId);
      $('start-rec').focus();
    } catch (e) {
      say(recError, recFailure(e, 'stop'), 'error');
      if (e.code === 'not_active') recordingStopped(r.recordingId);
      else $('stop-rec').disabled = !state.recording;
    }
  });

  // ---- WHIP publishing ----------------------------------------------------------

  let pc = null;
  let stream = null;
  let statsTimer = null;

  function setPublish(phase, text, isError) {
    state.publish = phase;
    say($('pub-status'), text, isError ? 'error' : phase === 'live' ? 'ok' : '');
    const busy = phase === 'starting' || phase === 'connecting';
    const sending = busy || phase === 'live' || phase === 'reconnecting';
    $('publish').hidden = sending;
    $('publish').disabled = busy;
    $('unpublish').hidden = !sending;
    $('audio-processing').disabled = sending;
    if (phase !== 'live' && phase !== 'reconnecting') $('pub-rate').textContent = '';
  }

  function mediaError(e) {
    switch (e && e.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'The browser was not allowed to use your camera and microphone. Allow them for this site (the camera icon in the address bar) and try again.';
      case 'NotFoundError':
        return 'No camera or microphone was found. Connect one and try again.';
      case 'NotReadableError':
        return 'Your camera or microphone is in use by another program. Close it and try again.';
      default:
        return `Your camera and microphone could not be started (${(e && e.message) || e}).`;
    }
  }

  async function openDevices() {
    const clean = $('audio-processing').checked;
    const audio = { echoCancellation: clean, noiseSuppression: clean, autoGainControl: clean };
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };
    try {
      return await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (e) {
      if (e.name !== 'NotFoundError' && e.name !== 'OverconstrainedError' && e.name !== 'NotReadableError') throw e;
      // one of the two is missing or busy: take part with the other
      for (const c of [{ audio }, { video }]) {
        try {
          return await navigator.mediaDevices.getUserMedia(c);
        } catch (e2) { /* try the next */ }
      }
      throw e;
    }
  }

  /** Resolves when ICE gathering is complete, or after timeoutMs with what there is. */
  function gathered(peer, timeoutMs) {
    if (peer.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (peer.iceGatheringState !== 'complete') return;
        peer.removeEventListener('icegatheringstatechange', done);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        peer.removeEventListener('icegatheringstatechange', done);
        resolve();
      }, timeoutMs);
      peer.addEventListener('icegatheringstatechange', done);
    });
  }

  function whipUrl(query) {
    return '/whip/rooms/' + encodeURIComponent(roomId) + (query || '');
  }

  /**
   * POSTs the peer's offer (all candidates gathered) to url; resolves the
   * session's URL once the answer is set, or throws with a sentence for
   * the user. isCurrent() false: the publisher was stopped meanwhile (the
   * new session is ended and null returned).
   */
  async function whipConnect(peer, url, isCurrent) {
    await peer.setLocalDescription(await peer.createOffer());
    // the recorder is ICE-lite and takes no trickled candidates: send them all at once
    await gathered(peer, 5000);
    if (!isCurrent()) return null;
    const s = window.vtp.readSession();
    if (!s) {
      window.vtp.toLogin('expired');
      return null;
    }
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + s.token },
      body: peer.localDescription.sdp,
    });
    const body = await res.text();
    if (res.status !== 201) {
      let msg = body;
      try {
        msg = JSON.parse(body).error.message;
      } catch (e) { /* plain text */ }
      if (res.status === 401) {
        window.vtp.clearSession();
        window.vtp.toLogin('expired');
      }
      throw new Error(res.status === 429 ? 'Too many connections in a short time. Wait a minute and try again.'
        : `The recorder refused the connection (${res.status}${msg ? `: ${msg.trim().slice(0, 200)}` : ''}).`);
    }
    const where = new URL(res.headers.get('Location'), location.href).href;
    if (!isCurrent()) { // stopped while waiting: end the new session too
      endSession(where);
      return null;
    }
    await peer.setRemoteDescription({ type: 'answer', sdp: body });
    return where;
  }

  async function publish() {
    if (pc) return;
    setPublish('starting', 'Asking for your camera and microphone…');
    state.publishError = null;
    try {
      stream = await openDevices();
    } catch (e) {
      state.publishError = mediaError(e);
      setPublish('failed', state.publishError, true);
      return;
    }
    $('self-view').srcObject = stream.getVideoTracks().length ? stream : null;
    setPublish('connecting', 'Connecting to the recorder…');
    const peer = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc = peer;
    try {
      for (const t of stream.getTracks()) peer.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
      peer.addEventListener('connectionstatechange', () => onConnectionState(peer));
      const where = await whipConnect(peer, whipUrl(), () => pc === peer);
      if (!where) return;
      state.whipLocation = where;
      onConnectionState(peer);
    } catch (e) {
      if (pc !== peer) return;
      state.publishError = e.message || String(e);
      teardown(false);
      setPublish('failed', state.publishError, true);
    }
  }

  function onConnectionState(peer) {
    if (peer !== pc) return;
    switch (peer.connectionState) {
      case 'connected':
        setPublish('live', stream.getVideoTracks().length && stream.getAudioTracks().length
          ? 'Sending your camera and microphone.'
          : stream.getVideoTracks().length ? 'Sending your camera (no microphone).' : 'Sending your microphone (no camera).');
        if (!statsTimer) statsTimer = setInterval(showRate, 2000);
        break;
      case 'disconnected':
        setPublish('reconnecting', 'The connection to the recorder is interrupted; waiting for it to come back…');
        break;
      case 'failed':
        state.publishError = 'The connection to the recorder was lost. Start your camera again to rejoin.';
        teardown(true);
        setPublish('failed', state.publishError, true);
        break;
      default:
        break;
    }
  }

  let lastBytes = 0;
  let lastAt = 0;
  async function showRate() {
    if (!pc) return;
    let bytesSent = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') bytesSent += s.bytesSent || 0;
    });
    const now = performance.now();
    if (lastAt && bytesSent >= lastBytes) {
      const kbps = ((bytesSent - lastBytes) * 8) / (now - lastAt);
      $('pub-rate').textContent = `Sending ${kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`}.`;
    }
    lastBytes = bytesSent;
    lastAt = now;
  }

  function endSession(url, keepalive) {
    const s = window.vtp.readSession();
    if (!url || !s) return Promise.resolve();
    return fetch(url, { method: 'DELETE', keepalive: Boolean(keepalive), headers: { Authorization: 'Bearer ' + s.token } })
      .catch(() => {});
  }

  /** Closes the connection and the devices; ends the WHIP session when asked. */
  function teardown(endWhip, keepalive) {
    const url = state.whipLocation;
    state.whipLocation = null;
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = null;
    lastBytes = 0;
    lastAt = 0;
    if (pc) pc.close();
    pc = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $('self-view').srcObject = null;
    return endWhip ? endSession(url, keepalive) : Promise.resolve();
  }

  // ---- screen sharing (a WHIP session of its own) -------------------------------------

  let sharePc = null;
  let shareStream = null;

  function setShare(phase, text, isError) {
    state.share = phase;
    say($('share-status'), text, isError ? 'error' : phase === 'live' ? 'ok' : '');
    const busy = phase === 'starting' || phase === 'connecting';
    const sharing = busy || phase === 'live';
    $('share-screen').hidden = sharing;
    $('share-screen').disabled = busy;
    $('stop-share').hidden = !sharing;
    $('screen-view').hidden = !sharing;
  }

  function shareMediaError(e) {
    switch (e && e.name) {
      case 'NotAllowedError':
        return 'Screen sharing was cancelled or not allowed.';
      case 'NotSupportedError':
      case 'TypeError':
        return 'This browser cannot share the screen.';
      default:
        return `The screen could not be shared (${(e && e.message) || e}).`;
    }
  }

  async function shareScreen() {
    if (sharePc) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      state.shareError = 'This browser cannot share the screen.';
      setShare('failed', state.shareError, true);
      return;
    }
    setShare('starting', 'Choose what to share…');
    state.shareError = null;
    try {
      // slides change seldom: a modest frame rate; tab audio when the browser offers it, as it
      // is: a video's sound or music, which voice processing (noise suppression above all)
      // would wear away, and no microphone whose echo needs cancelling
      shareStream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15, max: 30 } },
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (e) {
      state.shareError = shareMediaError(e);
      setShare(e && e.name === 'NotAllowedError' ? 'stopped' : 'failed', state.shareError, e && e.name !== 'NotAllowedError');
      return;
    }
    const mine = shareStream;
    // the browser's own "Stop sharing" ends the video track
    for (const t of mine.getVideoTracks()) t.addEventListener('ended', () => { if (shareStream === mine) stopShare(); });
    $('screen-view').srcObject = mine;
    setShare('connecting', 'Connecting your screen to the recorder…');
    const peer = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    sharePc = peer;
    try {
      for (const t of mine.getTracks()) {
        if (t.kind === 'video') t.contentHint = 'detail'; // text stays sharp rather than smooth
        peer.addTransceiver(t, { direction: 'sendonly', streams: [mine] });
      }
      peer.addEventListener('connectionstatechange', () => onShareState(peer));
      const where = await whipConnect(peer, whipUrl('?source=screen'), () => sharePc === peer);
      if (!where) return;
      state.shareLocation = where;
      onShareState(peer);
    } catch (e) {
      if (sharePc !== peer) return;
      state.shareError = e.message || String(e);
      shareTeardown(false);
      setShare('failed', state.shareError, true);
    }
  }

  function onShareState(peer) {
    if (peer !== sharePc) return;
    if (peer.connectionState === 'connected') {
      setShare('live', shareStream && shareStream.getAudioTracks().length
        ? 'Sharing your screen and its sound.' : 'Sharing your screen.');
    } else if (peer.connectionState === 'failed') {
      state.shareError = 'The connection to the recorder was lost. Share your screen again.';
      shareTeardown(true);
      setShare('failed', state.shareError, true);
    }
  }

  function shareTeardown(endWhip, keepalive) {
    const url = state.shareLocation;
    state.shareLocation = null;
    if (sharePc) sharePc.close();
    sharePc = null;
    if (shareStream) shareStream.getTracks().forEach((t) => t.stop());
    shareStream = null;
    $('screen-view').srcObject = null;
    return endWhip ? endSession(url, keepalive) : Promise.resolve();
  }

  async function stopShare() {
    await shareTeardown(true);
    setShare('stopped', 'Not sharing. Your screen share has ended.');
    $('share-screen').focus();
  }

  $('share-screen').addEventListener('click', shareScreen);
  $('stop-share').addEventListener('click', stopShare);

  $('publish').addEventListener('click', publish);
  $('unpublish').addEventListener('click', async () => {
    await teardown(true);
    setPublish('stopped', 'Not sending. Your camera and microphone are off.');
    $('publish').focus();
  });
  $('leave').addEventListener('click', async () => {
    await Promise.all([teardown(true), shareTeardown(true)]);
    if (sock) {
      try {
        await window.vtp.emitAck(sock, 'leave-room', { roomId }, 3000);
      } catch (e) { /* leaving anyway */ }
      sock.disconnect();
    }
    location.assign('/web/library.html');
  });
  // closing the tab: the session ends now rather than at the recorder's timeout
  window.addEventListener('pagehide', () => {
    if (state.whipLocation) teardown(true, true);
    if (state.shareLocation) shareTeardown(true, true);
  });

  setMembers([]);
})();
