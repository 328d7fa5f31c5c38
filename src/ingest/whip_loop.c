/* The packet path of WHIP sessions, run by the ingest loop thread (see
 * loop.c). One UDP socket per session carries everything, told apart by
 * the first byte (RFC 7983): STUN (0..3), DTLS (20..63), SRTP/SRTCP
 * (128..191).
 *
 * ICE-lite (RFC 8445 §2.5): we never send checks; we answer the
 * publisher's Binding requests when their USERNAME is ours:theirs and their
 * MESSAGE-INTEGRITY verifies with our password, and take the address of
 * the first one (or of a later one with USE-CANDIDATE) as the peer. Only
 * the peer's DTLS and SRTP are accepted. Consent (RFC 7675, turned
 * around: we barely send, so what matters is whether the peer is still
 * there): a peer that sends neither a valid check nor authenticated SRTP
 * for the timeout has gone. Browsers send checks every few seconds;
 * libnice (GStreamer) only Binding indications, which prove nothing. DTLS: we are the server
 * (a=setup:passive); once connected the SRTP keys are exported. Media:
 * SRTP is authenticated and decrypted, sorted into the session's audio or
 * video stream by payload type (the answer gives each one codec), and when
 * the room has an active recording the plain RTP goes through the same
 * capture path as plain-RTP ingest (vtp__on_rtp). RTCP feedback to the
 * publisher (receiver reports, PLI, FIR, NACK, REMB) is SRTCP-protected.
 * Everything dropped is counted by reason. */
#include "ingest_int.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "stun.h"

#define CONSENT_NS(ing) ((uint64_t)(ing)->cfg.whip_timeout_seconds * 1000000000ULL)
#define REMB_NS (1000 * 1000000ULL)
#define DTLS_TICK_NS (100 * 1000000ULL)

static void session_drop(vtp_ingest *ing, whip_session *s, enum drop_reason why)
{
	atomic_fetch_add_explicit(&ing->drops[why], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->a_drops, 1, memory_order_relaxed);
}

static void send_to_peer(whip_session *s, const uint8_t *p, size_t n,
			 const struct sockaddr_storage *to, socklen_t tolen)
{
	/* non-blocking: what does not fit the socket buffer is not sent */
	if (sendto(s->fd, p, n, MSG_DONTWAIT, (const struct sockaddr *)to, tolen) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK)
		VTP_DEBUG("whip session %s: send failed: %s", s->id, strerror(errno));
}

static void dtls_send(void *arg, const uint8_t *p, size_t n)
{
	whip_session *s = arg;

	if (s->latched)
		send_to_peer(s, p, n, &s->peer, s->peerlen);
}

void vtp__whip_send_rtcp(vtp_ingest *ing, whip_session *s, const uint8_t *p, size_t n)
{
	uint8_t buf[1500 + VTP_SRTP_MAX_TRAILER];
	size_t len = n;

	if (!n || !s->srtp || !s->latched || n > 1500)
		return;
	memcpy(buf, p, n);
	if (vtp_srtp_protect_rtcp(s->srtp, buf, &len) != VTP_SRTP_OK)
		return;
	send_to_peer(s, buf, len, &s->peer, s->peerlen);
	atomic_fetch_add_explicit(&ing->feedback_sent, 1, memory_order_relaxed);
}

/* The session is over (timeout, DTLS failure, close_notify): the WHIP
 * thread ends it, once. */
static void session_over(vtp_ingest *ing, whip_session *s, enum whip_end_reason why)
{
	int expected = WHIP_ALIVE;

	if (atomic_compare_exchange_strong(&s->a_end, &expected, (int)why))
		vtp__whip_kick(ing); /* the WHIP thread finds it by its a_end */
}

/* ---- STUN ------------------------------------------------------------------ */

