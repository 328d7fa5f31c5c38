// The recording player: plays a recording's hlsUrl (a signed link) with
// hls.js over Media Source Extensions, or natively where the browser plays
// HLS itself. window.vtpAttachPlayer(video, url, onStatus) is what the
// library and recording pages embed; player.html plays ?src= on its own.
// window.vtpPlayer reports the state of the last player attached (for
// tests and for pages that embed it).
'use strict';

(function () {
  // Only a playlist of this server's recordings API: a page must not be
  // turned into a player of anything anyone puts in the link.
  function recordingPlaylist(src) {
    let url;
    try {
      url = new URL(src || '', location.href);
    } catch (e) {
      return null;
    }
    if (url.origin !== location.origin ||
        !/^\/api\/v1\/recordings\/[0-9a-f-]{36}\/hls\/index\.m3u8$/.test(url.pathname)) return null;
    return url;
  }

  /**
   * Plays src in video. onStatus(text, isError) hears what to show.
   * Returns the state ({ready, ended, error, engine, duration, playing,
   * currentTime}) with destroy() to let go of the stream.
   */
  function attach(video, src, onStatus) {
    const state = { ready: false, ended: false, error: null, engine: null, duration: 0, playing: false, currentTime: 0 };
    const show = (text, isError) => { if (onStatus) onStatus(text, Boolean(isError)); };
    const fail = (text) => {
      state.error = text;
      show(text, true);
    };
    let hls = null;
    const listeners = [];
    const on = (ev, fn) => {
      video.addEventListener(ev, fn);
      listeners.push([ev, fn]);
    };
    // not enumerable: the state copies as plain data ({...vtpPlayer})
    Object.defineProperty(state, 'destroy', {
      value: () => {
        for (const [ev, fn] of listeners) video.removeEventListener(ev, fn);
        if (hls) hls.destroy();
        hls = null;
        video.removeAttribute('src');
        video.load();
      },
    });
    window.vtpPlayer = state;

    const url = recordingPlaylist(src);
    if (!url) {
      fail('No recording to play (the link is missing or not a recording of this server).');
      return state;
    }

    on('loadedmetadata', () => {
      state.ready = true;
      state.duration = video.duration;
      show('Ready.');
    });
    on('playing', () => {
      state.playing = true;
      show('Playing.');
    });
    on('pause', () => {
      state.playing = false;
      if (!video.ended) show('Paused.');
    });
    on('timeupdate', () => { state.currentTime = video.currentTime; });
    on('ended', () => {
      state.ended = true;
      state.playing = false;
      show('Ended.');
    });

    if (window.Hls && window.Hls.isSupported()) {
      state.engine = 'hls.js';
      hls = new window.Hls({ enableWorker: true });
      hls.on(window.Hls.Events.ERROR, (ev, data) => {
        if (!data.fatal) return;
        const code = data.response && data.response.code;
        fail(code === 401 || code === 403 || code === 404
          ? 'This link has expired or you may not watch this recording. Open it again from the library.'
          : `Playback failed (${data.details}).`);
        if (hls) hls.destroy();
        hls = null;
      });
      hls.loadSource(url.href);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      state.engine = 'native';
      video.src = url.href;
    } else {
      fail('This browser cannot play HLS.');
    }
    return state;
  }

  window.vtpAttachPlayer = attach;

  // player.html: the whole page is the player of ?src=.
  if (document.body && document.body.dataset.page === 'player') {
    const status = document.getElementById('status');
    attach(document.getElementById('video'), new URLSearchParams(location.search).get('src'), (text, isError) => {
      status.textContent = text;
      status.className = isError ? 'error' : '';
    });
  }
})();
