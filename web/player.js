// The recording player: plays a recording's hlsUrl (a signed link, passed as
// ?src=) with hls.js over Media Source Extensions, or natively where the
// browser plays HLS itself. window.vtpPlayer reports its state (for tests
// and for pages that embed it).
'use strict';

(function () {
  const video = document.getElementById('video');
  const status = document.getElementById('status');
  const state = { ready: false, ended: false, error: null, engine: null, duration: 0 };
  window.vtpPlayer = state;

  function show(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }

  function fail(text) {
    state.error = text;
    show(text, true);
  }

  // Only a playlist of this server's recordings API: a page must not be
  // turned into a player of anything anyone puts in the link.
  const src = new URLSearchParams(location.search).get('src') || '';
  let url;
  try {
    url = new URL(src, location.href);
  } catch (e) {
    url = null;
  }
  if (!url || url.origin !== location.origin ||
      !/^\/api\/v1\/recordings\/[0-9a-f-]{36}\/hls\/index\.m3u8$/.test(url.pathname)) {
    fail('No recording to play (the link is missing or not a recording of this server).');
    return;
  }

  video.addEventListener('loadedmetadata', () => {
    state.ready = true;
    state.duration = video.duration;
    show('Ready.');
  });
  video.addEventListener('playing', () => show('Playing.'));
  video.addEventListener('ended', () => {
    state.ended = true;
    show('Ended.');
  });

  if (window.Hls && window.Hls.isSupported()) {
    state.engine = 'hls.js';
    const hls = new window.Hls({ enableWorker: true });
    hls.on(window.Hls.Events.ERROR, (ev, data) => {
      if (!data.fatal) return;
      const code = data.response && data.response.code;
      fail(code === 401 || code === 403 || code === 404
        ? 'This link has expired or you may not watch this recording. Open it again from the library.'
        : `Playback failed (${data.details}).`);
      hls.destroy();
    });
    hls.loadSource(url.href);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    state.engine = 'native';
    video.src = url.href;
  } else {
    fail('This browser cannot play HLS.');
  }
})();