static void on_stun(vtp_ingest *ing, whip_session *s, const uint8_t *p, size_t n,
		    const struct sockaddr_storage *from, socklen_t fromlen, uint64_t at)
{
	uint8_t out[256];
	vtp_stun_msg m;
	size_t len, ulen = strlen(s->username);

	if (vtp_stun_parse(p, n, &m) != 0) {
		session_drop(ing, s, DROP_STUN);
		return;
	}
	if (m.type == VTP_STUN_BINDING_INDICATION)
		return; /* a keepalive: nothing to answer */
	if (m.type != VTP_STUN_BINDING_REQUEST) {
		session_drop(ing, s, DROP_STUN); /* we send no requests: no response is ours */
		return;
	}
	/* Only the publisher knows our ufrag (it is in its answer alone):
	 * anything else is dropped without a word, so that spoofed requests
	 * cannot make us reflect traffic. The publisher with a wrong password
	 * gets its 401 (RFC 8445 §7.3, RFC 8489 §9.1.3). */
	if (!m.username || !m.integrity_at || m.username_len != ulen ||
	    memcmp(m.username, s->username, ulen) != 0) {
		session_drop(ing, s, DROP_STUN);
		return;
	}
	if (!vtp_stun_check_integrity(p, &m, s->pwd, strlen(s->pwd))) {
		session_drop(ing, s, DROP_STUN);
		len = vtp_stun_build_error(out, sizeof(out), m.txid, 401, "Unauthorized", NULL, 0,
					   NULL, 0);
		send_to_peer(s, out, len, from, fromlen);
		return;
	}
	if (m.unknown_required) {
		session_drop(ing, s, DROP_STUN);
		len = vtp_stun_build_error(out, sizeof(out), m.txid, 420, "Unknown Attribute",
					   m.unknown, m.unknown_required < 4 ? m.unknown_required : 4,
					   s->pwd, strlen(s->pwd));
		send_to_peer(s, out, len, from, fromlen);
		return;
	}
	len = vtp_stun_build_success(out, sizeof(out), m.txid, (const struct sockaddr *)from,
				     s->pwd, strlen(s->pwd));
	send_to_peer(s, out, len, from, fromlen);
	/* The first valid check picks the path; a nominated one on another
	 * path moves it (the controlling agent decides). */
	if (!s->latched ||
	    (m.use_candidate && !vtp__same_addr(&s->peer, s->peerlen, from, fromlen))) {
		if (s->latched)
			VTP_INFO("whip session %s: the publisher moved to another path", s->id);
		memcpy(&s->peer, from, sizeof(s->peer));
		s->peerlen = fromlen;
		s->latched = true;
	}
	if (vtp__same_addr(&s->peer, s->peerlen, from, fromlen))
		s->last_stun_ns = at;
}

/* ---- DTLS -------------------------------------------------------------------- */

static void on_dtls(vtp_ingest *ing, whip_session *s, const uint8_t *p, size_t n)
{
	int st;

	if (!s->dtls || atomic_load(&s->a_end) != WHIP_ALIVE) {
		session_drop(ing, s, DROP_DTLS);
		return;
	}
	st = vtp_dtls_input(s->dtls, p, n, dtls_send, s);
	if (st == VTP_DTLS_CONNECTED && !s->srtp) {
		s->srtp = vtp_srtp_new(s->dtls);
		if (!s->srtp) {
			VTP_WARN("whip session %s: SRTP keys refused by libsrtp", s->id);
			atomic_fetch_add(&ing->whip_failed, 1);
			session_over(ing, s, WHIP_DTLS_FAILED);
			return;
		}
		atomic_fetch_add(&ing->whip_connected, 1);
		VTP_INFO("whip session %s: connected (DTLS 1.2, %s)", s->id,
			 vtp_dtls_srtp_profile(s->dtls));
	} else if (st == VTP_DTLS_FAILED) {
		VTP_WARN("whip session %s: DTLS handshake failed: %s", s->id, vtp_dtls_error(s->dtls));
		atomic_fetch_add(&ing->whip_failed, 1);
		session_over(ing, s, WHIP_DTLS_FAILED);
	} else if (st == VTP_DTLS_CLOSED) {
		VTP_INFO("whip session %s: the publisher closed DTLS", s->id);
		session_over(ing, s, WHIP_DTLS_CLOSED);
	}
}

/* ---- SRTP ------------------------------------------------------------------- */

static whip_stream *stream_by_pt(whip_session *s, int pt)
{
	for (int i = 0; i < s->nstreams; i++)
		if (s->streams[i].pt == pt)
			return &s->streams[i];
	return NULL;
}

static whip_stream *stream_by_ssrc(whip_session *s, uint32_t ssrc)
{
	for (int i = 0; i < s->nstreams; i++)
		if (s->streams[i].have_ssrc && s->streams[i].ssrc == ssrc)
			return &s->streams[i];
	return NULL;
}

