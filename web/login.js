// The sign-in page: POST /api/v1/auth/login, keep the session (common.js),
// then on to the page that sent the user here, the room typed in, or the
// library. Already signed in: say as whom, with the way on or out.
'use strict';

(function () {
  const { el, say } = window.vtp;
  const params = new URLSearchParams(location.search);
  const form = document.getElementById('login-form');
  const email = document.getElementById('email');
  const password = document.getElementById('password');
  const room = document.getElementById('room');
  const button = document.getElementById('sign-in');
  const error = document.getElementById('login-error');
  const notice = document.getElementById('notice');
  const next = window.vtp.safeNext(params.get('next'));

  const reasons = {
    expired: 'Your session has ended. Please sign in again.',
    'signed-out': 'You have signed out.',
  };
  if (reasons[params.get('reason')]) say(notice, reasons[params.get('reason')]);
  if (params.get('room')) room.value = params.get('room');

  function destination(roomId) {
    if (roomId) return '/web/room.html?room=' + encodeURIComponent(roomId);
    return next || '/web/library.html';
  }

  const current = window.vtp.readSession();
  if (current) {
    form.hidden = true;
    document.getElementById('signed-in').hidden = false;
    window.vtp.fill(document.getElementById('signed-in-as'), 'Signed in as ',
      el('strong', null, current.user.fullName || current.user.email), ` (${current.user.email}).`);
    document.getElementById('switch-user').addEventListener('click', () => {
      window.vtp.clearSession();
      location.replace('/web/index.html?reason=signed-out');
    });
  }

  function invalid(input, text) {
    input.setAttribute('aria-invalid', 'true');
    say(error, text, 'error');
    input.focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    email.removeAttribute('aria-invalid');
    password.removeAttribute('aria-invalid');
    say(error, '');
    if (!email.value.trim()) return invalid(email, 'Enter your email address.');
    if (!password.value) return invalid(password, 'Enter your password.');
    if (room.value.trim().length > 255) return invalid(room, 'A room name is at most 255 characters.');
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const res = await window.vtp.api('POST', '/api/v1/auth/login', {
        auth: false, body: { email: email.value.trim(), password: password.value },
      });
      window.vtp.saveSession(res);
      location.assign(destination(room.value.trim()));
    } catch (e) {
      password.value = '';
      if (e.status === 401) invalid(password, 'That email and password do not match an account. Check them and try again.');
      else if (e.status === 429) invalid(password, e.message || 'Too many attempts. Wait a minute, then try again.');
      else say(error, e.message || 'Signing in failed. Try again.', 'error');
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
})();