static void on_srtp(vtp_ingest *ing, whip_session *s, uint8_t *p, size_t n, uint64_t at)
{
	size_t len = n;
	whip_stream *st;
	vtp_rtp rtp;
	int rc;

	if (!s->srtp) {
		session_drop(ing, s, DROP_NOT_READY);
		return;
	}
	if (vtp_pkt_classify(p, n) == VTP_PKT_RTCP) {
		uint32_t sender;

		rc = vtp_srtp_unprotect_rtcp(s->srtp, p, &len);
		if (rc != VTP_SRTP_OK) {
			session_drop(ing, s, rc == VTP_SRTP_REPLAY ? DROP_SRTP_REPLAY : DROP_SRTP_AUTH);
			return;
		}
		if (len < 8) {
			session_drop(ing, s, DROP_GARBAGE);
			return;
		}
		/* a compound packet opens with the sender's SR or RR */
		sender = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
		st = stream_by_ssrc(s, sender);
		if (st && st->t)
			vtp__on_rtcp(ing, st->t, p, len, at);
		return;
	}
	rc = vtp_srtp_unprotect_rtp(s->srtp, p, &len);
	if (rc != VTP_SRTP_OK) {
		session_drop(ing, s, rc == VTP_SRTP_REPLAY ? DROP_SRTP_REPLAY :
				     rc == VTP_SRTP_AUTH ? DROP_SRTP_AUTH : DROP_GARBAGE);
		return;
	}
	if (vtp_rtp_parse(p, len, &rtp) != 0) {
		session_drop(ing, s, DROP_GARBAGE);
		return;
	}
	st = stream_by_pt(s, rtp.pt);
	if (!st) {
		session_drop(ing, s, DROP_PT);
		return;
	}
	if (!st->have_ssrc) {
		st->have_ssrc = true;
		st->ssrc = rtp.ssrc;
	} else if (st->ssrc != rtp.ssrc) {
		session_drop(ing, s, DROP_SSRC);
		return;
	}
	s->last_media_ns = at;
	s->last_stun_ns = at; /* authenticated: the peer is there */
	atomic_fetch_add_explicit(&st->a_packets, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->a_bytes, rtp.payload_len, memory_order_relaxed);
	if (st->t)
		vtp__on_rtp(ing, st->t, &rtp, p, len, at);
}

/* ---- the socket ------------------------------------------------------------- */

void vtp__whip_readable(loop_state *ls, whip_session *s)
{
	vtp_ingest *ing = ls->ing;

	for (;;) {
		uint64_t now;
		int got;

		got = recvmmsg(s->fd, ls->msgs, LOOP_BATCH, MSG_DONTWAIT, NULL);
		if (got <= 0) {
			if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				VTP_WARN("whip session %s: receive failed: %s", s->id, strerror(errno));
			return;
		}
		now = vtp__now_realtime_ns();
		for (int i = 0; i < got; i++) {
			struct msghdr *mh = &ls->msgs[i].msg_hdr;
			size_t n = ls->msgs[i].msg_len;
			uint8_t *p = ls->bufs[i];
			uint64_t at = vtp__msg_arrival(mh, now);
			const struct sockaddr_storage *from = &ls->addrs[i];

			atomic_fetch_add_explicit(&ing->rx_datagrams, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&ing->rx_bytes, n, memory_order_relaxed);
			if (mh->msg_flags & MSG_TRUNC) {
				session_drop(ing, s, DROP_OVERSIZE);
				continue;
			}
			if (n == 0) {
				session_drop(ing, s, DROP_GARBAGE);
				continue;
			}
			if (p[0] <= 3) {
				on_stun(ing, s, p, n, from, mh->msg_namelen, at);
				continue;
			}
			/* everything else only from the checked path */
			if (!s->latched || !vtp__same_addr(&s->peer, s->peerlen, from, mh->msg_namelen)) {
				session_drop(ing, s, DROP_SOURCE);
				continue;
			}
			if (p[0] >= 20 && p[0] <= 63)
				on_dtls(ing, s, p, n);
			else if (p[0] >= 128 && p[0] <= 191)
				on_srtp(ing, s, p, n, at);
			else
				session_drop(ing, s, DROP_GARBAGE);
		}
		for (int i = 0; i < got; i++) {
			ls->msgs[i].msg_hdr.msg_namelen = sizeof(ls->addrs[i]);
			ls->msgs[i].msg_hdr.msg_controllen = sizeof(ls->ctrl[i]);
		}
		if (got < LOOP_BATCH)
			return;
	}
}

/* ---- timers ------------------------------------------------------------------- */

static void send_remb(vtp_ingest *ing, whip_session *s)
{
	uint32_t ssrcs[WHIP_MAX_STREAMS];
	uint8_t buf[64];
	size_t k = 0;

	for (int i = 0; i < s->nstreams; i++)
		if (s->streams[i].video && s->streams[i].remb && s->streams[i].have_ssrc)
			ssrcs[k++] = s->streams[i].ssrc;
	if (k)
		vtp__whip_send_rtcp(ing, s, buf,
				    vtp_rtcp_build_remb(buf, sizeof(buf), s->our_ssrc, ssrcs, k,
							(uint64_t)ing->cfg.whip_max_bitrate));
}

void vtp__whip_tick(loop_state *ls, uint64_t now)
{
	vtp_ingest *ing = ls->ing;

	for (whip_session *s = ls->sessions; s; s = s->loop_next) {
		uint64_t last_media = s->last_media_ns ? s->last_media_ns : s->created_ns;
		uint64_t last_stun = s->last_stun_ns ? s->last_stun_ns : s->created_ns;

		if (atomic_load_explicit(&s->a_end, memory_order_relaxed) != WHIP_ALIVE)
			continue;
		if (s->dtls && vtp_dtls_state(s->dtls) == VTP_DTLS_HANDSHAKING && s->latched) {
			if (vtp_dtls_tick(s->dtls, dtls_send, s) == VTP_DTLS_FAILED) {
				VTP_WARN("whip session %s: DTLS handshake failed: %s", s->id,
					 vtp_dtls_error(s->dtls));
				atomic_fetch_add(&ing->whip_failed, 1);
				session_over(ing, s, WHIP_DTLS_FAILED);
				continue;
			}
		}
		if (now > last_media && now - last_media >= CONSENT_NS(ing)) {
			VTP_INFO("whip session %s: no media for %d s; ending it", s->id,
				 ing->cfg.whip_timeout_seconds);
			session_over(ing, s, WHIP_TIMEOUT);
			continue;
		}
		if (now > last_stun && now - last_stun >= CONSENT_NS(ing)) {
			VTP_INFO("whip session %s: no connectivity check for %d s (consent expired); "
				 "ending it", s->id, ing->cfg.whip_timeout_seconds);
			session_over(ing, s, WHIP_CONSENT);
			continue;
		}
		if (s->srtp && now - s->last_remb_ns >= REMB_NS) {
			s->last_remb_ns = now;
			send_remb(ing, s);
		}
	}
}

/* ---- joining and leaving the loop ------------------------------------------------ */

void vtp__whip_loop_add(loop_state *ls, whip_session *s)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.ptr = s};

	s->created_ns = vtp__now_realtime_ns();
	vtp_random_bytes(&s->our_ssrc, sizeof(s->our_ssrc));
	s->dtls = vtp_dtls_new(ls->ing->dtls, VTP_DTLS_SERVER, s->fp_alg, s->fp, s->fp_len);
	if (!s->dtls)
		VTP_ERROR("whip session %s: cannot set up DTLS", s->id);
	if (epoll_ctl(ls->ing->epfd, EPOLL_CTL_ADD, s->fd, &e) != 0) {
		VTP_ERROR("whip session %s: cannot watch its socket: %s", s->id, strerror(errno));
		session_over(ls->ing, s, WHIP_SHUTDOWN);
	}
	s->loop_next = ls->sessions;
	ls->sessions = s; /* the command's reference is now the loop's */
}

void vtp__whip_loop_end(loop_state *ls, whip_session *s)
{
	whip_session **pp;

	for (pp = &ls->sessions; *pp && *pp != s; pp = &(*pp)->loop_next)
		;
	if (!*pp) { /* ended already */
		vtp__whip_unref(s); /* the command's reference */
		return;
	}
	*pp = s->loop_next;
	/* its tracks normally ended before; any left end now */
	for (int i = 0; i < s->nstreams; i++) {
		track *t = s->streams[i].t;

		if (t) {
			vtp__track_ref(t);
			vtp__end_track(ls, t, NULL);
		}
	}
	if (s->dtls && s->latched)
		vtp_dtls_close(s->dtls, dtls_send, s);
	epoll_ctl(ls->ing->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	vtp_srtp_free(s->srtp);
	s->srtp = NULL;
	vtp_dtls_free(s->dtls);
	s->dtls = NULL;
	vtp__whip_unref(s); /* the loop's reference */
	vtp__whip_unref(s); /* the command's reference */
}

/* A capture joins the session's stream: feedback like plain-RTP tracks,
 * with what the answer agreed on. */
void vtp__whip_track_added(track *t)
{
	whip_stream *st = &t->whip->streams[t->stream];

	st->t = t;
	t->no_fir = !st->fir;
	t->use_nack = st->nack;
}

void vtp__whip_track_ended(track *t)
{
	whip_stream *st = &t->whip->streams[t->stream];

	if (st->t == t)
		st->t = NULL;
}
